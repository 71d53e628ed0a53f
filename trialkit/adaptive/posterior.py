"""Posterior probabilities for many trials at once: from posterior draws, or by quadrature.

Both classes hold the posteriors of the arms of ``t`` trials (inactive arms masked) and answer the
questions the adaptive rules ask: P(each arm is best), P(all active arms are practically
equivalent) and, against a common control, P(better), P(equivalent) and P(futile).

* :class:`DrawsPosterior` — adaptr's method: probabilities are shares of posterior draws
  (array trials × arms × draws).
* :class:`ExactPosterior` — the same probabilities computed by one-dimensional numerical
  integration on a grid per trial (no Monte Carlo error; much faster). Beta posteriors use the
  trapezoid rule on the density; normal posteriors use exact normal CDF differences.
"""

from __future__ import annotations

import numpy as np
from scipy import special

GRID = 257
_WIDTH = 10.0  # posterior SDs on each side covered by the grid


class DrawsPosterior:
    """Posterior draws ``values`` (t, A, D); inactive arms hold the worst possible value."""

    def __init__(self, values: np.ndarray, active: np.ndarray, highest_is_best: bool):
        self.values = values
        self.active = active.copy()
        self.hib = highest_is_best

    def take(self, rows) -> DrawsPosterior:
        """Return the posteriors of ``rows`` only."""
        return DrawsPosterior(self.values[rows], self.active[rows], self.hib)

    def put(self, rows, other: DrawsPosterior) -> None:
        """Replace the posteriors of ``rows``."""
        self.values[rows] = other.values
        self.active[rows] = other.active

    def prob_best(self) -> np.ndarray:
        """P(each arm is best), shape (t, A); ties go to the first arm (as adaptr)."""
        v = self.values
        best = v[:, 0].copy()
        win = np.zeros(best.shape, dtype=np.int8)
        for k in range(1, v.shape[1]):
            better = v[:, k] > best if self.hib else v[:, k] < best
            np.copyto(best, v[:, k], where=better)
            win[better] = k
        return np.stack([(win == k).mean(axis=1) for k in range(v.shape[1])], axis=1)

    def prob_all_equivalent(self, diff: float) -> np.ndarray:
        """P(max - min over active arms < diff), shape (t,)."""
        act = self.active[:, :, None]
        hi = np.where(act, self.values, -np.inf).max(axis=1)
        lo = np.where(act, self.values, np.inf).min(axis=1)
        return (hi - lo < diff).mean(axis=1)

    def compare(self, control: np.ndarray, eq_diff: float | None, fut_diff: float | None):
        """P(better than), P(equivalent to) and P(futile against) the control, each (t, A)."""
        r = np.arange(self.values.shape[0])
        col = self.values[r, control][:, None, :]
        v = self.values
        mask = self.active.copy()
        mask[r, control] = False
        better = ((v > col) if self.hib else (v < col)).mean(axis=2)
        out = [np.where(mask, better, np.nan), None, None]
        if eq_diff is not None:
            out[1] = np.where(mask, (np.abs(v - col) < eq_diff).mean(axis=2), np.nan)
        if fut_diff is not None:
            s = -1.0 if self.hib else 1.0
            out[2] = np.where(mask, (s * (col - v) < fut_diff).mean(axis=2), np.nan)
        return tuple(out)


