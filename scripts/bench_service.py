"""Benchmark the live randomisation service: allocations per second and CLI enrol latency.

Measures, on SQLite and (when a server is given) PostgreSQL:
- allocations/s through the Python API with 1 and 8 concurrent client processes;
- allocations/s through ``trialkit trial enrol`` processes with 1 and 8 concurrent clients;
- p50/p99 latency of one ``trialkit trial enrol`` call including process start-up;
- the cost of the keyed audit chain: API allocations/s at default durability (SQLite,
  synchronous=full) with 1 and 8 clients, alternating, in the same run, between this code, this
  code with the audit MAC replaced by the unkeyed SHA-256 of trialkit 0.1, and the previous
  release itself (``--baseline REV``, checked out in a temporary git worktree).

Goals: >= 500 allocations/s with 8 API clients on SQLite; one CLI enrol < 0.5 s; keyed audit
costs < 10% of the default-durability throughput.

Usage:
    python scripts/bench_service.py [--n-api 2000] [--n-cli 80] [--pg URL] [--baseline REV]
    (the PostgreSQL URL defaults to $TRIALKIT_TEST_PG_URL; without one PostgreSQL is skipped;
    --baseline defaults to 6c60cc3, the last commit before the keyed audit; "none" skips it)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "designs" / "app-components-factorial.toml"
TRIALKIT = str(Path(sys.executable).with_name("trialkit"))

UNKEYED = """
import os
if os.environ.get("BENCH_UNKEYED"):
    # trialkit 0.1's unkeyed SHA-256 chain in place of the HMAC (for the cost comparison only)
    import hashlib
    from trialkit.service import audit, lifecycle, transaction
    def unkeyed(key, seq, at, who, action, payload, prev):
        text = audit.canonical([key.trial, seq, at, who, action, payload, prev])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    audit.row_mac = transaction.row_mac = lifecycle.row_mac = unkeyed
"""

WORKER = UNKEYED + """
import sys, time
from trialkit.service import Trial
url, prefix, n, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
trial = Trial.open(url, "bench")
trial.key()
sites = ("london", "manchester", "online")
while time.time() < start_at:
    time.sleep(0.001)
t0, c0 = time.time(), time.process_time()
for i in range(n):
    trial.enrol(f"{prefix}-{i}", {"site": sites[i % 3]})
print(t0, time.time(), (time.process_time() - c0) / n)
"""


def api_rate(url: str, clients: int, total: int, tag: str, env: dict | None = None,
             cpu: list | None = None) -> float:
    """Allocations/s of ``clients`` processes enrolling ``total`` participants together
    (the clients' CPU seconds per allocation are appended to ``cpu``)."""
    start_at = time.time() + 2.0 + 0.2 * clients
    per = total // clients
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, f"{tag}{c}", str(per),
                               str(start_at)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, **(env or {})})
             for c in range(clients)]
    spans = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"worker failed ({p.returncode})")
        start, end, per_allocation = map(float, out.split())
        spans.append((start, end))
        if cpu is not None:
            cpu.append(per_allocation)
    first = min(s for s, _ in spans)
    last = max(e for _, e in spans)
    return per * clients / (last - first)


