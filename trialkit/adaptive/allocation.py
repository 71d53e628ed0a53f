"""Allocation probability rules: reallocation from P(best), softening, limits, control allocation.

All functions work on rows of probabilities (one row per simulated trial, one column per arm);
arms that are no longer active have probability 0 and take no part. Missing values (no fixed
probability, no minimum, no maximum) are ``nan``. The rules follow adaptr's ``reallocate_probs``:
fixed probabilities are kept, the rest is shared in proportion to P(best) (raised to the softening
power and rescaled), and arms falling outside their limits are set to the limit and taken out of the
sharing until every probability is within its limits.
"""

from __future__ import annotations

import numpy as np

_EPS = np.sqrt(np.finfo(float).eps)


def sqrt_control_probability(n_active: int) -> float:
    """Square-root-based control allocation for ``n_active`` arms including the control.

    The control receives ``sqrt(k) / (sqrt(k) + k)`` with ``k = n_active - 1`` non-control arms,
    and each other arm ``1 / (sqrt(k) + k)``; 2 arms give 0.5 / 0.5.
    """
    if n_active < 2:
        return 1.0
    k = n_active - 1
    return float(np.sqrt(k) / (np.sqrt(k) + k))


def rescale_factor(n_arms: int, n_active, control_fixed: bool = False) -> np.ndarray:
    """Factor for fixed probabilities and limits after arms are dropped (``rescale``).

    ``n_arms / n_active``; when the control arm's probability is set by a control rule (fixed,
    square-root-based or matched) the control takes no part in the rescaling, as in adaptr
    (``rescale_ignore``), and the factor is ``(n_arms - 1) / (n_active - 1)``.

    Examples
    --------
    >>> rescale_factor(4, np.array([4, 3, 2])).tolist()
    [1.0, 1.3333333333333333, 2.0]
    >>> rescale_factor(4, np.array([4, 3, 2]), control_fixed=True).tolist()
    [1.0, 1.5, 3.0]
    """
    n_active = np.asarray(n_active, dtype=float)
    k = 1 if control_fixed else 0
    return (n_arms - k) / np.maximum(n_active - k, 1)


def _rescale(x: np.ndarray) -> np.ndarray:
    total = x.sum(axis=-1, keepdims=True)
    return np.divide(x, total, out=np.zeros_like(x), where=total > 0)


def reallocate_rows(
    probs_best: np.ndarray,
    active: np.ndarray,
    fixed: np.ndarray,
    mins: np.ndarray,
    maxs: np.ndarray,
    soften: float | np.ndarray = 1.0,
    match_arm: np.ndarray | None = None,
) -> np.ndarray:
    """Return new allocation probabilities for many trials at once.

    Parameters
    ----------
    probs_best : ndarray (T, A)
        Probability that each arm is the best (0 for inactive arms).
    active : ndarray of bool (T, A)
        Arms still randomised to.
    fixed, mins, maxs : ndarray (T, A) or (A,)
        Fixed probabilities and limits (``nan`` = none).
    soften : float or ndarray (T,)
        Softening power in [0, 1] applied to the adaptive part.
    match_arm : ndarray of int (T,), optional
        Index of the control arm whose P(best) is set to the highest among the other active
        arms before reallocation (``-1`` for no matching in that row).

    Returns
    -------
    ndarray (T, A)
        Allocation probabilities summing to 1 over the active arms, 0 elsewhere.
    """
    p = np.where(active, np.asarray(probs_best, dtype=float), 0.0)
    t, a = p.shape
    fixed = np.where(active, np.broadcast_to(fixed, (t, a)), np.nan)
    mins = np.where(active, np.broadcast_to(mins, (t, a)), np.nan)
    maxs = np.where(active, np.broadcast_to(maxs, (t, a)), np.nan)
    soften = np.broadcast_to(np.asarray(soften, dtype=float), (t,))[:, None]

    if match_arm is not None:
        rows = np.flatnonzero((match_arm >= 0) & (active.sum(axis=1) > 1))
        if rows.size:
            ctrl = match_arm[rows]
            others = np.where(active[rows], p[rows], -np.inf)
            others[np.arange(rows.size), ctrl] = -np.inf
            p[rows, ctrl] = others.max(axis=1)
            zero = p[rows].sum(axis=1) == 0
            p[rows[zero]] = active[rows[zero]].astype(float)
            p[rows] = _rescale(p[rows])

    powered = np.where(active, np.power(p, soften, where=active, out=np.zeros_like(p)), 0.0)
    out = _rescale(powered)
    is_fixed = ~np.isnan(fixed)
    restricted = (is_fixed | ~np.isnan(mins) | ~np.isnan(maxs)).any(axis=1)
    all_fixed = ((is_fixed | ~active).all(axis=1)) & restricted
    if all_fixed.any():
        out[all_fixed] = _rescale(np.where(active[all_fixed], fixed[all_fixed], 0.0))
    rows = np.flatnonzero(restricted & ~all_fixed)
    if rows.size:
        out[rows] = _limited(p[rows], active[rows], fixed[rows], mins[rows], maxs[rows],
                             soften[rows])
    return out


