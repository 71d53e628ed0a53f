"""Benchmark: a 100-cell adaptive grid on the local pool and on a 2-worker Dask cluster.

The example adaptive design over 10 superiority thresholds × 5 equivalence probabilities × 2
scenarios (100 cells), 1000 trials per cell, run side by side in one run: on a local pool of
``--jobs`` processes and on a ``distributed.LocalCluster`` of as many single-threaded workers.
Prints both wall times, the efficiency of Dask against the pool (pool seconds ÷ Dask seconds;
goal ≥ 0.9, cluster start-up included and excluded) and whether the two tables are identical
byte for byte.

Usage: .venv/bin/python scripts/bench_grid.py [--reps 1000] [--jobs 2] [--cells 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

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


def timed(grid, out: str, backend) -> float:
    t0 = time.perf_counter()
    run_grid(grid, out, backend).save(out)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cells", type=int, default=100)
    args = ap.parse_args()
    grid = loads_grid(grid_text(args.reps, args.cells), "bench-grid.toml")
    n_cells = len(grid.cells())
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"grid: {n_cells} cells x {args.reps} trials = {n_cells * args.reps} trials")
    with tempfile.TemporaryDirectory() as tmp:
        pool_out, dask_out = os.path.join(tmp, "pool.parquet"), os.path.join(tmp, "dask.parquet")
        pool = LocalPool(args.jobs)
        try:
            pool_s = timed(grid, pool_out, pool)
        finally:
            pool.close()
        t0 = time.perf_counter()
        dask = DaskBackend(workers=args.jobs)
        start_s = time.perf_counter() - t0
        try:
            dask_s = timed(grid, dask_out, dask)
        finally:
            dask.close()
        same = Path(pool_out).read_bytes() == Path(dask_out).read_bytes()
    print(f"local pool ({args.jobs} processes): {pool_s:8.2f} s")
    print(f"Dask LocalCluster ({args.jobs} workers): {dask_s:8.2f} s "
          f"(+ {start_s:.2f} s to start the cluster)")
    print(f"efficiency of Dask against the pool: {pool_s / dask_s:.3f} "
          f"(with cluster start-up: {pool_s / (dask_s + start_s):.3f}; goal >= 0.9)")
    print(f"tables identical byte for byte: {same}")


if __name__ == "__main__":
    main()
