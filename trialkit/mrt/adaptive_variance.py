"""The adaptive sandwich: a variance of WCLS that accounts for a policy learned from the data.

Zhang, Janson & Murphy (2023), "Statistical inference after adaptive sampling for longitudinal
data" (arXiv:2202.07098): when the randomisation probabilities come from an algorithm whose
parameters are estimated from all participants' earlier data, the participants are no longer
independent and the usual sandwich ignores the algorithm's estimation error. Their *adaptive
sandwich* stacks the estimating equations of every algorithm update with the analysis's
estimating equation and takes the ordinary M-estimation sandwich of the stack; the bread is block
lower-triangular, its off-diagonal blocks being the derivatives of later estimating functions with
respect to earlier algorithm parameters (through the probabilities).

Here the algorithm of update k (:mod:`trialkit.mrt.policy`) is parameterised by the participants'
mean sufficient statistics ``T_k = (1/n) Σ_i t_ik``, ``t_ik = (vec Σ φφ'/σ², Σ φR/σ²)`` over
participant i's rows decided before update k (the posterior is a smooth function of ``T_k``, so
this parameterisation gives the same limit as the posterior's own). Its estimating function
``ψ_ik(T) = t_ik − T`` has derivative ``−n I``, and the stacked linearisation gives each
participant's influence

    IF_ik = (1/n) [ψ_ik + Σ_{j<k} D_j IF_ij],   D_j = Σ_{rows of version j} ∂t_row/∂π · ∂π/∂T_j,
    IF_iθ = B⁻¹ [U_i + Σ_j E_j IF_ij],           E_j = Σ_{rows of version j} ∂U_row/∂π · ∂π/∂T_j,

with ``U_i`` participant i's WCLS score, ``B = Σ X'WX`` its bread and
``∂U_row/∂π = W'(π)·(Y − X'θ̂)·X``. The variance is ``Σ_i IF_iθ IF_iθ'``. With no policy
parameters (``D``, ``E`` zero) it is the standard sandwich.

``∂π/∂T_j`` (chain rule through ``V = Σ0⁻¹ + n S̄``, ``mean = V⁻¹(Σ0⁻¹μ0 + n b̄)``) is
``L_j h_row`` with ``h_row = (π_m f, π_v f⊗f)`` (the derivatives of
:func:`~trialkit.mrt.policy.probability_from_moments`) and a (d² + d) × (m + m²) matrix ``L_j``
of version j's posterior, which keeps every product small.
"""

from __future__ import annotations

import numpy as np

from trialkit.mrt.estimators import emee_batch, wcls_batch
from trialkit.mrt.policy import (
    PolicyParams,
    advantage_features,
    advantage_moments,
    posterior,
    probability_from_moments,
    reward_features,
)


def _version_slices(version: np.ndarray) -> list[slice]:
    """For each version v, the decision-point slice holding every row of version v."""
    out = []
    for v in range(int(version.max()) + 1):
        hit = (version == v).any(axis=tuple(range(version.ndim - 1)))
        idx = np.flatnonzero(hit)
        out.append(slice(int(idx[0]), int(idx[-1]) + 1) if idx.size else slice(0, 0))
    return out


def version_statistics(spec, hist: dict, version: np.ndarray) -> np.ndarray:
    """Per participant and version, ``(vec Σ φφ'/σ², Σ φR/σ²)``: shape (R, n, V, d² + d)."""
    parts = []
    for v, sl in enumerate(_version_slices(version)):
        w = hist["used"][:, :, sl] * (version[:, :, sl] == v) / spec.noise_sd ** 2
        phi = reward_features(spec, hist["context"][:, :, sl], hist["action"][:, :, sl],
                              hist["probability"][:, :, sl])
        phi_w = phi * w[..., None]
        gram = np.matmul(np.swapaxes(phi_w, -1, -2), phi)
        score = np.einsum("rntd,rnt->rnd", phi_w, np.where(w > 0, hist["reward"][:, :, sl], 0.0))
        parts.append(np.concatenate([gram.reshape(*gram.shape[:2], -1), score], axis=-1))
    return np.stack(parts, axis=2)


def version_params(spec, stats: np.ndarray) -> PolicyParams:
    """Return every version's posterior (0 = prior) from :func:`version_statistics`: (R, V, …)."""
    d = 3 * spec.n_features
    total = stats.sum(axis=1)                                    # (R, V, D)
    cum = np.concatenate([np.zeros_like(total[:, :1]), np.cumsum(total, axis=1)[:, :-1]], axis=1)
    return posterior(spec, cum[..., :d * d].reshape(*cum.shape[:2], d, d), cum[..., d * d:])