def _limited(p, active, fixed, mins, maxs, soften):
    """Return the iterative clamping of adaptr's ``reallocate_probs`` for rows with limits."""
    final = np.where(active, fixed, 0.0)  # inactive arms are fixed at 0
    out = np.zeros_like(p)
    todo = np.ones(p.shape[0], dtype=bool)
    for _ in range(p.shape[1] + 2):
        idx = np.flatnonzero(todo)
        if idx.size == 0:
            break
        f = final[idx]
        remaining = np.isnan(f)
        left = 1 - np.nansum(f, axis=1, keepdims=True)
        rem_sum = np.where(remaining, p[idx], 0.0).sum(axis=1, keepdims=True)
        n_rem = np.maximum(remaining.sum(axis=1, keepdims=True), 1)
        factor = np.where(rem_sum > 0, p[idx] / np.where(rem_sum > 0, rem_sum, 1), 1 / n_rem)
        tmp = np.where(remaining, left * factor, f)
        soft = (soften[idx, 0] < 1)
        if soft.any():
            base = np.where(remaining[soft], tmp[soft], 0.0)
            powered = np.power(base, soften[idx][soft], where=remaining[soft],
                               out=np.zeros_like(base))
            tmp[soft] = np.where(remaining[soft], left[soft] * _rescale(powered), tmp[soft])
        low = remaining & ~np.isnan(mins[idx]) & (tmp < np.nan_to_num(mins[idx], nan=-1))
        tmp = np.where(low, mins[idx], tmp)
        f = np.where(low, mins[idx], f)
        high = remaining & ~np.isnan(maxs[idx]) & (tmp > np.nan_to_num(maxs[idx], nan=2))
        tmp = np.where(high, maxs[idx], tmp)
        f = np.where(high, maxs[idx], f)
        ok = np.abs(tmp.sum(axis=1) - 1) <= _EPS
        f[ok] = tmp[ok]
        full = ~np.isnan(f).any(axis=1) & (np.abs(np.nansum(f, axis=1) - 1) > _EPS)
        f[full] = _rescale(f[full])
        final[idx] = f
        done = ~np.isnan(f).any(axis=1) & (np.abs(np.nansum(f, axis=1) - 1) <= _EPS)
        out[idx[done]] = f[done]
        todo[idx[done]] = False
    if todo.any():  # limits that cannot all be met: share what is left evenly (never reached
        f = final[todo]  # for valid designs, kept so the result is always a distribution)
        out[todo] = _rescale(np.where(np.isnan(f), 0.0, f) + 1e-12 * active[todo])
    # Fixed probabilities (after rescaling) summing to more than 1 leave a negative share for
    # the adaptive arms: those get nothing and the fixed ones are scaled back to sum to 1.
    negative = (out < 0).any(axis=1)
    if negative.any():
        out[negative] = _rescale(np.maximum(out[negative], 0.0))
    return out


def reallocate_probs(
    probs_best,
    fixed_probs=None,
    min_probs=None,
    max_probs=None,
    soften_power: float = 1.0,
    match_arm: int | None = None,
) -> np.ndarray:
    """Return new allocation probabilities for one trial (all arms active).

    Examples
    --------
    >>> reallocate_probs([0.1, 0.3, 0.6], fixed_probs=[0.2, np.nan, np.nan]).round(6)
    array([0.2     , 0.266667, 0.533333])
    """
    p = np.atleast_2d(np.asarray(probs_best, dtype=float))
    a = p.shape[1]

    def arr(x):
        return np.full(a, np.nan) if x is None else np.array(
            [np.nan if v is None else v for v in x], dtype=float)

    return reallocate_rows(
        p, np.ones_like(p, dtype=bool), arr(fixed_probs), arr(min_probs), arr(max_probs),
        soften_power, None if match_arm is None else np.array([match_arm]),
    )[0]
