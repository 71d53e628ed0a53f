"""Benchmark: a 100-cell adaptive grid on the local pool and on a 2-worker Dask cluster.

The example adaptive design over 10 superiority thresholds × 5 equivalence probabilities × 2
scenarios (100 cells), 1000 trials per cell, run side by side in one run: on a local pool of
``--jobs`` processes and on a ``distributed.LocalCluster`` of as many single-threaded workers.
The two backends run in alternating rounds (each grows its grid by reps/rounds replicates), so
a change of the shared machine's load falls on both alike. Prints both wall times, the CPU
seconds of the worker processes, the load average, the efficiency of Dask against the pool
(pool seconds ÷ Dask seconds; goal ≥ 0.9, cluster start-up included and excluded) and whether
the two tables are identical byte for byte.

Usage: .venv/bin/python scripts/bench_grid.py [--reps 1000] [--jobs 2] [--cells 100] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import psutil

from trialkit.design.grid import loads_grid
from trialkit.engine.backends import DaskBackend, LocalPool
from trialkit.study import run_grid

DESIGN = Path(__file__).resolve().parent.parent / "designs" / "three-arm-adaptive.toml"
SUPERIORITY = [0.95, 0.955, 0.96, 0.965, 0.97, 0.975, 0.98, 0.985, 0.99, 0.995]
EQUIVALENCE = [0.8, 0.85, 0.9, 0.95, 0.99]


def grid_text(reps: int, cells: int) -> str:
    sup = SUPERIORITY[:max(1, cells // (2 * len(EQUIVALENCE)))]
    return f"""
name = "bench_grid"
seed = 1
reps = {reps}

[[designs]]
file = "{DESIGN}"
label = "adaptive"
[designs.axes]
scenario = ["alternative", "null"]
"stopping.superiority" = {sup}
"stopping.equivalence_prob" = {EQUIVALENCE}
"""


def _children_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's child processes."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            cpu = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += cpu.user + cpu.system
    return total


def timed(grid, out: str, backend, grow: int) -> tuple[float, float]:
    """Run (or grow) the grid on ``backend``: wall seconds and the workers' CPU seconds."""
    t0 = time.perf_counter()
    cpu0 = _children_cpu()
    run_grid(grid, out, backend, grow=grow).save(out)
    return time.perf_counter() - t0, _children_cpu() - cpu0


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def interleaved(grid, rounds: int, step: int, backends: dict, outs: dict) -> dict:
    """Run the grid on every backend in ``rounds`` alternating rounds of ``step`` replicates.

    Round 1 runs ``step`` replicates per cell, every later round grows each backend's grid by
    ``step`` (the order of the backends alternates), so a change of the machine's load during
    the run falls on both backends alike; each backend still computes the whole grid.
    """
    totals = {name: [0.0, 0.0] for name in backends}
    names = list(backends)
    for k in range(rounds):
        for name in names if k % 2 == 0 else names[::-1]:
            wall, cpu = timed(grid, outs[name], backends[name], 0 if k == 0 else step)
            totals[name][0] += wall
            totals[name][1] += cpu
        print(f"round {k + 1}/{rounds}: pool {totals['pool'][0]:.1f} s, Dask "
              f"{totals['dask'][0]:.1f} s so far; load average {load()}", flush=True)
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cells", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=4,
                    help="alternating rounds of reps/rounds replicates per cell")
    args = ap.parse_args()
    step = args.reps // args.rounds
    grid = loads_grid(grid_text(step, args.cells), "bench-grid.toml")
    n_cells = len(grid.cells())
    print(f"load average (1/5/15 min) before: {load()} on {os.cpu_count()} CPUs")
    print(f"grid: {n_cells} cells x {step * args.rounds} trials = "
          f"{n_cells * step * args.rounds} trials, in {args.rounds} alternating rounds")
    t0 = time.perf_counter()
    dask = DaskBackend(workers=args.jobs)
    start_s = time.perf_counter() - t0
    start_cpu = _children_cpu()
    pool = LocalPool(args.jobs)
    with tempfile.TemporaryDirectory() as tmp:
        outs = {n: os.path.join(tmp, f"{n}.parquet") for n in ("pool", "dask")}
        try:
            totals = interleaved(grid, args.rounds, step, {"pool": pool, "dask": dask}, outs)
        finally:
            pool.close()
            dask.close()
        same = Path(outs["pool"]).read_bytes() == Path(outs["dask"]).read_bytes()
    (pool_s, pool_cpu), (dask_s, dask_cpu) = totals["pool"], totals["dask"]
    print(f"load average after: {load()}")
    print(f"local pool ({args.jobs} processes): {pool_s:8.2f} s wall, {pool_cpu:8.2f} s CPU "
          "in the workers")
    print(f"Dask LocalCluster ({args.jobs} workers): {dask_s:8.2f} s wall, {dask_cpu:8.2f} s CPU "
          f"in the workers (+ {start_s:.2f} s wall, {start_cpu:.2f} s CPU to start the cluster)")
    print(f"efficiency of Dask against the pool: {pool_s / dask_s:.3f} "
          f"(with cluster start-up: {pool_s / (dask_s + start_s):.3f}; goal >= 0.9); "
          f"CPU ratio pool/Dask {pool_cpu / dask_cpu:.3f}")
    print(f"tables identical byte for byte: {same}")


if __name__ == "__main__":
    main()
