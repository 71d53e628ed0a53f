"""Rehearsal outcomes for an MRT: proximal outcomes for a real decision export.

Before any outcome exists, the planned analysis can run end to end on the trial's actual
decisions (``trialkit trial export``: ``id, decision_point, availability, treatment,
probability``) with outcomes drawn from the design file's assumed effects — the model of
:mod:`trialkit.mrt.generate`: a continuous outcome ``(A − p)·β_t + e`` with standard normal
``e`` (the effect is standardised), a binary one with success probability
``baseline_t · exp(A·β_t)``. Unavailable decision points get no outcome (empty), as in real data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trialkit.engine import replicate_rngs
from trialkit.errors import DataError
from trialkit.mrt.export import EXPORT_COLUMNS, design_probabilities
from trialkit.tables import numeric_column


def _decisions(design, table):
    """Check the export's columns; return decision points, availability, treatment, p."""
    needed = [EXPORT_COLUMNS[k] for k in ("id", "decision_point", "availability", "treatment")]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise DataError(f"the decisions have no column {', '.join(missing)} — give the MRT "
                        "export of `trialkit trial export` (" + ", ".join(EXPORT_COLUMNS.values())
                        + ")")
    if len(table) == 0:
        raise DataError("the decision table has no rows — export the trial's decisions again")
    dp = numeric_column(table, EXPORT_COLUMNS["decision_point"], "decision point")
    design_p = design_probabilities(design, dp)
    avail = numeric_column(table, EXPORT_COLUMNS["availability"], "availability")
    a = numeric_column(table, EXPORT_COLUMNS["treatment"], "treatment")
    for name, values in (("availability", avail), ("treatment", a)):
        bad = (values != 0) & (values != 1)
        if bad.any():
            raise DataError(f"column '{EXPORT_COLUMNS[name]}' has the value "
                            f"{values[np.argmax(bad)]:g} at row {int(np.argmax(bad)) + 1} — it "
                            "must be 0 or 1")
    prob = EXPORT_COLUMNS["prob"]
    p = numeric_column(table, prob, "probability") if prob in table.columns else design_p
    return dp.astype(int), avail == 1, a, p


def rehearsal_outcomes(design, table, *, seed: int, outcomes: Sequence[str] = ()):
    """Return ``table`` with one simulated proximal outcome column per outcome of an MRT design.

    Parameters
    ----------
    design : MrtDesign
        The design whose assumed effect (and, binary, baseline) trajectories define the truth.
    table : pandas.DataFrame
        The decision export: ``id, decision_point, availability, treatment`` and (optional)
        ``probability``, one row per participant and decision point.
    seed : int
        Seed; the same seed and table give the same outcomes.
    outcomes : sequence of str, optional
        Outcomes to simulate (default: all of the design's outcomes).

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with the outcome columns added (binary as 0/1), empty where the
        participant was not available.
    """
    import pandas as pd

    from trialkit.mrt.planning import design_inputs, design_outcome

    chosen = [design_outcome(design, name) for name in outcomes] or list(design.outcomes)
    clash = [o.name for o in chosen if o.name in table.columns]
    if clash:
        raise DataError(f"the table already has column(s) {', '.join(clash)} — rehearsal "
                        "outcomes are added to a decision export without outcomes")
    dp, avail, a, p = _decisions(design, table)
    rng = replicate_rngs(seed, 0, 1)[0]
    out = table.copy()
    for outcome in chosen:
        inputs = design_inputs(design, outcome.name)
        effect = inputs["effect"][dp - 1]
        if outcome.type == "continuous":
            y = (a - p) * effect + rng.standard_normal(len(dp))
            out[outcome.name] = np.where(avail, y, np.nan)
        else:
            success = inputs["baseline"][dp - 1] * np.exp(a * effect)
            y = (rng.random(len(dp)) < success).astype(int)
            out[outcome.name] = pd.array(np.where(avail, y, 0), dtype="Int64")
            out.loc[~avail, outcome.name] = pd.NA
    return out
