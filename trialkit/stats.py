"""Numeric helpers shared by analyses and plots: numpy only, no trialkit imports.

This is the low module that analysis code and presentation code both import, so that neither
needs the other.
"""

from __future__ import annotations

import numpy as np


def hdi(draws: np.ndarray, prob: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Highest-density interval of each column of ``draws`` (draws along axis 0).

    Examples
    --------
    >>> lo, hi = hdi(np.arange(100.0)[:, None], 0.9)
    >>> float(lo[0]), float(hi[0])
    (0.0, 90.0)
    """
    s = np.sort(draws, axis=0)
    n = s.shape[0]
    k = int(np.floor(prob * n))
    width = s[k:] - s[: n - k]
    i = np.argmin(width, axis=0)
    cols = np.arange(s.shape[1])
    return s[i, cols], s[i + k, cols]


def arms_from_uniforms(u: np.ndarray | float, probs: np.ndarray) -> np.ndarray:
    """Return the arm each uniform draw picks, given allocation probabilities.

    Arm ``j`` is chosen when ``u`` falls in ``[c[j-1], c[j])`` of the cumulative probabilities
    ``c`` (normalised to end at 1). The adaptive simulator and the live service both allocate with
    this function, so one uniform and one probability vector give the same arm in both.

    Parameters
    ----------
    u : float or ndarray (..., n)
        Uniform draws in [0, 1).
    probs : ndarray (..., A)
        Allocation probabilities (any non-negative weights; a zero weight is never chosen).

    Returns
    -------
    ndarray of int (..., n)
        0-based arm indices.

    Examples
    --------
    >>> arms_from_uniforms(np.array([0.1, 0.5, 0.95]), np.array([0.25, 0.25, 0.5])).tolist()
    [0, 2, 2]
    """
    p = np.asarray(probs, dtype=float)
    cum = np.cumsum(p, axis=-1)
    cum = cum / cum[..., -1:]
    draws = np.atleast_1d(np.asarray(u, dtype=float))
    arms = (draws[..., None] >= cum[..., None, :]).sum(axis=-1)
    out: np.ndarray = np.minimum(arms, p.shape[-1] - 1)
    return out
