"""A generative model for MRT data: participants × decision points, vectorised per replicate.

Continuous outcomes: ``Y_it = (A_it − p_t) β_t + b_i + e_it`` with ``b_i ~ N(0, icc)`` and
within-person residuals ``e_it`` of variance ``1 − icc``, independent or AR(1) with coefficient
``ar1``, so ``β_t`` is the standardised proximal effect. Binary outcomes:
``P(Y_it = 1 | A_it) = μ0_t · exp(A_it β_t)`` (``β_t`` a log relative risk). Availability
``I_it ~ Bernoulli(τ_t)``; treatment ``A_it ~ Bernoulli(p_t)`` for every row (it only matters where
the participant is available).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from trialkit.errors import TrialkitError


def generate_arrays(rngs: list[np.random.Generator], n_participants: int, probability,
                    availability, effect, outcome: str = "continuous", baseline=None,
                    icc: float = 0.0, ar1: float = 0.0) -> dict[str, np.ndarray]:
    """Draw one data set per generator; returns arrays ``y, a, avail`` of shape (R, n, T).

    Parameters
    ----------
    rngs : list of numpy Generators
        One per replicate (e.g. :func:`trialkit.engine.replicate_rngs`).
    n_participants : int
    probability, availability, effect : array (T,)
        Randomisation probability, availability probability and proximal effect per decision point.
    outcome : {"continuous", "binary"}
    baseline : array (T,), optional
        Success probability without treatment (binary outcomes).
    icc : float
        Share of the outcome variance between participants (continuous).
    ar1 : float
        AR(1) coefficient of the within-person residuals (continuous), in (−1, 1).
    """
    prob = np.asarray(probability, dtype=float)
    tau = np.asarray(availability, dtype=float)
    beta = np.asarray(effect, dtype=float)
    n_points = prob.size
    if not 0 <= icc < 1:
        raise TrialkitError(f"icc {icc!r} is outside [0, 1) — use the share of variance between "
                            "participants, e.g. 0.2")
    if not -1 < ar1 < 1:
        raise TrialkitError(f"ar1 {ar1!r} is outside (−1, 1) — use an AR(1) coefficient such as "
                            "0.5")
    if outcome == "binary":
        if baseline is None:
            raise TrialkitError("a binary outcome needs a baseline success curve — give baseline")
        mu0 = np.asarray(baseline, dtype=float)
        if np.any(mu0 * np.exp(np.maximum(beta, 0)) >= 1) or np.any(mu0 <= 0):
            raise TrialkitError("the success probability leaves (0, 1) — lower the baseline or "
                                "the effect")
        if icc or ar1:
            raise TrialkitError("icc and ar1 apply to continuous outcomes only — leave them at 0 "
                                "for a binary outcome")
    shape = (n_participants, n_points)
    avail, a, y = [], [], []
    for rng in rngs:
        av_i = rng.random(shape) < tau
        a_i = (rng.random(shape) < prob).astype(float)
        if outcome == "binary":
            y_i = (rng.random(shape) < mu0 * np.exp(a_i * beta)).astype(float)
        else:
            between = rng.standard_normal(n_participants)[:, None] * np.sqrt(icc)
            within = rng.standard_normal(shape)
            if ar1:
                within[:, 0] /= np.sqrt(1.0 - ar1 ** 2)
                within = signal.lfilter([np.sqrt(1.0 - ar1 ** 2)], [1.0, -ar1], within, axis=1)
            y_i = (a_i - prob) * beta + between + within * np.sqrt(1.0 - icc)
        avail.append(av_i.astype(float))
        a.append(a_i)
        y.append(y_i)
    return {"y": np.stack(y), "a": np.stack(a), "avail": np.stack(avail)}


def generate_mrt_data(n_participants: int, probability, availability, effect, seed: int,
                      outcome: str = "continuous", baseline=None, icc: float = 0.0,
                      ar1: float = 0.0, decisions_per_day: int = 1) -> dict[str, np.ndarray]:
    """One long-format data set (columns as arrays): id, decision_point, day, avail, prob, a, y.

    Outcomes at unavailable rows are missing (NaN), as in real MRT data.
    """
    rngs = [np.random.default_rng(np.random.SeedSequence(int(seed)))]
    arr = generate_arrays(rngs, n_participants, probability, availability, effect, outcome,
                          baseline, icc, ar1)
    n_points = np.asarray(probability).size
    dp = np.tile(np.arange(1, n_points + 1), n_participants)
    y = arr["y"][0].ravel()
    avail = arr["avail"][0].ravel()
    return {
        "id": np.repeat(np.arange(1, n_participants + 1), n_points),
        "decision_point": dp,
        "day": (dp - 1) // decisions_per_day + 1,
        "avail": avail.astype(int),
        "prob": np.tile(np.asarray(probability, dtype=float), n_participants),
        "a": arr["a"][0].ravel().astype(int),
        "y": np.where(avail > 0, y, np.nan),
    }