def _l_matrix(spec, params: PolicyParams, n: int) -> np.ndarray:
    """``L`` (R, d² + d, m + m²): ∂π/∂T = L h for one version's posterior."""
    m = spec.n_features
    d = 3 * m
    c = params.covariance[:, :, 2 * m:]                          # (R, d, m) = Σ[:, β]
    mu = params.mean
    r = mu.shape[0]
    gram_m = -n * np.einsum("rax,rb->rabx", c, mu).reshape(r, d * d, m)
    gram_v = -n * np.einsum("rax,rby->rabxy", c, c).reshape(r, d * d, m * m)
    score = np.concatenate([n * c, np.zeros((r, d, m * m))], axis=-1)
    return np.concatenate([np.concatenate([gram_m, gram_v], axis=-1), score], axis=1)


def _rows_h(spec, params: PolicyParams, context: np.ndarray) -> np.ndarray:
    """``h_row = (π_m f, π_v f⊗f)`` for rows (R, n, t, c) under one version's posterior."""
    r, n, t, c = context.shape
    flat = context.reshape(r, n * t, c)
    m_, v_ = advantage_moments(spec, params, flat)
    _, dm, dv = probability_from_moments(spec, m_, v_, derivatives=True)
    f = advantage_features(spec, flat)
    ff = (f[..., :, None] * f[..., None, :]).reshape(r, n * t, -1)
    return np.concatenate([dm[..., None] * f, dv[..., None] * ff], axis=-1).reshape(r, n, t, -1)


