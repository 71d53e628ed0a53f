"""Factorial commands: ``power|samplesize|mde factorial``, ``power|samplesize FILE``, ``costs``."""

from __future__ import annotations

from collections.abc import Callable

import click

from trialkit.cli._common import (
    UserError,
    check_output,
    emit,
    format_option,
    given,
    jobs_option,
    out_option,
    quiet_option,
    refuse_unused,
    reps_option,
    scenario_option,
    seed_option,
)
from trialkit.constants import ADJUSTMENTS, ASSIGNMENTS, PRETESTS, TABLE_FORMATS
from trialkit.plotting import FIGURE_FORMATS


def _setting_options(func: Callable) -> Callable:
    """Options shared by the quick (no design file) factorial commands."""
    opts = [
        click.option("--factors", type=int, required=True, help="Number of two-level factors."),
        click.option("--sigma", type=float, default=None,
                     help="Outcome sd (needed with --raw-main/--raw-coef; default 1)."),
        click.option("--model-order", type=int, default=1, show_default=True,
                     help="Highest interaction order in the analysis model."),
        click.option("--alpha", type=float, default=0.05, show_default=True,
                     help="Two-sided significance level."),
        click.option("--assignment", type=click.Choice(ASSIGNMENTS), default="independent",
                     show_default=True, help="Individuals, individuals within clusters, or "
                     "whole clusters randomised."),
        click.option("--cluster-size", type=float, default=None,
                     help="Mean members per cluster (within/between)."),
        click.option("--cluster-size-sd", type=float, default=None,
                     help="Sd of cluster sizes (between)."),
        click.option("--icc", type=float, default=None, help="Intraclass correlation, in [0, 1)."),
        click.option("--pretest", type=click.Choice(PRETESTS), default="none", show_default=True,
                     help="Pretest as ANCOVA covariate or as a repeated measure."),
        click.option("--pre-post-corr", type=float, default=None,
                     help="Pretest-posttest correlation."),
        click.option("--change-score-icc", type=float, default=None,
                     help="ICC of change scores (between clusters, repeated pretest)."),
        click.option("--exact", is_flag=True,
                     help="Exact mode: no noncentrality cap, no rounding (default: MOST parity)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def _effect_options(func: Callable) -> Callable:
    opts = [
        click.option("--d-main", type=float, default=None,
                     help="Standardised main effect 2b/sigma."),
        click.option("--raw-main", type=float, default=None, help="Raw main effect 2b."),
        click.option("--raw-coef", type=float, default=None,
                     help="Raw effect-coded coefficient b."),
        click.option("--f2", type=float, default=None, help="Cohen's f squared, b^2/sigma^2."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def _binary_options(func: Callable) -> Callable:
    opts = [
        click.option("--baseline", type=float, default=None,
                     help="Binary outcome: rate with every component off."),
        click.option("--logodds-main", type=float, default=None,
                     help="Binary outcome: main effect as log-odds difference (+1 vs -1)."),
        click.option("--risk-diff", type=float, default=None,
                     help="Binary outcome: main effect as risk difference (+1 vs -1)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def _setting(kw: dict) -> dict:
    keys = ("model_order", "alpha", "assignment", "cluster_size", "cluster_size_sd", "icc",
            "pretest", "pre_post_corr", "change_score_icc", "exact")
    return {k: kw[k] for k in keys}


def _effect(kw: dict) -> dict:
    return {k: kw[k] for k in ("d_main", "raw_main", "raw_coef", "f2", "sigma")}


@click.command("factorial")
@_setting_options
@_effect_options
@_binary_options
@click.option("--n-total", type=float, default=None, help="Total participants (independent).")
@click.option("--clusters", type=float, default=None, help="Number of clusters (within/between).")
@format_option
def power_factorial(fmt: str, **kw) -> None:
    """Power of one effect of a factorial given on the command line (MOST FactorialPowerPlan).

    With --baseline the outcome is binary and the power of a main effect's logistic Wald test
    is computed (normal approximation).

    \b
    Example:
      trialkit power factorial --factors 5 --n-total 300 --raw-main 3 --sigma 10 --model-order 2
      trialkit power factorial --factors 5 --n-total 800 --baseline 0.45 --risk-diff 0.1
    """
    from trialkit.factorial.power import factorial_binary_power, factorial_power

    if kw["baseline"] is not None or kw["logodds_main"] is not None or kw["risk_diff"] is not None:
        extra = [k for k in ("d_main", "raw_main", "raw_coef", "f2", "sigma", "clusters",
                             "cluster_size", "cluster_size_sd", "icc", "pre_post_corr",
                             "change_score_icc") if kw[k] is not None]
        extra += [k for k, on in (("exact", kw["exact"]),
                                  ("assignment", kw["assignment"] != "independent"),
                                  ("pretest", kw["pretest"] != "none")) if on]
        if extra:
            given = ", ".join("--" + k.replace("_", "-") for k in extra)
            raise UserError(f"binary power (--baseline) takes --logodds-main or --risk-diff with "
                            f"independent assignment and no pretest — drop {given}")
        if kw["baseline"] is None or kw["n_total"] is None:
            raise UserError("binary power needs --baseline and --n-total — add them")
        emit(factorial_binary_power(
            kw["factors"], kw["n_total"], kw["baseline"], logodds_main=kw["logodds_main"],
            risk_diff=kw["risk_diff"], alpha=kw["alpha"], model_order=kw["model_order"]), fmt)
        return
    emit(factorial_power(kw["factors"], kw["n_total"], clusters=kw["clusters"], **_effect(kw),
                         **_setting(kw)), fmt)


@click.command("factorial")
@_setting_options
@_effect_options
@click.option("--power", "target", type=float, default=0.8, show_default=True,
              help="Target power.")
@format_option
def samplesize_factorial(fmt: str, target: float, **kw) -> None:
    """Smallest total N (or number of clusters) reaching the target power.

    \b
    Example:
      trialkit samplesize factorial --factors 5 --d-main 0.2 --power 0.8
      trialkit samplesize factorial --factors 5 --raw-main 3 --sigma 10 --assignment between \\
        --cluster-size 10 --icc 0.1 --power 0.8
    """
    from trialkit.factorial.power import factorial_sample_size

    emit(factorial_sample_size(kw["factors"], target, **_effect(kw), **_setting(kw)), fmt)


@click.command("factorial")
@_setting_options
@click.option("--n-total", type=float, default=None, help="Total participants (independent).")
@click.option("--clusters", type=float, default=None, help="Number of clusters (within/between).")
@click.option("--power", "target", type=float, default=0.8, show_default=True,
              help="Target power.")
@format_option
def mde_factorial(fmt: str, target: float, **kw) -> None:
    """Minimum detectable effect (d_main and raw coefficient) at a sample size and power.

    \b
    Example:
      trialkit mde factorial --factors 5 --n-total 512 --power 0.8
      trialkit mde factorial --factors 5 --n-total 512 --sigma 5 --model-order 2 --exact
    """
    from trialkit.factorial.power import factorial_mde

    emit(factorial_mde(kw["factors"], kw["n_total"], target, clusters=kw["clusters"],
                       sigma=kw["sigma"], **_setting(kw)), fmt)


def _check_power_options(simulate: bool, curve: bool, scenario: str | None) -> None:
    """Refuse options the chosen form of ``power FILE`` would ignore."""
    if simulate and curve:
        raise UserError("--simulate and --curve are given together — choose one")
    if scenario is not None and not simulate:
        raise UserError("--scenario chooses the truth of a simulation — add --simulate")
    if not simulate:
        refuse_unused("--simulate", "reps", "seed", "jobs")
    else:
        refuse_unused("the analytic power (without --simulate)", "exact")
    if not curve:
        refuse_unused("--curve", "n_from", "n_to", "out")
    elif given("n_total", "adjust"):
        raise UserError(f"{', '.join(given('n_total', 'adjust'))} is not used by --curve, which "
                        "draws power from --n-from to --n-to without adjustment — drop it")


def _design_plan_options(func: Callable) -> Callable:
    """Add ``--outcome``, ``--exact`` and ``--adjust``, shared by power, samplesize and mde FILE."""
    func = click.option("--adjust", type=click.Choice(ADJUSTMENTS), default=None,
                        help="Override the design's multiplicity adjustment.")(func)
    func = click.option("--exact", is_flag=True,
                        help="Exact mode instead of MOST parity (analytic formulas).")(func)
    return click.option("--outcome", default=None,
                        help="Outcome name (default: the first listed).")(func)


@click.command("power")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--n-total", type=int, default=None,
              help="Participants enrolled (default: the design's sample.n_total).")
@_design_plan_options
@click.option("--simulate", is_flag=True, help="Simulate the trial instead of the formulas.")
@scenario_option("With --simulate: the truth to simulate, a [scenarios.NAME] of the design file "
                 "or null, sparse, antagonistic (default: the assumed effects).")
@reps_option("Simulated trials.")
@seed_option("Seed of the simulation; replicate i uses the stream (seed, i).")
@jobs_option
@click.option("--curve", is_flag=True, help="Draw analytic power against N to --out.")
@click.option("--n-from", type=int, default=None, help="Smallest N of the curve.")
@click.option("--n-to", type=int, default=None, help="Largest N of the curve.")
@out_option("With --curve: the figure (.png, .pdf, .svg; default power.png) or the curves' "
            "numbers (.json, .csv).")
@quiet_option
@format_option
def power_design(file: str, n_total, outcome, exact, adjust, simulate, scenario, reps, seed, jobs,
                 curve, n_from, n_to, out, fmt: str) -> None:
    """Power of every effect of a factorial design file: analytic, simulated or as a curve.

    \b
    Example:
      trialkit power designs/app-components-factorial.toml --format json
      trialkit power designs/app-components-factorial.toml --simulate --reps 2000 --seed 7 --jobs 2
      trialkit power designs/app-components-fraction.toml --curve --n-from 100 --n-to 1500 \\
        --out power.png
    """
    from dataclasses import replace

    from trialkit.design import load_design
    from trialkit.factorial import planning as plan

    _check_power_options(simulate, curve, scenario)
    if curve:
        check_output(out or "power.png", (*FIGURE_FORMATS, ".json", ".csv"))
    design = load_design(file)
    if curve:
        if n_from is None or n_to is None:
            raise UserError("--curve needs --n-from and --n-to — add both")
        curve = plan.factorial_power_curve(design, n_from, n_to, exact=exact, outcome=outcome)
        result = replace(curve, out=curve.save(out or "power.png")).to_dict()
    elif simulate:
        result = plan.simulate_factorial_power(design, reps, seed, jobs=jobs, n_total=n_total,
                                               outcome=outcome, adjust=adjust, scenario=scenario)
    else:
        result = plan.factorial_design_power(design, n_total, outcome=outcome, exact=exact,
                                             adjust=adjust)
    emit(result, fmt, primary="effects")


@click.command("samplesize")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--power", "target", type=float, default=None,
              help="Target power (default: the design's analysis.power).")
@_design_plan_options
@format_option
def samplesize_design(file: str, target, outcome, exact, adjust, fmt: str) -> None:
    """Enrolment at which every non-zero main effect of a design file reaches the target power.

    \b
    Example:
      trialkit samplesize designs/app-components-factorial.toml --power 0.8 --format json
    """
    from trialkit.design import load_design
    from trialkit.factorial.planning import factorial_design_sample_size

    design = load_design(file)
    emit(factorial_design_sample_size(design, target, outcome=outcome, exact=exact,
                                      adjust=adjust), fmt, primary="effects")


@click.command("mde")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--n-total", type=int, default=None,
              help="Participants enrolled (default: the design's sample.n_total).")
@click.option("--power", "target", type=float, default=None,
              help="Target power (default: the design's analysis.power).")
@_design_plan_options
@format_option
def mde_design(file: str, n_total, target, outcome, exact, adjust, fmt: str) -> None:
    """Smallest main effect a factorial design file detects with the target power.

    Uses the design's sample (clusters, pretest, dropout), model order, alpha and adjustment;
    continuous outcomes give the classic effect (raw_main, outcome units) and d_main, binary
    ones the log-odds effect, odds ratio and risk difference from the baseline rate.

    \b
    Example:
      trialkit mde designs/app-components-factorial.toml --format json
      trialkit mde designs/app-components-factorial.toml --outcome retention --n-total 800
    """
    from trialkit.design import load_design
    from trialkit.factorial.planning import factorial_design_mde

    design = load_design(file)
    emit(factorial_design_mde(design, n_total, power=target, outcome=outcome, exact=exact,
                              adjust=adjust), fmt)


@click.command("costs")
@click.option("--factors", type=int, required=True, help="Number of components to screen.")
@click.option("--resolution", type=int, default=4, show_default=True,
              help="Resolution of the fractional factorial compared.")
@click.option("--d-main", type=float, default=0.2, show_default=True,
              help="Standardised main effect to detect (power 0.8, alpha 0.05).")
@click.option("--cost-per-subject", type=float, default=1.0, show_default=True,
              help="Cost of one participant.")
@click.option("--cost-per-condition", type=float, default=0.0, show_default=True,
              help="Overhead cost of running one condition.")
@format_option
def costs(factors, resolution, d_main, cost_per_subject, cost_per_condition, fmt: str) -> None:
    """Participants, conditions and cost of separate, single-factor and factorial experiments.

    Collins, Dziak & Li (2009) resource comparison, as MOST's RelativeCosts1.

    \b
    Example:
      trialkit costs --factors 9 --resolution 4 --d-main 0.2
      trialkit costs --factors 6 --cost-per-subject 50 --cost-per-condition 2000 --format json
    """
    from trialkit.factorial.costs import factorial_costs

    emit(factorial_costs(factors, resolution, d_main, cost_per_subject=cost_per_subject,
                         cost_per_condition=cost_per_condition), fmt, primary="approaches")


@click.command("outcomes")
@click.argument("design_file", metavar="DESIGN", type=click.Path(dir_okay=False))
@click.argument("allocations", type=click.Path(dir_okay=False))
@click.option("--outcome", "outcomes", multiple=True,
              help="Outcome to simulate (repeatable; default: every outcome of the design).")
@seed_option("Seed; the same seed and allocations give the same outcomes.")
@scenario_option("Adaptive designs: the scenario whose values are the truth (default: the "
                 "first).")
@out_option("Write to this file (.csv or .parquet) instead of CSV on stdout.")
def simulate_outcomes(design_file: str, allocations: str, outcomes: tuple[str, ...], seed: int,
                      scenario: str | None, out: str | None) -> None:
    """Rehearsal data: outcomes drawn from the design's assumed effects for a real export.

    Run the planned analysis end to end on the trial's real allocation before any outcome
    exists. For a factorial design ALLOCATIONS is the allocation export (factor columns coded
    -1/+1); for an MRT design the decision export (id, decision_point, availability,
    treatment, probability), and each outcome is left empty where the participant was not
    available; for an adaptive design the allocation export (its arm column) and the outcome
    (column "outcome") comes from a scenario. All are what `trialkit trial export` writes
    (CSV or Parquet).

    \b
    Example:
      trialkit trial export app_components_factorial --db sqlite:///trial.db --format csv \\
        > allocations.csv
      trialkit simulate outcomes designs/app-components-factorial.toml allocations.csv \\
        --seed 1 --out rehearsal.csv
      trialkit simulate outcomes designs/checkin-prompts-mrt.toml decisions.csv --out r.csv
    """
    from trialkit.design import load_design
    from trialkit.tables import read_table, write_table

    if out is not None:
        check_output(out, TABLE_FORMATS)
    design = load_design(design_file)
    table = read_table(allocations)
    if design.kind == "adaptive":
        from trialkit.adaptive.final import rehearsal_outcomes as adaptive_outcomes

        if outcomes:
            raise UserError("--outcome names outcomes of factorial and MRT designs — an "
                            "adaptive design has one outcome (column 'outcome'); drop it")
        write_table(adaptive_outcomes(design, table, seed=seed, scenario=scenario), out)
        return
    if scenario is not None:
        raise UserError("--scenario chooses the truth of an adaptive design's rehearsal — drop "
                        "it for a factorial or MRT design (their assumed effects are the truth)")
    if design.kind == "mrt":
        from trialkit.mrt.rehearse import rehearsal_outcomes
    else:
        from trialkit.factorial.rehearse import rehearsal_outcomes
    write_table(rehearsal_outcomes(design, table, seed=seed, outcomes=outcomes), out)
