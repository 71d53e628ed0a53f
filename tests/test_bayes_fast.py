"""Fast paths, decision rules and decision simulation of the Bayesian component analysis."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from trialkit.bayes import decide, fast
from trialkit.bayes.analyse import hdi
from trialkit.bayes.decision_study import (
    decision_chunk,
    draw_cells,
    individual_data,
    simulate_decision,
    truth_vector,
)
from trialkit.bayes.spec import build_spec
from trialkit.design import load_design
from trialkit.factorial.model import model_matrix


@pytest.fixture(scope="module")
def design(designs_dir_module):
    return load_design(designs_dir_module / "app-components-factorial.toml")


@pytest.fixture(scope="module")
def designs_dir_module():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "designs"


def _cell_stats(spec, x, data):
    n = np.array([d["n"] for d in data], float)
    s = np.array([d["sum"] for d in data])
    xtx = np.einsum("ci,rc,cj->rij", x, n, x)
    return xtx, s @ x, np.array([d["sumsq"].sum() for d in data]), n.sum(1)


def test_conjugate_posterior_matches_direct_linear_algebra(design):
    # With fixed interactions the posterior is one NIG: compare with the textbook formulas.
    d = replace(design, priors=replace(design.priors,
                                       default=replace(design.priors.default,
                                                       interactions="fixed")))
    cols = individual_data(d, "phq9_change", dict(d.outcomes[0].effects), 256, seed=4)
    codes = np.column_stack([cols[f] for f in d.factor_names]).astype(float)
    y = cols["phq9_change"]
    spec = build_spec(d, "phq9_change", y=y)
    x = spec.design_matrix(codes)
    post = fast.normal_posterior(spec, *fast.normal_stats(x, y))
    v0inv = np.diag(1 / spec.prior_scale**2)
    vn = np.linalg.inv(v0inv + x.T @ x)
    mn = vn @ (v0inv @ spec.prior_mean + x.T @ y)
    an = spec.sigma_shape + len(y) / 2
    bn = spec.sigma_rate + 0.5 * (y @ y + spec.prior_mean @ v0inv @ spec.prior_mean
                                  - mn @ (v0inv + x.T @ x) @ mn)
    np.testing.assert_allclose(post.mean()[0], mn, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(post.cov()[0], bn / (an - 1) * vn, rtol=1e-8)
    draws = post.draws([np.random.default_rng(1)], 40000)[0]
    np.testing.assert_allclose(draws.mean(0), mn, atol=4 * np.sqrt(np.diag(vn) * bn / an).max()
                               / np.sqrt(40000) * 3)


def test_hierarchical_weights_favour_small_tau_under_no_interactions(design):
    spec = build_spec(design, "phq9_change")
    x = spec.design_matrix(design.conditions())
    terms, beta = truth_vector(design, design.outcomes[0], {})
    mu = model_matrix(design.conditions(), terms) @ beta
    data = [draw_cells(np.random.default_rng(i), mu, 5000, 0.0, "continuous", 5.0)
            for i in range(5)]
    post = fast.normal_posterior(spec, *_cell_stats(spec, x, data))
    tau, _ = spec.tau_grid()
    mean_tau = post.weights @ tau
    assert np.all(mean_tau < tau.mean())


@pytest.mark.parametrize("outcome", ["phq9_change", "retention"])
def test_recovery_hdi_coverage_200_replicates(design, outcome):
    # Acceptance: 95% intervals cover the true main effects in about 95% of 200 replicates.
    out = next(o for o in design.outcomes if o.name == outcome)
    spec = build_spec(design, outcome)
    codes = design.conditions()
    x = spec.design_matrix(codes)
    terms, beta = truth_vector(design, out, dict(out.effects))
    mu = model_matrix(codes, terms) @ beta
    rngs = [np.random.default_rng([7, i]) for i in range(200)]
    data = [draw_cells(r, mu, 512, 0.0, out.type, out.sd) for r in rngs]
    if out.type == "continuous":
        post = fast.normal_posterior(spec, *_cell_stats(spec, x, data))
    else:
        n = np.array([d["n"] for d in data], float)
        post = fast.logistic_posterior(spec, x, n, np.array([d["succ"] for d in data], float))
    draws = post.draws(rngs, 2000)[:, :, spec.main_index]
    bounds = np.array([hdi(d) for d in draws])  # (R, 2, k): 95% highest-density intervals
    true = np.array([beta[terms.index(t)] for t in spec.terms])[spec.main_index]
    cover = (bounds[:, 0] <= true) & (true <= bounds[:, 1])
    # 1000 (replicate, component) pairs: binomial SE of 0.95 is 0.007 — allow ±3.5 SE.
    assert abs(cover.mean() - 0.95) < 0.025


def test_laplace_mode_solves_the_penalised_likelihood(design):
    spec = build_spec(design, "retention")
    cols = individual_data(design, "retention", dict(design.outcomes[1].effects), 512, seed=2)
    codes = np.column_stack([cols[f] for f in design.factor_names]).astype(float)
    y = cols["retention"]
    x = spec.design_matrix(codes)
    tau = spec.tau_grid()[0]
    prec0 = np.broadcast_to(1 / spec.prior_scale**2, (len(tau), spec.n_coef)).copy()
    prec0[:, spec.interaction] = 1 / tau[:, None] ** 2
    mode, _, _ = fast._newton(x, np.ones((1, len(y))), y[None], prec0, spec.prior_mean)
    for g in (0, 10, 31):
        # at each grid point's mode the gradient of the log posterior vanishes
        b = mode[0, g]
        mu = 1 / (1 + np.exp(-x @ b))
        grad = x.T @ (y - mu) - prec0[g] * (b - spec.prior_mean)
        assert np.max(np.abs(grad)) < 1e-6
    post = fast.logistic_posterior(spec, x, np.ones((1, len(y))), y[None])
    # the skewness correction moves the mean off the mode by a small fraction of an SD
    shift = np.abs(post.loc[0] - mode[0]) / np.sqrt(
        np.diagonal(post.component_cov()[0], axis1=-2, axis2=-1))
    assert 0 < shift.max() < 0.2


def test_numpy_ols_equals_statsmodels(design):
    import statsmodels.api as sm

    spec = build_spec(design, "phq9_change")
    cols = individual_data(design, "phq9_change", dict(design.outcomes[0].effects), 300, seed=9)
    codes = np.column_stack([cols[f] for f in design.factor_names]).astype(float)
    y = cols["phq9_change"]
    x = spec.design_matrix(codes)
    est, pval = fast.ols(*fast.normal_stats(x, y))
    res = sm.OLS(y, x).fit()
    np.testing.assert_allclose(est[0], res.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(pval[0], res.pvalues, rtol=1e-6, atol=1e-12)


def test_logistic_mle_equals_statsmodels(design):
    import statsmodels.api as sm

    spec = build_spec(design, "retention")
    cols = individual_data(design, "retention", dict(design.outcomes[1].effects), 600, seed=9)
    codes = np.column_stack([cols[f] for f in design.factor_names]).astype(float)
    y = cols["retention"]
    x = spec.design_matrix(codes)
    est, pval = fast.logistic_mle(x, np.ones((1, len(y))), y[None])
    res = sm.GLM(y, x, family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(est[0], res.params, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(pval[0], res.pvalues, rtol=1e-4, atol=1e-10)


def test_budget_rules():
    rng = np.random.default_rng(3)
    combos = np.where((np.arange(32)[:, None] >> np.arange(5)) & 1, 1.0, -1.0)
    costs = decide.combination_costs(combos, [12, 2, 4, 3, 5])
    values = rng.normal(size=(500, 32))
    free = decide.pev_choice(values, costs)
    # a budget above the total cost changes nothing
    np.testing.assert_array_equal(decide.pev_choice(values, costs, budget=1e6), free)
    for budget in (0.0, 4.0, 9.5, 13.0):
        tight = decide.pev_choice(values, costs, budget=budget)
        assert np.all(costs[tight] <= budget)
        # and it is the best among the affordable ones
        ok = costs <= budget
        np.testing.assert_array_equal(values[np.arange(500), tight],
                                      np.where(ok, values, -np.inf).max(1))
    assert decide.true_best(np.zeros(32), costs, None, combos) == 0


def test_daive_scaling_uses_each_outcome_range():
    a = np.array([[0.0, 10.0, 5.0]])
    b = np.array([[1.0, 0.0, 0.9]])
    v = decide.daive_value([a, b], [1, 1])
    np.testing.assert_allclose(v, [[0.5, 0.5, 0.7]])
    np.testing.assert_allclose(decide.daive_value([a, b], [3, 1]), [[0.25, 0.75, 0.6]])


def test_screening_rule_adjusts_for_interaction():
    # terms: intercept, a, b, a:b (k = 2), lower is better
    terms = [(), (0,), (1,), (0, 1)]
    est = np.array([[0.0, -1.0, -1.0, 1.5], [0.0, -1.0, -1.0, 0.2], [0, -1.0, 0.5, 0.0]])
    pval = np.array([[1, 0.001, 0.001, 0.001], [1, 0.001, 0.001, 0.5], [1, 0.001, 0.01, 0.9]])
    chosen = decide.screening_rule(est, pval, terms, 2, 0.05, "lower")
    # 1: antagonistic interaction: (+,+) = -0.5, (+,-) = -1.5 → only one of them (the first found)
    assert chosen[0].sum() == 1
    np.testing.assert_array_equal(chosen[1], [True, True])
    np.testing.assert_array_equal(chosen[2], [True, False])


def test_simulation_identical_for_any_chunking_and_jobs(design):
    kw = dict(design=design, outcome_name="phq9_change", scenario="assumed", seed=5, budget=13.0)
    whole = decision_chunk(range(0, 40), **kw)
    parts = [decision_chunk(range(a, a + 10), **kw) for a in range(0, 40, 10)]
    for key in whole:
        np.testing.assert_array_equal(whole[key], np.concatenate([p[key] for p in parts]))
    one = simulate_decision(design, reps=40, seed=5, jobs=1)
    two = simulate_decision(design, reps=40, seed=5, jobs=2)
    assert one["rules"] == two["rules"]


def test_decision_simulation_null_and_strong_truths(design):
    null = simulate_decision(design, reps=400, seed=2, scenario="null")
    assert null["truth"]["best"] == []
    for rule in null["rules"].values():
        assert rule["regret"] == 0.0
    # PEV always builds something under the null; screening mostly builds nothing
    assert null["rules"]["pev"]["p_correct"] < 0.1
    assert null["rules"]["screening"]["p_correct"] > 0.4
    spec_big = replace(design, sample=replace(design.sample, n_total=20000, dropout=0.0))
    strong = simulate_decision(spec_big, reps=100, seed=2, scenario="antagonistic")
    assert strong["truth"]["best"] == ["human_voice"]
    assert strong["rules"]["pev"]["regret"] < 0.05
    comp = {c["name"]: c for c in strong["rules"]["pev_within_budget"]["components"]}
    assert comp["human_voice"]["sensitivity"] > 0.9


def test_sparse_binary_trials_do_not_break_the_simulation(design):
    # 64 participants, 2% events: empty and separated cells in most replicates
    out = replace(design.outcomes[1], baseline=0.02)
    small = replace(design, outcomes=(design.outcomes[0], out),
                    sample=replace(design.sample, n_total=64))
    res = simulate_decision(small, reps=100, seed=1, outcome="retention")
    for rule in res["rules"].values():
        assert np.isfinite(rule["p_correct"]) and np.isfinite(rule["regret"])
    assert res["rules"]["screening"]["components"][0]["p_chosen"] < 0.2
    with pytest.raises(Exception, match="increase \\[sample\\] n_total"):
        simulate_decision(replace(design, sample=replace(design.sample, n_total=16)), reps=5)
