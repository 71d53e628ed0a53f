"""``trialkit power|samplesize FILE`` for ``mrt`` designs and ``trialkit analyse mrt``."""

from __future__ import annotations

import warnings

import click

from trialkit.cli._common import (
    check_figure_path,
    deprecated_alias,
    emit,
    format_option,
    jobs_option,
    out_option,
    quiet_option,
    refuse_unused,
    reps_option,
    require_kind,
    seed_option,
    write_figure,
)


def _echo_warnings(caught: list) -> None:
    """Print the library's warnings (one line each) on stderr."""
    for w in caught:
        if issubclass(w.category, UserWarning):
            click.echo(f"Warning: {w.message}", err=True)


def _out_option(func):
    func = deprecated_alias("--plot", "--out", "out", type=click.Path(dir_okay=False),
                            default=None)(func)
    return out_option("Also save a figure (.png, .pdf, .svg): the effect and availability "
                      "trajectories and formula power against the number of participants.")(func)


@click.command("power")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--n-participants", type=click.IntRange(min=1), default=None,
              help="Number of participants (default: analysis.n_participants of the design).")
@click.option("--outcome", default=None, help="Outcome name (default: the first listed).")
@click.option("--simulate", is_flag=True, help="Power by simulation with the real estimator.")
@reps_option("Simulation replicates.")
@seed_option()
@jobs_option
@click.option("--ar1", type=float, default=0.0, show_default=True,
              help="AR(1) coefficient of the within-person residuals (simulation, continuous).")
@click.option("--icc", type=float, default=0.0, show_default=True,
              help="Share of outcome variance between participants (simulation, continuous).")
@click.option("--control-previous-outcome", "lag_control", is_flag=True,
              help="Simulation: add the previous decision point's outcome to the controls.")
@click.option("--contexts", type=click.Path(dir_okay=False), default=None,
              help="Simulation of an adaptive MRT: a CSV or Parquet table of context "
                   "trajectories (participant, decision_point, one column per context "
                   "variable); simulated participants take the trajectories of participants "
                   "drawn from it with replacement.")
@_out_option
@quiet_option
@format_option
def power_design(file: str, n_participants: int | None, outcome: str | None, simulate: bool,
                 reps: int, seed: int, jobs: int, ar1: float, icc: float, lag_control: bool,
                 contexts: str | None, out: str | None, fmt: str) -> None:
    """Power of an MRT design: by formula (Liao 2016 / Cohn 2023) or by simulation.

    Prints the power (with --simulate its Monte Carlo SE, replicates and seed) and the settings
    it used: outcome, method, participants, alpha, randomisation probability, availability and
    effect (mean, min, max over the decision points), p, q and df. --out saves the effect and
    availability trajectories with formula power against the number of participants.

    \b
    Example:
      trialkit power designs/checkin-prompts-mrt.toml --n-participants 40 --format json
      trialkit power designs/checkin-prompts-mrt.toml --simulate --n-participants 40 \\
        --reps 1000 --seed 1 --jobs 2 --format json
    """
    from trialkit.design import MrtDesign, load_design
    from trialkit.errors import TrialkitError
    from trialkit.mrt.planning import mrt_power, simulate_mrt_power

    if not simulate:
        refuse_unused("--simulate", "reps", "seed", "jobs", "contexts")
    if out:
        check_figure_path(out)
    design = load_design(file)
    assert isinstance(design, MrtDesign)  # the dispatch chose this command by the kind
    n = n_participants if n_participants is not None else design.n_participants
    if n is None:
        raise TrialkitError(f"{file}: no number of participants — give --n-participants N or "
                            "set analysis.n_participants")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if simulate:
            table = None
            if contexts is not None:
                from trialkit.tables import read_table

                table = read_table(contexts)
            result = simulate_mrt_power(design, n, reps=reps, seed=seed, jobs=jobs,
                                        outcome=outcome, ar1=ar1, icc=icc,
                                        lag_control=lag_control, contexts=table)
        else:
            if ar1 or icc or lag_control:
                raise TrialkitError("--ar1, --icc and --control-previous-outcome describe the "
                                    "simulation — add --simulate")
            result = mrt_power(design, n, outcome=outcome)
        if out:
            from trialkit.mrt.plots import design_figure

            write_figure(design_figure(design, outcome=outcome, n_marked=n), out)
    _echo_warnings(caught)
    emit(result, fmt)


@click.command("samplesize")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--power", "target", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, help="Target power (default: analysis.power of the design).")
@click.option("--outcome", default=None, help="Outcome name (default: the first listed).")
@_out_option
@format_option
def samplesize_design(file: str, target: float | None, outcome: str | None, out: str | None,
                      fmt: str) -> None:
    """Participants needed for an MRT design (Liao 2016 continuous, Cohn 2023 binary).

    JSON: {"n_participants": ..., "n_exact": ..., "power": ...}; n_exact solves power(n) =
    target exactly and n_participants rounds it up.

    \b
    Example:
      trialkit samplesize designs/checkin-prompts-mrt.toml --format json
      trialkit samplesize designs/checkin-prompts-mrt.toml --outcome mood --power 0.9
    """
    from trialkit.design import load_design
    from trialkit.mrt.planning import mrt_sample_size

    if out:
        check_figure_path(out)
    design = load_design(file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = mrt_sample_size(design, power=target, outcome=outcome)
        if out:
            from trialkit.mrt.plots import design_figure

            write_figure(design_figure(design, outcome=outcome,
                                       n_marked=result["n_participants"]), out)
    _echo_warnings(caught)
    emit(result, fmt)


@click.command("mrt")
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--design", "design_file", type=click.Path(dir_okay=False), default=None,
              help="The trial's mrt design file: default outcome, probabilities, moderators, "
                   "controls and p̃.")
