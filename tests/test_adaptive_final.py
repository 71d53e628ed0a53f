"""Adaptive trials: plan → randomise → rehearse → analyse, and the analysis of the outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
ADAPTIVE = ROOT / "designs" / "three-arm-adaptive.toml"
FACTORIAL = ROOT / "designs" / "app-components-factorial.toml"
ARMS = ["usual_app", "core_package", "full_package"]


def allocations(n: int) -> pd.DataFrame:
    """Return an allocation export of ``n`` participants as `trialkit trial export` writes it."""
    return pd.DataFrame({"participant": [f"P{i:04d}" for i in range(n)],
                         "sequence": np.arange(1, n + 1), "arm": [ARMS[i % 3] for i in range(n)],
                         "enrolled_at": "2025-01-01T00:00:00Z", "marked_error": 0,
                         "error_reason": ""})


def test_plan_randomise_rehearse_analyse_through_the_cli(run, tmp_path):
    db, key = f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "a.key"
    assert run("trial", "create", ADAPTIVE, "--db", db, "--key-file", key).exit_code == 0
    for i in range(45):
        assert run("trial", "enrol", "three_arm_adaptive", f"P{i:03d}", "--db", db).exit_code == 0
    export = tmp_path / "allocations.csv"
    export.write_text(run("trial", "export", "three_arm_adaptive", "--db", db, "--format",
                          "csv").stdout)
    rehearsal = tmp_path / "rehearsal.csv"
    res = run("simulate", "outcomes", ADAPTIVE, export, "--seed", "1", "--scenario", "null",
              "--out", rehearsal)
    assert res.exit_code == 0, res.output
    assert set(pd.read_csv(rehearsal)["outcome"]) <= {0, 1}
    res = run("analyse", "adaptive", ADAPTIVE, rehearsal, "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [a["arm"] for a in out["arms"]] == ARMS
    assert sum(a["n"] for a in out["arms"]) == 45 == out["data"]["analysed"]
    assert out["decision"] in ("none", "superiority", "equivalence", "futility")
    assert out["look"] == 18


def test_rehearsal_draws_the_scenario(tmp_path):
    from trialkit.adaptive.final import rehearsal_outcomes
    from trialkit.design import load_design

    table = rehearsal_outcomes(load_design(ADAPTIVE), allocations(30000), seed=2,
                               scenario="alternative")
    rates = table.groupby("arm")["outcome"].mean()
    for arm, rate in zip(ARMS, (0.25, 0.20, 0.30), strict=True):   # the scenario's values
        assert abs(rates[arm] - rate) < 4 * np.sqrt(rate * (1 - rate) / 10000)


def test_posteriors_and_p_best_are_the_design_model(run, tmp_path):
    # beta(1, 1) priors, lower is better: P(best) of arm j is P(p_j below the others)
    table = allocations(600)
    rng = np.random.default_rng(4)
    table["outcome"] = (rng.random(600) < np.array([0.3, 0.2, 0.25])[np.arange(600) % 3]).astype(
        int)
    path = tmp_path / "data.csv"
    table.to_csv(path, index=False)
    out = json.loads(run("analyse", "adaptive", ADAPTIVE, path, "--format", "json").stdout)
    draws = []
    for a in out["arms"]:
        events = a["events"]
        assert a["posterior_mean"] == pytest.approx((1 + events) / (2 + a["n"]))
        draws.append(rng.beta(1 + events, 1 + a["n"] - events, 400_000))
    best = np.argmin(np.stack(draws), axis=0)
    for j, a in enumerate(out["arms"]):
        if a["status"] != "inferior":   # dropped arms have no P(best)
            assert a["p_best"] == pytest.approx(np.mean(best == j), abs=0.005)


def test_a_clear_winner_is_declared_superior(run, tmp_path):
    table = allocations(3000)
    rng = np.random.default_rng(7)
    table["outcome"] = (rng.random(3000) < np.array([0.25, 0.10, 0.30])[np.arange(3000) % 3]
                        ).astype(int)
    path = tmp_path / "data.csv"
    table.to_csv(path, index=False)
    out = json.loads(run("analyse", "adaptive", ADAPTIVE, path, "--format", "json").stdout)
    assert out["decision"] == "superiority" and out["superior"] == "core_package"
    assert out["arms"][1]["p_best"] > 0.99 and out["arms"][1]["status"] == "superior"


def test_missing_outcomes_and_marked_errors_are_left_out_and_reported(run, tmp_path):
    table = allocations(90)
    table["outcome"] = np.arange(90) % 2
    table["outcome"] = table["outcome"].astype(object)
    table.loc[80:, "outcome"] = None                 # not observed yet
    table.loc[[3, 4], "marked_error"] = 1
    path = tmp_path / "data.csv"
    table.to_csv(path, index=False)
    out = json.loads(run("analyse", "adaptive", ADAPTIVE, path, "--format", "json").stdout)
    assert out["data"]["rows"] == 90 and out["data"]["analysed"] == 78
    assert {e["reason"]: e["rows"] for e in out["data"]["exclusions"]} == {
        "marked in error (marked_error = 1)": 2, "no outcome (yet)": 10}
    kept = json.loads(run("analyse", "adaptive", ADAPTIVE, path, "--include-marked-errors",
                          "--format", "json").stdout)
    assert kept["data"]["analysed"] == 80


@pytest.mark.parametrize(("change", "needle"), [
    (lambda t: t.assign(arm=t["arm"].where(t.index != 5, "placebo")),
     "the arm 'placebo' at row 6"),
    (lambda t: t.assign(outcome=t["outcome"].where(t.index != 7, 2)), "value 2 at row 8"),
    (lambda t: t.assign(outcome=t["outcome"].where(t.index != 7, 1e300)), "1e+300 at row 8"),
    (lambda t: t.drop(columns="arm"), "no column 'arm'"),
])
def test_bad_data_exit_2_with_one_line(run, tmp_path, change, needle):
    table = allocations(30)
    table["outcome"] = (np.arange(30) % 2).astype(float)
    path = tmp_path / "bad.csv"
    change(table).to_csv(path, index=False)
    res = run("analyse", "adaptive", ADAPTIVE, path)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and needle in res.stderr


def test_scenario_is_for_adaptive_rehearsals_only(run, tmp_path):
    path = tmp_path / "a.csv"
    allocations(6).to_csv(path, index=False)
    res = run("simulate", "outcomes", ADAPTIVE, path, "--scenario", "nope")
    assert res.exit_code == 2 and "scenario 'nope'" in res.stderr
    res = run("simulate", "outcomes", FACTORIAL, path, "--scenario", "null")
    assert res.exit_code == 2 and "--scenario" in res.stderr
