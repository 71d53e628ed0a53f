"""Benchmark the randomisation server over HTTP on loopback, next to the embedded Python API.

One run: a server (uvicorn, SQLite at default durability: one fsync per write) with a factorial
trial and an MRT; a load generator in another process (asyncio, keep-alive connections, every
request a new participant or decision point) with 1, 8 and 32 concurrent clients; enrolments/s,
decisions/s and p50/p99 latency; and the embedded API's enrolments/s with 8 client processes in
the same run.

Goals on a 2-core machine: at 32 clients >= 1000 decisions/s with p99 < 50 ms; HTTP enrolment
throughput >= 50% of the embedded API's at 8 clients.

    .venv/bin/python scripts/bench_server.py [--requests 3000] [--workers 1] [--db URL]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

LOAD = r'''
import asyncio, json, sys, time
host, port, path, token, kind, clients, total, tag = sys.argv[1:9]
port, clients, total = int(port), int(clients), int(total)

def body(i):
    if kind == "enrol":
        site = ("london", "manchester", "online")[i % 3]
        return {"participant": f"{tag}{i}", "stratum": {"site": site}}
    return {"participant": f"{tag}{i // 60}", "decision_point": i % 60 + 1, "available": True}

async def client(c, queue, latencies):
    reader, writer = await asyncio.open_connection(host, port)
    while True:
        try:
            i = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        data = json.dumps(body(i)).encode()
        request = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                   ).encode() + data
        t0 = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(l.split(b":")[1] for l in head.split(b"\r\n")
                          if l.lower().startswith(b"content-length")))
        payload = await reader.readexactly(length)
        latencies.append(time.perf_counter() - t0)
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"request failed: {head[:60]!r} {payload[:200]!r}")
    writer.close()

async def main():
    queue = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    latencies = []
    t0 = time.perf_counter()
    await asyncio.gather(*(client(c, queue, latencies) for c in range(clients)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    print(json.dumps({"rate": total / elapsed, "p50": latencies[len(latencies) // 2],
                      "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}))

try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
asyncio.run(main())
'''


def load(server: str, path: str, token: str, kind: str, clients: int, total: int,
         tag: str) -> dict:
    """Run the load generator in its own process; return rate, p50 and p99."""
    from urllib.parse import urlsplit

    parts = urlsplit(server)
    out = subprocess.run([sys.executable, "-c", LOAD, parts.hostname, str(parts.port), path,
                          token, kind, str(clients), str(total), tag],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"load generator failed: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout)


def main() -> None:
    from bench_service import DESIGN, api_rate
    from serverkit import Server

    from trialkit.service.trial import Trial

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per measurement")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--db", default=None, help="store URL (default: a new SQLite file)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="tk-bench-server-")
    db = args.db or f"sqlite:///{tmp}/server.db"
    try:
        Trial.create(DESIGN, db, key_file=f"{tmp}/f.key", name="bench").close()
        Trial.create(ROOT / "designs" / "checkin-prompts-mrt.toml", db,
                     key_file=f"{tmp}/m.key").close()
        with Trial.open(db, "bench") as t:
            coordinator = t.create_token("coordinator")["token"]
        with Trial.open(db, "checkin_prompts_mrt") as t:
            app = t.create_token("app")["token"]
        rows = []
        with Server(db, workers=args.workers) as server:
            for clients in (1, 8, 32):
                n = args.requests if clients > 1 else args.requests // 3
                enrol = load(server.url, "/v1/trials/bench/participants", coordinator, "enrol",
                             clients, n, f"e{clients}-")
                decide = load(server.url, "/v1/trials/checkin_prompts_mrt/decisions", app,
                              "decide", clients, n, f"d{clients}-")
                rows.append((clients, enrol, decide))
        embedded = api_rate(db, 8, args.requests, "api8-")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"cpus: {os.cpu_count()}   python: {sys.version.split()[0]}   server workers: "
          f"{args.workers}   store: {'SQLite (synchronous=full)' if not args.db else args.db}")
    print(f"{'clients':>7} {'enrol/s':>9} {'p50':>8} {'p99':>8}   {'decide/s':>9} {'p50':>8} "
          f"{'p99':>8}")
    for clients, e, d in rows:
        print(f"{clients:>7} {e['rate']:>9.0f} {e['p50'] * 1e3:>6.1f}ms {e['p99'] * 1e3:>6.1f}ms"
              f"   {d['rate']:>9.0f} {d['p50'] * 1e3:>6.1f}ms {d['p99'] * 1e3:>6.1f}ms")
    print(f"embedded Python API, 8 client processes: {embedded:.0f} enrolments/s")
    _, _, d32 = rows[-1]
    e8 = rows[1][1]
    print(f"goal 32 clients >= 1000 decisions/s: {d32['rate']:.0f}/s (ratio "
          f"{d32['rate'] / 1000:.2f}x); p99 < 50 ms: {d32['p99'] * 1e3:.1f} ms")
    print(f"goal HTTP enrolments >= 50% of the embedded API (8 clients): "
          f"{e8['rate']:.0f}/s vs {embedded:.0f}/s = {e8['rate'] / embedded:.0%}")
    print(f"(load average during the run: {os.getloadavg()[0]:.2f}; measured "
          f"{time.strftime('%Y-%m-%d %H:%M')})")


if __name__ == "__main__":
    main()
