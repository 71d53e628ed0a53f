"""The learning policy of adaptive MRTs and its adaptive sandwich.

The adaptive sandwich is checked against a brute-force stacked M-estimation sandwich whose bread
is the numerical Jacobian of every participant's stacked estimating functions (policy updates and
WCLS, or EMEE for a binary outcome) — an independent computation of Zhang, Janson & Murphy's
estimator.
"""

from __future__ import annotations

import numpy as np
import pytest

from trialkit.design.policy import ContextVariable, PolicySpec
from trialkit.engine import replicate_rngs
from trialkit.mrt.adaptive import draw_exogenous, run_policy
from trialkit.mrt.adaptive_variance import fit_marginal
from trialkit.mrt.policy import (
    policy_actions,
    policy_probabilities,
    policy_statistics,
    policy_update,
    posterior,
    prior_params,
)


def spec(smoothing="logistic", every=4, p_min=0.2, p_max=0.8, context=("x",)):
    m = len(context) + 1
    return PolicySpec(method="thompson", outcome="y", context=tuple(context), p_min=p_min,
                      p_max=p_max, smoothing=smoothing, slope=4.0, pooling="full",
                      noise_sd=1.0, update_every=every, update_every_days=None,
                      prior_mean=(0.0,) * (3 * m), prior_sd=(1.0,) * m + (0.5,) * (2 * m))


def inputs(n_points, effect=0.3, context=(ContextVariable("x", "normal", ar1=0.3),)):
    return {"type": "continuous", "availability": np.full(n_points, 0.8),
            "effect": np.full(n_points, effect), "baseline": None, "context": context,
            "gamma": np.full(len(context), 0.5), "delta": np.full(len(context), 0.2),
            "policy_columns": list(range(len(context))), "numerator_prob": 0.5}


def simulate(sp, n=10, n_points=12, reps=2, seed=3, effect=0.3):
    inp = inputs(n_points, effect)
    ex = draw_exogenous(replicate_rngs(seed, 0, reps), n, inp)
    return inp, ex, run_policy(sp, inp, ex)


# -- the pure policy ---------------------------------------------------------------------------
@pytest.mark.parametrize("smoothing", ["none", "logistic"])
def test_probabilities_stay_within_the_bounds(smoothing):
    sp = spec(smoothing, p_min=0.1, p_max=0.7)
    rng = np.random.default_rng(0)
    params = prior_params(sp, (50,))
    params.mean[:] = rng.normal(scale=5, size=params.mean.shape)
    params.covariance[:] *= rng.uniform(1e-6, 10, size=(50, 1, 1))
    pi = policy_probabilities(sp, params, rng.normal(scale=10, size=(50, 200, 1)))
    assert pi.shape == (50, 200)
    assert pi.min() >= 0.1 and pi.max() <= 0.7
    assert pi.min() < 0.12 and pi.max() > 0.68        # the bounds are reached, not avoided


def test_thompson_probability_is_the_chance_a_posterior_draw_favours_the_prompt():
    sp = spec("none", p_min=0.01, p_max=0.99)
    params = prior_params(sp)
    params.mean[4:] = [0.3, -0.2]
    params.covariance[4:, 4:] = [[0.04, 0.01], [0.01, 0.09]]
    ctx = np.array([[0.5], [-1.0], [2.0]])
    draws = np.random.default_rng(1).multivariate_normal(params.mean, params.covariance, 400_000)
    f = np.column_stack([np.ones(3), ctx[:, 0]])
    empirical = (draws[:, 4:] @ f.T > 0).mean(axis=0)
    assert np.allclose(policy_probabilities(sp, params, ctx), empirical, atol=0.003)


def test_posterior_matches_the_conjugate_formula_of_a_linear_model():
    sp = spec()
    rng = np.random.default_rng(2)
    ctx, a, pi = rng.normal(size=(30, 1)), rng.integers(0, 2, 30), rng.uniform(0.2, 0.8, 30)
    y, used = rng.normal(size=30), rng.random(30) < 0.8
    post = policy_update(sp, ctx, a, pi, y, used)
    f = np.column_stack([np.ones(30), ctx[:, 0]])
    phi = np.column_stack([f, pi[:, None] * f, (a - pi)[:, None] * f])[used]
    prec0 = np.diag(1 / np.array(sp.prior_sd) ** 2)
    cov = np.linalg.inv(prec0 + phi.T @ phi)
    assert np.allclose(post.covariance, cov, atol=1e-12)
    assert np.allclose(post.mean, cov @ (phi.T @ y[used]), atol=1e-12)


