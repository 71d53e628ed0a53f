"""Simulated trials of factorial designs and their power, vectorised across replicates.

:func:`generate_factorial_data` is the data-generating model (also used by the Bayesian analysis):
given per-replicate generators it draws a block of replicate trials at once. The planned analysis
works on per-condition sufficient statistics, so every replicate is fitted by a few matrix
products: effect-coded OLS for continuous outcomes (one shared inverse when no one drops out,
batched solves otherwise) and a batched Newton (IRLS) logistic fit for binary ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from trialkit.engine.streams import Streams
from trialkit.errors import TrialkitError


# -- layout and data generation ----------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Who is in which condition and cluster.

    Attributes
    ----------
    condition : ndarray of int, shape (N,)
        Row of the design's condition matrix for each participant.
    cluster : ndarray of int, shape (N,), or None
        Cluster of each participant (clustered designs).
    n_clusters : int
        Number of clusters (0 when unclustered).
    between : bool
        Whether whole clusters are randomised (analysis on cluster means).
    """

    condition: np.ndarray
    cluster: np.ndarray | None = None
    n_clusters: int = 0
    between: bool = False


def trial_layout(
    n_conditions: int, n_total: int | None = None, *, assignment: str = "independent",
    clusters: int | None = None, cluster_size: float | None = None, cluster_size_sd: float = 0.0,
) -> Layout:
    """Allocate participants (or clusters) to conditions in balanced rotation.

    Participant (or cluster) ``i`` gets condition ``i mod C`` — the allocation a blocked
    randomisation produces up to the order of the blocks. Between-cluster sizes with a non-zero
    ``cluster_size_sd`` are a fixed spread of normal quantiles (at least 1).
    """
    if assignment == "independent":
        if n_total is None or n_total < 1:
            raise TrialkitError("the total sample size is missing — give n_total",
                                param="n_total")
        n = int(n_total)
        return Layout(condition=np.arange(n) % n_conditions)
    if clusters is None or cluster_size is None:
        raise TrialkitError("clustered designs need clusters and cluster_size — give both")
    j = int(clusters)
    if assignment == "within":
        m = int(round(cluster_size))
        n = j * m
        return Layout(condition=np.arange(n) % n_conditions, cluster=np.arange(n) // m,
                      n_clusters=j)
    q = stats.norm.ppf((np.arange(j) + 0.5) / j)
    order = (np.arange(j) * 7919) % j if math.gcd(7919, j) == 1 else np.arange(j)
    sizes = np.maximum(1, np.round(cluster_size + cluster_size_sd * q[order])).astype(int)
    cluster = np.repeat(np.arange(j), sizes)
    return Layout(condition=(np.arange(j) % n_conditions)[cluster], cluster=cluster,
                  n_clusters=j, between=True)


def generate_factorial_data(
    rngs: Streams, x: np.ndarray, beta: np.ndarray, *,
    outcome: str = "continuous", sd: float = 1.0, cluster: np.ndarray | None = None,
    n_clusters: int = 0, icc: float = 0.0, dropout: float = 0.0,
    pre_post_corr: float | None = None,
) -> dict[str, np.ndarray | None]:
    """Draw one trial per generator in ``rngs`` from a factorial data-generating model.

    Parameters
    ----------
    rngs : sequence of numpy.random.Generator
        One generator per replicate (e.g. :func:`trialkit.engine.replicate_rngs` or the
        faster, identical :class:`trialkit.engine.streams.ReplicateStreams`); each
        replicate's draws come only from its own generator, in a fixed order (cluster effects,
        pretest, outcome, dropout).
    x : ndarray, shape (N, p)
        Model matrix of the participants (effect-coded terms, intercept first).
    beta : ndarray, shape (p,)
        True coefficients: outcome units for continuous outcomes (intercept = mean), log-odds for
        binary ones (intercept = logit of the baseline rate).
    outcome : {"continuous", "binary"}
        Outcome type.
    sd : float
        Outcome sd within a condition (continuous; includes the cluster variance).
    cluster, n_clusters : ndarray of int and int, optional
        Cluster of each participant and number of clusters; a normal random intercept with
        intraclass correlation ``icc`` is added (on the latent logistic scale for binary outcomes).
    dropout : float
        Probability that a participant's outcome is missing (completely at random).
    pre_post_corr : float, optional
        When given, a pretest with the same sd and this correlation with the outcome is drawn.

    Returns
    -------
    dict
        ``y`` (R, N) outcomes, ``observed`` (R, N) booleans or None without dropout, ``pre``
        (R, N) pretests or None.
    """
    x = np.asarray(x, dtype=float)
    eta = x @ np.asarray(beta, dtype=float)
    use_clusters = cluster is not None and n_clusters > 0 and icc > 0
    y, pre, observed, u = _standard_draws(rngs, x.shape[0], outcome,
                                          n_clusters if use_clusters else 0,
                                          pre_post_corr is not None, dropout)
    if outcome == "continuous":
        _continuous_outcomes(y, pre, u, cluster, eta, sd, icc, pre_post_corr)
    else:
        tau = math.sqrt(icc / (1 - icc) * math.pi**2 / 3)
        lin = eta if u is None else eta + tau * u[:, cluster]
        y = (y < special.expit(lin)).astype(float)
    return {"y": y, "observed": observed, "pre": pre}


