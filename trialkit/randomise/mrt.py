"""Micro-randomised decision points: a Bernoulli draw with the design's probability."""

from __future__ import annotations

from trialkit.randomise._stream import KeyedStream


def mrt_draw(key: bytes, trial: str, participant: str, decision_point: int,
             probability: float) -> tuple[int, float]:
    """Return the action (0/1) at one available decision point and the uniform that decided it.

    The draw is HMAC-derived from ``(trial, participant, decision_point)``, so it exists only once
    the decision point is reached and can be recomputed with the key.
    """
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability {probability} must lie strictly inside (0, 1)")
    u = KeyedStream(key, "mrt", trial, participant, decision_point).uniform()
    return int(u < probability), u
