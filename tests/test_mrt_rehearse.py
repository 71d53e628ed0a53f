"""MRT: plan → randomise → rehearse → analyse on the export's own column names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
MRT = ROOT / "designs" / "checkin-prompts-mrt.toml"

# A constant standardised effect 0.3 (and a constant log relative risk 0.2 from 0.25):
# the marginal effect is the Intercept of an analysis without moderators.
CONSTANT = """kind = "mrt"
name = "constant_mrt"
[schedule]
days = 10
decisions_per_day = 3
[treatment]
probability = 0.5
[availability]
mean = 0.8
[outcomes.mood]
type = "continuous"
[outcomes.mood.effect]
mean = 0.3
[outcomes.opened]
type = "binary"
[outcomes.opened.effect]
mean = 0.2
[outcomes.opened.baseline]
mean = 0.25
"""


def export_like(n: int, n_points: int, prob: float = 0.6, seed: int = 0) -> pd.DataFrame:
    """Return a decision export as `trialkit trial export` writes it for an MRT."""
    rng = np.random.default_rng(seed)
    avail = (rng.random((n, n_points)) < 0.8).astype(int)
    treat = ((rng.random((n, n_points)) < prob) & (avail == 1)).astype(int)
    return pd.DataFrame({
        "id": np.repeat([f"U{i:03d}" for i in range(n)], n_points),
        "decision_point": np.tile(np.arange(1, n_points + 1), n),
        "availability": avail.ravel(), "treatment": treat.ravel(),
        "probability": np.full(n * n_points, prob)})


def test_export_columns_are_those_the_service_writes():
    from trialkit.mrt.export import EXPORT_COLUMNS
    from trialkit.service.mrt import MRT_COLUMNS

    assert tuple(EXPORT_COLUMNS.values()) == MRT_COLUMNS


def test_plan_randomise_rehearse_analyse_through_the_cli(run, tmp_path):
    db, key = f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "m.key"
    assert run("trial", "create", MRT, "--db", db, "--key-file", key).exit_code == 0
    rng = np.random.default_rng(3)
    rows = ["participant,decision_point,available,reason"]
    for u in range(30):
        for dp in range(1, 211):
            available = rng.random() < 0.8
            rows.append(f"U{u:02d},{dp},{int(available)},{'' if available else 'driving'}")
    res = run("trial", "decide", "checkin_prompts_mrt", "--bulk", "--db", db,
              input="\n".join(rows) + "\n")
    assert res.exit_code == 0, res.output
    decisions = tmp_path / "decisions.csv"
    decisions.write_text(run("trial", "export", "checkin_prompts_mrt", "--db", db, "--format",
                             "csv").stdout)
    rehearsal = tmp_path / "rehearsal.csv"
    res = run("simulate", "outcomes", MRT, decisions, "--seed", "1", "--out", rehearsal)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(rehearsal)
    assert {"engagement_1h", "mood"} <= set(table.columns)
    assert table.loc[table["availability"] == 0, "mood"].isna().all()
    assert table.loc[table["availability"] == 1, "engagement_1h"].isin([0, 1]).all()
    res = run("analyse", "mrt", rehearsal, "--design", MRT, "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    # the design's first outcome is binary with a linear effect: EMEE with day as moderator
    assert out["outcome"] == "engagement_1h" and out["estimator"] == "EMEE"
    assert [e["term"] for e in out["effects"]] == ["Intercept", "day"]
    assert out["controls"] == ["day", "day:day"]          # analysis.controls = 3
    assert out["numerator_prob"] == 0.6 and out["n_participants"] == 30
    n_unavailable = int((table["availability"] == 0).sum())
    assert out["data"]["analysed"] == len(table) - n_unavailable
    assert out["data"]["exclusions"] == [{"reason": "not available (availability = 0)",
                                          "rows": n_unavailable}]


def test_rehearsal_outcomes_recover_the_assumed_effects(tmp_path, run):
    design = tmp_path / "constant.toml"
    design.write_text(CONSTANT)
    decisions = tmp_path / "decisions.csv"
    export_like(400, 30, prob=0.5, seed=5).to_csv(decisions, index=False)
    rehearsal = tmp_path / "rehearsal.csv"
    assert run("simulate", "outcomes", design, decisions, "--seed", "2", "--out",
               rehearsal).exit_code == 0
    for outcome, truth in (("mood", 0.3), ("opened", 0.2)):
        res = run("analyse", "mrt", rehearsal, "--design", design, "--outcome", outcome,
                  "--format", "json")
        assert res.exit_code == 0, res.output
        effect = json.loads(res.stdout)["effects"][0]
        assert effect["term"] == "Intercept"
        assert abs(effect["estimate"] - truth) < 4 * effect["std_error"], (outcome, effect)


def test_same_seed_same_rehearsal(tmp_path):
    from trialkit.design import load_design
    from trialkit.mrt.rehearse import rehearsal_outcomes

    design = load_design(MRT)
    table = export_like(5, 210)
    a = rehearsal_outcomes(design, table, seed=4)
    b = rehearsal_outcomes(design, table, seed=4)
    c = rehearsal_outcomes(design, table, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not a["mood"].equals(c["mood"])


def test_export_names_are_the_default_columns(run, tmp_path):
    from trialkit.design import load_design
    from trialkit.mrt.rehearse import rehearsal_outcomes

    table = rehearsal_outcomes(load_design(MRT), export_like(30, 210), seed=1)
    path = tmp_path / "r.csv"
    table.to_csv(path, index=False)
    res = run("analyse", "mrt", path, "--outcome", "mood", "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["numerator_prob"] == 0.5 and out["estimator"] == "WCLS"
    assert out["data"]["availability"] == "availability"
    res = run("analyse", "mrt", path)
    assert res.exit_code == 2 and "no outcome column" in res.stderr and "--outcome" in res.stderr


def test_probabilities_come_from_the_design_when_the_export_has_none(run, tmp_path):
    from trialkit.design import load_design
    from trialkit.mrt.rehearse import rehearsal_outcomes

    table = rehearsal_outcomes(load_design(MRT), export_like(30, 210), seed=1)
    with_column, without = tmp_path / "a.csv", tmp_path / "b.csv"
    table.to_csv(with_column, index=False)
    table.drop(columns="probability").to_csv(without, index=False)
    a = json.loads(run("analyse", "mrt", with_column, "--design", MRT, "--format", "json").stdout)
    res = run("analyse", "mrt", without, "--design", MRT, "--format", "json")
    assert res.exit_code == 0, res.output
    b = json.loads(res.stdout)
    assert b["probability"] == "the design's probabilities" and "probability" not in a
    assert a["effects"] == b["effects"]
    res = run("analyse", "mrt", without, "--outcome", "mood")
    assert res.exit_code == 2 and "'probability'" in res.stderr


def test_duplicated_decision_points_are_refused(run, tmp_path):
    table = export_like(20, 30)
    table["mood"] = np.random.default_rng(1).normal(size=len(table))
    table = pd.concat([table.iloc[:35], table.iloc[[33]], table.iloc[35:]], ignore_index=True)
    path = tmp_path / "dup.csv"
    table.to_csv(path, index=False)
    res = run("analyse", "mrt", path, "--outcome", "mood")
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "participant 'U001' has decision point 4 twice (rows 34 and 36)" in lines[0]


@pytest.mark.parametrize(("value", "needle"), [(1e300, "the value 1e+300 at row 12"),
                                               (np.inf, "the value inf at row 12"),
                                               (2e12, "the value 2e+12 at row 12")])
def test_absurd_or_non_finite_values_are_refused(run, tmp_path, value, needle):
    table = export_like(20, 30)
    table["mood"] = np.random.default_rng(1).normal(size=len(table))
    table.loc[11, "availability"] = 1
    table.loc[11, "mood"] = value
    path = tmp_path / "bad.csv"
    table.to_csv(path, index=False)
    res = run("analyse", "mrt", path, "--outcome", "mood")
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "'mood'" in res.stderr and needle in res.stderr


def test_rows_marked_in_error_are_left_out_unless_included(run, tmp_path):
    table = export_like(20, 30)
    table["mood"] = np.random.default_rng(1).normal(size=len(table))
    table["marked_error"] = (table["id"] == "U003").astype(int)
    path = tmp_path / "m.csv"
    table.to_csv(path, index=False)
    out = json.loads(run("analyse", "mrt", path, "--outcome", "mood", "--format", "json").stdout)
    assert out["n_participants"] == 19 and out["data"]["marked_error"] == 30
    marked = [e for e in out["data"]["exclusions"] if e["reason"].startswith("marked in error")]
    assert marked and marked[0]["rows"] == int(table.loc[table.id == "U003", "availability"].sum())
    kept = json.loads(run("analyse", "mrt", path, "--outcome", "mood", "--include-marked-errors",
                          "--format", "json").stdout)
    assert kept["n_participants"] == 20


def test_simulate_outcomes_refuses_a_non_export(run, tmp_path):
    path = tmp_path / "bad.csv"
    export_like(3, 5).drop(columns="treatment").to_csv(path, index=False)
    res = run("simulate", "outcomes", MRT, path)
    assert res.exit_code == 2 and "no column treatment" in res.stderr
    export_like(3, 5).assign(decision_point=500).to_csv(path, index=False)
    res = run("simulate", "outcomes", MRT, path)
    assert res.exit_code == 2 and "outside the design's schedule 1..210" in res.stderr
