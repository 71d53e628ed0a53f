"""``trialkit simulate FILE`` (adaptive designs), ``trialkit calibrate`` and ``trialkit gsd``."""

from __future__ import annotations

import click

from trialkit.cli._common import (
    UserError,
    check_figure_path,
    check_output,
    deprecated_alias,
    emit,
    format_option,
    jobs_option,
    out_option,
    quiet_option,
    reps_option,
    require_kind,
    scenario_option,
    seed_option,
    write_figure,
)
from trialkit.constants import POSTERIOR_METHODS

_reps = reps_option("Number of simulated trials.")
_seed = seed_option("Base seed; trial i uses the stream (seed, i).")
_jobs = jobs_option
_method = click.option("--method", type=click.Choice(POSTERIOR_METHODS), default=None,
                       help="Posterior probabilities from draws (as adaptr) or by quadrature "
                            "(exact, faster); default: the design's posterior.method.")
_scenario = scenario_option("Scenario name from the design file (default: the first).")


@click.command("simulate")
@click.argument("file", type=click.Path(dir_okay=False))
@_scenario
@_reps
@_seed
@_jobs
@_method
@click.option("--selection", default=None,
              help="Arm selection for trials without a superior arm (default: the design's).")
@click.option("--prefer", "preferences", multiple=True, metavar="ARM",
              help="With --selection 'list' or 'list or best': arms in order of preference "
                   "(repeatable; default: the design's posterior.preferences).")
@click.option("--uncertainty", is_flag=True, help="Add bootstrap SEs and intervals (1000).")
@out_option("Write the trials (.json; an existing file with the same design, scenario and seed "
            "is grown to --reps) or a figure of allocation probabilities, stopping times and "
            "selection (.png, .pdf, .svg). Repeatable.", multiple=True)
@deprecated_alias("--save", "--out", "out", type=click.Path(dir_okay=False), default=None)
@deprecated_alias("--plot", "--out", "out", type=click.Path(dir_okay=False), default=None)
@quiet_option
@format_option
def simulate_design(file, scenario, reps, seed, jobs, method, selection, preferences, uncertainty,
                    out, fmt):
    """Simulate an adaptive design: stopping, selection, sample size, IDP.

    \b
    Example:
      trialkit simulate designs/three-arm-adaptive.toml --reps 1000 --seed 1 --jobs 2
      trialkit simulate designs/three-arm-adaptive.toml --scenario null --format json \\
        --out trials.json --out trials.png
    """
    import os

    from trialkit.adaptive import check_performance, load_results, run_trials, setup_trial

    saves = [p for p in out if p.lower().endswith(".json")]
    figures = [p for p in out if p not in saves]
    for path in saves:
        check_output(path, (".json",))
    for path in figures:
        check_figure_path(path)
    if len(saves) > 1:
        raise UserError("--out names two .json files — give one file for the trials")
    spec = setup_trial(file, scenario, method)
    saved = load_results(saves[0], spec) if saves and os.path.exists(saves[0]) else None
    res = run_trials(spec, reps, seed, jobs=jobs, resume=saved)
    if saves and (saved is None or res.n_rep > saved.n_rep):
        res.save(saves[0])
    report = {"design": spec.design_name, "scenario": spec.scenario, "reps": res.n_rep,
              "seed": seed, "version": res.version,
              "metrics": check_performance(res, selection, preferences or None,
                                           uncertainty=uncertainty),
              "seconds": round(res.seconds, 3)}
    for path in figures:
        report["plot"] = write_figure(res.plot(selection, preferences or None), path)
    emit(report, fmt)


@click.command("calibrate")
@click.argument("file", type=click.Path(dir_okay=False))
@_scenario
@click.option("--target", type=float, default=0.05, show_default=True,
              help="Wanted P(superiority) under the (null) scenario.")
@_reps
@_seed
@_jobs
@_method
@quiet_option
@format_option
def calibrate(file, scenario, target, reps, seed, jobs, method, fmt):
    """Find the symmetric superiority/inferiority threshold for a target type I error.

    Use a null scenario (equal true values). The search reuses the same simulated trials for
    every threshold; the result is re-checked on fresh trials, with its Monte Carlo SE.

    \b
    Example:
      trialkit calibrate designs/three-arm-adaptive.toml --scenario null --target 0.05 \\
        --reps 1000 --seed 1
    """
    from trialkit.adaptive import calibrate_trial, setup_trial

    require_kind(file, ("adaptive",), "trialkit calibrate")
    spec = setup_trial(file, scenario, method)
    emit(calibrate_trial(spec, target=target, reps=reps, seed=seed, jobs=jobs), fmt)


@click.command("adaptive")
@click.argument("design_file", metavar="DESIGN", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--outcome", default="outcome", show_default=True,
              help="Outcome column (empty where not yet observed).")
@click.option("--include-marked-errors", is_flag=True,
              help="Analyse participants marked in error (marked_error = 1) too; by default "
                   "they are left out.")
@format_option
def analyse_adaptive(design_file, data, outcome, include_marked_errors, fmt):
    """Analyse an adaptive trial's outcomes with the design's posterior and final-look rules.

    DATA is the trial's export (the arm column) with an outcome column. Reports every arm's
    patients with outcome data, events or mean, posterior mean and 95% interval, P(best),
    P(better than the control) and status under the rules of the last planned look, the
    decision (superiority, equivalence, futility or none), and which rows were analysed.

    \b
    Example:
      trialkit simulate outcomes designs/three-arm-adaptive.toml allocations.csv --seed 1 \\
        --out rehearsal.csv
      trialkit analyse adaptive designs/three-arm-adaptive.toml rehearsal.csv
    """
    from trialkit.adaptive.final import analyse_adaptive as run
    from trialkit.design import load_design
    from trialkit.tables import read_table

    require_kind(design_file, ("adaptive",), "trialkit analyse adaptive",
                 {"factorial": "`trialkit analyse factorial FILE DATA`",
                  "mrt": "`trialkit analyse mrt DATA --design FILE`"})
    emit(run(load_design(design_file), read_table(data), outcome=outcome,
             include_marked_errors=include_marked_errors), fmt)


def _fractions(ctx, param, value):
    if value is None:
        return None
    try:
        return [float(v) for v in value.replace(",", " ").split()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a list of numbers — write e.g. "
                                 "'0.33,0.67,1'") from None


@click.command("gsd")
@click.option("--looks", type=int, required=True, help="Number of analyses K.")
@click.option("--alpha", type=float, default=0.025, show_default=True,
              help="One-sided significance level.")
@click.option("--type", "kind", type=click.Choice(["OF", "P", "asOF", "asP"]), default="OF",
              show_default=True, help="O'Brien-Fleming, Pocock, or alpha spending of their type.")
@click.option("--info-fractions", callback=_fractions, default=None,
              help="Information fractions, e.g. '0.5,0.75,1' (default equally spaced).")
@click.option("--effect", type=float, default=None,
              help="Standardised effect (mean difference / SD), two arms 1:1.")
@click.option("--power", type=float, default=None, help="Power for the inflation factor and n.")
@format_option
def gsd(looks, alpha, kind, info_fractions, effect, power, fmt):
    """Group-sequential efficacy boundaries (one-sided) and the maximum sample size.

    \b
    Example:
      trialkit gsd --looks 3 --alpha 0.025 --type OF --format json
      trialkit gsd --looks 3 --type asOF --info-fractions 0.5,0.75,1 --effect 0.3 --power 0.8
    """
    from trialkit.adaptive import gsd_boundaries

    emit(gsd_boundaries(looks, alpha, kind, info_fractions, effect, power), fmt)
