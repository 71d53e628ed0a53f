"""The factorial analysis follows the clustering the design declares (sample.cluster_column)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "designs" / "app-components-factorial.toml"
N_CLINICS, PER_CLINIC = 64, 8


def clustered_design(tmp_path, assignment: str = "between", column: str = "clinic") -> Path:
    """Return the example design with 64 clinics of 8 (whole clinics randomised)."""
    text = EXAMPLE.read_text().replace(
        "n_total = 512\ndropout = 0.15",
        f'assignment = "{assignment}"\nclusters = {N_CLINICS}\ncluster_size = {PER_CLINIC}\n'
        f'icc = 0.2\ncluster_column = "{column}"')
    path = tmp_path / f"{assignment}.toml"
    path.write_text(text)
    return path


def clustered_data(seed: int = 3) -> pd.DataFrame:
    """Clinics randomised to the 32 conditions, a strong clinic effect (SD 3, residual SD 5)."""
    from trialkit.design import load_design

    design = load_design(EXAMPLE)
    rng = np.random.default_rng(seed)
    clinic = np.repeat(np.arange(N_CLINICS), PER_CLINIC)
    codes = design.conditions()[clinic % 32]
    y = (-4 - 0.5 * codes[:, 0] - 0.4 * codes[:, 1] + rng.normal(0, 3, N_CLINICS)[clinic]
         + rng.normal(0, 5, len(clinic)))
    table = pd.DataFrame(codes.astype(int), columns=design.factor_names)
    table.insert(0, "participant", [f"P{i:03d}" for i in range(len(table))])
    table["clinic"] = [f"clinic_{c:02d}" for c in clinic]
    table["phq9_change"] = y
    return table


def _analyse(run, design, data, tmp_path, *extra):
    path = tmp_path / "data.csv"
    data.to_csv(path, index=False)
    res = run("analyse", "factorial", design, path, "--engine", "fast", "--seed", "1",
              "--draws", "500", "--chains", "2", "--format", "json", *extra)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), res


def test_ols_uses_cluster_robust_standard_errors(run, tmp_path):
    import statsmodels.api as sm

    from trialkit.design import load_design
    from trialkit.factorial.model import model_matrix, model_terms

    data = clustered_data()
    out, _ = _analyse(run, clustered_design(tmp_path), data, tmp_path, "--method", "ols")
    assert out["clustering"]["column"] == "clinic"
    assert out["clustering"]["clusters"] == N_CLINICS
    assert out["clustering"]["ols"].startswith("cluster-robust")
    design = load_design(EXAMPLE)
    x = model_matrix(data[list(design.factor_names)].to_numpy(float), model_terms(5, 2))
    ref = sm.OLS(data["phq9_change"].to_numpy(), x).fit(
        cov_type="cluster", cov_kwds={"groups": data["clinic"].astype("category").cat.codes})
    np.testing.assert_allclose([t["coef_se"] for t in out["ols"]], ref.bse, rtol=1e-10)
    naive = sm.OLS(data["phq9_change"].to_numpy(), x).fit()
    assert ref.bse[1] > 1.3 * naive.bse[1]   # the clinics matter here


def test_bayes_uses_a_cluster_random_intercept(run, tmp_path):
    data = clustered_data()
    clustered, _ = _analyse(run, clustered_design(tmp_path), data, tmp_path, "--method",
                            "bayes")
    assert clustered["clustering"]["bayes"] == "cluster random intercept"
    plain, _ = _analyse(run, EXAMPLE, data, tmp_path, "--method", "bayes")
    assert plain["clustering"]["bayes"] == "no random effects"

    def width(report):
        c = report["components"][0]
        return c["hdi_high"] - c["hdi_low"]

    # whole clinics randomised with a clinic SD of 3: the effects are far less certain
    assert width(clustered) > 1.3 * width(plain)


@pytest.mark.parametrize("kappa", [0.0, 0.6])
def test_the_fast_random_intercept_is_generalised_least_squares(monkeypatch, kappa):
    # with the random intercept's SD fixed at κ (in σ units) and nearly flat coefficient
    # priors, the posterior mean of β is the GLS estimate with V = I + κ² J per clinic
    from dataclasses import replace

    from trialkit.bayes import fast
    from trialkit.bayes.spec import ModelSpec, build_spec
    from trialkit.design import load_design

    monkeypatch.setattr(ModelSpec, "cluster_grid",
                        lambda self: (np.array([kappa]), np.zeros(1)))
    design = load_design(EXAMPLE)
    data = clustered_data(seed=5)
    clinic = data["clinic"].astype("category").cat.codes.to_numpy()
    y = data["phq9_change"].to_numpy()
    spec = build_spec(design, "phq9_change", y=y, order=1, clusters=N_CLINICS)
    spec = replace(spec, prior_scale=spec.prior_scale * 1000)
    x = spec.design_matrix(data[list(design.factor_names)].to_numpy(float))
    post = fast.clustered_normal_posterior(spec, x, y, clinic)
    v_inv = np.linalg.inv(np.eye(len(y)) + kappa**2 * (clinic[:, None] == clinic[None, :]))
    gls = np.linalg.solve(x.T @ v_inv @ x, x.T @ v_inv @ y)
    np.testing.assert_allclose(post.mean()[0], gls, atol=1e-4)


def test_missing_cluster_column_is_said_and_warned(run, tmp_path):
    data = clustered_data().drop(columns="clinic")
    out, res = _analyse(run, clustered_design(tmp_path), data, tmp_path, "--method", "ols")
    assert out["clustering"]["column"] is None and "no column 'clinic'" in out["clustering"]["note"]
    assert "Warning: the design randomises between clusters" in res.stderr


def test_binary_outcome_with_clusters_needs_sampling(run, tmp_path):
    data = clustered_data()
    data["retention"] = (np.random.default_rng(1).random(len(data)) < 0.5).astype(int)
    path = tmp_path / "data.csv"
    data.to_csv(path, index=False)
    res = run("analyse", "factorial", clustered_design(tmp_path), path, "--engine", "fast",
              "--outcome", "retention", "--method", "bayes")
    assert res.exit_code == 2 and "use engine nuts" in res.stderr and "--engine" in res.stderr
    ols = run("analyse", "factorial", clustered_design(tmp_path), path, "--engine", "fast",
              "--outcome", "retention", "--method", "ols", "--format", "json")
    assert ols.exit_code == 0 and json.loads(ols.stdout)["clustering"]["clusters"] == N_CLINICS


@pytest.mark.pymc
def test_pymc_model_has_the_random_intercept(run, tmp_path):
    data = clustered_data()
    out, _ = _analyse(run, clustered_design(tmp_path, "within"), data, tmp_path, "--engine",
                      "prior", "--draws", "20", "--chains", "1", "--tune", "0")
    assert out["clustering"] == {"assignment": "within", "column": "clinic",
                                 "clusters": N_CLINICS,
                                 "ols": f"cluster-robust standard errors ({N_CLINICS} clusters)",
                                 "bayes": "cluster random intercept"}


def test_the_pymc_model_contains_the_cluster_terms(tmp_path):
    from trialkit.bayes.backend_pymc import build_model
    from trialkit.bayes.spec import build_spec
    from trialkit.design import load_design

    design = load_design(clustered_design(tmp_path))
    data = clustered_data()
    spec = build_spec(design, "phq9_change", y=data["phq9_change"].to_numpy(),
                      clusters=N_CLINICS)
    x = spec.design_matrix(data[list(design.factor_names)].to_numpy(float))
    clinic = data["clinic"].astype("category").cat.codes.to_numpy()
    model = build_model(spec, x, data["phq9_change"].to_numpy(), clinic)
    names = {v.name for v in model.free_RVs}
    assert {"cluster_sd", "cluster_z"} <= names
    assert model.named_vars["cluster_z"].eval().shape == (N_CLINICS,)
    plain = build_model(spec, x, data["phq9_change"].to_numpy())
    assert "cluster_sd" not in {v.name for v in plain.free_RVs}
