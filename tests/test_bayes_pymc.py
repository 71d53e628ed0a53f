"""Real pymc fits (small, seeded, shared by the tests): fast-path agreement, recovery, diagnostics.

Agreement criterion (issue 6): each coefficient's posterior mean within 0.1 posterior SD and
P(best) of each combination within 0.05, for the normal (conjugate) and binary (Laplace) paths.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trialkit.bayes import fast
from trialkit.bayes.analyse import analyse_factorial, combination_draws
from trialkit.bayes.decision_study import individual_data, truth_vector
from trialkit.bayes.spec import build_spec
from trialkit.design import load_design

pytestmark = [pytest.mark.pymc, pytest.mark.slow]
DESIGN = "designs/app-components-factorial.toml"
SAMPLING = ("--draws", "1500", "--tune", "1000", "--chains", "2", "--cores", "1", "--seed", "3")


@pytest.fixture(scope="session")
def design(pytestconfig):
    return load_design(pytestconfig.rootpath / DESIGN)


@pytest.fixture(scope="session")
def export(design, tmp_path_factory):
    cols = individual_data(design, "phq9_change", dict(design.outcomes[0].effects), 512, seed=21)
    ret = individual_data(design, "retention", dict(design.outcomes[1].effects), 512, seed=22)
    table = pd.DataFrame(cols)
    table["retention"] = ret["retention"].astype(int)
    for f in design.factor_names:  # the two outcomes come from independently allocated trials
        table[f"r_{f}"] = ret[f]
    path = tmp_path_factory.mktemp("pymc") / "export.csv"
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def normal_fit(design, export, tmp_path_factory, pytestconfig):
    """One NUTS fit of the continuous outcome through the CLI, with --out-dir."""
    from click.testing import CliRunner

    from trialkit.cli import cli

    out = tmp_path_factory.mktemp("out")
    res = CliRunner().invoke(cli, ["analyse", "factorial", str(pytestconfig.rootpath / DESIGN),
                                   str(export), *SAMPLING, "--out-dir", str(out),
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), res.stderr, out


@pytest.fixture(scope="session")
def binary_fit(design, export):
    """One NUTS fit of the binary outcome through the library."""
    table = pd.read_csv(export)
    data = table[[f"r_{f}" for f in design.factor_names] + ["retention"]]
    data.columns = [*design.factor_names, "retention"]
    result = analyse_factorial(design, data, outcomes=("retention",), method="bayes",
                               draws=1500, tune=1000, chains=2, cores=1, seed=4)
    return result, data


def _fast_reference(design, outcome, codes, y):
    spec = build_spec(design, outcome, y=y)
    x = spec.design_matrix(codes)
    if spec.family == "normal":
        post = fast.normal_posterior(spec, *fast.normal_stats(x, y))
    else:
        post = fast.logistic_posterior(spec, x, np.ones((1, len(y))), y[None])
    b = post.draws([np.random.default_rng(0)], 40000)[0]
    v = combination_draws(spec, b)
    vo = -v if spec.better == "lower" else v
    p_best = np.bincount(vo.argmax(1), minlength=v.shape[1]) / len(v)
    return post.mean()[0], post.sd()[0], p_best


def _check_agreement(result, mean, sd, p_best):
    got_mean = np.array([t["coef_mean"] for t in result["terms"]])
    got_pbest = np.array([c["p_best"] for c in result["combinations"]])
    z = np.abs(got_mean - mean) / sd
    assert z.max() < 0.1, z
    assert np.abs(got_pbest - p_best).max() < 0.05
    got_sd = np.array([t["coef_sd"] for t in result["terms"]])
    np.testing.assert_allclose(got_sd, sd, rtol=0.1)


def test_normal_fast_path_agrees_with_pymc(normal_fit, design, export):
    result, _, _ = normal_fit
    table = pd.read_csv(export)
    codes = table[list(design.factor_names)].to_numpy(float)
    _check_agreement(result, *_fast_reference(design, "phq9_change", codes,
                                              table["phq9_change"].to_numpy(float)))


def test_binary_laplace_path_agrees_with_pymc(binary_fit, design):
    result, data = binary_fit
    codes = data[list(design.factor_names)].to_numpy(float)
    _check_agreement(result, *_fast_reference(design, "retention", codes,
                                              data["retention"].to_numpy(float)))


@pytest.mark.parametrize("which", ["normal", "binary"])
def test_pymc_recovers_known_effects(which, normal_fit, binary_fit, design):
    result = normal_fit[0] if which == "normal" else binary_fit[0]
    out = design.outcomes[0 if which == "normal" else 1]
    terms, beta = truth_vector(design, out, dict(out.effects))
    sd = {t["term"]: 2 * t["coef_sd"] for t in result["terms"]}
    for comp in result["components"]:
        true_effect = 2 * beta[terms.index((design.factor_names.index(comp["name"]),))]
        assert comp["effect_mean"] == pytest.approx(true_effect, abs=3 * sd[comp["name"]])
    inside = [c["hdi_low"] <= 2 * beta[terms.index((design.factor_names.index(c["name"]),))]
              <= c["hdi_high"] for c in result["components"]]
    assert sum(inside) >= 4


def test_diagnostics_saved_inference_data_and_plots(normal_fit):
    import arviz as az

    result, stderr, out = normal_fit
    diag = result["diagnostics"]
    assert diag["rhat_max"] < 1.01 and diag["ess_bulk_min"] > 400 and diag["divergences"] == 0
    assert "sampling: 100%" in stderr  # the progress indicator
    idata = az.from_netcdf(out / "posterior_phq9_change.nc", engine="h5netcdf")
    assert idata.posterior["beta"].shape == (2, 1500, 16)
    saved = idata.posterior["beta"].values.reshape(-1, 16).mean(0)
    np.testing.assert_allclose(saved, [t["coef_mean"] for t in result["terms"]], rtol=1e-9)
    assert (out / "forest_phq9_change.png").stat().st_size > 1000
    assert (out / "combinations_phq9_change.png").stat().st_size > 1000


def test_strict_fails_on_bad_diagnostics(run, pytestconfig, export):
    res = run("analyse", "factorial", pytestconfig.rootpath / DESIGN, export, "--method", "bayes",
              "--draws", "20", "--tune", "0", "--chains", "2", "--cores", "1", "--strict",
              "--format", "json")
    assert res.exit_code == 1
    assert "Warning: convergence diagnostics failed" in res.stderr
    assert json.loads(res.stdout)["diagnostics"]["ok"] is False
