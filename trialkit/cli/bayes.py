"""``trialkit analyse factorial``, ``analyse prior-predictive`` and ``simulate decision``."""

from __future__ import annotations

import sys

import click

from trialkit.cli._common import (
    check_output_dir,
    deprecated_alias,
    emit,
    format_option,
    jobs_option,
    quiet_option,
    reps_option,
    require_kind,
    scenario_option,
    seed_option,
)

#: What analyses the data of a trial of another kind.
ANALYSE_INSTEAD = {"mrt": "`trialkit analyse mrt DATA --design FILE`",
                   "adaptive": "`trialkit analyse adaptive FILE DATA`"}


def _weights(values: tuple[str, ...]) -> dict[str, float]:
    from trialkit.errors import TrialkitError

    out = {}
    for item in values:
        name, sep, w = item.partition("=")
        try:
            out[name] = float(w)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise TrialkitError(f"--weight {item!r} is not OUTCOME=NUMBER — write e.g. "
                                "--weight phq9_change=2")
    return out


@click.command("factorial")
@click.argument("design_file", metavar="DESIGN", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--outcome", "outcomes", multiple=True,
              help="Outcome column to analyse (repeatable; default: the primary outcome).")
@click.option("--covariate", "covariates", multiple=True,
              help="Baseline covariate column, e.g. baseline PHQ-9 (repeatable).")
@click.option("--method", type=click.Choice(["bayes", "ols", "both"]), default="both",
              show_default=True, help="Bayesian PEV analysis, classic screening, or both.")
@click.option("--engine", type=click.Choice(["nuts", "fast", "prior"]), default="nuts",
              show_default=True,
              help="pymc NUTS; the closed-form/Laplace fast path; or prior draws (wiring check).")
@click.option("--draws", type=click.IntRange(10), default=1000, show_default=True)
@click.option("--tune", type=click.IntRange(0), default=1000, show_default=True)
@click.option("--chains", type=click.IntRange(1), default=4, show_default=True)
@click.option("--cores", type=click.IntRange(1), default=None, help="Parallel chains.")
@seed_option("Seed of the sampler.")
@click.option("--mcid", type=float, default=None,
              help="Minimal clinically important difference (positive, outcome units).")
@click.option("--budget", type=float, default=None,
              help="Largest total component cost for the within-budget decision.")
@click.option("--weight", "weights", multiple=True, metavar="OUTCOME=W",
              help="Weight of an outcome in the multi-outcome value function (repeatable).")
@click.option("--out-dir", "out_dir", type=click.Path(file_okay=False), default=None,
              metavar="DIR", help="Folder for the InferenceData (netCDF), report.json and plots.")
@deprecated_alias("--out", "--out-dir", "out_dir", type=click.Path(file_okay=False),
                  default=None)
@click.option("--strict", is_flag=True,
              help="Exit with code 1 when convergence diagnostics fail.")
@click.option("--include-marked-errors", is_flag=True,
              help="Analyse participants marked in error (marked_error = 1) too; by default "
                   "they are left out.")