def _standard_draws(rngs: Streams, n: int, outcome: str, n_clusters: int, pretest: bool,
                    dropout: float):
    """Each replicate's raw draws, in a fixed order: cluster effects, pretest, outcome, dropout."""
    reps = len(rngs)
    y = np.empty((reps, n))
    pre = np.empty((reps, n)) if pretest else None
    observed = np.empty((reps, n), dtype=bool) if dropout > 0 else None
    u = np.empty((reps, n_clusters)) if n_clusters else None
    for r, rng in enumerate(rngs):
        if u is not None:
            rng.standard_normal(out=u[r])
        if pre is not None:
            rng.standard_normal(out=pre[r])
        if outcome == "continuous":
            rng.standard_normal(out=y[r])
        else:
            rng.random(out=y[r])
        if observed is not None:
            observed[r] = rng.random(n) >= dropout
    return y, pre, observed, u


def _continuous_outcomes(y, pre, u, cluster, eta, sd, icc, pre_post_corr) -> None:
    """Turn standard normal draws into outcomes (and pretests), in place."""
    within = math.sqrt(1 - icc) * sd if u is not None else sd
    if pre is not None:
        rho = float(pre_post_corr)
        y *= math.sqrt(1 - rho**2)
        y += rho * pre
        pre *= within
    y *= within
    if u is not None:
        shift = (math.sqrt(icc) * sd) * u[:, cluster]
        y += shift
        if pre is not None:
            pre += shift
    y += eta


# -- the planned analysis, vectorised across replicates --------------------------------------------
@dataclass(frozen=True)
class SimSpec:
    """Everything a replicate chunk needs (picklable, so chunks can run in worker processes)."""

    x: np.ndarray                 # (N, p) participants' model matrix
    xc: np.ndarray                # (C, p) conditions' model matrix
    layout: Layout
    beta: np.ndarray              # (p,) true coefficients
    tested: tuple[int, ...]       # columns of x whose coefficients are tested
    outcome: str = "continuous"
    sd: float = 1.0
    icc: float = 0.0
    dropout: float = 0.0
    pretest: str = "none"
    pre_post_corr: float | None = None
    alpha: float = 0.05
    adjust: str = "none"