class ExactPosterior:
    """Posteriors on a uniform grid per trial: cell masses ``mass`` and CDF ``cdf`` at grid points.

    Parameters
    ----------
    lo, hi : ndarray (t,)
        Grid ends.
    cdf : ndarray (t, A, G)
        CDF at the grid points (0 for inactive arms).
    active : ndarray (t, A)
    """

    def __init__(self, lo, hi, cdf, active, highest_is_best):
        self.lo, self.hi, self.cdf = lo, hi, cdf
        self.active = active.copy()
        self.hib = highest_is_best

    @classmethod
    def beta(cls, a, b, active, highest_is_best, grid: int = GRID) -> ExactPosterior:
        """Beta(a, b) posteriors per trial and arm (a, b of shape (t, A))."""
        mean = a / (a + b)
        sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        lo = np.clip(np.where(active, mean - _WIDTH * sd, np.inf).min(axis=1), 0.0, 1.0)
        hi = np.clip(np.where(active, mean + _WIDTH * sd, -np.inf).max(axis=1), 0.0, 1.0)
        x = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, grid)[None, :]
        xc = np.clip(x, 1e-300, 1 - 1e-16)
        lx, l1x = np.log(xc), np.log1p(-xc)
        # the log density, then the density, in one (t, A, G) array (few large temporaries)
        dens = np.multiply((a - 1)[:, :, None], lx[:, None, :])
        dens += (b - 1)[:, :, None] * l1x[:, None, :]
        dens -= special.betaln(a, b)[:, :, None]
        np.exp(dens, out=dens)
        cell = dens[:, :, 1:] + dens[:, :, :-1]
        cell *= 0.5
        cdf = np.empty_like(dens)
        cdf[:, :, 0] = 0.0
        np.cumsum(cell, axis=2, out=cdf[:, :, 1:])
        total = cdf[:, :, -1:].copy()
        positive = total > 0
        np.divide(cdf, total, out=cdf, where=positive)
        cdf[~(active & positive[:, :, 0])] = 0.0
        return cls(lo, hi, cdf, active, highest_is_best)

    @classmethod
    def normal(cls, mean, se, active, highest_is_best, grid: int = GRID) -> ExactPosterior:
        """Normal(mean, se) posteriors per trial and arm."""
        lo = np.where(active, mean - _WIDTH * se, np.inf).min(axis=1)
        hi = np.where(active, mean + _WIDTH * se, -np.inf).max(axis=1)
        x = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, grid)[None, :]
        cdf = special.ndtr((x[:, None, :] - mean[:, :, None]) / se[:, :, None])
        cdf = (cdf - cdf[:, :, :1]) / np.maximum(cdf[:, :, -1:] - cdf[:, :, :1], 1e-300)
        cdf[~active] = 0.0
        return cls(lo, hi, cdf, active, highest_is_best)

    def take(self, rows) -> ExactPosterior:
        """Return the posteriors of ``rows`` only."""
        return ExactPosterior(self.lo[rows], self.hi[rows], self.cdf[rows], self.active[rows],
                              self.hib)

    def put(self, rows, other: ExactPosterior) -> None:
        """Replace the posteriors of ``rows``."""
        self.lo[rows], self.hi[rows] = other.lo, other.hi
        self.cdf[rows] = other.cdf
        self.active[rows] = other.active

    # -- helpers ---------------------------------------------------------------------------
    def _mass(self) -> np.ndarray:
        return self.cdf[:, :, 1:] - self.cdf[:, :, :-1]

    def _mid(self) -> np.ndarray:
        return 0.5 * (self.cdf[:, :, 1:] + self.cdf[:, :, :-1])

    @staticmethod
    def _others(factors: np.ndarray) -> np.ndarray:
        """Product over all arms but one, for every arm: (t, A, G) -> (t, A, G)."""
        a = factors.shape[1]
        out = np.ones_like(factors)
        run = np.ones_like(factors[:, 0])
        for i in range(a):  # products of the arms before i
            out[:, i] = run
            run = run * factors[:, i]
        run = np.ones_like(factors[:, 0])
        for i in range(a - 1, -1, -1):  # times the products of the arms after i
            out[:, i] *= run
            run = run * factors[:, i]
        return out

    def _shifted(self, shift: float) -> np.ndarray:
        """CDF of every arm at the cell midpoints + ``shift`` (linear interpolation)."""
        g = self.cdf.shape[2]
        h = (self.hi - self.lo) / (g - 1)
        pos = np.arange(g - 1)[None, :] + 0.5 + shift / np.where(h > 0, h, np.inf)[:, None]
        pos = np.clip(pos, 0.0, g - 1.0)
        i0 = np.minimum(np.floor(pos).astype(np.int64), g - 2)
        frac = (pos - i0)[:, None, :]
        # the grid is shared by a trial's arms: one index row per trial, gathered for every arm
        f0 = np.take_along_axis(self.cdf, i0[:, None, :], axis=2)
        f1 = np.take_along_axis(self.cdf, i0[:, None, :] + 1, axis=2)
        f1 -= f0
        f1 *= frac
        f1 += f0
        return f1

    # -- questions ---------------------------------------------------------------------------
    def prob_best(self) -> np.ndarray:
        """P(each arm is best), shape (t, A), summing to 1 over active arms."""
        mass, mid = self._mass(), self._mid()
        beaten = mid if self.hib else 1 - mid  # P(arm j is worse than x)
        beaten = np.where(self.active[:, :, None], beaten, 1.0)
        out = (mass * self._others(beaten)).sum(axis=2)
        out = np.where(self.active, np.maximum(out, 0.0), 0.0)
        total = out.sum(axis=1, keepdims=True)
        return np.divide(out, total, out=np.zeros_like(out), where=total > 0)

    def prob_all_equivalent(self, diff: float) -> np.ndarray:
        """P(max - min over active arms < diff), shape (t,)."""
        mass, mid = self._mass(), self._mid()
        within = np.where(self.active[:, :, None], self._shifted(diff) - mid, 1.0)
        per_arm = (mass * self._others(within)).sum(axis=2)
        return np.clip(np.where(self.active, per_arm, 0.0).sum(axis=1), 0.0, 1.0)

    def compare(self, control: np.ndarray, eq_diff: float | None, fut_diff: float | None):
        """P(better than), P(equivalent to) and P(futile against) the control, each (t, A)."""
        r = np.arange(self.cdf.shape[0])
        dc = self._mass()[r, control][:, None, :]
        mask = self.active.copy()
        mask[r, control] = False
        mid = self._mid()

        def integrate(f):
            return np.where(mask, np.clip((dc * f).sum(axis=2), 0.0, 1.0), np.nan)

        out = [integrate(1 - mid if self.hib else mid), None, None]
        if eq_diff is not None:
            out[1] = integrate(self._shifted(eq_diff) - self._shifted(-eq_diff))
        if fut_diff is not None:
            out[2] = integrate(self._shifted(fut_diff) if self.hib
                               else 1 - self._shifted(-fut_diff))
        return tuple(out)