@click.option("--outcome", default=None,
              help="Proximal outcome column (default with --design: its first outcome).")
@click.option("--id", "id_col", default="id", show_default=True, help="Participant id column.")
@click.option("--decision-point", default="decision_point", show_default=True,
              help="Decision point column.")
@click.option("--treatment", default="treatment", show_default=True,
              help="0/1 treatment column.")
@click.option("--prob", default="probability", show_default=True,
              help="Randomisation probability: a column or a number (with --design and no such "
                   "column: the design's probabilities).")
@click.option("--availability", default="availability", show_default=True,
              help="0/1 availability column (without such a column every row is available).")
@click.option("--moderator", default=None,
              help='Moderators, e.g. "x1 + x2" (intercept always; default with --design: the '
                   "effect trajectory's terms, else none).")
@click.option("--control", default=None,
              help='Controls, e.g. "z1 + z2" (intercept always; default with --design: the '
                   "planned q controls, else none).")
@click.option("--numerator-prob", type=float, default=None,
              help="p̃ (default: the design's constant probability, else 0.5).")
@click.option("--binary/--continuous", default=None,
              help="Binary outcome: EMEE on the log relative-risk scale; continuous: WCLS "
                   "(default: the design's outcome type, else continuous).")
@click.option("--lincomb", default=None,
              help='Weights of a linear combination of effect terms, e.g. "1,1" ("1,0;1,1" for '
                   "several).")
@click.option("--conf-level", type=float, default=0.95, show_default=True,
              help="Confidence level of the intervals.")
@click.option("--small-sample", type=click.Choice(["auto", "yes", "no"]), default="auto",
              show_default=True,
              help="Mancl–DeRouen leverage adjustment; auto as R MRTAnalysis: WCLS with at "
                   "most 50 participants, EMEE always.")
@click.option("--include-marked-errors", is_flag=True,
              help="Analyse rows marked in error (marked_error = 1) too; by default they are "
                   "left out.")
@click.option("--variance", type=click.Choice(["standard", "adaptive"]), default="standard",
              show_default=True,
              help="adaptive: the adaptive sandwich (Zhang, Janson & Murphy) for a trial whose "
                   "probabilities a [policy] learned; needs --design, the policy's context "
                   "columns and --policy-version.")
@click.option("--policy-version", default="policy_version", show_default=True,
              help="Column of the policy version each decision used (with --variance "
                   "adaptive).")
@format_option
def analyse_mrt(data: str, design_file: str | None, outcome: str | None, id_col: str,
                decision_point: str, treatment: str, prob: str, availability: str,
                moderator: str | None, control: str | None, numerator_prob: float | None,
                binary: bool | None, lincomb: str | None, conf_level: float, small_sample: str,
                include_marked_errors: bool, variance: str, policy_version: str,
                fmt: str) -> None:
    """Causal excursion effects from long-format MRT data (CSV or Parquet): WCLS or EMEE.

    The column names default to those `trialkit trial export` writes for an MRT (id,
    decision_point, availability, treatment, probability), so an export with an outcome column
    needs only --outcome — or --design FILE, which also supplies the planned moderators,
    controls, numerator probability and outcome type. Tests use t with df = n − p − q. The
    output says what was used: estimator, p̃, small-sample adjustment, terms, and how many rows
    were analysed and which were left out and why (unavailable, marked in error). For an
    adaptive MRT (a design with a [policy]) --variance adaptive reports the marginal excursion
    effect with the adaptive sandwich, after checking that the design's policy reproduces the
    logged probabilities from the logged history.

    \b
    Example:
      trialkit analyse mrt rehearsal.csv --design designs/checkin-prompts-mrt.toml
      trialkit analyse mrt data.csv --id id --decision-point dp --outcome y --treatment a \\
        --prob prob --availability avail --moderator "day" --lincomb "1,10" --format json
    """
    from trialkit.mrt.analysis import analyse_mrt as run
    from trialkit.tables import read_table

    design = None
    if design_file is not None:
        from trialkit.design import load_design

        require_kind(design_file, ("mrt",), "trialkit analyse mrt --design",
                     {"factorial": "`trialkit analyse factorial FILE DATA`",
                      "adaptive": "`trialkit analyse adaptive FILE DATA`"})
        design = load_design(design_file)
    small = {"auto": "auto", "yes": True, "no": False}[small_sample]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(read_table(data), id=id_col, decision_point=decision_point, outcome=outcome,
                     treatment=treatment, prob=prob, availability=availability,
                     moderator=moderator, control=control, numerator_prob=numerator_prob,
                     binary=binary, lincomb=lincomb, conf_level=conf_level, design=design,
                     small=small, include_marked_errors=include_marked_errors,
                     variance=variance, policy_version=policy_version)
    _echo_warnings(caught)
    emit(result, fmt, primary="effects")
