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
    reps_option,
    seed_option,
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


@click.command("report")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--grid", "grid", type=click.Path(dir_okay=False, exists=True), default=None,
              metavar="RESULTS", help="A grid's table (.parquet or .csv) to include.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="The report: .html (one self-contained page, figures embedded) or .pdf (the "
                   "same page on A4; needs the pdf extra, WeasyPrint).")
@reps_option("Simulated trials per scenario (adaptive designs).")
@seed_option("Seed of the report's simulations; trial i uses the stream (seed, i).")
def report(file, grid, out, reps, seed):
    """Write a design report an ethics committee or an analysis plan can use (HTML or PDF).

    The design, power and sample size (with power curves), the grid's operating
    characteristics with Monte Carlo standard errors, adaptive allocation and stopping,
    the assumptions, the seed, the design's SHA-256 and trialkit's version — every number
    recomputed when the report is built. The page needs no network access. An --out ending in
    .pdf writes the same page as a PDF (A4, vector figures).

    \b
    Example:
      trialkit report designs/app-components-factorial.toml --grid results.parquet \\
        --out report.html
    """
    from trialkit.design import load_design
    from trialkit.study.report import design_report

    check_output(out, (".html", ".pdf"))
    frame = None
    if grid is not None:
        import pandas as pd

        if not grid.lower().endswith((".parquet", ".csv")):
            raise UserError(f"{grid} is not a grid table — give the .parquet or .csv file "
                            "written by `trialkit simulate grid` (option --grid)")
        frame = pd.read_parquet(grid) if grid.lower().endswith(".parquet") else pd.read_csv(grid)
    res = design_report(load_design(file), frame, reps=reps, seed=seed)
    res.save(out)
    click.echo(out)
