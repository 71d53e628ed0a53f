"""Rehearsal outcomes (`trialkit simulate outcomes`): the design's truth, for a real allocation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from trialkit.design import load_design
from trialkit.factorial.model import model_matrix, outcome_coefficients
from trialkit.factorial.rehearse import rehearsal_outcomes

FACTORIAL = "designs/app-components-factorial.toml"


@pytest.fixture(scope="module")
def design():
    return load_design(FACTORIAL)


def allocation(design, per_condition: int) -> pd.DataFrame:
    codes = np.repeat(design.conditions(), per_condition, axis=0)
    table = pd.DataFrame(codes, columns=list(design.factor_names))
    table.insert(0, "participant", [f"P{i}" for i in range(len(table))])
    return table


def test_continuous_outcome_recovers_the_assumed_effects(design):
    table = rehearsal_outcomes(design, allocation(design, 200), seed=11, outcomes=["phq9_change"])
    out = design.outcome("phq9_change")
    x = table[list(design.factor_names)].to_numpy(float)
    fit = sm.OLS(table["phq9_change"].to_numpy(), sm.add_constant(x)).fit()
    assert fit.params[0] == pytest.approx(out.mean, abs=4 * fit.bse[0])
    for i, name in enumerate(design.factor_names):
        truth = out.effects.get(name, 0.0) / 2  # classic effect = 2 × coefficient
        assert fit.params[i + 1] == pytest.approx(truth, abs=4 * fit.bse[i + 1])
    assert np.std(fit.resid) == pytest.approx(out.sd, rel=0.05)


def test_binary_outcome_has_the_baseline_rate_with_everything_off(design):
    table = rehearsal_outcomes(design, allocation(design, 400), seed=5, outcomes=["retention"])
    assert set(table["retention"].unique()) <= {0, 1}
    off = (table[list(design.factor_names)] == -1).all(axis=1)
    rate = table.loc[off, "retention"].mean()
    se = np.sqrt(0.45 * 0.55 / off.sum())
    assert rate == pytest.approx(0.45, abs=4 * se)
    # the mean over all conditions equals the mean of the true condition probabilities
    codes = design.conditions()
    coefs = outcome_coefficients(design.outcome("retention"), design.factor_names)
    terms = list(coefs)
    p = 1 / (1 + np.exp(-model_matrix(codes, terms) @ np.array([coefs[t] for t in terms])))
    assert table["retention"].mean() == pytest.approx(p.mean(), abs=4 * np.sqrt(0.25 / len(table)))


def test_same_seed_same_outcomes_other_seed_differs(design):
    base = allocation(design, 2)
    a = rehearsal_outcomes(design, base, seed=1)
    b = rehearsal_outcomes(design, base, seed=1)
    c = rehearsal_outcomes(design, base, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["phq9_change"], c["phq9_change"])
    assert list(a.columns) == [*base.columns, "phq9_change", "retention"]


def test_export_rehearse_analyse_path(run, tmp_path):
    db, key = f"sqlite:///{tmp_path / 't.db'}", tmp_path / "t.key"
    assert run("trial", "create", FACTORIAL, "--db", db, "--key-file", key).exit_code == 0
    for i in range(64):
        site = ("london", "manchester", "online")[i % 3]
        result = run("trial", "enrol", "app_components_factorial", f"P{i:03d}",
                     "--stratum", f"site={site}", "--db", db)
        assert result.exit_code == 0, result.output
    alloc = tmp_path / "alloc.csv"
    exported = run("trial", "export", "app_components_factorial", "--db", db, "--format", "csv")
    alloc.write_text(exported.output)
    data = tmp_path / "data.parquet"
    result = run("simulate", "outcomes", FACTORIAL, alloc, "--seed", "3", "--out", data)
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(data)
    assert len(table) == 64 and {"phq9_change", "retention"} <= set(table.columns)
    result = run("analyse", "factorial", FACTORIAL, data, "--engine", "fast", "--seed", "1",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [c["name"] for c in report["components"]] == list(load_design(FACTORIAL).factor_names)


def test_stdout_csv(run, tmp_path, design):
    alloc = tmp_path / "a.csv"
    allocation(design, 1).to_csv(alloc, index=False)
    result = run("simulate", "outcomes", FACTORIAL, alloc, "--seed", "0", "--outcome", "retention")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].endswith(",retention") and len(lines) == 33


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda t: t.assign(human_voice=(t["human_voice"] + 1) // 2), "coded {0, 1}"),
        (lambda t: t.drop(columns=["goal_setting"]), "no column for factor(s) goal_setting"),
        (lambda t: t.assign(phq9_change=0.0), "already has column(s) phq9_change"),
    ],
)
def test_bad_tables_exit_2_with_one_line(run, tmp_path, design, mutate, needle):
    alloc = tmp_path / "bad.csv"
    mutate(allocation(design, 1)).to_csv(alloc, index=False)
    result = run("simulate", "outcomes", FACTORIAL, alloc, "--seed", "0")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and needle in result.output


def test_unknown_outcome_and_wrong_kind_exit_2(run, tmp_path, design):
    alloc = tmp_path / "a.csv"
    allocation(design, 1).to_csv(alloc, index=False)
    result = run("simulate", "outcomes", FACTORIAL, alloc, "--seed", "0", "--outcome", "mood")
    assert result.exit_code == 2 and "use one of: phq9_change, retention" in result.output
    # MRT and adaptive designs have their own rehearsal (tests/test_mrt_rehearse.py,
    # tests/test_adaptive_final.py): a factorial allocation does not fit them
    result = run("simulate", "outcomes", "designs/three-arm-adaptive.toml", alloc, "--seed", "0")
    assert result.exit_code == 2 and "no column 'arm'" in result.output
    result = run("simulate", "outcomes", "designs/checkin-prompts-mrt.toml", alloc, "--seed", "0")
    assert result.exit_code == 2 and "no column id, decision_point" in result.output
