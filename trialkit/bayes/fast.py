"""Closed-form posteriors of the factorial model, vectorised across replicates.

* Normal outcome: the normal–inverse-gamma prior of :mod:`trialkit.bayes.spec` is conjugate, so
  given the interaction scale τ the posterior is exact (β is multivariate t).
* Binary outcome: a Laplace approximation (Newton mode and Hessian) given τ, its mean moved from
  the mode by the first-order skewness correction.

The hierarchical interaction scale τ ~ HalfNormal is integrated by quadrature over its prior
quantiles, weighting each point by its (exact or Laplace) marginal likelihood; the posterior is a
mixture over the grid. Every array has a leading replicate axis ``R``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from trialkit.bayes.spec import ModelSpec


@dataclass
class MixturePosterior:
    """A posterior that is a mixture over the τ grid, for ``R`` replicates.

    Attributes
    ----------
    weights : ndarray (R, G)
        Posterior weight of each grid point.
    loc : ndarray (R, G, p)
        Component means (normal) or modes (Laplace).
    chol : ndarray (R, G, p, p)
        Cholesky factor of each component's scale matrix (times σ for the normal family).
    shape, rate : ndarray (R,), (R, G) or None
        Inverse-gamma posterior of σ² (normal family).
    """

    family: str
    weights: np.ndarray
    loc: np.ndarray
    chol: np.ndarray
    shape: np.ndarray | None = None
    rate: np.ndarray | None = None

    def component_cov(self) -> np.ndarray:
        """Covariance of β within each component, (R, G, p, p)."""
        cov = self.chol @ np.swapaxes(self.chol, -1, -2)
        if self.family == "normal":
            assert self.rate is not None and self.shape is not None
            cov = cov * (self.rate / (self.shape[:, None] - 1.0))[..., None, None]
        return cov

    def mean(self) -> np.ndarray:
        """Posterior mean of β, (R, p)."""
        return np.einsum("rg,rgp->rp", self.weights, self.loc)

    def cov(self) -> np.ndarray:
        """Posterior covariance of β, (R, p, p)."""
        m = self.mean()
        second = self.component_cov() + self.loc[..., :, None] * self.loc[..., None, :]
        return np.einsum("rg,rgij->rij", self.weights, second) - m[:, :, None] * m[:, None, :]

    def sd(self) -> np.ndarray:
        """Posterior SD of β, (R, p)."""
        return np.sqrt(np.diagonal(self.cov(), axis1=-2, axis2=-1))

    def draws(self, rngs: Sequence[np.random.Generator], n: int) -> np.ndarray:
        """Draw ``n`` values of β per replicate, one generator per replicate → (R, n, p)."""
        r_count, g_count, p = self.loc.shape
        out = np.empty((r_count, n, p))
        for r, rng in enumerate(rngs):
            g = rng.choice(g_count, size=n, p=self.weights[r]) if g_count > 1 else np.zeros(n, int)
            z = rng.standard_normal((n, p))
            step = np.einsum("nij,nj->ni", self.chol[r, g], z)
            if self.family == "normal":
                assert self.rate is not None and self.shape is not None
                sigma2 = self.rate[r, g] / rng.gamma(self.shape[r], size=n)
                step *= np.sqrt(sigma2)[:, None]
            out[r] = self.loc[r, g] + step
        return out


def _grid_precisions(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    tau, log_prior = spec.tau_grid()
    scale = np.broadcast_to(spec.prior_scale, (len(tau), spec.n_coef)).copy()
    scale[:, spec.interaction] = tau[:, None]
    return 1.0 / scale**2, log_prior


def _softmax(logw: np.ndarray) -> np.ndarray:
    logw = logw - logw.max(axis=-1, keepdims=True)
    w = np.exp(logw)
    return w / w.sum(axis=-1, keepdims=True)


def _chol_inv(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (log|H|, Cholesky factor of H⁻¹) for stacked SPD matrices."""
    lh = np.linalg.cholesky(h)
    logdet = 2.0 * np.log(np.diagonal(lh, axis1=-2, axis2=-1)).sum(-1)
    eye = np.broadcast_to(np.eye(h.shape[-1]), h.shape)
    inv = np.linalg.solve(h, eye)
    inv = 0.5 * (inv + np.swapaxes(inv, -1, -2))
    return logdet, np.linalg.cholesky(inv)


def normal_posterior(
    spec: ModelSpec, xtx: np.ndarray, xty: np.ndarray, yty: np.ndarray, n: np.ndarray,
) -> MixturePosterior:
    """Exact posterior of the normal model from sufficient statistics (leading axis R).

    Parameters
    ----------
    xtx : (R, p, p)  X'X;  xty : (R, p)  X'y;  yty : (R,)  y'y;  n : (R,)  observations.
    """
    logw, mn, chol, an, bn = _normal_components(spec, xtx, xty, yty, n)
    return MixturePosterior("normal", _softmax(logw), mn, chol, shape=an, rate=bn)


