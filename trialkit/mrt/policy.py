"""The learning policy of an adaptive MRT: pure functions, batched over any leading axes.

The simulator calls these functions for all replicates of a batch at once; the live service calls
them with a batch of one. They read nothing, write nothing and draw nothing: the only randomness
of a decision is the uniform ``u`` passed to :func:`policy_actions`.

Model (Thompson sampling with an action-centred Bayesian linear model, as in Oralytics, Trella et
al. 2024). At a decision point with context ``s`` (the policy's context variables, in the order of
``spec.context``) let ``f = (1, s)`` (m = 1 + c entries). The reward model is

    R = f'α0 + π f'α1 + (A − π) f'β + ε,   ε ~ N(0, σ²),  σ = spec.noise_sd,

with reward features ``φ = (f, π f, (A − π) f)`` (d = 3m) and an independent normal prior on
``w = (α0, α1, β)`` (``spec.prior_mean``, ``spec.prior_sd``). Fully pooled: one posterior for
all participants, from every used row of every participant:

    V = Σ0⁻¹ + Σ φφ'/σ²,   mean = V⁻¹ (Σ0⁻¹ μ0 + Σ φ R/σ²),   covariance = V⁻¹.

The advantage of a prompt is ``f'β``; under the posterior it is ``N(m, v)`` with
``m = f' mean_β`` and ``v = f' cov_ββ f``. The probability of a prompt is

* ``smoothing = "none"``: ``clip(Φ(m/√v), p_min, p_max)`` — the probability that a posterior draw
  favours the prompt (Thompson sampling), clipped;
* ``smoothing = "logistic"``: ``E[ρ(X)]``, ``X ~ N(m, v)``, with the generalised logistic
  ``ρ(x) = p_min + (p_max − p_min) / (1 + exp(−slope·x))`` — a smooth function of the posterior
  inside ``(p_min, p_max)``; the expectation is the 40-point Gauss–Hermite rule (the rule *is*
  the policy: the live service and the simulator compute the same number).

The action is ``A = 1`` when ``u < π`` for a uniform ``u``: drawing the posterior and prompting
when the draw favours the prompt has the same probability ``Φ(m/√v)`` before clipping.

What the live service logs so that every probability can be recomputed: the policy version of
every decision (0 = the prior, k = the k-th update), the posterior of every version
(:class:`PolicyParams`: ``mean`` and ``covariance``), the decision's context values and the
probability. An update refits from the history (context, action, probability, reward, and
whether the row is used — available with its outcome recorded) with :func:`policy_update`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

#: Nodes of the Gauss–Hermite rule of the logistic smoothing.
GH_NODES = 40
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(GH_NODES)
_GH_W = _GH_W / _GH_W.sum()


@dataclass(frozen=True)
class PolicyParams:
    """A posterior of the reward model: ``mean`` (…, d) and ``covariance`` (…, d, d)."""

    mean: np.ndarray
    covariance: np.ndarray

    def advantage(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean (…, m) and covariance (…, m, m) of the advantage coefficients β."""
        return self.mean[..., 2 * m:], self.covariance[..., 2 * m:, 2 * m:]

    def take(self, index) -> PolicyParams:
        """Return the parameters at ``index`` of the leading axes."""
        return PolicyParams(self.mean[index], self.covariance[index])


def advantage_features(spec, context) -> np.ndarray:
    """``f = (1, s)``: context (…, c) → (…, m)."""
    context = np.asarray(context, dtype=float)
    if context.shape[-1] != len(spec.context):
        raise ValueError(f"context has {context.shape[-1]} columns; the policy has "
                         f"{len(spec.context)} context variables ({', '.join(spec.context)})")
    return np.concatenate([np.ones((*context.shape[:-1], 1)), context], axis=-1)


def reward_features(spec, context, action, probability) -> np.ndarray:
    """``φ = (f, π f, (A − π) f)``, shape (…, 3m)."""
    f = advantage_features(spec, context)
    pi = np.asarray(probability, dtype=float)[..., None]
    a = np.asarray(action, dtype=float)[..., None]
    return np.concatenate([f, pi * f, (a - pi) * f], axis=-1)


def prior_params(spec, shape: tuple[int, ...] = ()) -> PolicyParams:
    """Return the prior as :class:`PolicyParams`, repeated over ``shape``."""
    mean = np.asarray(spec.prior_mean, dtype=float)
    cov = np.diag(np.asarray(spec.prior_sd, dtype=float) ** 2)
    return PolicyParams(np.broadcast_to(mean, (*shape, mean.size)).copy(),
                        np.broadcast_to(cov, (*shape, *cov.shape)).copy())


