"""Causal excursion effect estimators, vectorised across replicates and participants.

Arrays have shape ``(R, n, T)``: R replicates (1 for a single analysis), n participants and T
decision points (ragged data are padded with unavailable rows). Controls and moderators are
either shared over participants, shape ``(T, q)``/``(T, p)``, or per row, ``(R, n, T, q)`` and
``(R, n, T, p)``.

* **WCLS** (Boruvka et al. 2018): weighted least squares of ``Y`` on ``(B_t, (A_t − p̃_t) Z_t)`` over
  available rows with weights ``(p̃/p)^A ((1 − p̃)/(1 − p))^(1 − A)``.
* **EMEE** (Qian et al. 2021): the estimating equation
  ``Σ I_t W_t e^{−A_t Z_t'β} (Y − e^{B_t'α + A_t Z_t'β}) (B_t, (A_t − p̃_t) Z_t) = 0`` for the log
  relative risk, solved by batched Newton steps.

Both use a sandwich variance with, optionally, the Mancl–DeRouen (2001) leverage adjustment of the
reference implementation (R ``MRTAnalysis``): each participant's residuals are multiplied by
``(I − H_ii)⁻¹``. Through the Woodbury identity that participant's adjusted score becomes
``J (J − G_i)⁻¹ s_i`` (``J`` the total derivative, ``G_i`` participant i's share, ``s_i`` its
score), so the T×T inverses are replaced by k×k solves, batched over replicates and participants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: R ``MRTAnalysis::wcls`` applies the small-sample adjustment up to this many participants
#: (``MRTAnalysis::emee`` always applies it); ``small="auto"`` does the same.
SMALL_SAMPLE_MAX = 50


@dataclass
class BatchFit:
    """Estimates for a batch of replicates.

    Attributes
    ----------
    coef : array (R, q + p)
        Control coefficients followed by the p effect coefficients.
    cov : array (R, q + p, q + p)
        Sandwich covariance (with the leverage adjustment when ``small``).
    n_participants : array (R,)
        Participants with at least one available row.
    converged : array (R,) of bool
        Whether the fit converged (always true for WCLS unless singular).
    q, p : int
        Numbers of control and effect coefficients.
    """

    coef: np.ndarray
    cov: np.ndarray
    n_participants: np.ndarray
    converged: np.ndarray
    q: int
    p: int

    @property
    def df(self) -> np.ndarray:
        """Residual degrees of freedom n − p − q of the small-sample reference distributions."""
        return self.n_participants - self.p - self.q

    @property
    def effect(self) -> np.ndarray:
        """The p effect coefficients, shape (R, p)."""
        return self.coef[:, self.q:]

    @property
    def effect_cov(self) -> np.ndarray:
        """Covariance of the effect coefficients, shape (R, p, p)."""
        return self.cov[:, self.q:, self.q:]


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched ``solve(a, b[..., None])``; singular systems give NaN instead of an exception."""
    try:
        return np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        a_b, b_b = np.broadcast_arrays(a, b[..., None])
        b_v = b_b[..., 0]
        flat_a = a_b.reshape(-1, *a_b.shape[-2:])
        flat_b = b_v.reshape(-1, b_v.shape[-1])
        out = np.full(flat_b.shape, np.nan)
        for i in range(flat_a.shape[0]):
            try:
                out[i] = np.linalg.solve(flat_a[i], flat_b[i])
            except np.linalg.LinAlgError:
                pass
        return out.reshape(b_v.shape)