def test_actions_are_the_uniform_below_the_probability():
    assert policy_actions([0.3, 0.3, 0.8], [0.29, 0.3, 0.5]).tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("smoothing", ["none", "logistic"])
def test_simulator_equals_a_loop_calling_the_pure_policy_on_each_history(smoothing):
    sp = spec(smoothing, every=5)
    _, ex, hist = simulate(sp, n=6, n_points=17, reps=3)
    for r in range(3):
        for i in range(6):
            for t in range(17):
                lo = (t // 5) * 5
                rows = (slice(None), slice(0, lo))
                params = prior_params(sp) if lo == 0 else policy_update(
                    sp, hist["context"][r][rows].reshape(-1, 1),
                    hist["action"][r][rows].ravel(), hist["probability"][r][rows].ravel(),
                    hist["reward"][r][rows].ravel(), ex["avail"][r][rows].ravel())
                pi = policy_probabilities(sp, params, hist["context"][r, i, t][None])[0]
                assert abs(pi - hist["probability"][r, i, t]) < 1e-12
                a = policy_actions(pi, ex["u_action"][r, i, t]) * ex["avail"][r, i, t]
                assert a == hist["action"][r, i, t]


# -- the adaptive sandwich against brute force -------------------------------------------------
def _stacked(sp, hist, ex, r, theta_all, n_t, d):
    """Per participant: the stacked estimating functions at Θ = (T_1, …, T_K, θ)."""
    ctx, a, y, avail = (hist["context"][r], hist["action"][r], hist["reward"][r], ex["avail"][r])
    n = a.shape[0]
    ver = hist["version"]
    big = d * d + d
    pi = hist["probability"][r].copy()
    for k in range(1, n_t + 1):
        tk = theta_all[(k - 1) * big:k * big]
        params = posterior(sp, n * tk[:d * d].reshape(d, d), n * tk[d * d:])
        cols = ver == k
        pi[:, cols] = policy_probabilities(sp, params, ctx[:, cols]).reshape(n, -1)
    out = []
    for k in range(1, n_t + 1):
        cols = ver < k
        g, s = policy_statistics(sp, ctx[:, cols], a[:, cols], pi[:, cols], y[:, cols],
                                 avail[:, cols])
        out.append(np.concatenate([g.reshape(n, -1), s], axis=1)
                   - theta_all[(k - 1) * big:k * big])
    theta = theta_all[n_t * big:]
    x = np.concatenate([np.ones((*a.shape, 1)), ctx, (a - 0.5)[..., None]], axis=-1)
    w = avail * np.where(a > 0, 0.5 / pi, 0.5 / (1 - pi))
    out.append(np.einsum("ntk,nt->nk", x, w * (y - x @ theta)))
    return np.concatenate(out, axis=1)


@pytest.mark.parametrize("smoothing", ["logistic", "none"])
def test_adaptive_sandwich_equals_the_brute_force_stacked_sandwich(smoothing):
    sp = spec(smoothing, every=4)
    _, ex, hist = simulate(sp, n=12, n_points=12, reps=1, effect=0.5)
    version = np.broadcast_to(hist["version"], ex["avail"].shape)
    res = fit_marginal(sp, hist, version, hist["params"], hist["reward"], ex["avail"], 0.5, False)
    d, n_t, n = 3 * sp.n_features, 2, 12
    tk = _policy_blocks(sp, hist, ex, n, n_t)
    x = np.concatenate([np.ones((n, 12, 1)), hist["context"][0],
                        (hist["action"][0] - 0.5)[..., None]], axis=-1)
    w = ex["avail"][0] * np.where(hist["action"][0] > 0, 0.5 / hist["probability"][0],
                                  0.5 / (1 - hist["probability"][0]))
    theta = np.linalg.solve(np.einsum("ntk,nt,ntl->kl", x, w, x),
                            np.einsum("ntk,nt->k", x, w * hist["reward"][0]))
    assert abs(theta[-1] - res["estimate"][0]) < 1e-10
    est = np.concatenate(tk + [theta])
    se = _brute_force_se(lambda th: _stacked(sp, hist, ex, 0, th, n_t, d), est)
    assert se == pytest.approx(res["se_adaptive"][0], rel=1e-5)
    assert abs(res["se_adaptive"][0] - res["se_standard"][0]) > 1e-4 * se  # not the plain one


def _policy_blocks(sp, hist, ex, n, n_t):
    """Return the policy's estimates before each of its ``n_t`` versions (the first blocks)."""
    out = []
    for k in range(1, n_t + 1):
        cols = hist["version"] < k
        g, s = policy_statistics(sp, hist["context"][0][:, cols], hist["action"][0][:, cols],
                                 hist["probability"][0][:, cols], hist["reward"][0][:, cols],
                                 ex["avail"][0][:, cols])
        out.append(np.concatenate([g.reshape(n, -1), s], axis=1).mean(axis=0))
    return out


def _brute_force_se(stack, est):
    """SE of the last parameter by the stacked sandwich, its Jacobian by central differences.

    ``stack(theta)`` returns every participant's stacked estimating functions (n × p).
    """
    jac = np.empty((est.size, est.size))
    for j in range(est.size):
        step = 1e-6 * max(1.0, abs(est[j]))
        up, down = est.copy(), est.copy()
        up[j] += step
        down[j] -= step
        jac[:, j] = (stack(up).sum(0) - stack(down).sum(0)) / (2 * step)
    g = stack(est)
    assert np.abs(g.sum(0)).max() < 1e-8                         # the estimate solves the stack
    inv = np.linalg.pinv(jac)
    return float(np.sqrt((inv @ (g.T @ g) @ inv.T)[-1, -1]))


def _stacked_emee(sp, hist, ex, r, theta_all, n_t, d):
    """As :func:`_stacked`, with the last block EMEE's estimating function (binary outcome)."""
    out = _stacked(sp, hist, ex, r, np.concatenate([theta_all[:-3], np.zeros(3)]), n_t, d)[:, :-3]
    ctx, a, y, avail = (hist["context"][r], hist["action"][r], hist["reward"][r], ex["avail"][r])
    big = d * d + d
    pi = hist["probability"][r].copy()
    n = a.shape[0]
    for k in range(1, n_t + 1):   # the probabilities as functions of the policy blocks
        tk = theta_all[(k - 1) * big:k * big]
        params = posterior(sp, n * tk[:d * d].reshape(d, d), n * tk[d * d:])
        cols = hist["version"] == k
        pi[:, cols] = policy_probabilities(sp, params, ctx[:, cols]).reshape(n, -1)
    alpha, beta = theta_all[-3:-1], theta_all[-1]
    c = np.concatenate([np.ones((*a.shape, 1)), ctx], axis=-1)
    x = np.concatenate([c, (a - 0.5)[..., None]], axis=-1)
    w = avail * np.where(a > 0, 0.5 / pi, 0.5 / (1 - pi))
    resid = y * np.exp(-a * beta) - np.exp(c @ alpha)
    return np.concatenate([out, np.einsum("ntk,nt->nk", x, w * resid)], axis=1)


def test_adaptive_sandwich_of_emee_equals_the_brute_force_stacked_sandwich():
    from scipy import optimize

    sp = spec("logistic", every=4)
    n, n_points, n_t = 40, 12, 2
    inp = {**inputs(n_points, effect=0.4), "type": "binary",
           "baseline": np.full(n_points, 0.3)}
    ex = draw_exogenous(replicate_rngs(5, 0, 1), n, inp)
    hist = run_policy(sp, inp, ex)
    version = np.broadcast_to(hist["version"], ex["avail"].shape)
    res = fit_marginal(sp, hist, version, hist["params"], hist["reward"], ex["avail"], 0.5, True)
    assert res["converged"][0]
    d = 3 * sp.n_features
    head = np.concatenate(_policy_blocks(sp, hist, ex, n, n_t))

    def emee(theta):   # EMEE's estimating equations at the logged probabilities
        return _stacked_emee(sp, hist, ex, 0, np.concatenate([head, theta]), n_t, d)[:, -3:].sum(0)

    sol = optimize.root(emee, np.zeros(3), tol=1e-14)
    assert sol.success
    assert abs(sol.x[-1] - res["estimate"][0]) < 1e-8          # the same EMEE estimate
    est = np.concatenate([head, sol.x])
    se = _brute_force_se(lambda th: _stacked_emee(sp, hist, ex, 0, th, n_t, d), est)
    assert se == pytest.approx(res["se_adaptive"][0], rel=1e-5)
    assert abs(res["se_adaptive"][0] - res["se_standard"][0]) > 1e-4 * se