def policy_statistics(spec, context, action, probability, reward,
                      used) -> tuple[np.ndarray, np.ndarray]:
    """Sufficient statistics ``Σ φφ'/σ²`` (…, d, d) and ``Σ φ R/σ²`` (…, d) over the rows.

    ``context`` is (…, rows, c); ``action``, ``probability``, ``reward`` and ``used`` (1 for a
    row the model learns from) are (…, rows). Rows not used may hold any finite value or NaN.
    """
    w = np.asarray(used, dtype=float)
    phi = reward_features(spec, np.nan_to_num(np.asarray(context, dtype=float)),
                          np.nan_to_num(np.asarray(action, dtype=float)),
                          np.nan_to_num(np.asarray(probability, dtype=float)))
    phi_w = phi * (w / spec.noise_sd ** 2)[..., None]
    gram = np.matmul(np.swapaxes(phi_w, -1, -2), phi)
    score = np.einsum("...rd,...r->...d", phi_w, np.where(w > 0, reward, 0.0))
    return gram, score


def posterior(spec, gram: np.ndarray, score: np.ndarray) -> PolicyParams:
    """Return the posterior from the sufficient statistics of :func:`policy_statistics`."""
    prec0 = 1.0 / np.asarray(spec.prior_sd, dtype=float) ** 2
    precision = gram + np.diag(prec0)
    rhs = score + prec0 * np.asarray(spec.prior_mean, dtype=float)
    cov = np.linalg.inv(precision)
    cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    return PolicyParams(np.einsum("...de,...e->...d", cov, rhs), cov)


def policy_update(spec, context, action, probability, reward, used) -> PolicyParams:
    """Refit the policy on a history: the posterior given every used row (see the module)."""
    return posterior(spec, *policy_statistics(spec, context, action, probability, reward, used))


def advantage_moments(spec, params: PolicyParams, context) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean (…, k) and variance (…, k) of the advantage ``f'β`` at k contexts.

    ``params`` has leading shape (…), ``context`` (…, k, c).
    """
    f = advantage_features(spec, context)
    mu, cov = params.advantage(spec.n_features)
    m = np.matmul(f, mu[..., None])[..., 0]
    v = np.sum(np.matmul(f, cov) * f, axis=-1)
    return m, np.maximum(v, 1e-300)


def _logistic_mean(spec, m: np.ndarray, s: np.ndarray, derivatives: bool):
    """E[ρ(X)], X ~ N(m, s²), by the Gauss–Hermite rule; with ``derivatives`` also E[ρ'], E[ρ'Z]."""
    with np.errstate(over="ignore"):   # exp overflow gives ρ = p_min exactly
        e = 1.0 / (1.0 + np.exp(-spec.slope * (m[..., None] + s[..., None] * _GH_X)))
    span = spec.p_max - spec.p_min
    mean = spec.p_min + span * (e @ _GH_W)
    if not derivatives:
        return mean, None, None
    d = e * (1.0 - e)
    return mean, span * spec.slope * (d @ _GH_W), span * spec.slope * (d @ (_GH_W * _GH_X))


def probability_from_moments(spec, m: np.ndarray, v: np.ndarray, derivatives: bool = False):
    """π from the advantage's posterior mean and variance; with ``derivatives`` also ∂π/∂m, ∂π/∂v.

    The derivatives are zero where the clip binds (``smoothing = "none"``).
    """
    s = np.sqrt(v)
    if spec.smoothing == "logistic":
        mean, dm, ds = _logistic_mean(spec, m, s, derivatives)
        pi = np.clip(mean, spec.p_min, spec.p_max)
        if not derivatives:
            return pi
        return pi, dm, ds / (2.0 * s)
    z = m / s
    raw = special.ndtr(z)
    pi = np.clip(raw, spec.p_min, spec.p_max)
    if not derivatives:
        return pi
    inside = (raw > spec.p_min) & (raw < spec.p_max)
    dens = np.where(inside, np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi), 0.0)
    return pi, dens / s, -dens * z / (2.0 * v)


def policy_probabilities(spec, params: PolicyParams, context) -> np.ndarray:
    """Probabilities of a prompt at k decision points, always within ``[p_min, p_max]``.

    Parameters
    ----------
    spec : PolicySpec
        The design's ``[policy]`` (:class:`trialkit.design.policy.PolicySpec`).
    params : PolicyParams
        The posterior in force, leading shape (…) (a batch of replicates, or none).
    context : array (…, k, c)
        The policy's context variables at each decision point, in the order of ``spec.context``.

    Returns
    -------
    array (…, k)
    """
    m, v = advantage_moments(spec, params, context)
    return probability_from_moments(spec, m, v)


def policy_actions(probabilities, uniforms) -> np.ndarray:
    """Actions ``1{u < π}`` (0/1 floats) from the probabilities and uniforms on [0, 1)."""
    return (np.asarray(uniforms) < np.asarray(probabilities)).astype(float)
