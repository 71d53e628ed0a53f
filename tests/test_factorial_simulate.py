"""Simulation power of factorial design files: agreement with the formulas, seeds, fits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm

from trialkit.design import load_design, loads_design
from trialkit.engine import replicate_rngs
from trialkit.factorial.model import model_matrix, model_terms
from trialkit.factorial.planning import factorial_design_power, simulate_factorial_power
from trialkit.factorial.replicates import (
    SimSpec,
    _logistic,
    _ols,
    adjust_pvalues,
    generate_factorial_data,
    trial_layout,
)

FACTORS = ["a", "b", "c", "d", "e"]


def design_text(k: int, outcome: str, effects: dict[str, float], sample: str,
                order: int = 1, generators: str = "") -> str:
    factors = "\n".join(f'[[factors]]\nname = "{f}"\n' for f in FACTORS[:k])
    frac = f"[fraction]\ngenerators = {generators}\n" if generators else ""
    eff = "\n".join(f'"{t}" = {v}' for t, v in effects.items())
    return f"""kind = "factorial"
name = "scenario"
{factors}
{frac}
[analysis]
model_order = {order}
[sample]
{sample}
[outcomes.y]
{outcome}
[outcomes.y.effects]
{eff}
"""


SCENARIOS = {
    "continuous_full_order2_dropout": design_text(
        4, 'type = "continuous"\nsd = 4.0', {"a": 1.2, "b": 0.8, "a:b": 0.8, "c": 0.0},
        "n_total = 256\ndropout = 0.2", order=2),
    "continuous_fraction": design_text(
        5, 'type = "continuous"\nsd = 2.0', {"a": 0.5, "d": 0.4, "e": 0.3},
        "n_total = 160", generators='["E = ABCD"]'),
    "binary_full": design_text(
        3, 'type = "binary"\nbaseline = 0.35', {"a": 0.4, "b": 0.25, "c": 0.0},
        "n_total = 1200"),
    "binary_fraction_dropout": design_text(
        4, 'type = "binary"\nbaseline = 0.6', {"a": 0.5, "b": -0.3},
        "n_total = 800\ndropout = 0.1", generators='["D = ABC"]'),
    "between_clusters": design_text(
        3, 'type = "continuous"\nsd = 1.0', {"a": 0.5, "b": 0.3},
        'assignment = "between"\nclusters = 48\ncluster_size = 8\nicc = 0.1'),
    "within_clusters_dropout": design_text(
        3, 'type = "continuous"\nsd = 2.0', {"a": 0.6, "c": 0.4},
        'assignment = "within"\nclusters = 30\ncluster_size = 12\nicc = 0.1\ndropout = 0.1'),
    "binary_between_clusters": design_text(
        3, 'type = "binary"\nbaseline = 0.3', {"a": 0.6},
        'assignment = "between"\nclusters = 64\ncluster_size = 15\nicc = 0.05'),
    "pretest_covariate": design_text(
        3, 'type = "continuous"\nsd = 3.0', {"a": 1.0, "b": 0.6},
        'n_total = 120\npretest = "covariate"\npre_post_corr = 0.6'),
    "pretest_repeated": design_text(
        3, 'type = "continuous"\nsd = 3.0', {"a": 1.2, "c": 0.8},
        'n_total = 160\npretest = "repeated"\npre_post_corr = 0.5'),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_simulated_power_agrees_with_analytic_within_3_mc_se(name):
    design = loads_design(SCENARIOS[name], f"{name}.toml")
    reps = 3000
    sim = simulate_factorial_power(design, reps, seed=20261122)
    assert sim["failed"] == 0
    analytic = factorial_design_power(design, exact=True)["effects"]
    for s, a in zip(sim["effects"], analytic, strict=True):
        assert s["term"] == a["term"]
        se = np.sqrt(a["power"] * (1 - a["power"]) / reps)
        assert abs(s["power"] - a["power"]) <= 3 * se, (name, s["term"], s["power"], a["power"])
        assert s["mc_se"] == pytest.approx(np.sqrt(s["power"] * (1 - s["power"]) / reps))
    # at least one effect with real power in every scenario
    assert max(a["power"] for a in analytic) > 0.3


def test_results_do_not_depend_on_jobs_or_chunks(designs_dir):
    design = load_design(designs_dir / "app-components-factorial.toml")
    one = simulate_factorial_power(design, 300, seed=5)
    chunked = simulate_factorial_power(design, 300, seed=5, chunk_size=37)
    parallel = simulate_factorial_power(design, 300, seed=5, jobs=2)
    assert one["effects"] == chunked["effects"] == parallel["effects"]
    other = simulate_factorial_power(design, 300, seed=6)
    assert other["effects"] != one["effects"]
    binary = simulate_factorial_power(design, 200, seed=5, outcome="retention")
    assert binary["effects"] == simulate_factorial_power(design, 200, seed=5, jobs=2,
                                                         outcome="retention")["effects"]


def test_default_chunks_bound_memory_and_keep_results(designs_dir, monkeypatch):
    from trialkit.engine import runner
    from trialkit.factorial import planning as plan

    design = load_design(designs_dir / "app-components-factorial.toml")
    whole = simulate_factorial_power(design, 120, seed=9, chunk_size=120)
    sizes = []
    real = runner.replicate_batches

    def spy(reps, **kw):
        calls = real(reps, **kw)
        sizes.append(max(len(r) for r in calls))
        return calls

    monkeypatch.setattr(runner, "replicate_batches", spy)
    monkeypatch.setattr(plan, "_CHUNK_VALUES", 512 * 25)   # 25 replicates of 512 per chunk
    bounded = simulate_factorial_power(design, 120, seed=9)
    assert sizes == [25]
    assert bounded["effects"] == whole["effects"]


def test_vectorised_ols_matches_statsmodels_per_replicate():
    codes = np.array([[a, b, c] for c in (-1, 1) for b in (-1, 1) for a in (-1, 1)])
    terms = model_terms(3, 2)
    lay = trial_layout(8, 96)
    x = model_matrix(codes[lay.condition], terms)
    beta = np.array([1.0, 0.3, -0.2, 0.1, 0.2, 0.0, 0.0])
    rngs = replicate_rngs(3, 0, 4)
    data = generate_factorial_data(rngs, x, beta, sd=2.0, dropout=0.2)
    spec = SimSpec(x=x, xc=model_matrix(codes, terms), layout=lay, beta=beta,
                   tested=tuple(range(1, 7)))
    w = data["observed"].astype(float)
    coef, se, df = _ols(spec, w, data["y"], lay.condition, None)
    for r in range(4):
        keep = data["observed"][r]
        fit = sm.OLS(data["y"][r, keep], x[keep]).fit()
        np.testing.assert_allclose(coef[r], fit.params, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(se[r], fit.bse, rtol=1e-8)
        assert df[r] == fit.df_resid


def test_vectorised_logistic_matches_statsmodels_per_replicate():
    codes = np.array([[a, b, c] for c in (-1, 1) for b in (-1, 1) for a in (-1, 1)])
    terms = model_terms(3, 1)
    lay = trial_layout(8, 400)
    x = model_matrix(codes[lay.condition], terms)
    beta = np.array([-0.4, 0.3, -0.2, 0.1])
    data = generate_factorial_data(replicate_rngs(8, 0, 3), x, beta, outcome="binary")
    spec = SimSpec(x=x, xc=model_matrix(codes, terms), layout=lay, beta=beta,
                   tested=(1, 2, 3), outcome="binary")
    coef, se, ok = _logistic(spec, None, data["y"], lay.condition)
    assert ok.all()
    for r in range(3):
        fit = sm.Logit(data["y"][r], x).fit(disp=0)
        np.testing.assert_allclose(coef[r], fit.params, rtol=1e-6)
        np.testing.assert_allclose(se[r], fit.bse, rtol=1e-6)


def test_logistic_with_interactions_and_dropout_matches_statsmodels_and_not_its_batch():
    # 2^4 with all two-way interactions (11 coefficients), outcomes missing at random: the
    # Hessian from the distinct column products and the written-out Cholesky solve
    codes = np.array([[(i >> k) & 1 for k in range(4)] for i in range(16)]) * 2 - 1
    terms = model_terms(4, 2)
    lay = trial_layout(16, 320)
    x = model_matrix(codes[lay.condition], terms)
    beta = np.linspace(-0.5, 0.4, len(terms))
    data = generate_factorial_data(replicate_rngs(9, 0, 6), x, beta, outcome="binary",
                                   dropout=0.2)
    spec = SimSpec(x=x, xc=model_matrix(codes, terms), layout=lay, beta=beta,
                   tested=tuple(range(1, len(terms))), outcome="binary")
    w = data["observed"].astype(float)
    coef, se, ok = _logistic(spec, w, data["y"], lay.condition)
    assert ok.all()
    for r in range(3):
        keep = data["observed"][r]
        fit = sm.Logit(data["y"][r, keep], x[keep]).fit(disp=0, tol=1e-12, maxiter=100)
        np.testing.assert_allclose(coef[r], fit.params, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(se[r], fit.bse, rtol=1e-7)
    # each replicate stops on its own step: fitted alone, it gets the same numbers
    alone = _logistic(spec, w[4:5], data["y"][4:5], lay.condition)
    np.testing.assert_allclose(alone[0][0], coef[4], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(alone[1][0], se[4], rtol=1e-13)


def test_holm_and_bonferroni_match_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(1).uniform(0, 0.1, size=(20, 6))
    for method in ("holm", "bonferroni"):
        mine = adjust_pvalues(p, method)
        for r in range(20):
            np.testing.assert_allclose(mine[r], multipletests(p[r], method=method)[1])


def test_adjustment_lowers_simulated_power(designs_dir):
    design = load_design(designs_dir / "app-components-factorial.toml")
    plain = simulate_factorial_power(design, 400, seed=2)
    holm = simulate_factorial_power(design, 400, seed=2, adjust="holm")
    bonf = simulate_factorial_power(design, 400, seed=2, adjust="bonferroni")
    for a, h, b in zip(plain["effects"], holm["effects"], bonf["effects"], strict=True):
        assert a["power"] >= h["power"] >= b["power"]
    assert plain["effects"][0]["power"] > bonf["effects"][0]["power"]


def test_data_generation_moments():
    lay = trial_layout(4, clusters=400, cluster_size=5, assignment="between")
    x = np.ones((lay.condition.shape[0], 1))
    data = generate_factorial_data(replicate_rngs(1, 0, 50), x, np.array([2.0]), sd=3.0,
                                   cluster=lay.cluster, n_clusters=400, icc=0.2,
                                   pre_post_corr=0.5)
    y, pre = data["y"], data["pre"]
    assert y.mean() == pytest.approx(2.0, abs=0.05)
    assert y.var() == pytest.approx(9.0, rel=0.03)
    assert np.corrcoef(y.ravel(), pre.ravel())[0, 1] == pytest.approx(0.2 + 0.8 * 0.5, abs=0.02)
    means = np.stack([np.bincount(lay.cluster, weights=row) / 5 for row in y])
    # variance of a cluster mean: sigma^2 (icc + (1 - icc) / m)
    assert means.var() == pytest.approx(9 * (0.2 + 0.8 / 5), rel=0.05)


def test_cli_simulation_contract_and_curve(run, designs_dir, tmp_path):
    path = designs_dir / "app-components-fraction.toml"
    res = run("power", path, "--simulate", "--reps", "200", "--seed", "4", "--jobs", "2",
              "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["n_total"] == 640 and data["reps"] == 200
    assert {"term", "power", "mc_se"} <= set(data["effects"][0])
    out = tmp_path / "curve.png"
    res = run("power", path, "--curve", "--n-from", "100", "--n-to", "900", "--out", out,
              "--format", "json")
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    curves = json.loads(res.output)["curves"]
    assert curves[0]["power"] == sorted(curves[0]["power"])
    bad = run("power", path, "--curve", "--n-from", "500", "--n-to", "100", "--out", out)
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1


def test_model_order_not_estimable_in_fraction_is_an_error(run, designs_dir, tmp_path):
    text = (designs_dir / "app-components-fraction.toml").read_text()
    path = tmp_path / "order2.toml"
    path.write_text(text.replace("model_order = 1", "model_order = 2"))
    res = run("power", path)
    assert res.exit_code == 2
    line = res.output.strip()
    assert "aliased" in line and "\n" not in line


def test_binary_baseline_is_the_rate_with_every_component_off(designs_dir):
    from scipy.special import expit

    from trialkit.factorial.planning import _truth

    design = load_design(designs_dir / "app-components-factorial.toml")
    out = design.outcomes[1]
    terms = model_terms(5, 2)
    all_terms, beta = _truth(design, out, terms)
    off = model_matrix(-np.ones((1, 5)), all_terms)
    assert expit(off @ beta)[0] == pytest.approx(out.baseline, rel=1e-12)
    on_a = model_matrix(np.array([[1, -1, -1, -1, -1]]), all_terms)
    # human_voice = 0.2 and human_voice:validating_statements = -0.1 on the log-odds scale:
    # switching human_voice on (others off) changes the log-odds by 0.2 + 0.1
    assert (on_a - off) @ beta == pytest.approx(0.3)


def test_design_truth_feeds_the_data_generator(designs_dir):
    from trialkit.factorial.planning import design_truth

    design = load_design(designs_dir / "app-components-factorial.toml")
    terms, beta = design_truth(design)
    assert terms[:16] == model_terms(5, 2) and beta[0] == -4.0
    lay = trial_layout(32, 512)
    x = model_matrix(design.conditions()[lay.condition], terms)
    y = generate_factorial_data(replicate_rngs(1, 0, 400), x, beta, sd=5.0)["y"]
    on = design.conditions()[lay.condition][:, 0] == 1
    # classic effect of human_voice: mean at +1 minus mean at -1 = -1.0
    assert y[:, on].mean() - y[:, ~on].mean() == pytest.approx(-1.0, abs=0.05)


@pytest.mark.parametrize(("args", "fragment"), [
    (["--simulate", "--reps", "0"], "--reps"),
    (["--simulate", "--reps", "10", "--seed", "-1"], "seed"),
    (["--simulate", "--curve"], "choose one"),
    (["--curve"], "--n-from"),
    (["--outcome", "wellbeing"], "use one of"),
    (["--n-total", "10"], "too few"),
    (["--simulate", "--reps", "10", "--n-total", "12"], "too few"),
    (["--simulate", "--reps", "10", "--n-total", "2000000"], "simulated trial"),
    (["--n-total", "100000000000000000000"], "smaller n_total (or sample size in the design) "
     "(option --n-total)"),
])
def test_cli_design_file_bad_input(run, designs_dir, args, fragment):
    res = run("power", designs_dir / "app-components-factorial.toml", *args)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and fragment in lines[0]


def test_logistic_does_not_depend_on_its_fitting_blocks(monkeypatch):
    # fitted in blocks of 5 (replicates finishing at different steps share a block's buffers)
    # or all together, every replicate gets the same numbers, and they are statsmodels' numbers
    import trialkit.factorial.replicates as replicates

    codes = np.array([[(i >> k) & 1 for k in range(3)] for i in range(8)]) * 2 - 1
    terms = model_terms(3, 2)
    lay = trial_layout(8, 96)
    x = model_matrix(codes[lay.condition], terms)
    beta = np.array([0.2, 0.9, -0.7, 0.5, 0.3, -0.4, 0.2])
    data = generate_factorial_data(replicate_rngs(11, 0, 23), x, beta, outcome="binary")
    spec = SimSpec(x=x, xc=model_matrix(codes, terms), layout=lay, beta=beta,
                   tested=tuple(range(1, len(terms))), outcome="binary")
    together = _logistic(spec, None, data["y"], lay.condition)
    monkeypatch.setattr(replicates, "_NEWTON_BLOCK", 5)
    blocks = _logistic(spec, None, data["y"], lay.condition)
    for a, b in zip(together, blocks, strict=True):
        np.testing.assert_array_equal(a, b)
    ok = together[2]
    assert ok.sum() >= 20
    for r in np.flatnonzero(ok)[:8]:
        fit = sm.Logit(data["y"][r], x).fit(disp=0, tol=1e-12, maxiter=100)
        np.testing.assert_allclose(together[0][r], fit.params, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(together[1][r], fit.bse, rtol=1e-6)
