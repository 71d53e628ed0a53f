"""Decision rules over the 2^k candidate interventions, vectorised across replicates.

* PEV: the combination with the highest posterior expected value (Strayhorn, Collins & Vanness
  2023), optionally only among combinations whose cost is within a budget.
* Multi-outcome value (DAIVE, Strayhorn et al. 2024): each outcome's posterior expected values
  are rescaled to [0, 1] over the candidates (worst → 0, best → 1, in the outcome's better
  direction) and combined with weights.
* Classic screening: components with a significant beneficial main effect, then, for every
  significant interaction, the levels of its factors with the best fitted mean.

Values handed to these functions are oriented so that larger is better.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from trialkit.errors import TrialkitError
from trialkit.factorial.model import Term


def orient(values: np.ndarray, better: str) -> np.ndarray:
    """Return values oriented so that larger is better."""
    return -values if better == "lower" else values


def combination_costs(combos: np.ndarray, costs: Sequence[float]) -> np.ndarray:
    """Cost of every combination (sum of the costs of the components switched on)."""
    return (combos > 0) @ np.asarray(costs, float)


def check_budget(budget: float | None, costs: np.ndarray) -> None:
    """Raise when ``budget`` is not a number or is below the cheapest combination."""
    if budget is not None and np.isnan(budget):
        raise TrialkitError("budget nan is not a number — give the largest total component "
                            "cost, e.g. 15", param="budget")
    if budget is not None and budget < costs.min():
        raise TrialkitError(f"budget {budget:g} is below the cheapest option "
                            f"({costs.min():g}) — give a budget of at least {costs.min():g}")


def pev_choice(values: np.ndarray, costs: np.ndarray, budget: float | None = None) -> np.ndarray:
    """Index of the combination with the largest value (R, C) → (R,), within ``budget``."""
    v = np.asarray(values, float)
    if budget is not None:
        v = np.where(costs[None, :] <= budget + 1e-12, v, -np.inf)
    return np.argmax(v, axis=-1)


def true_best(values: np.ndarray, costs: np.ndarray, budget: float | None = None,
              combos: np.ndarray | None = None, tol: float = 1e-9) -> int:
    """Return the truly best combination: largest value, ties to lower cost, then fewer parts."""
    v = np.asarray(values, float)
    ok = np.ones(v.shape, bool) if budget is None else costs <= budget + 1e-12
    vmax = v[ok].max()
    tied = np.flatnonzero(ok & (v >= vmax - tol))
    n_on = np.zeros(len(v)) if combos is None else (combos > 0).sum(1)
    order = sorted(tied, key=lambda c: (costs[c], n_on[c], c))
    return int(order[0])


def daive_value(oriented: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of per-outcome values rescaled to [0, 1] across the combinations (last axis)."""
    w = np.asarray(weights, float)
    w = w / w.sum()
    total: Any = 0.0
    for vals, wi in zip(oriented, w, strict=True):
        lo = vals.min(axis=-1, keepdims=True)
        span = vals.max(axis=-1, keepdims=True) - lo
        total = total + wi * np.where(span > 0, (vals - lo) / np.where(span > 0, span, 1.0), 0.0)
    return total


def screening_rule(
    est: np.ndarray, pval: np.ndarray, terms: Sequence[Term], k: int, alpha: float, better: str,
) -> np.ndarray:
    """Classic screening decision per replicate → (R, k) booleans (component chosen).

    ``est`` and ``pval`` (R, p) follow ``terms`` (intercept first; covariates may follow).
    A component is chosen when its main effect is significant and beneficial; then, for each
    significant interaction (lower order first), the levels of the factors it involves are set to
    the combination with the best fitted mean from the terms among those factors.
    """
    sign = -1.0 if better == "lower" else 1.0
    est = np.asarray(est, float)
    pval = np.asarray(pval, float)
    index = {t: j for j, t in enumerate(terms)}
    mains = [index[(i,)] for i in range(k)]
    chosen = (pval[:, mains] < alpha) & (sign * est[:, mains] > 0)
    for term in sorted((t for t in terms if len(t) > 1), key=len):
        sig = pval[:, index[term]] < alpha
        if not sig.any():
            continue
        f = list(term)
        levels = np.array(list(itertools.product((-1.0, 1.0), repeat=len(f))))
        fitted = np.zeros((est.shape[0], len(levels)))
        for sub in terms:
            if sub and set(sub) <= set(f):
                cols = [f.index(i) for i in sub]
                fitted += est[:, [index[sub]]] * levels[:, cols].prod(1)[None, :]
        best = np.argmax(sign * fitted, axis=1)
        chosen[np.ix_(sig, np.asarray(f))] = levels[best[sig]] > 0
    return chosen


def combo_index(chosen: np.ndarray) -> np.ndarray:
    """Index (in :meth:`ModelSpec.combinations` order) of on/off rows (R, k) → (R,)."""
    return (np.asarray(chosen, int) << np.arange(chosen.shape[1])).sum(1)