def _rows_uh(spec, hist: dict, sl: slice, mask: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``M_j = Σ_rows ∂t_row/∂π h_row'`` (R, d² + d, H).

    ``∂t_row/∂π = (vec(eφ' + φe'), e R)/σ²`` with ``e = (0, f, −f)``, at the rows of ``mask``.
    """
    ctx = hist["context"][:, :, sl]
    phi = reward_features(spec, ctx, hist["action"][:, :, sl], hist["probability"][:, :, sl])
    f = advantage_features(spec, ctx)
    ew = np.concatenate([np.zeros_like(f), f, -f], axis=-1) * (mask / spec.noise_sd ** 2)[
        ..., None]
    r, d = ew.shape[0], ew.shape[-1]
    hf = h.reshape(r, -1, h.shape[-1])
    outer = (ew[..., :, None] * phi[..., None, :]).reshape(r, -1, d * d)
    gram = np.matmul(np.swapaxes(outer, 1, 2), hf).reshape(r, d, d, -1)
    gram = (gram + np.swapaxes(gram, 1, 2)).reshape(r, d * d, -1)
    y = np.where(mask > 0, hist["reward"][:, :, sl], 0.0)
    score = np.matmul(np.swapaxes((ew * y[..., None]).reshape(r, -1, d), 1, 2), hf)
    return np.concatenate([gram, score], axis=1)


def adaptive_sandwich(spec, hist: dict, version: np.ndarray, params: PolicyParams,
                      x: np.ndarray, score_rows: np.ndarray, dscore_rows: np.ndarray,
                      bread: np.ndarray) -> np.ndarray:
    """Adaptive sandwich covariance (R, k, k) of an estimator with per-row score ``s_row · x``.

    Parameters
    ----------
    spec : PolicySpec
    hist : dict of arrays
        ``context`` (R, n, T, c), ``action``, ``probability``, ``reward`` and ``used`` (R, n, T):
        the policy's history (``used``: rows the policy learnt from).
    version : int array (R, n, T)
        The policy version each decision used (0 = prior).
    params : PolicyParams
        Every version's posterior, leading shape (R, V).
    x : array (R, n, T, k)
        The analysis's regressors.
    score_rows, dscore_rows : arrays (R, n, T)
        Per row, the score's scalar factor (WCLS: ``I·W·(Y − X'θ̂)``) and its derivative with
        respect to the row's probability (WCLS: ``I·W'(π)·(Y − X'θ̂)``).
    bread : array (R, k, k)
        Minus the derivative of the summed score with respect to θ (WCLS: ``Σ X'WX``).
    """
    n = x.shape[1]
    stats = version_statistics(spec, hist, version)
    cum = np.cumsum(stats, axis=2)                               # through version v
    score = np.einsum("rntk,rnt->rnk", x, score_rows)
    total = score.copy()
    acc = np.zeros_like(stats[:, :, 0])                          # Σ_{j<k} D_j IF_ij
    for j, sl in enumerate(_version_slices(version)):
        if j == 0 or sl.stop <= sl.start:
            continue
        psi = cum[:, :, j - 1] - cum[:, :, j - 1].mean(axis=1, keepdims=True)
        infl = (psi + acc) / n                                   # IF of T_j, (R, n, D)
        mask = (version[:, :, sl] == j).astype(float)
        h = _rows_h(spec, params.take((slice(None), j)), hist["context"][:, :, sl]) * \
            mask[..., None]
        lmat = _l_matrix(spec, params.take((slice(None), j)), n)
        g = np.matmul(infl, lmat)                                # L_j' IF_ij, (R, n, H)
        m_j = _rows_uh(spec, hist, sl, hist["used"][:, :, sl] * mask, h)
        acc = acc + np.matmul(g, np.swapaxes(m_j, 1, 2))
        xd = (x[:, :, sl] * dscore_rows[:, :, sl, None]).reshape(x.shape[0], -1, x.shape[-1])
        e_j = np.matmul(np.swapaxes(xd, 1, 2), h.reshape(h.shape[0], -1, h.shape[-1]))
        total = total + np.matmul(g, np.swapaxes(e_j, 1, 2))
    infl_theta = np.linalg.solve(bread[:, None], total[..., None])[..., 0]
    return np.einsum("rnk,rnl->rkl", infl_theta, infl_theta)


def _gram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Σ_rows a b'`` over the participant and decision-point axes: (R, k, l)."""
    r = a.shape[0]
    return np.matmul(np.swapaxes(a.reshape(r, -1, a.shape[-1]), 1, 2),
                     b.reshape(r, -1, b.shape[-1]))


def _weight_derivative(a: np.ndarray, prob: np.ndarray, avail: np.ndarray,
                       num_prob: float) -> np.ndarray:
    """``∂W/∂π`` of the WCLS/EMEE weight ``(p̃/π)^A ((1 − p̃)/(1 − π))^(1 − A)``."""
    d = np.where(a > 0.5, -num_prob / prob ** 2, (1.0 - num_prob) / (1.0 - prob) ** 2)
    return np.where(avail > 0.5, d, 0.0)


def score_parts(y, a, prob, avail, num_prob: float, controls, fit, binary: bool):
    """Regressors, per-row score factor, its π-derivative and the bread of a WCLS/EMEE fit.

    ``controls`` is (R, n, T, q); the one moderator is the intercept (the marginal effect).
    """
    from trialkit.mrt.estimators import _weights

    w = _weights(a, prob, avail, num_prob)
    dw = _weight_derivative(a, prob, avail, num_prob)
    x = np.concatenate([controls, (a - num_prob)[..., None]], axis=-1)
    theta = np.nan_to_num(fit.coef)
    y0 = np.where(w > 0, y, 0.0)
    if binary:
        q = controls.shape[-1]
        lc = np.exp(np.einsum("rntq,rq->rnt", controls, theta[:, :q]))
        ly = y0 * np.exp(-a * theta[:, q][:, None, None])
        resid = ly - lc
        deriv = np.concatenate([lc[..., None] * controls, (a * ly)[..., None]], axis=-1)
        bread = _gram(x * w[..., None], deriv)
    else:
        resid = y0 - np.einsum("rntk,rk->rnt", x, theta)
        bread = _gram(x * w[..., None], x)
    return x, w * resid, dw * resid, bread


def fit_marginal(spec, hist: dict, version: np.ndarray, params: PolicyParams, y, avail,
                 num_prob: float, binary: bool) -> dict:
    """WCLS/EMEE of the marginal excursion effect with both sandwiches, batched (R, n, T).

    Controls are ``(1, context)`` with the policy's context variables. Returns ``estimate``,
    ``se_standard``, ``se_adaptive`` (R,) and ``df`` (R,) = participants − 1 − q.
    """
    a, prob = hist["action"], hist["probability"]
    controls = np.concatenate([np.ones((*a.shape, 1)), hist["context"]], axis=-1)
    estimator = emee_batch if binary else wcls_batch
    fit = estimator(y, a, prob, avail, num_prob, controls, np.ones((a.shape[-1], 1)), False)
    x, s_rows, ds_rows, bread = score_parts(y, a, prob, avail, num_prob, controls, fit, binary)
    cov = adaptive_sandwich(spec, hist, version, params, x, s_rows, ds_rows, bread)
    return {"estimate": fit.coef[:, -1], "se_standard": np.sqrt(fit.cov[:, -1, -1]),
            "se_adaptive": np.sqrt(cov[:, -1, -1]), "df": fit.df.astype(float),
            "converged": fit.converged}