def clustered_normal_posterior(spec: ModelSpec, x: np.ndarray, y: np.ndarray,
                               cluster: np.ndarray) -> MixturePosterior:
    """Exact posterior of the normal model with a cluster random intercept (one data set).

    ``y = Xβ + u_c + e`` with ``u_c ~ N(0, σ²κ²)``: given κ the rows of cluster c are
    decorrelated by ``I − a_c J/m_c``, ``a_c = 1 − 1/√(1 + κ² m_c)`` (``m_c`` its size), which
    leaves the conjugate normal model with the marginal likelihood multiplied by
    ``Π_c (1 + κ² m_c)^(−1/2)``. κ ~ HalfNormal(``cluster_sd``) is integrated over the prior
    quantiles of :meth:`ModelSpec.cluster_grid` together with the interaction scale τ.
    """
    cluster = np.asarray(cluster, dtype=int)
    sizes = np.bincount(cluster).astype(float)
    kappas, log_prior_k = spec.cluster_grid()
    parts = []
    for kappa, lp in zip(kappas, log_prior_k, strict=True):
        a = (1.0 - 1.0 / np.sqrt(1.0 + kappa**2 * sizes))[cluster]
        count = sizes[cluster]
        xt = x - (a / count)[:, None] * _cluster_sums(x, cluster)[cluster]
        yt = y - a / count * _cluster_sums(y[:, None], cluster)[cluster, 0]
        logw, mn, chol, an, bn = _normal_components(spec, *normal_stats(xt, yt))
        penalty = 0.5 * np.log1p(kappa**2 * sizes).sum()
        parts.append((logw + lp - penalty, mn, chol, an, bn))
    logw = np.concatenate([p[0] for p in parts], axis=1)
    return MixturePosterior("normal", _softmax(logw),
                            np.concatenate([p[1] for p in parts], axis=1),
                            np.concatenate([p[2] for p in parts], axis=1), shape=parts[0][3],
                            rate=np.concatenate([p[4] for p in parts], axis=1))