def _broadcast_design(mat: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    mat = np.asarray(mat, dtype=float)
    if mat.ndim == 2:
        return np.broadcast_to(mat, (*shape, mat.shape[1]))
    return mat


def _regressors(a, num_prob, controls, moderators):
    shape = a.shape
    b = _broadcast_design(controls, shape)
    z = _broadcast_design(moderators, shape)
    centred = (a - num_prob)[..., None] * z
    return b, z, np.concatenate([np.broadcast_to(b, (*shape, b.shape[-1])), centred], axis=-1)


def _weights(a, prob, avail, num_prob):
    w = np.where(a > 0.5, num_prob / prob, (1.0 - num_prob) / (1.0 - prob))
    return np.where(avail > 0.5, w, 0.0)


def _sandwich(jac: np.ndarray, parts: np.ndarray, score: np.ndarray, small: bool) -> np.ndarray:
    """Σ_i v_i v_i' with v_i = (J − G_i)⁻¹ s_i (leverage-adjusted) or J⁻¹ s_i."""
    if small:
        v = _solve(jac[:, None] - parts, score)
    else:
        v = _solve(np.broadcast_to(jac[:, None], parts.shape), score)
    return np.einsum("rnk,rnl->rkl", v, v)


def _participants(w: np.ndarray) -> np.ndarray:
    return (w > 0).any(axis=2).sum(axis=1)


def _small_flag(small, n: np.ndarray, always: bool = False) -> bool:
    """Whether to apply the leverage adjustment: ``"auto"`` follows the reference package."""
    if small == "auto":
        return always or bool(np.max(n) <= SMALL_SAMPLE_MAX)
    return bool(small)


def wcls_batch(y, a, prob, avail, num_prob, controls, moderators, small="auto") -> BatchFit:
    """WCLS for a batch: arrays ``(R, n, T)``; see the module docstring.

    ``small`` is True (always apply the Mancl–DeRouen adjustment), False (never) or ``"auto"``
    (when at most 50 participants, as R ``MRTAnalysis::wcls`` does).
    """
    a = np.asarray(a, dtype=float)
    w = _weights(a, prob, avail, num_prob)
    y = np.where(w > 0, y, 0.0)
    _, _, x = _regressors(a, num_prob, controls, moderators)
    q = np.shape(controls)[-1]
    xw = x * w[..., None]
    parts = np.matmul(np.swapaxes(xw, -1, -2), x)          # (R, n, k, k) = X_i' W_i X_i
    jac = parts.sum(axis=1)
    rhs = np.einsum("rntk,rnt->rk", xw, y)
    coef = _solve(jac, rhs)
    resid = y - np.einsum("rntk,rk->rnt", x, np.nan_to_num(coef))
    score = np.einsum("rntk,rnt->rnk", xw, resid)
    n = _participants(w)
    cov = _sandwich(jac, parts, score, _small_flag(small, n))
    return BatchFit(coef=coef, cov=cov, n_participants=n,
                    converged=np.isfinite(coef).all(axis=1), q=q, p=x.shape[-1] - q)


def _flat(arr: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """(R, n, T, m) (or a (T, m) design) as a contiguous (R, n·T, m) array."""
    full = np.broadcast_to(arr, (*shape, arr.shape[-1]))
    return np.ascontiguousarray(full).reshape(shape[0], -1, arr.shape[-1])


def _emee_parts(theta, y, a, xw, b, z, q):
    """Linear predictors, score terms and the derivative of the EMEE estimating function."""
    lc = np.matmul(b, theta[:, :q, None])[..., 0]
    lm = np.matmul(z, theta[:, q:, None])[..., 0]
    e_lc = np.exp(lc)
    y_e = y * np.exp(-a * lm)
    jac = -np.concatenate([np.matmul(np.swapaxes(xw * e_lc[..., None], 1, 2), b),
                           np.matmul(np.swapaxes(xw * (y_e * a)[..., None], 1, 2), z)], axis=-1)
    return e_lc, y_e, jac


def emee_batch(y, a, prob, avail, num_prob, controls, moderators, small="auto",
               max_iter: int = 100, tol: float = 1e-10) -> BatchFit:
    """EMEE (log relative risk) for a batch: arrays ``(R, n, T)``; see the module docstring.

    ``small`` is True or ``"auto"`` (apply the Mancl–DeRouen adjustment whatever the number of
    participants, as R ``MRTAnalysis::emee`` does) or False (never).
    """
    a = np.asarray(a, dtype=float)
    shape = a.shape
    n_rep = shape[0]
    w = _weights(a, prob, avail, num_prob)
    y = np.where(w > 0, y, 0.0).reshape(n_rep, -1)
    b3, z3, x3 = _regressors(a, num_prob, controls, moderators)
    b, z = _flat(np.asarray(controls, float), shape), _flat(np.asarray(moderators, float), shape)
    q = b.shape[-1]
    k = x3.shape[-1]
    xw = (x3 * w[..., None]).reshape(n_rep, -1, k)
    a2 = a.reshape(n_rep, -1)
    theta = np.zeros((n_rep, k))
    converged = np.zeros(n_rep, dtype=bool)
    active = np.ones(n_rep, dtype=bool)
    for _ in range(max_iter):
        e_lc, y_e, jac = _emee_parts(theta, y, a2, xw, b, z, q)
        u = np.matmul(np.swapaxes(xw, 1, 2), (y_e - e_lc)[..., None])[..., 0]
        with np.errstate(all="ignore"):
            step = _solve(jac, u)
        bad = ~np.isfinite(step).all(axis=1)
        step[bad] = 0.0
        size = np.abs(step).max(axis=1)
        step *= np.minimum(1.0, 2.0 / np.maximum(size, 1e-300))[:, None]  # damp huge steps
        step[~active] = 0.0
        theta -= step
        converged |= active & (size < tol) & ~bad
        active &= ~converged & ~bad
        if not active.any():
            break
    theta[~converged] = np.nan
    th = np.where(converged[:, None], np.nan_to_num(theta), 0.0)
    e_lc, y_e, jac = _emee_parts(th, y, a2, xw, b, z, q)
    resid = (y_e - e_lc).reshape(shape)
    xw4 = xw.reshape(*shape, k)
    score = np.einsum("rntk,rnt->rnk", xw4, resid)
    c = np.concatenate([np.broadcast_to(b3, (*shape, q)), a[..., None] * z3], axis=-1)
    parts = -np.matmul(np.swapaxes(xw4 * e_lc.reshape(shape)[..., None], -1, -2), c)
    n = _participants(w)
    with np.errstate(all="ignore"):
        jac_safe = np.where(converged[:, None, None], jac, np.eye(k))
        cov = _sandwich(jac_safe, parts, score, _small_flag(small, n, always=True))
    cov[~converged] = np.nan
    return BatchFit(coef=theta, cov=cov, n_participants=n, converged=converged, q=q, p=k - q)