def cli_enrol(url: str, participant: str, site: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([TRIALKIT, "trial", "enrol", "bench", participant, "--stratum",
                    f"site={site}", "--db", url, "--format", "json"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def cli_rate(url: str, clients: int, total: int, tag: str) -> tuple[float, list[float]]:
    """Allocations/s and per-call latencies of CLI enrolments from ``clients`` threads."""
    per = total // clients
    latencies: list[float] = []
    lock = threading.Lock()

    def run(c: int) -> None:
        for i in range(per):
            dt = cli_enrol(url, f"{tag}{c}-{i}", ("london", "manchester", "online")[i % 3])
            with lock:
                latencies.append(dt)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per * clients / (time.perf_counter() - t0), latencies


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    idx = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[idx]


def bench_store(label: str, url: str, key: str, n_api: int, n_cli: int) -> dict:
    from trialkit.service import Trial

    Trial.create(DESIGN, url, key_file=key, name="bench").close()
    res = {"store": label}
    res["api_1"] = api_rate(url, 1, n_api // 2, "a1-")
    res["api_8"] = api_rate(url, 8, n_api, "a8-")
    res["cli_1"], lat = cli_rate(url, 1, n_cli, "c1-")
    res["cli_8"], _ = cli_rate(url, 8, n_cli, "c8-")
    res["p50"] = statistics.median(lat)
    res["p99"] = percentile(lat, 99)
    with Trial.open(url, "bench") as trial:
        res["verify_ok"] = trial.verify(key)["ok"]
    return res


CREATE = UNKEYED + """
import sys
from trialkit.service import Trial
Trial.create(sys.argv[1], sys.argv[2], key_file=sys.argv[3], name="bench").close()
"""


def audit_cost(tmp: str, n_api: int, baseline: str | None, repeats: int = 3) -> dict:
    """API allocations/s (SQLite, synchronous=full) of each variant, alternating in one run."""
    variants = {"keyed": {}, "unkeyed": {"BENCH_UNKEYED": "1"}}
    worktree = None
    if baseline:
        worktree = os.path.join(tmp, "baseline")
        subprocess.run(["git", "worktree", "add", "--detach", worktree, baseline], cwd=ROOT,
                       check=True, capture_output=True)
        variants["previous release"] = {"PYTHONPATH": worktree}
    try:
        rates: dict = {v: {1: [], 8: [], "cpu": []} for v in variants}
        for r in range(repeats):
            for name, env in variants.items():
                url = f"sqlite:///{tmp}/cost-{r}-{name.replace(' ', '_')}.db"
                subprocess.run([sys.executable, "-c", CREATE, str(DESIGN), url,
                                f"{tmp}/cost-{r}-{name.replace(' ', '_')}.key"], check=True,
                               env={**os.environ, **env})
                rates[name][1].append(api_rate(url, 1, n_api // 2, f"c{r}1-", env,
                                               rates[name]["cpu"]))
                rates[name][8].append(api_rate(url, 8, n_api, f"c{r}8-", env))
    finally:
        if worktree:
            subprocess.run(["git", "worktree", "remove", "--force", worktree], cwd=ROOT,
                           capture_output=True)
    return {v: {c: statistics.median(x) for c, x in by.items()} for v, by in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-api", type=int, default=2000, help="allocations per API run")
    parser.add_argument("--n-cli", type=int, default=80, help="CLI enrolments per CLI run")
    parser.add_argument("--pg", default=os.environ.get("TRIALKIT_TEST_PG_URL"),
                        help="PostgreSQL URL (a scratch schema is created and dropped)")
    parser.add_argument("--baseline", default="6c60cc3",
                        help="git revision of the previous release ('none' to skip)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each audit variant")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="tk-bench-")
    results = []
    try:
        results.append(bench_store("sqlite", f"sqlite:///{tmp}/bench.db", f"{tmp}/sqlite.key",
                                   args.n_api, args.n_cli))
        results.append(bench_store("sqlite-nrm", f"sqlite:///{tmp}/bench2.db?synchronous=normal",
                                   f"{tmp}/sqlite2.key", args.n_api, args.n_cli))
        if args.pg:
            import psycopg

            schema = "bench_" + uuid.uuid4().hex[:8]
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            try:
                sep = "&" if "?" in args.pg else "?"
                url = f"{args.pg}{sep}options=-csearch_path%3D{schema}"
                results.append(bench_store("postgresql", url, f"{tmp}/pg.key", args.n_api,
                                           args.n_cli))
            finally:
                with psycopg.connect(args.pg, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
        cost = audit_cost(tmp, args.n_api, None if args.baseline == "none" else args.baseline,
                          args.repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"cpus: {os.cpu_count()}   python: {sys.version.split()[0]}")
    print(f"{'store':<11} {'API 1':>9} {'API 8':>9} {'CLI 1':>8} {'CLI 8':>8} "
          f"{'CLI p50':>9} {'CLI p99':>9}  verify")
    for r in results:
        print(f"{r['store']:<11} {r['api_1']:>9.0f} {r['api_8']:>9.0f} {r['cli_1']:>8.1f} "
              f"{r['cli_8']:>8.1f} {r['p50'] * 1000:>7.0f}ms {r['p99'] * 1000:>7.0f}ms  "
              f"{r['verify_ok']}")
    print("(allocations per second; CLI latency includes process start-up)")
    print("(sqlite: WAL + synchronous=full, the default, one fsync per allocation; sqlite-nrm: "
          "?synchronous=normal)")
    sq, nrm = results[0], results[1]
    print(f"goal API 8 clients SQLite >= 500/s: default {sq['api_8']:.0f}/s "
          f"(ratio {sq['api_8'] / 500:.2f}x); with synchronous=normal {nrm['api_8']:.0f}/s "
          f"(ratio {nrm['api_8'] / 500:.2f}x)")
    print(f"goal CLI enrol < 0.5 s: p50 {sq['p50']:.3f} s, p99 {sq['p99']:.3f} s "
          f"(p99 is {0.5 / sq['p99']:.2f}x under the limit)")
    print()
    print(f"keyed audit cost (API allocations/s, SQLite synchronous=full, median of "
          f"{args.repeats} alternating runs):")
    print(f"{'variant':<18} {'1 client':>9} {'8 clients':>10} {'CPU/allocation':>15}")
    for name, by in cost.items():
        print(f"{name:<18} {by[1]:>9.0f} {by[8]:>10.0f} {by['cpu'] * 1e6:>13.0f}us")
    for other in [v for v in cost if v != "keyed"]:
        for c in (1, 8):
            ratio = cost["keyed"][c] / cost[other][c]
            print(f"keyed / {other} at {c} client(s): {ratio:.3f} (cost {1 - ratio:+.1%}; "
                  f"goal: cost < 10%)")
        extra = cost["keyed"]["cpu"] - cost[other]["cpu"]
        wall = 1 / cost["keyed"][1]
        print(f"keyed - {other}: {extra * 1e6:+.0f}us CPU per allocation = {extra / wall:+.1%} "
              f"of the 1-client wall time per allocation")


if __name__ == "__main__":
    main()
