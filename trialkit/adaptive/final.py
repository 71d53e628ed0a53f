"""An adaptive trial's data: rehearsal outcomes for its export, and the analysis of its outcomes.

The live service exports an adaptive trial as one row per participant with the ``arm`` column
(``participant, sequence, [code,] arm, <strata>, enrolled_at, marked_error, error_reason``).

* :func:`rehearsal_outcomes` adds an outcome drawn from a scenario of the design (binary: the
  arm's event probability; continuous: the arm's mean and SD) — the planned analysis can then run
  before any outcome exists.
* :func:`analyse_adaptive` is the analysis of the outcome data with the design's own posterior
  and rules: every arm's posterior (beta or normal, as in the simulations), P(best), P(better
  than the common control) and the decision the rules of the last planned look take —
  :func:`trialkit.adaptive.look.adaptive_look` for a batch of one trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import stats

from trialkit.adaptive.look import ARM_STATUS, FINAL_STATUS, ArmData, ArmState, adaptive_look
from trialkit.adaptive.spec import TrialSpec, setup_trial
from trialkit.engine import replicate_rngs
from trialkit.errors import DataError
from trialkit.results import Result
from trialkit.tables import check_magnitude, exclude_marked_errors, row_number

#: The arm column of an adaptive trial's export, and the default name of its outcome column.
ARM, OUTCOME = "arm", "outcome"


def _arms(spec: TrialSpec, table) -> np.ndarray:
    """Each row's arm index, after checking the arm column names the design's arms."""
    if ARM not in table.columns:
        raise DataError(f"the data have no column '{ARM}' — give the trial's export (unblinded: "
                        "export with the key file when the trial is blinded)")
    names = table[ARM].astype(str).to_numpy()
    known = {name: i for i, name in enumerate(spec.arms)}
    bad = np.array([n not in known for n in names])
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"column '{ARM}' has the arm {names[i]!r} at row {row_number(table, i)}, "
                        "which is not in the design — use one of: " + ", ".join(spec.arms))
    return np.array([known[n] for n in names], dtype=int)


def rehearsal_outcomes(design, table, *, seed: int, scenario: str | None = None,
                       outcome: str = OUTCOME):
    """Return ``table`` with an ``outcome`` column drawn from a scenario of an adaptive design.

    Parameters
    ----------
    design : AdaptiveDesign
        The design; its ``[scenarios.NAME]`` values (and SDs) are the truth.
    table : pandas.DataFrame
        The allocation export, one row per participant with the ``arm`` column.
    seed : int
        Seed; the same seed and table give the same outcomes.
    scenario : str, optional
        The scenario (default: the design's first).
    outcome : str
        Name of the outcome column.
    """
    spec = setup_trial(design, scenario)
    if outcome in table.columns and table[outcome].notna().any():
        raise DataError(f"the table already has outcomes in column {outcome!r} — rehearsal "
                        "outcomes are added to an allocation export without outcomes")
    arm = _arms(spec, table)
    rng = replicate_rngs(seed, 0, 1)[0]
    truth = np.asarray(spec.true_values)[arm]
    out = table.copy()
    if spec.binary:
        out[outcome] = (rng.random(len(arm)) < truth).astype(int)
    else:
        out[outcome] = truth + np.asarray(spec.sds)[arm] * rng.standard_normal(len(arm))
    return out


@dataclass(frozen=True)
class AdaptiveAnalysis(Result):
    """The analysis of an adaptive trial's outcome data (:func:`analyse_adaptive`)."""

    primary: ClassVar[str | None] = "arms"
    design: str
    outcome: str
    outcome_type: str
    look: int
    decision: str
    superior: str | None
    control: str | None
    arms: list[dict[str, Any]]
    data: dict[str, Any]


def _outcome_values(spec: TrialSpec, table, outcome: str) -> tuple[np.ndarray, np.ndarray]:
    """Return the outcome and which rows have one (a missing outcome is not yet observed)."""
    import pandas as pd

    if outcome not in table.columns:
        raise DataError(f"the data have no outcome column {outcome!r} — name the outcome "
                        "column", param="outcome")
    values = pd.to_numeric(table[outcome], errors="coerce").to_numpy(float)
    text = table[outcome].astype(str).str.strip()
    bad = np.isnan(values) & table[outcome].notna().to_numpy() & (text != "").to_numpy()
    rows = [row_number(table, i) for i in range(len(table))]
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"outcome column '{outcome}' has the non-numeric value "
                        f"{table[outcome].iloc[i]!r} at row {rows[i]} — give numbers")
    seen = ~np.isnan(values)
    if np.isinf(values).any():
        i = int(np.argmax(np.isinf(values)))
        raise DataError(f"outcome column '{outcome}' has the value {values[i]:g} at row {rows[i]} "
                        "— give finite numbers")
    check_magnitude(np.where(seen, values, 0.0), outcome, "outcome", rows)
    if spec.binary and not np.isin(values[seen], (0.0, 1.0)).all():
        i = int(np.argmax(seen & ~np.isin(values, (0.0, 1.0))))
        raise DataError(f"binary outcome column '{outcome}' has the value {values[i]:g} at row "
                        f"{rows[i]} — code it 0/1")
    return values, seen


