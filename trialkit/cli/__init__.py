"""The ``trialkit`` command line.

Each command group lives in its own module and is imported only when used; this module holds the
command map and nothing heavy, so ``trialkit --help`` starts fast.
"""

from __future__ import annotations

import click

from trialkit import __version__
from trialkit.cli._common import DesignDispatchGroup, LazyGroup

COMMANDS = {
    "design": "trialkit.cli.design:design",
    "costs": "trialkit.cli.factorial:costs",
    "calibrate": "trialkit.cli.adaptive:calibrate",
    "gsd": "trialkit.cli.adaptive:gsd",
    "trial": "trialkit.cli.trial:trial",
    "serve": "trialkit.cli.serve:serve",
    "token": "trialkit.cli.serve:token",
    "report": "trialkit.cli.study:report",
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(__version__, prog_name="trialkit")
def cli() -> None:
    """Design, randomise and analyse optimisation trials of digital mental-health apps.

    One design file (TOML) drives planning (power, sample size, simulation), the live
    randomisation service, the export and the analysis. Errors exit with code 2.

    \b
    Example:
      trialkit design validate designs/*.toml
      trialkit power designs/app-components-factorial.toml
    """


PLANNED_BY_SIMULATION = {"adaptive": "`trialkit simulate FILE` (an adaptive design is planned "
                                     "by simulation; `trialkit calibrate FILE` tunes it)"}


@cli.group(
    cls=DesignDispatchGroup,
    lazy={"factorial": "trialkit.cli.factorial:power_factorial"},
    by_kind={"factorial": "trialkit.cli.factorial:power_design",
             "mrt": "trialkit.cli.mrt:power_design"},
    instead=PLANNED_BY_SIMULATION,
)
def power() -> None:
    """Power of a design file, or of a factorial given on the command line.

    \b
    Example:
      trialkit power designs/app-components-factorial.toml --format json
      trialkit power designs/checkin-prompts-mrt.toml --n-participants 40
      trialkit power factorial --factors 5 --n-total 300 --raw-main 3 --sigma 10 --model-order 2
    """


@cli.group(
    cls=DesignDispatchGroup,
    lazy={"factorial": "trialkit.cli.factorial:samplesize_factorial"},
    by_kind={"factorial": "trialkit.cli.factorial:samplesize_design",
             "mrt": "trialkit.cli.mrt:samplesize_design"},
    instead=PLANNED_BY_SIMULATION,
)
def samplesize() -> None:
    """Sample size for a design file, or for a factorial given on the command line.

    \b
    Example:
      trialkit samplesize designs/checkin-prompts-mrt.toml --format json
      trialkit samplesize factorial --factors 5 --d-main 0.2 --power 0.8
    """


@cli.group(
    cls=DesignDispatchGroup,
    lazy={"factorial": "trialkit.cli.factorial:mde_factorial"},
    by_kind={"factorial": "trialkit.cli.factorial:mde_design"},
    instead={**PLANNED_BY_SIMULATION,
             "mrt": "`trialkit power FILE` or `trialkit samplesize FILE` (an MRT's effect is a "
                    "trajectory)"},
)
def mde() -> None:
    """Minimum detectable effect of a factorial design file, or of one given on the command line.

    \b
    Example:
      trialkit mde designs/app-components-factorial.toml --format json
      trialkit mde factorial --factors 5 --n-total 512 --power 0.8
    """


@cli.group(
    cls=DesignDispatchGroup,
    lazy={"decision": "trialkit.cli.bayes:simulate_decision",
          "outcomes": "trialkit.cli.factorial:simulate_outcomes",
          "grid": "trialkit.cli.study:simulate_grid"},
    by_kind={"adaptive": "trialkit.cli.adaptive:simulate_design"},
    instead={"factorial": "`trialkit power FILE --simulate` (simulated power) or `trialkit "
                          "simulate decision FILE` (decision rules)",
             "mrt": "`trialkit power FILE --simulate` (simulated power)"},
)
def simulate() -> None:
    """Simulate: adaptive trials, factorial decision rules, rehearsal outcomes for an allocation.

    \b
    Example:
      trialkit simulate designs/three-arm-adaptive.toml --reps 1000 --seed 1
      trialkit simulate decision designs/app-components-factorial.toml --reps 2000 --seed 1
      trialkit simulate grid designs/grids/compare-designs.toml --out results.parquet
    """


@cli.group(
    cls=LazyGroup,
    lazy={"mrt": "trialkit.cli.mrt:analyse_mrt",
          "factorial": "trialkit.cli.bayes:analyse_factorial",
          "adaptive": "trialkit.cli.adaptive:analyse_adaptive",
          "prior-predictive": "trialkit.cli.bayes:prior_predictive"},
)
def analyse() -> None:
    """Analyse trial data: factorial component decisions, MRT excursion effects, adaptive arms.

    \b
    Example:
      trialkit analyse factorial designs/app-components-factorial.toml export.csv --method both
      trialkit analyse mrt rehearsal.csv --design designs/checkin-prompts-mrt.toml
      trialkit analyse adaptive designs/three-arm-adaptive.toml rehearsal.csv
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="trialkit")