def _cluster_sums(values: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """Column sums of ``values`` (rows × columns) within each cluster, (clusters × columns)."""
    out = np.zeros((int(cluster.max()) + 1, values.shape[1]))
    np.add.at(out, cluster, values)
    return out


def _normal_components(spec: ModelSpec, xtx, xty, yty, n):
    """Log weights (marginal likelihood + prior of τ), means, scale factors and σ² posterior."""
    prec0, log_prior = _grid_precisions(spec)  # (G, p)
    m0 = spec.prior_mean
    a0, b0 = spec.sigma_shape, spec.sigma_rate
    pn = xtx[:, None, :, :] + prec0[None, :, :, None] * np.eye(spec.n_coef)  # (R, G, p, p)
    rhs = (prec0 * m0)[None] + xty[:, None, :]  # (R, G, p)
    mn = np.linalg.solve(pn, rhs[..., None])[..., 0]
    logdet_pn, chol = _chol_inv(pn)
    an = a0 + 0.5 * np.asarray(n, float)
    quad0 = (prec0 * m0**2).sum(-1)  # (G,)
    bn = b0 + 0.5 * (yty[:, None] + quad0[None] - (mn * rhs).sum(-1))
    bn = np.maximum(bn, 1e-300)
    logml = (0.5 * (np.log(prec0).sum(-1)[None] - logdet_pn) + a0 * np.log(b0)
             - an[:, None] * np.log(bn) + special.gammaln(an)[:, None] - special.gammaln(a0))
    return logml + log_prior[None], mn, chol, an, bn


def normal_stats(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sufficient statistics (one replicate) of participant data for :func:`normal_posterior`."""
    return (x.T @ x)[None], (x.T @ y)[None], np.array([y @ y]), np.array([float(len(y))])


def _newton(
    x: np.ndarray, trials: np.ndarray, succ: np.ndarray, prec0: np.ndarray, m0: np.ndarray,
    max_iter: int = 100, tol: float = 1e-10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Penalised logistic regression by Newton's method for every (replicate, grid point).

    ``x`` (m, p) rows shared by all replicates; ``trials``/``succ`` (R, m); ``prec0`` (G, p).
    Returns the mode (R, G, p), the Hessian (R, G, p, p) and the log-likelihood (R, G).
    """
    r_count, g_count, p = trials.shape[0], prec0.shape[0], x.shape[1]
    beta = np.broadcast_to(m0, (r_count, g_count, p)).copy()
    eye = np.eye(p)
    trials_ = trials[:, None, :]
    succ_ = succ[:, None, :]
    for _ in range(max_iter):
        eta = beta @ x.T  # (R, G, m)
        mu = special.expit(eta)
        w = trials_ * mu * (1.0 - mu)
        grad = (succ_ - trials_ * mu) @ x - prec0[None] * (beta - m0)
        hess = x.T @ (w[..., None] * x) + prec0[None, :, :, None] * eye
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        step = np.where(np.isfinite(step), step, 0.0)
        beta += np.clip(step, -5.0, 5.0)
        if np.max(np.abs(step)) < tol:
            break
    eta = beta @ x.T
    mu = special.expit(eta)
    w = trials_ * mu * (1.0 - mu)
    hess = x.T @ (w[..., None] * x) + prec0[None, :, :, None] * eye
    loglik = (succ_ * eta - trials_ * np.logaddexp(0.0, eta)).sum(-1)
    return beta, hess, loglik


def logistic_posterior(
    spec: ModelSpec, x: np.ndarray, trials: np.ndarray, succ: np.ndarray,
) -> MixturePosterior:
    """Laplace approximation of the logistic model's posterior (leading axis R).

    ``x`` (m, p) are rows (participants or cells) shared by the replicates, ``trials`` and
    ``succ`` (R, m) their numbers of trials and successes.
    """
    prec0, log_prior = _grid_precisions(spec)
    m0 = spec.prior_mean
    mode, hess, loglik = _newton(x, trials, succ, prec0, m0)
    logdet_h, chol = _chol_inv(hess)
    dev = mode - m0
    log_p = 0.5 * np.log(prec0).sum(-1)[None] - 0.5 * (prec0[None] * dev**2).sum(-1)
    logml = loglik + log_p - 0.5 * logdet_h
    weights = _softmax(logml + log_prior[None])
    # first-order correction of the mean for the skewness of the likelihood:
    # E[β] ≈ mode + ½ V ∑_i ∂³ℓ/∂β∂β∂β · V, with ∂³ℓ = −∑_i n_i μ(1−μ)(1−2μ) x_i x_i x_i
    cov = chol @ np.swapaxes(chol, -1, -2)
    mu = special.expit(mode @ x.T)  # (R, G, m)
    w = trials[:, None, :] * mu * (1.0 - mu)
    lev = np.einsum("mi,rgij,mj->rgm", x, cov, x)
    third = -((w * (1.0 - 2.0 * mu) * lev) @ x)  # (R, G, p)
    loc = mode + 0.5 * np.einsum("rgij,rgj->rgi", cov, third)
    return MixturePosterior("logistic", weights, loc, chol)


def expected_outcomes(post: MixturePosterior, xc: np.ndarray) -> np.ndarray:
    """Posterior expected outcome of each combination (rows of ``xc``) → (R, C).

    Normal: exact. Logistic: E[logistic(x β)] with the probit approximation of each Gaussian
    mixture component.
    """
    if post.family == "normal":
        return post.mean() @ xc.T
    m = post.loc @ xc.T  # (R, G, C)
    lx = np.einsum("rgij,ci->rgcj", post.chol, xc)
    v = (lx**2).sum(-1)
    comp = special.expit(m / np.sqrt(1.0 + np.pi * v / 8.0))
    return np.einsum("rg,rgc->rc", post.weights, comp)


def ols(xtx: np.ndarray, xty: np.ndarray, yty: np.ndarray, n: np.ndarray):
    """Least squares from sufficient statistics: estimates, t-test p-values (R, p) each."""
    from scipy import stats

    p = xtx.shape[-1]
    # a negligible ridge keeps a replicate with an empty condition from stopping the run
    ridge = 1e-10 * np.trace(xtx, axis1=-2, axis2=-1)[:, None, None] / p * np.eye(p)
    inv = np.linalg.inv(xtx + ridge)
    est = (inv @ xty[..., None])[..., 0]
    df = np.asarray(n, float) - p
    rss = np.maximum(yty - (est * xty).sum(-1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.where(df > 0, rss / np.maximum(df, 1), np.inf)
        se = np.sqrt(s2[:, None] * np.diagonal(inv, axis1=-2, axis2=-1))
        pval = 2.0 * stats.t.sf(np.abs(est / se), np.maximum(df, 1)[:, None])
    # no residual degrees of freedom (or an inestimable term): not significant
    return est, np.where(np.isfinite(pval), pval, 1.0)


def logistic_mle(x: np.ndarray, trials: np.ndarray, succ: np.ndarray):
    """Maximum-likelihood logistic regression with Wald p-values, (R, p) each."""
    from scipy import stats

    p = x.shape[1]
    # a negligible ridge keeps separated or sparse replicates finite; their huge SEs then give
    # non-significant Wald tests, as for an unpenalised fit that has not converged
    mode, hess, _ = _newton(x, trials, succ, np.full((1, p), 1e-8), np.zeros(p), max_iter=30)
    est = mode[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.diagonal(np.linalg.inv(hess[:, 0]), axis1=-2, axis2=-1))
        pval = 2.0 * stats.norm.sf(np.abs(est / se))
    return est, np.where(np.isfinite(pval), pval, 1.0)
