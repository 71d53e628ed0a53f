"""Beta-function helpers in numpy alone: the log beta function and the median of beta laws.

The adaptive simulator needs only these two special functions for binary outcomes; computing them
here keeps SciPy (whose import takes longer than simulating a thousand trials) off the path of
``trialkit simulate``. Both agree with SciPy's ``betaln`` and ``betaincinv(a, b, 0.5)`` to about
1e-14 relative (``tests/test_adaptive_beta.py`` compares them over a wide range).
"""

from __future__ import annotations

import math

import numpy as np

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_lgamma = np.frompyfunc(math.lgamma, 1, 1)
# Stirling series of log Gamma: B_2k / (2k (2k - 1)), k = 1..7
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156)
_SERIES_FROM = 15.0  # below this, log Gamma itself is accurate enough for the correction


def _stirling_error(x: np.ndarray) -> np.ndarray:
    """Return log Gamma(x) - [(x - 1/2) log x - x + log(2 pi) / 2], for x > 0."""
    out = np.empty_like(x)
    big = x >= _SERIES_FROM
    if big.any():
        xb = x[big]
        inv2 = 1.0 / (xb * xb)
        s = np.full_like(xb, _STIRLING[-1])
        for c in _STIRLING[-2::-1]:
            s = s * inv2 + c
        out[big] = s / xb
    small = ~big
    if small.any():
        xs = x[small]
        out[small] = (_lgamma(xs).astype(float) - ((xs - 0.5) * np.log(xs) - xs + _HALF_LOG_2PI))
    return out


def betaln(a, b) -> np.ndarray:
    """Return log B(a, b) for positive ``a``, ``b`` (arrays broadcast)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    shape = a.shape
    a, b = np.minimum(a, b).ravel(), np.maximum(a, b).ravel()
    s = a + b
    # (b - 1/2) log b - (s - 1/2) log s, written without the cancellation of two large terms
    out = (_HALF_LOG_2PI + (a - 0.5) * np.log(a) - a * np.log(s) - (b - 0.5) * np.log1p(a / b)
           + _stirling_error(a) + _stirling_error(b) - _stirling_error(s))
    small = np.maximum(a, b) < _SERIES_FROM  # no cancellation to avoid: log Gamma directly
    if small.any():
        out[small] = (_lgamma(a[small]) + _lgamma(b[small]) - _lgamma(s[small])).astype(float)
    return out.reshape(shape)


def _log_kernel(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log[x^a (1 - x)^b / B(a, b)], written so that large ``a`` and ``b`` do not cancel."""
    s = a + b
    big = np.minimum(a, b) >= _SERIES_FROM
    out = a * np.log(x) + b * np.log1p(-x) - betaln(a, b)
    if big.any():
        xb, ab, bb, sb = x[big], a[big], b[big], s[big]
        out[big] = (ab * np.log1p((xb * sb - ab) / ab) + bb * np.log1p(((1 - xb) * sb - bb) / bb)
                    + 0.5 * np.log(ab * bb / sb) - _HALF_LOG_2PI
                    - (_stirling_error(ab) + _stirling_error(bb) - _stirling_error(sb)))
    return out


def _continued_fraction(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Evaluate the incomplete beta function's continued fraction (modified Lentz).

    For x < (a + 1) / (a + b + 2), where it converges fast.
    """
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = np.where(np.abs(d) < tiny, tiny, d)
    d = 1.0 / d
    h = d.copy()
    todo = np.ones(x.shape, dtype=bool)
    for m in range(1, 10_000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = np.where(np.abs(d) < tiny, tiny, d)
            c = 1.0 + aa / c
            c = np.where(np.abs(c) < tiny, tiny, c)
            d = 1.0 / d
            step = d * c
            h = np.where(todo, h * step, h)
        todo &= np.abs(step - 1.0) > 1e-15
        if not todo.any():
            break
    return h


def betainc(x, a, b) -> np.ndarray:
    """Return the regularised incomplete beta function I_x(a, b) (arrays of the same shape)."""
    x, a, b = (np.asarray(v, dtype=float) for v in (x, a, b))
    flip = x > (a + 1.0) / (a + b + 2.0)
    xs = np.where(flip, 1.0 - x, x)
    aa, bb = np.where(flip, b, a), np.where(flip, a, b)
    inside = (xs > 0) & (xs < 1)
    xi = np.where(inside, xs, 0.5)
    part = np.exp(_log_kernel(xi, aa, bb)) * _continued_fraction(xi, aa, bb) / aa
    part = np.where(inside, part, np.where(xs >= 1, 1.0, 0.0))
    return np.where(flip, 1.0 - part, part)


def beta_median(a, b) -> np.ndarray:
    """Return the median of Beta(a, b) laws, elementwise (``a``, ``b`` positive, arrays broadcast).

    Newton's method on I_x(a, b) = 1/2 from the approximation (a - 1/3) / (a + b - 2/3), kept
    inside a shrinking bracket (bisection when a step leaves it), until the step is below
    1e-14 of the estimate or stops shrinking at the rounding level of I_x.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    shape = a.shape
    a, b = a.ravel().copy(), b.ravel().copy()
    x = np.where((a >= 1) & (b >= 1), (a - 1 / 3) / (a + b - 2 / 3), a / (a + b))
    lo, hi = np.zeros_like(x), np.ones_like(x)
    todo = np.ones(x.shape, dtype=bool)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        _newton(x, a, b, lo, hi, todo)
    return x.reshape(shape)


def _newton(x, a, b, lo, hi, todo) -> None:
    prev = np.full_like(x, np.inf)  # the last Newton step of each element
    for _ in range(100):
        i = np.flatnonzero(todo)
        if i.size == 0:
            break
        xi, ai, bi = x[i], a[i], b[i]
        f = betainc(xi, ai, bi) - 0.5
        lo[i] = np.where(f < 0, xi, lo[i])
        hi[i] = np.where(f > 0, xi, hi[i])
        dens = np.exp(_log_kernel(xi, ai, bi)) / (xi * (1.0 - xi))
        new = xi - f / dens
        outside = (new < lo[i]) | (new > hi[i]) | ~np.isfinite(new)
        new = np.where(outside, 0.5 * (lo[i] + hi[i]), new)
        x[i] = new
        step = np.abs(new - xi)
        # done: exact, a step below 1e-14 of the value, or a small Newton step that no longer
        # shrinks (the incomplete beta function's rounding, ~1e-14, is reached)
        small = ~outside & (step <= 1e-10 * new) & (step >= prev[i])
        done = (f == 0) | (step <= 1e-14 * new) | small
        prev[i] = np.where(outside, np.inf, step)
        todo[i] = ~done
