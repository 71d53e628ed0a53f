"""Tests and intervals for causal excursion effects: t (df = n − p − q) and Hotelling."""

from __future__ import annotations

import numpy as np
from scipy import stats

from trialkit.errors import TrialkitError


def hotelling_pvalue(effect: np.ndarray, cov: np.ndarray, df: np.ndarray) -> np.ndarray:
    """P-values of H0: all p effect coefficients are zero, batched over replicates.

    ``T² = β̂' V⁻¹ β̂`` is referred to ``p(p + d − 1)/d · F(p, d)`` with ``d = n − p − q``
    (Liao et al. 2016); for p = 1 this is the two-sided t test with d degrees of freedom.
    """
    effect = np.asarray(effect, dtype=float)
    p = effect.shape[-1]
    df = np.asarray(df, dtype=float)
    with np.errstate(all="ignore"):
        t2 = np.einsum("rk,rk->r", effect, np.linalg.solve(cov, effect[..., None])[..., 0])
        f = t2 * df / (p * (p + df - 1.0))
        out = stats.f.sf(f, p, df)
    return np.where(np.isfinite(out) & (df > 0), out, np.nan)


def term_label(weights, names) -> str:
    """Readable name of a linear combination, e.g. ``Intercept + 2*x1``."""
    parts: list[str] = []
    for w, name in zip(weights, names, strict=True):
        if w == 0:
            continue
        body = name if abs(w) == 1 else f"{abs(w):g}*{name}"
        if not parts:
            parts.append(("-" if w < 0 else "") + body)
        else:
            parts.append(f" {'-' if w < 0 else '+'} {body}")
    return "".join(parts) if parts else "0"


def effect_table(coef, cov, names, df: float, conf_level: float = 0.95,
                 lincomb=None) -> list[dict]:
    """One record per effect coefficient (and per linear combination) with a 1-df t test.

    Parameters
    ----------
    coef : array (p,)
        Effect coefficients.
    cov : array (p, p)
        Their covariance.
    names : list of str
    df : float
        Degrees of freedom n − p − q of the t reference.
    conf_level : float
        Confidence level of the intervals, in (0, 1).
    lincomb : array (m, p), optional
        Rows of weights; each row is one linear combination tested on 1 degree of freedom.
    """
    if not 0 < conf_level < 1:
        raise TrialkitError(f"conf_level = {conf_level!r} is outside (0, 1) — use e.g. 0.95",
                            param="conf_level")
    if df < 1:
        raise TrialkitError(f"df = n − p − q = {df:g} for {len(coef)} effect terms and the "
                            "controls: no degrees of freedom are left — use fewer terms or more "
                            "participants")
    coef = np.asarray(coef, dtype=float)
    cov = np.asarray(cov, dtype=float)
    rows = [(name, np.eye(len(coef))[j]) for j, name in enumerate(names)]
    if lincomb is not None:
        lin = np.atleast_2d(np.asarray(lincomb, dtype=float))
        if lin.shape[1] != len(coef):
            raise TrialkitError(f"lincomb has {lin.shape[1]} weights but there are {len(coef)} "
                                f"effect terms ({', '.join(names)}) — give one weight per term",
                                param="lincomb")
        rows += [(term_label(w, names), w) for w in lin]
    crit = stats.t.ppf(0.5 + conf_level / 2.0, df)
    out = []
    for name, w in rows:
        est = float(w @ coef)
        se = float(np.sqrt(w @ cov @ w))
        p_value = float(2.0 * stats.t.sf(abs(est) / se, df)) if se > 0 else float("nan")
        out.append({"term": name, "estimate": est, "std_error": se, "ci_low": est - crit * se,
                    "ci_high": est + crit * se, "p_value": p_value, "df": int(round(df))})
    return out