def _indicator(index: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((index.shape[0], size))
    out[np.arange(index.shape[0]), index] = 1.0
    return out


def _cell_sums(values: np.ndarray, cond: np.ndarray, n_cells: int) -> np.ndarray:
    """Sum the columns of ``values`` (R × units) by cell: an (R × cells) array."""
    n = cond.shape[0]
    if n % n_cells == 0 and np.array_equal(cond, np.arange(n) % n_cells):
        # balanced rotation: a reshape instead of a product with the indicator matrix
        return values.reshape(values.shape[0], n // n_cells, n_cells).sum(axis=1)
    return values @ _indicator(cond, n_cells)


def adjust_pvalues(p: np.ndarray, method: str) -> np.ndarray:
    """Adjust a (replicates × tests) array of p-values row by row (Holm or Bonferroni)."""
    if method == "none":
        return p
    m = p.shape[1]
    if method == "bonferroni":
        return np.minimum(1.0, p * m)
    order = np.argsort(p, axis=1)
    sorted_p = np.take_along_axis(p, order, axis=1)
    adj = np.maximum.accumulate(np.minimum(1.0, sorted_p * (m - np.arange(m))), axis=1)
    out = np.empty_like(p)
    np.put_along_axis(out, order, adj, axis=1)
    return out


def _ols(spec: SimSpec, w: np.ndarray | None, y: np.ndarray, cond: np.ndarray,
         cov: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Effect-coded OLS of every replicate from condition-level sufficient statistics.

    Returns (coefficients, standard errors, residual df), one row per replicate.
    """
    xc = spec.xc
    c, p = xc.shape
    xxc = (xc[:, :, None] * xc[:, None, :]).reshape(c, p * p)
    wy = y if w is None else y * w
    xty = _cell_sums(wy, cond, c) @ xc               # (R, p)
    ss = np.einsum("rn,rn->r", wy, y)
    reps = y.shape[0]
    cell_n = np.bincount(cond, minlength=c).astype(float)
    if cov is None and w is None:
        counts = cell_n
        inv = np.linalg.inv((counts @ xxc).reshape(p, p))
        coef = xty @ inv
        diag = np.broadcast_to(np.diag(inv), (reps, p))
        df = np.full(reps, float(y.shape[1] - p))
        rss = ss - np.einsum("rp,rp->r", coef, xty)
    else:
        counts = np.broadcast_to(cell_n, (reps, c)) if w is None else _cell_sums(w, cond, c)
        xtx = (counts @ xxc).reshape(reps, p, p)
        q = p
        if cov is not None:
            wz = cov if w is None else cov * w
            xtz = _cell_sums(wz, cond, c) @ xc
            ztz = np.einsum("rn,rn->r", wz, cov)
            zty = np.einsum("rn,rn->r", wz, y)
            big = np.empty((reps, p + 1, p + 1))
            big[:, :p, :p] = xtx
            big[:, :p, p] = xtz
            big[:, p, :p] = xtz
            big[:, p, p] = ztz
            xtx = big
            xty = np.concatenate([xty, zty[:, None]], axis=1)
            q = p + 1
        xtx = xtx + 1e-12 * np.eye(q)
        inv = np.linalg.inv(xtx)
        coef = np.einsum("rpq,rq->rp", inv, xty)
        diag = np.einsum("rpp->rp", inv)
        n_obs = counts.sum(axis=1)
        df = n_obs - q
        rss = ss - np.einsum("rp,rp->r", coef, xty)
        coef, diag = coef[:, :p], diag[:, :p]
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = np.maximum(rss, 0.0) / df
        se = np.sqrt(sigma2[:, None] * diag)
    return coef, se, df


# A replicate stops at a Newton step this small: its estimate is then the fixed point, which
# does not depend on rounding differences of earlier steps (BLAS products of few columns round
# differently), so a replicate's numbers do not depend on the batch it is fitted in.
_STEP_TOL = 1e-10
# Simplified steps with the shared matrix before the Newton steps: two leave errors of about
# 1e-4, from where two Newton steps and a last, tiny one reach the fixed point.
_CHORDS = 2
_NEWTON_BLOCK = 2048   # replicates fitted together: their Cholesky factors (4 MB) stay in cache


def _product_basis(xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct columns of the products ``xc[:, i] * xc[:, j]`` and their places.

    With effect coding the product of two ±1 columns is another ±1 column, so a 2^k factorial's
    16 × 16 Hessian has at most 2^k distinct entries: the weighted sums of those columns.
    """
    c, p = xc.shape
    products = (xc[:, :, None] * xc[:, None, :]).reshape(c, p * p)
    basis, index = np.unique(products, axis=1, return_inverse=True)
    return basis, index.reshape(p, p)


def _cholesky(sums: np.ndarray, index: np.ndarray, ridge: float = 0.0,
              out: np.ndarray | None = None) -> np.ndarray:
    """Cholesky factors of ``sums[index] + ridge·I`` for every replicate (replicates last).

    ``sums`` (U × R) holds the distinct entries of the symmetric matrices, ``index`` (p × p)
    says which entry is where; only the lower triangle is read, and only the lower triangle of
    the result (``out``, p × p × R, if given) is written.
    """
    p = index.shape[0]
    low = np.zeros((p, p, sums.shape[1])) if out is None else out
    for j in range(p):
        row = low[j, :j]
        low[j, j] = np.sqrt(sums[index[j, j]] + ridge - np.einsum("kr,kr->r", row, row))
        if j + 1 < p:
            low[j + 1:, j] = (sums[index[j + 1:, j]]
                              - np.einsum("ikr,kr->ir", low[j + 1:, :j], row)) / low[j, j]
    return low


def _cholesky_solve(low: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``L Lᵀ x = b`` for every replicate (``b`` and ``x``: p × R)."""
    p = low.shape[0]
    z = np.empty_like(b)
    for i in range(p):
        z[i] = (b[i] - np.einsum("kr,kr->r", low[i, :i], z[:i])) / low[i, i]
    x = np.empty_like(b)
    for i in range(p - 1, -1, -1):
        x[i] = (z[i] - np.einsum("kr,kr->r", low[i + 1:, i], x[i + 1:])) / low[i, i]
    return x


def _inverse_diagonal(low: np.ndarray, work: np.ndarray | None = None) -> np.ndarray:
    """Return the diagonal of ``(L Lᵀ)⁻¹`` per replicate (p × R): column sums of ``(L⁻¹)²``.

    Only the lower triangle of ``low`` is read; ``work`` (p × p × R) is room for L⁻¹.
    """
    p = low.shape[0]
    inv = np.zeros_like(low) if work is None else work  # L⁻¹, lower triangular, row by row
    if work is not None:
        work.fill(0.0)
    out = np.zeros((p, low.shape[2]))
    for i in range(p):
        inv[i, i] = 1.0 / low[i, i]
        if i:
            inv[i, :i] = -np.einsum("kr,kjr->jr", low[i, :i], inv[:i, :i]) * inv[i, i]
        out[: i + 1] += inv[i, : i + 1] ** 2
    return out


def _factor(xc: np.ndarray, basis: np.ndarray, index: np.ndarray, n_t: np.ndarray,
            beta: np.ndarray) -> np.ndarray:
    """Return the Cholesky factors of the logistic Hessians at ``beta`` (p × R)."""
    mu = special.expit(xc @ beta)
    return _cholesky(basis.T @ (n_t * mu * (1 - mu)), index, 1e-10)


def _shared_steps(xc: np.ndarray, m_inv: np.ndarray, cell_n: np.ndarray, s_t: np.ndarray,
                  beta: np.ndarray, chords: int = _CHORDS) -> np.ndarray:
    """Take the first Newton step and ``chords`` simplified steps, all with one shared matrix.

    When every trial has the same cell sizes ``n``, ``M = X'diag(n)X`` is the same for all
    replicates (``m_inv`` is its inverse). At the start only the intercept is set, so every cell
    has the same fitted rate ``r`` and the Hessian is ``r (1 − r) M``: the first step is Newton's,
    for all replicates with one matrix product. The next steps reuse ``M⁻¹`` divided by the
    midpoint ``c`` of the cells' current weights ``μ(1 − μ)``: the Hessian ``X'diag(nw)X`` lies
    between ``w_min M`` and ``w_max M``, so such a step shrinks the error by a factor of at most
    ``(w_max − w_min)/(w_max + w_min)`` near the solution — for a matrix product instead of a
    Cholesky factorisation, so fewer Newton steps follow. A replicate takes a step only while its
    steps get smaller. Every replicate's steps depend on its own data only.

    Returns each replicate's last step size.
    """
    mu0 = special.expit(beta[0])
    step = (m_inv @ (xc.T @ (s_t - cell_n[:, None] * mu0))) / (mu0 * (1 - mu0))
    beta += step
    size = np.abs(step).max(axis=0)
    for _ in range(chords):
        mu = special.expit(xc @ beta)
        w = mu * (1 - mu)
        c = 0.5 * (w.min(axis=0) + w.max(axis=0))
        step = (m_inv @ (xc.T @ (s_t - cell_n[:, None] * mu))) / c
        new = np.abs(step).max(axis=0)
        take = new < size   # a growing (or nan) step is not taken
        beta[:, take] += step[:, take]
        size = np.where(take, new, size)
    return size


def _newton(xc: np.ndarray, products: tuple[np.ndarray, np.ndarray], n_t: np.ndarray,
            s_t: np.ndarray, beta: np.ndarray, max_iter: int,
            shared: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """Run Newton steps on ``beta`` (p × R, in place).

    Each replicate stops once its own step is below ``_STEP_TOL`` (1e-10), so its estimate does
    not depend on the other replicates of the batch. With ``shared`` (the cell sizes ``n`` when
    they are the same in every replicate, and the inverse of ``X'diag(n)X``) the first steps
    use that one matrix (:func:`_shared_steps`).

    Returns each replicate's last step size and the diagonal of its inverse Hessian (p × R) at
    the last step — the estimate to within that step.
    """
    basis, index = products
    p, reps = beta.shape
    step_size = np.full(reps, np.inf)
    diag = np.full((p, reps), np.nan)
    if shared is not None:
        step_size = _shared_steps(xc, shared[1], shared[0], s_t, beta)
        max_iter -= 1 + _CHORDS
    idx = np.flatnonzero(~(step_size < _STEP_TOL))   # the replicates still stepping …
    b, nt, st = beta[:, idx], n_t[:, idx], s_t[:, idx]   # … and their columns
    # memory reused every step (fresh large arrays cost page faults), handed out as contiguous
    # arrays as a fresh allocation would be, so each replicate's arithmetic is the same
    room, work = np.empty(p * p * idx.size), np.empty(p * p * idx.size)
    for _ in range(max_iter):
        if idx.size == 0:
            break
        mu = special.expit(xc @ b)
        low = _cholesky(basis.T @ (nt * mu * (1 - mu)), index, 1e-10,
                        room[:p * p * idx.size].reshape(p, p, idx.size))
        step = _cholesky_solve(low, xc.T @ (st - nt * mu))
        b += step
        size = np.abs(step).max(axis=0)
        step_size[idx] = size
        done = size < _STEP_TOL   # nan steps go on (and end not converged)
        if done.any():
            # most finish together: then the diagonal of all is cheaper than a copy of theirs
            part = low if done.mean() > 0.5 else low[:, :, done]
            k = part.shape[2]
            inv = _inverse_diagonal(part, work[:p * p * k].reshape(p, p, k))
            diag[:, idx[done]] = inv[:, done] if part is low else inv
            beta[:, idx[done]] = b[:, done]
            idx, b, nt, st = idx[~done], b[:, ~done], nt[:, ~done], st[:, ~done]
    beta[:, idx] = b
    left = np.flatnonzero(np.isnan(diag).any(axis=0))
    if left.size:   # not converged, or converged in the shared steps
        diag[:, left] = _inverse_diagonal(_factor(xc, basis, index, n_t[:, left],
                                                  beta[:, left]))
    return step_size, diag


def _logistic(spec: SimSpec, w: np.ndarray | None, y: np.ndarray, cond: np.ndarray,
              max_iter: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logistic regression of every replicate by Newton steps on condition counts.

    The steps are vectorised across replicates (replicates on the last axis): the Hessian from
    the distinct products of the model's columns and a Cholesky solve written out over the
    parameters (:func:`_newton`). The standard errors are those of the inverse Hessian of each
    replicate's last step.

    Returns (coefficients, standard errors, converged) per replicate.
    """
    xc = spec.xc
    c, p = xc.shape
    reps = y.shape[0]
    cell_n = np.bincount(cond, minlength=c).astype(float)
    n = np.broadcast_to(cell_n, (reps, c)) if w is None else _cell_sums(w, cond, c)
    s = _cell_sums(y if w is None else y * w, cond, c)
    n_t, s_t = np.ascontiguousarray(n.T), np.ascontiguousarray(s.T)   # (C, R)
    beta = np.zeros((p, reps))
    rate = np.clip(s.sum(axis=1) / np.maximum(n.sum(axis=1), 1), 1e-3, 1 - 1e-3)
    beta[0] = special.logit(rate)
    step_size = np.empty(reps)
    diag = np.empty((p, reps))
    products = _product_basis(xc)
    shared = None if w is not None else (cell_n, np.linalg.inv((cell_n @ products[0])[products[1]]))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for lo in range(0, reps, _NEWTON_BLOCK):   # blocks small enough to stay in cache
            # contiguous copies, as a batch of this size would have (the same arithmetic)
            cols = slice(lo, lo + _NEWTON_BLOCK)
            part = beta[:, cols].copy()
            step_size[cols], diag[:, cols] = _newton(
                xc, products, n_t[:, cols].copy(), s_t[:, cols].copy(), part, max_iter, shared)
            beta[:, cols] = part
    se = np.sqrt(diag).T
    beta = beta.T
    converged = (step_size < 1e-6) & np.all(np.isfinite(beta), axis=1) & (np.abs(beta) < 15).all(1)
    return beta, se, converged


def simulate_chunk(replicates: range, *, seed: int, spec: SimSpec) -> dict[str, np.ndarray]:
    """Simulate and analyse the replicates in ``replicates`` (seeded from ``(seed, i)``).

    Returns ``reject`` (R × tested) booleans after the multiplicity adjustment, ``estimate``
    (R × tested) coefficients and ``failed`` (R,) for fits that did not converge or had no
    residual degrees of freedom (counted as non-rejections).
    """
    from trialkit.engine.streams import ReplicateStreams

    # the streams of trialkit.engine.replicate_rngs, re-seeded in place (identical draws)
    rngs = ReplicateStreams(seed, replicates.start, replicates.stop)
    lay = spec.layout
    data = generate_factorial_data(
        rngs, spec.x, spec.beta, outcome=spec.outcome, sd=spec.sd, cluster=lay.cluster,
        n_clusters=lay.n_clusters, icc=spec.icc, dropout=spec.dropout,
        pre_post_corr=spec.pre_post_corr if spec.pretest != "none" else None)
    y, w, pre = data["y"], data["observed"], data["pre"]
    assert y is not None
    w = None if w is None else w.astype(float)
    cond = lay.condition
    if spec.pretest == "repeated":
        assert pre is not None
        y = y - pre
    if lay.between:
        assert lay.cluster is not None
        gcl = _indicator(lay.cluster, lay.n_clusters)
        cnt = np.broadcast_to(gcl.sum(axis=0), (y.shape[0], lay.n_clusters)) if w is None \
            else w @ gcl
        sums = (y if w is None else y * w) @ gcl
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(cnt > 0, sums / np.maximum(cnt, 1), 0.0)
        w = None if w is None else (cnt > 0).astype(float)
        cond = np.zeros(lay.n_clusters, dtype=int)
        cond[lay.cluster] = lay.condition
    cols = list(spec.tested)
    m = len(cols)
    if spec.outcome == "binary" and not lay.between:
        coef, se, ok = _logistic(spec, w, y, cond)
        df = None
    else:
        coef, se, df = _ols(spec, w, y, cond, pre if spec.pretest == "covariate" else None)
        ok = df >= 1
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.abs(coef[:, cols] / se[:, cols])
    stat = np.where(ok[:, None] & np.isfinite(stat), stat, 0.0)
    if spec.adjust == "holm":
        pvals = 2 * (special.ndtr(-stat) if df is None
                     else special.stdtr(np.maximum(df, 1)[:, None], -stat))
        reject = adjust_pvalues(pvals, "holm") < spec.alpha
    else:
        # compare with the critical value of each residual df (p < α ⇔ |t| > crit)
        level = spec.alpha / m if spec.adjust == "bonferroni" else spec.alpha
        if df is None:
            crit = np.full(stat.shape[0], stats.norm.isf(level / 2))
        else:
            dfs, inverse = np.unique(np.maximum(df, 1), return_inverse=True)
            crit = stats.t.isf(level / 2, dfs)[inverse]
        reject = stat > crit[:, None]
    return {"reject": reject & ok[:, None], "estimate": coef[:, cols], "failed": ~ok}
