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
