"""Warnings for MRT inputs that make a calculation meaningless, shared by formulas and analysis."""

from __future__ import annotations

import warnings

import numpy as np

#: Randomisation probabilities outside this range make p(1 − p) tiny and the weights explode.
PROB_SANE = (0.05, 0.95)
#: Sample sizes outside this range are reported with a warning.
N_SANE = (10, 5000)


class MrtWarning(UserWarning):
    """An MRT input is legal but makes the result unreliable or meaningless."""


def warn(message: str) -> None:
    """Issue an :class:`MrtWarning` (one line: what is odd — what to consider)."""
    warnings.warn(" ".join(message.split()), MrtWarning, stacklevel=3)


def check_probabilities(prob: np.ndarray, what: str = "randomisation probability") -> None:
    """Warn when probabilities are so extreme that the weights (p̃/p, (1−p̃)/(1−p)) explode."""
    prob = np.asarray(prob, dtype=float)
    lo, hi = PROB_SANE
    if prob.size and (prob.min() < lo or prob.max() > hi):
        warn(f"{what} ranges over [{prob.min():.3g}, {prob.max():.3g}], outside [{lo}, {hi}]: "
             "p(1 − p) is tiny and the weights explode, so the calculation is unreliable — use "
             "probabilities between 0.05 and 0.95")


def check_sample_size(n: float, n_min: float) -> None:
    """Warn when a computed or requested number of participants is outside a sane range."""
    lo, hi = N_SANE
    if n > hi:
        warn(f"the number of participants ({n:.6g}) is beyond {hi}: the effect is too small for "
             "an MRT of this length to detect — check the effect, availability and schedule")
    elif n < max(lo, n_min + 5):
        warn(f"the number of participants ({n:.6g}) is below {max(lo, int(n_min) + 5)}: the "
             "large-sample approximations behind the formula are unreliable with so few "
             "participants — check by simulation")
