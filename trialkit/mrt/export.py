"""An MRT's export and its design: the columns ``trialkit trial export`` writes, planned terms.

The live service exports an MRT's decisions as exactly ``id, decision_point, availability,
treatment, probability`` (one row per participant and decision point). The analysis defaults to
these names; with the design file it takes the randomisation probabilities, the moderators and
the controls of the planned analysis from the design.
"""

from __future__ import annotations

import numpy as np

from trialkit.errors import DataError

#: Column names of an MRT decision export (``trialkit trial export``), by role.
EXPORT_COLUMNS = {"id": "id", "decision_point": "decision_point",
                  "availability": "availability", "treatment": "treatment",
                  "prob": "probability"}
#: The derived column of the study day (1..D) that design terms in ``day`` use.
DAY = "day"


def _power_term(name: str, power: int) -> str:
    return ":".join([name] * power)


def basis_terms(basis, decision_point: str) -> list[str]:
    """Return the formula terms of a design basis (the intercept ``"1"`` is implied, left out).

    ``t`` is the decision point column, ``day`` the study day; ``"t^2"`` becomes
    ``"decision_point:decision_point"``.
    """
    terms = []
    for term in basis:
        if term == "1":
            continue
        name, _, power = term.partition("^")
        column = decision_point if name == "t" else DAY
        terms.append(_power_term(column, int(power) if power else 1))
    return terms


def _day_polynomial(degree: int) -> list[str]:
    return [_power_term(DAY, j) for j in range(1, degree + 1)]


def design_terms(design, outcome, decision_point: str) -> tuple[list[str], list[str]]:
    """Moderator and control terms of the planned analysis of ``outcome`` (intercepts implied).

    Moderators span the effect trajectory: none for a constant effect, ``day`` (linear),
    ``day + day:day`` (quadratic), or the effect's basis. Controls are the baseline's basis when
    it has q terms, else the polynomial in the day of degree q − 1 (q = ``analysis.controls``,
    default the effect's dimension).
    """
    from trialkit.mrt.trajectory import DIMENSION

    effect = outcome.effect
    if effect.shape == "basis":
        moderators = basis_terms(effect.basis, decision_point)
        p = len(effect.basis)
    else:
        p = DIMENSION[effect.shape]
        moderators = _day_polynomial(p - 1)
    baseline = outcome.baseline
    by_basis = baseline is not None and baseline.shape == "basis"
    q = design.controls if design.controls is not None else (
        len(baseline.basis) if by_basis else p)
    if by_basis and len(baseline.basis) == q:
        return moderators, basis_terms(baseline.basis, decision_point)
    return moderators, _day_polynomial(q - 1)


def study_days(design, decision_points: np.ndarray) -> np.ndarray:
    """Return the study day (1..D) of each decision point (1..T) of ``design``."""
    dpd = design.schedule.decisions_per_day
    return (np.asarray(decision_points, dtype=float) - 1) // dpd + 1


def design_probabilities(design, decision_points: np.ndarray) -> np.ndarray:
    """Return the design's randomisation probability at each decision point (1..T).

    Raises
    ------
    DataError
        When a decision point is not a whole number in the design's schedule (1..T).
    """
    dp = np.asarray(decision_points, dtype=float)
    n = design.schedule.n_decision_points
    bad = ~np.isfinite(dp) | (dp != np.round(dp)) | (dp < 1) | (dp > n)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"decision point {dp[i]:g} at row {i + 1} is outside the design's "
                        f"schedule 1..{n} — check the decision points or the design",
                        param="decision_point")
    return np.array([design.probability_at(int(t)) for t in dp])