@quiet_option
@format_option
def analyse_factorial(design_file, data, outcomes, covariates, method, engine, draws, tune,
                      chains, cores, seed, mcid, budget, weights, out_dir, strict,
                      include_marked_errors, fmt) -> None:
    """Which components work, and which combination to build: the component report.

    Fits the Bayesian factorial model (effect-coded terms up to the design's model order),
    reports each component's effect (mean, 95% HDI, P(effect > 0), P(beneficial by more than
    the MCID)), every combination's expected outcome and P(best), the PEV decision with and
    without budget, and the classic screening decision alongside. Participants marked in error
    in the export (marked_error = 1) are left out unless --include-marked-errors; the report's
    data section says how many rows were analysed and which were left out and why. A progress
    indicator goes to stderr while sampling (not with --quiet); failing diagnostics print a
    warning (exit 1 with --strict).

    \b
    Example:
      trialkit analyse factorial designs/app-components-factorial.toml export.csv \\
        --mcid 0.5 --budget 15 --out-dir results/ --format json
    """
    from trialkit.bayes.analyse import analyse_factorial as run
    from trialkit.design import load_design
    from trialkit.engine.progress import progress_enabled
    from trialkit.tables import read_table

    require_kind(design_file, ("factorial",), "trialkit analyse factorial", ANALYSE_INSTEAD)
    if out_dir is not None:
        check_output_dir(out_dir)
    design = load_design(design_file)
    result = run(design, read_table(data), outcomes=outcomes, covariates=covariates,
                 method=method, engine=engine, draws=draws, tune=tune, chains=chains, seed=seed,
                 cores=cores, mcid=mcid, budget=budget, weights=_weights(weights),
                 progress=engine == "nuts" and progress_enabled(),
                 include_marked_errors=include_marked_errors)
    if out_dir is not None:
        result.save(out_dir)
    emit(result.to_dict(), fmt, primary="components")
    note = (result.get("clustering") or {}).get("note")
    if note:
        click.echo(f"Warning: {note}", err=True)
    diag = result.get("diagnostics")
    if diag and not diag["ok"]:
        click.echo("Warning: convergence diagnostics failed — " + "; ".join(diag["problems"])
                   + " — increase --tune/--draws before trusting the results", err=True)
        if strict:
            sys.exit(1)


@click.command("prior-predictive")
@click.argument("design_file", metavar="DESIGN", type=click.Path(dir_okay=False))
@click.option("--outcome", default=None, help="Outcome (default: the primary outcome).")
@click.option("--draws", type=click.IntRange(10), default=1000, show_default=True)
@seed_option("Seed of the prior draws.")
@click.option("--n-total", type=click.IntRange(1), default=None,
              help="Participants per simulated trial (default: the design's n_total).")
@format_option
def prior_predictive(design_file, outcome, draws, seed, n_total, fmt) -> None:
    """Prior predictive check: what the priors imply about effects and outcomes.

    \b
    Example:
      trialkit analyse prior-predictive designs/app-components-factorial.toml --format json
    """
    from trialkit.bayes.analyse import prior_predictive as run
    from trialkit.design import load_design

    require_kind(design_file, ("factorial",), "trialkit analyse prior-predictive")
    emit(run(load_design(design_file), outcome=outcome, draws=draws, seed=seed,
             n_total=n_total), fmt, primary="effects")


@click.command("decision")
@click.argument("design_file", metavar="DESIGN", type=click.Path(dir_okay=False))
@reps_option("Simulated trials.")
@seed_option()
@scenario_option("The truth the trial is simulated under: a [scenarios.NAME] of the design "
                 "file, or null, sparse, antagonistic or assumed.", default="assumed")
@click.option("--outcome", default=None, help="Outcome (default: the primary outcome).")
@click.option("--budget", type=float, default=None,
              help="Budget of the within-budget rule (default: half the total cost).")
@jobs_option
@quiet_option
@format_option
def simulate_decision(design_file, reps, seed, scenario, outcome, budget, jobs, fmt) -> None:
    """How good are design + decision rule? PEV (with/without budget) versus screening.

    Simulates the trial REPS times under a named truth and reports how often each rule picks the
    truly best combination, the mean regret and per-component sensitivity and specificity, with
    Monte Carlo standard errors.

    \b
    Example:
      trialkit simulate decision designs/app-components-factorial.toml --reps 2000 --seed 1 \\
        --scenario antagonistic --format json
    """
    from trialkit.bayes.decision_study import simulate_decision as run
    from trialkit.design import load_design

    require_kind(design_file, ("factorial",), "trialkit simulate decision",
                 {"mrt": "`trialkit power FILE --simulate`"})
    emit(run(load_design(design_file), reps=reps, seed=seed, scenario=scenario, outcome=outcome,
             budget=budget, jobs=jobs), fmt)
