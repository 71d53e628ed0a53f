"""``trialkit simulate grid`` (designs × settings, locally or on Dask) and ``trialkit report``."""

from __future__ import annotations

import click

from trialkit.cli._common import (
    UserError,
    check_output,
    emit,
    format_option,
    jobs_option,
    quiet_option,
)


@click.command("grid")
@click.argument("grid_file", metavar="GRID", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="The tidy table (.parquet or .csv). Finished batches are kept beside it in "
                   "FILE.parts; running the same command again resumes from them.")
@jobs_option
@click.option("--dask", "dask", default=None, metavar="local[:N]",
              help="Run on a new local Dask cluster of N worker processes (default 2).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on an existing Dask cluster, e.g. tcp://127.0.0.1:8786.")
@click.option("--grow", type=click.IntRange(min=1), default=None, metavar="R",
              help="Add R replicates to every cell of the stored run (the rest is reused).")
@quiet_option
@format_option
def simulate_grid(grid_file, out, jobs, dask, scheduler, grow, fmt):
    """Simulate every cell of a grid of designs × settings into one tidy table.

    A grid file names design files, the settings to vary and the replicates per cell (see
    docs/grids.md). Every replicate's random stream is keyed by its cell and index, so the table
    is identical on any backend, number of workers or batch size; an interrupted run resumes
    from FILE.parts.

    \b
    Example:
      trialkit simulate grid designs/grids/compare-designs.toml --out results.parquet --jobs 2
      trialkit simulate grid grid.toml --out results.csv --dask local:4
      trialkit simulate grid grid.toml --out results.parquet --scheduler tcp://10.0.0.5:8786
      trialkit simulate grid grid.toml --out results.parquet --grow 1000
    """
    from trialkit.design.grid import load_grid
    from trialkit.engine.backends import open_backend
    from trialkit.study.grid import TABLE_FORMATS, run_grid

    check_output(out, TABLE_FORMATS)
    if jobs != 1 and (dask or scheduler):
        raise UserError("--jobs sets local worker processes; with --dask or --scheduler the "
                        "cluster's workers run the grid — drop --jobs")
    grid = load_grid(grid_file)
    backend = open_backend(jobs, dask, scheduler)
    try:
        res = run_grid(grid, out, backend, grow=grow or 0)
    except KeyboardInterrupt:
        raise UserError(f"interrupted — the finished batches are kept in {out}.parts; run the "
                        "same command again to resume") from None
    finally:
        backend.close()
    res.save(out)
    emit({"grid": res.grid, "cells": res.cells, "reps": res.reps, "seed": res.seed,
          "computed": res.computed, "backend": res.backend, "out": out,
          "seconds": round(res.seconds, 2), "rows": len(res.rows)}, fmt)
