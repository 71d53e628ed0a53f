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

from trialkit.adaptive.beta import betaln

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
        # the log density, then the density, in one (t, A, G) array: arrays of this size are
        # made twice (density and CDF), as fresh large arrays cost page faults
        dens = np.multiply((a - 1)[:, :, None], lx[:, None, :])
        b1, term = b - 1, np.empty_like(lx)
        for arm in range(dens.shape[1]):
            np.multiply(b1[:, arm, None], l1x, out=term)
            dens[:, arm] += term
        dens -= betaln(a, b)[:, :, None]
        np.exp(dens, out=dens)
        cdf = np.empty_like(dens)
        cdf[:, :, 0] = 0.0
        cell = cdf[:, :, 1:]  # trapezoid cells, then their running sums, in place
        np.add(dens[:, :, 1:], dens[:, :, :-1], out=cell)
        cell *= 0.5
        np.cumsum(cell, axis=2, out=cell)
        total = cdf[:, :, -1:].copy()
        positive = total > 0
        np.divide(cdf, total, out=cdf, where=positive)
        cdf[~(active & positive[:, :, 0])] = 0.0
        return cls(lo, hi, cdf, active, highest_is_best)

    @classmethod
    def normal(cls, mean, se, active, highest_is_best, grid: int = GRID) -> ExactPosterior:
        """Normal(mean, se) posteriors per trial and arm."""
        from scipy import special  # imported here: binary outcomes do not need SciPy

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
        c = self.cdf
        return np.subtract(c[:, :, 1:], c[:, :, :-1])

    def _mid(self) -> np.ndarray:
        c = self.cdf
        out = np.add(c[:, :, 1:], c[:, :, :-1])
        out *= 0.5
        return out

    @staticmethod
    def _others(factors: np.ndarray) -> np.ndarray:
        """Product over all arms but one, for every arm: (t, A, G) -> (t, A, G).

        Arm i gets (f_0 f_1 ... f_{i-1}) (f_{A-1} f_{A-2} ... f_{i+1}), products taken in
        that order.
        """
        a = factors.shape[1]
        out = np.empty_like(factors)
        if a == 1:
            out.fill(1.0)
            return out
        out[:, 1] = factors[:, 0]  # products of the arms before i
        for i in range(2, a):
            np.multiply(out[:, i - 1], factors[:, i - 1], out=out[:, i])
        run = factors[:, a - 1].copy()  # times the products of the arms after i
        for i in range(a - 2, 0, -1):
            out[:, i] *= run
            run *= factors[:, i]
        out[:, 0] = run
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
        t, a, _ = self.cdf.shape
        idx = (np.arange(0, t * a * g, g, dtype=np.int64).reshape(t, a, 1) + i0[:, None, :])
        flat = self.cdf.reshape(-1)
        f0 = flat.take(idx)
        idx += 1
        f1 = flat.take(idx)
        f1 -= f0
        f1 *= frac
        f1 += f0
        return f1

    # -- questions ---------------------------------------------------------------------------
    def prob_best(self) -> np.ndarray:
        """P(each arm is best), shape (t, A), summing to 1 over active arms."""
        beaten = self._mid()  # P(arm j is worse than x)
        if not self.hib:
            np.subtract(1, beaten, out=beaten)
        np.copyto(beaten, 1.0, where=~self.active[:, :, None])
        others = self._others(beaten)
        others *= self._mass()
        out = others.sum(axis=2)
        out = np.where(self.active, np.maximum(out, 0.0), 0.0)
        total = out.sum(axis=1, keepdims=True)
        return np.divide(out, total, out=np.zeros_like(out), where=total > 0)

    def prob_all_equivalent(self, diff: float) -> np.ndarray:
        """P(max - min over active arms < diff), shape (t,)."""
        within = self._shifted(diff)
        within -= self._mid()
        np.copyto(within, 1.0, where=~self.active[:, :, None])
        others = self._others(within)
        others *= self._mass()
        per_arm = others.sum(axis=2)
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