def _posterior_interval(spec: TrialSpec, n: np.ndarray, total: np.ndarray, total_sq: np.ndarray):
    """Posterior mean and 95% interval of every arm's event probability or mean."""
    if spec.binary:
        a, b = spec.prior[0] + total, spec.prior[1] + n - total
        return a / (a + b), stats.beta.ppf(0.025, a, b), stats.beta.ppf(0.975, a, b)
    mean = np.divide(total, n, out=np.zeros_like(total), where=n > 0)
    var = np.divide(total_sq - n * mean**2, n - 1, out=np.full_like(total, np.nan), where=n > 1)
    se = np.sqrt(np.maximum(var, 0) / np.maximum(n, 1))
    z = stats.norm.ppf(0.975)
    return mean, mean - z * se, mean + z * se


def analyse_adaptive(design, table, *, outcome: str = OUTCOME,
                     include_marked_errors: bool = False) -> AdaptiveAnalysis:
    """Analyse an adaptive trial's outcome data with the design's posterior and final-look rules.

    Parameters
    ----------
    design : AdaptiveDesign
        The design: arms, outcome type and direction, priors, common control, thresholds.
    table : pandas.DataFrame
        One row per participant: the ``arm`` column of the export and the outcome column (empty
        while not yet observed). Rows marked in error (``marked_error`` = 1) are left out unless
        ``include_marked_errors``.
    outcome : str
        The outcome column.

    Returns
    -------
    AdaptiveAnalysis
        Per arm: patients with outcome data, events or mean, posterior mean and 95% interval,
        P(best), P(better than the control) and the status the rules of the last planned look
        give; the trial's decision (superiority, equivalence, futility or none), and ``data``:
        rows analysed and left out, and why. Probabilities are exact (quadrature).
    """
    spec = setup_trial(design, method="exact")
    kept, summary = exclude_marked_errors(table, include_marked_errors)
    arm = _arms(spec, kept)
    values, seen = _outcome_values(spec, kept, outcome)
    if (~seen).any():
        summary["exclusions"].append({"reason": "no outcome (yet)", "rows": int((~seen).sum())})
        summary["analysed"] -= int((~seen).sum())
        summary["excluded"] += int((~seen).sum())
    a = spec.n_arms
    n = np.bincount(arm[seen], minlength=a).astype(float)
    total = np.bincount(arm[seen], weights=values[seen], minlength=a)
    total_sq = np.bincount(arm[seen], weights=values[seen] ** 2, minlength=a)
    look = spec.n_looks - 1
    res = adaptive_look(spec, look, ArmData(n[None], total[None], total_sq[None]),
                        ArmState.start(spec, 1))
    mean, lo, hi = _posterior_interval(spec, n, total, total_sq)
    better = (np.full(a, np.nan) if res.probs_better is None else res.probs_better[0])
    arms = [{"arm": name, "n": int(n[j]),
             ("events" if spec.binary else "mean"):
                 float(total[j]) if spec.binary else (float(mean[j]) if n[j] else None),
             "posterior_mean": float(mean[j]), "ci_low": float(lo[j]), "ci_high": float(hi[j]),
             "p_best": float(res.probs_best[0, j]), "p_better_than_control": float(better[j]),
             "status": ARM_STATUS[int(res.state.status[0, j])]}
            for j, name in enumerate(spec.arms)]
    superior = [spec.arms[j] for j in range(a) if arms[j]["status"] == "superior"]
    control = int(res.state.control[0])
    return AdaptiveAnalysis(
        design=spec.design_name, outcome=outcome,
        outcome_type="binary" if spec.binary else "continuous", look=look + 1,
        decision=FINAL_STATUS[int(res.final_status[0])].replace("max", "none"),
        superior=superior[0] if superior else None,
        control=spec.arms[control] if control >= 0 else None, arms=arms, data=summary)
