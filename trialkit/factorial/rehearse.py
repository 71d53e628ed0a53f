"""Rehearsal outcomes: outcomes for a real allocation, drawn from the design's assumed truth.

Before any real outcome exists, a statistician can run the planned analysis end to end on the
trial's actual allocation export (``trialkit trial export``) with outcomes simulated from the
design file's assumed effects — checking the data flow, the model and the report, not the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from trialkit.engine import replicate_rngs
from trialkit.errors import DataError
from trialkit.factorial.model import model_matrix
from trialkit.factorial.planning import design_truth
from trialkit.factorial.replicates import generate_factorial_data
from trialkit.tables import factor_codes


def rehearsal_outcomes(design, table, *, seed: int, outcomes: Sequence[str] = ()):
    """Return ``table`` with one simulated column per outcome of a factorial design.

    Parameters
    ----------
    design : FactorialDesign
        The design whose assumed effects (``[outcomes.NAME.effects]``), outcome sd or baseline
        rate define the truth.
    table : pandas.DataFrame
        One row per participant with the design's factor columns coded −1/+1.
    seed : int
        Seed; the same seed and table give the same outcomes.
    outcomes : sequence of str, optional
        Outcomes to simulate (default: all of the design's outcomes).

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with the outcome columns added (binary outcomes as 0/1).
    """
    codes = factor_codes(design, table)
    chosen = [design.outcome(name) for name in outcomes] or list(design.outcomes)
    clash = [o.name for o in chosen if o.name in table.columns]
    if clash:
        raise DataError(f"the table already has column(s) {', '.join(clash)} — rehearsal "
                        "outcomes are added to an allocation export without outcomes")
    rng = replicate_rngs(seed, 0, 1)[0]
    out = table.copy()
    for outcome in chosen:
        terms, beta = design_truth(design, outcome.name)
        y = generate_factorial_data([rng], model_matrix(codes, terms), beta,
                                    outcome=outcome.type, sd=outcome.sd or 1.0)["y"]
        assert y is not None
        drawn = y[0]
        out[outcome.name] = drawn if outcome.type == "continuous" else drawn.astype(int)
    return out
