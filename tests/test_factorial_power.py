"""Analytic factorial power: MOST FactorialPowerPlan parity, exact mode, dexpy, binary, costs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from trialkit.design.fractions import fraction_matrix
from trialkit.errors import TrialkitError
from trialkit.factorial.costs import factorial_costs
from trialkit.factorial.model import model_terms
from trialkit.factorial.power import (
    design_matrix_power,
    factorial_binary_power,
    factorial_mde,
    factorial_power,
    factorial_sample_size,
)


# -- reference numbers (docs/references.md) ------------------------------------------------
def test_most_a_power():
    # R MOST 0.1.2 FactorialPowerPlan: independent, order 2, 5 factors, N 300, raw_main 3, sigma 10
    res = factorial_power(5, 300, raw_main=3, sigma=10, model_order=2)
    assert res["power"] == 0.7354
    assert res["df2"] == 284 and res["n_coefficients"] == 16


def test_most_c_sample_size():
    # R MOST 0.1.2 FactorialPowerPlan: independent, order 1, 5 factors, d_main 0.2, power 0.8
    assert factorial_sample_size(5, 0.8, d_main=0.2)["n_total"] == 787


def test_costs_9_factors():
    # R MOST 0.1.2 RelativeCosts1(9, resolution 4, d 0.2)
    rows = factorial_costs(9, 4, 0.2)["approaches"]
    assert [(r["subjects"], r["conditions"]) for r in rows] == [
        (7074, 18), (3930, 10), (1024, 512), (800, 32)]


def test_dexpy_half_fraction_power():
    # dexpy 0.12 f_power: 2^(4-1) (8 runs), main effects, signal-to-noise 2, alpha 0.05 -> 0.49003
    codes = fraction_matrix(4, ("D = ABC",))
    power = design_matrix_power(codes, model_terms(4, 1), [0, 1, 1, 1, 1], sigma=1.0)
    assert power[1:] == pytest.approx([0.49003] * 4, abs=1e-4)


# -- formulas -------------------------------------------------------------------------------
def _ncf_power(lam, df2, alpha=0.05):
    return stats.ncf.sf(stats.f.ppf(1 - alpha, 1, df2), 1, df2, lam)


def test_exact_mode_has_no_rounding_and_no_cap():
    res = factorial_power(5, 300, raw_main=3, sigma=10, model_order=2, exact=True)
    assert res["power"] == pytest.approx(_ncf_power(300 * 1.5**2 / 100, 284), rel=1e-12)
    assert res["power"] != round(res["power"], 4)
    big_most = factorial_power(3, 5000, d_main=1.0)
    big_exact = factorial_power(3, 5000, d_main=1.0, exact=True)
    assert big_most["noncentrality"] == big_exact["noncentrality"] == pytest.approx(1250)
    assert big_most["power"] == 1.0 and big_exact["power"] == pytest.approx(1.0)


def test_effect_size_forms_agree():
    ref = factorial_power(4, 200, raw_coef=1.5, sigma=10, exact=True)["power"]
    assert factorial_power(4, 200, raw_main=3, sigma=10, exact=True)["power"] == ref
    assert factorial_power(4, 200, d_main=0.3, exact=True)["power"] == pytest.approx(ref)
    assert factorial_power(4, 200, f2=0.15**2, exact=True)["power"] == pytest.approx(ref)


def test_sample_size_is_the_smallest_reaching_the_target():
    for kw in ({"d_main": 0.25}, {"d_main": 0.4, "model_order": 2},
               {"raw_main": 2, "sigma": 8, "pretest": "covariate", "pre_post_corr": 0.5}):
        n = factorial_sample_size(5, 0.8, exact=True, **kw)["n_total"]
        assert factorial_power(5, n, exact=True, **kw)["power"] >= 0.8
        assert factorial_power(5, n - 1, exact=True, **kw)["power"] < 0.8


def test_clustered_noncentrality_and_df():
    # between clusters: lambda = m J b^2 / (sigma^2 (1 + (m (1 + cv^2) - 1) icc)), df2 = J - p
    res = factorial_power(3, clusters=40, raw_main=2, sigma=4, assignment="between",
                          cluster_size=10, cluster_size_sd=5, icc=0.05, exact=True)
    deff = 1 + (10 * 1.25 - 1) * 0.05
    assert res["noncentrality"] == pytest.approx(10 * 40 * 1.0 / (16 * deff))
    assert res["df2"] == 40 - 4 and res["n_total"] == 400
    assert res["power"] == pytest.approx(_ncf_power(res["noncentrality"], 36))
    # within clusters: MOST uses no design effect and df2 = floor(J m) - p
    res = factorial_power(3, clusters=40, raw_main=2, sigma=4, assignment="within",
                          cluster_size=10, icc=0.05, exact=True)
    assert res["noncentrality"] == pytest.approx(400 / 16) and res["df2"] == 396
    n = factorial_sample_size(3, 0.8, raw_main=2, sigma=4, assignment="between",
                              cluster_size=10, icc=0.05)
    assert "n_clusters" in n and n["n_total"] == n["n_clusters"] * 10


def test_pretest_adjustments():
    cov = factorial_power(5, 300, raw_main=3, sigma=10, pretest="covariate", pre_post_corr=0.6,
                          exact=True)
    assert cov["noncentrality"] == pytest.approx(300 * 2.25 / (100 * (1 - 0.36)))
    assert cov["n_coefficients"] == 7
    rep = factorial_power(5, 300, raw_main=3, sigma=10, pretest="repeated", pre_post_corr=0.6,
                          exact=True)
    assert rep["noncentrality"] == pytest.approx(300 * 2.25 / (2 * 100 * 0.4))
    between = factorial_power(5, clusters=60, raw_main=3, sigma=10, pretest="repeated",
                              pre_post_corr=0.6, assignment="between", cluster_size=8, icc=0.1,
                              change_score_icc=0.02, exact=True)
    deff = 1 + 7 * 0.02
    assert between["noncentrality"] == pytest.approx(
        8 * 60 * 2.25 * 0.98 / (2 * 100 * 0.4 * 0.9 * deff))


def test_mde_inverts_power():
    res = factorial_mde(5, 512, 0.8, sigma=5, model_order=2, exact=True)
    assert factorial_power(5, 512, raw_coef=res["raw_coef"], sigma=5, model_order=2,
                           exact=True)["power"] == pytest.approx(0.8, abs=1e-8)
    assert res["d_main"] == pytest.approx(2 * res["raw_coef"] / 5)
    most = factorial_mde(5, 512, 0.8)
    assert most["d_main"] == pytest.approx(res["d_main"], abs=1e-3)


def test_binary_normal_approximation_matches_two_proportions():
    # one main effect in a 2^k factorial with equal allocation is a comparison of two halves of
    # N/2: Var(log OR) = 2/N (1/w_hi + 1/w_lo), w = p(1-p), and b = log OR / 2
    res = factorial_binary_power(3, 1000, 0.4, logodds_main=0.4)
    coef = 0.2
    p_lo = 0.4   # baseline: the component (and every other) off
    p_hi = 1 / (1 + math.exp(-(math.log(0.4 / 0.6) + 2 * coef)))
    se = math.sqrt((1 / (p_hi * (1 - p_hi)) + 1 / (p_lo * (1 - p_lo))) / (2 * 1000))
    z = stats.norm.ppf(0.975)
    assert res["se"] == pytest.approx(se, rel=1e-10)
    expected = stats.norm.sf(z - coef / se) + stats.norm.cdf(-z - coef / se)
    assert res["power"] == pytest.approx(expected)
    rd = factorial_binary_power(3, 1000, 0.4, risk_diff=0.1)
    assert rd["raw_coef"] == pytest.approx((math.log(0.5 / 0.5) - math.log(0.4 / 0.6)) / 2)


def test_library_errors_are_one_line():
    with pytest.raises(TrialkitError, match="two effect sizes"):
        factorial_power(5, 300, d_main=0.2, f2=0.01)
    with pytest.raises(TrialkitError) as info:
        factorial_power(5, 10, d_main=0.2, model_order=2)
    assert "\n" not in str(info.value) and " — " in str(info.value)


# -- CLI ---------------------------------------------------------------------------------------
def _json(run, *args):
    res = run(*args, "--format", "json")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_cli_quick_power_contract(run):
    data = _json(run, "power", "factorial", "--factors", "5", "--n-total", "300", "--raw-main",
                 "3", "--sigma", "10", "--model-order", "2")
    assert data["power"] == 0.7354
    assert {"power", "n_total", "df2", "noncentrality"} <= set(data)
    data = _json(run, "samplesize", "factorial", "--factors", "5", "--d-main", "0.2", "--power",
                 "0.8")
    assert data["n_total"] == 787
    data = _json(run, "samplesize", "factorial", "--factors", "3", "--raw-main", "2", "--sigma",
                 "4", "--assignment", "between", "--cluster-size", "10", "--icc", "0.05")
    assert "n_clusters" in data
    data = _json(run, "mde", "factorial", "--factors", "5", "--n-total", "512", "--power", "0.8")
    assert {"d_main", "raw_coef"} <= set(data) and 0.2 < data["d_main"] < 0.3
    data = _json(run, "costs", "--factors", "9", "--resolution", "4", "--d-main", "0.2",
                 "--cost-per-subject", "2", "--cost-per-condition", "100")
    assert data["approaches"][3]["total_cost"] == 800 * 2 + 32 * 100
    data = _json(run, "power", "factorial", "--factors", "4", "--n-total", "800", "--baseline",
                 "0.45", "--risk-diff", "0.1")
    assert 0 < data["power"] < 1


def test_cli_design_power_and_samplesize(run, designs_dir):
    path = designs_dir / "app-components-factorial.toml"
    data = _json(run, "power", path)
    assert data["n_total"] == 512 and len(data["effects"]) == 15
    first = data["effects"][0]
    assert first["term"] == "human_voice" and 0 < first["power"] < 1
    big = _json(run, "power", path, "--n-total", "2000")
    assert big["effects"][0]["power"] > first["power"]
    size = _json(run, "samplesize", path, "--power", "0.8")
    assert size["limiting_term"] == "personalised_notifications"
    assert size["power"] >= 0.8
    smaller = _json(run, "power", path, "--n-total", str(size["n_total"] - 1))
    assert smaller["effects"][2]["power"] < 0.8


BAD = [
    (["power", "factorial", "--factors", "5", "--n-total", "300", "--d-main", "0.2", "--f2",
      "0.1"], "two effect sizes"),
    (["power", "factorial", "--factors", "5", "--n-total", "300"], "no effect size"),
    (["power", "factorial", "--factors", "5", "--n-total", "12", "--d-main", "0.2",
      "--model-order", "2"], "too few"),
    (["power", "factorial", "--factors", "5", "--clusters", "40", "--d-main", "0.2",
      "--assignment", "between", "--cluster-size", "10", "--icc", "1"], "--icc"),
    (["power", "factorial", "--factors", "5", "--n-total", "300", "--raw-main", "2"], "--sigma"),
    (["power", "factorial", "--factors", "3", "--n-total", "300", "--d-main", "0.2",
      "--model-order", "4"], "model-order"),
    (["power", "factorial", "--factors", "3", "--n-total", "300", "--d-main", "0.2",
      "--pretest", "covariate"], "pre-post-corr"),
    (["samplesize", "factorial", "--factors", "3", "--d-main", "0.2", "--power", "1.5"],
     "--power"),
    (["costs", "--factors", "5", "--resolution", "6"], "higher than"),
    (["costs", "--factors", "5", "--d-main", "0"], "--d-main"),
    (["mde", "factorial", "--factors", "5", "--power", "0.8"], "--n-total"),
    (["samplesize", "factorial", "--factors", "5", "--d-main", "0.2", "--assignment", "between",
      "--cluster-size", "inf", "--icc", "0.1"], "--cluster-size"),
    (["samplesize", "factorial", "--factors", "5", "--d-main", "0.2", "--assignment", "between",
      "--cluster-size", "10", "--icc", "0.1", "--cluster-size-sd", "nan"], "--cluster-size-sd"),
    (["power", "factorial", "--factors", "4", "--n-total", "800", "--baseline", "0.45",
      "--logodds-main", "nan"], "--logodds-main"),
    (["power", "factorial", "--factors", "4", "--n-total", "inf", "--baseline", "0.45",
      "--logodds-main", "0.3"], "not finite"),
    (["power", "factorial", "--factors", "4", "--n-total", "800", "--baseline", "0.45",
      "--risk-diff", "0.1", "--icc", "0.1"], "drop --icc"),
    (["power", "factorial", "--factors", "4", "--n-total", "800", "--baseline", "0.45",
      "--risk-diff", "0.1", "--exact"], "drop --exact"),
    (["power", "factorial", "--factors", "24", "--n-total", "800", "--baseline", "0.45",
      "--risk-diff", "0.1"], "too large"),
    (["power", "factorial", "--factors", "5", "--n-total", "1e30", "--d-main", "0.2"],
     "realistic"),
    (["samplesize", "factorial", "--factors", "5", "--d-main", "0.2", "--assignment", "within",
      "--cluster-size", "1e300", "--icc", "0.1"], "--cluster-size"),
]


@pytest.mark.parametrize(("args", "fragment"), BAD)
def test_cli_bad_input_exits_2_with_one_line(run, args, fragment):
    res = run(*args)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:")
    assert fragment in lines[0]
    assert "Traceback" not in res.output


def test_cli_cluster_and_pretest_options_reach_the_formula(run):
    # between clusters with a repeated pretest (Dziak, Nahum-Shani & Collins 2012; MOST):
    # lambda = m J b^2 (1 - icc_d) / (2 sigma^2 (1 - r)(1 - icc)(1 + (m (1 + cv^2) - 1) icc_d))
    data = _json(run, "power", "factorial", "--factors", "5", "--clusters", "60", "--raw-main",
                 "3", "--sigma", "10", "--assignment", "between", "--cluster-size", "8",
                 "--cluster-size-sd", "4", "--icc", "0.1", "--pretest", "repeated",
                 "--pre-post-corr", "0.6", "--change-score-icc", "0.02", "--exact")
    deff = 1 + (8 * 1.25 - 1) * 0.02
    lam = 8 * 60 * 2.25 * 0.98 / (2 * 100 * 0.4 * 0.9 * deff)
    assert data["noncentrality"] == pytest.approx(lam) and data["df2"] == 60 - 6
    assert data["power"] == pytest.approx(_ncf_power(lam, 54))
    assert data["n_clusters"] == 60 and data["n_total"] == 480


def test_binary_rates_pushed_to_the_bounds_is_a_clear_error(run, tmp_path, designs_dir):
    text = (designs_dir / "app-components-factorial.toml").read_text()
    path = tmp_path / "saturated.toml"
    path.write_text(text.replace("human_voice = 0.2", "human_voice = 60"))
    res = run("power", path, "--outcome", "retention")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "rates to 0 or 1" in lines[0]


CLUSTERED = """kind = "factorial"
name = "clustered"
[[factors]]
name = "a"
[[factors]]
name = "b"
[sample]
assignment = "between"
clusters = 40
cluster_size = 1.5
icc = 0.1
dropout = 0.5
[outcomes.y]
type = "continuous"
sd = 1.0
[outcomes.y.effects]
a = 0.5
"""


@pytest.mark.parametrize("command", ["power", "samplesize"])
def test_design_file_problems_no_sample_cures_are_named(run, tmp_path, command):
    # fewer than one analysed member per cluster: named as such, not as an unreachable power
    path = tmp_path / "clustered.toml"
    path.write_text(CLUSTERED)
    res = run(command, path)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "analysed members per cluster" in lines[0]
    # a pretest with a binary outcome
    path.write_text(CLUSTERED.replace("dropout = 0.5", 'pretest = "covariate"\npre_post_corr = 0.5')
                    .replace('type = "continuous"\nsd = 1.0', 'type = "binary"\nbaseline = 0.3')
                    .replace('assignment = "between"', 'assignment = "within"'))
    res = run(command, path)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "pretest is not modelled" in lines[0]


def test_no_nan_in_results(run):
    data = _json(run, "power", "factorial", "--factors", "2", "--n-total", "5", "--d-main",
                 "0.0001", "--exact")
    assert all(not (isinstance(v, float) and np.isnan(v)) for v in data.values())
