"""Factorial analysis input: rows marked in error, and non-finite or absurd values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialkit.bayes.decision_study import individual_data
from trialkit.design import load_design

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "designs" / "app-components-factorial.toml"
MARKED = [3, 40, 41]          # rows (0-based) marked in error in the export


@pytest.fixture(scope="module")
def export():
    """Return a trial export as `trialkit trial export` writes it, with outcomes added."""
    design = load_design(DESIGN)
    cols = individual_data(design, "phq9_change", dict(design.outcomes[0].effects), 256, seed=4)
    table = pd.DataFrame(cols)
    table.insert(0, "participant", [f"P{i:03d}" for i in range(len(table))])
    table["marked_error"] = 0
    table["error_reason"] = ""
    table.loc[MARKED, "marked_error"] = 1
    table.loc[MARKED, "error_reason"] = "enrolled twice"
    table.loc[MARKED, "phq9_change"] = 50.0   # wild values that must not be analysed
    return table


def _analyse(run, tmp_path, table, *extra, name="data.csv"):
    path = tmp_path / name
    table.to_csv(path, index=False)
    res = run("analyse", "factorial", DESIGN, path, "--engine", "fast", "--seed", "1",
              "--draws", "200", "--chains", "2", "--format", "json", *extra)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_rows_marked_in_error_are_left_out_and_reported(run, tmp_path, export):
    out = _analyse(run, tmp_path, export)
    n = len(export)
    assert out["data"]["rows"] == n and out["data"]["analysed"] == n - len(MARKED)
    assert out["data"]["excluded"] == len(MARKED)
    assert out["data"]["exclusions"] == [{"reason": "marked in error (marked_error = 1)",
                                          "rows": len(MARKED)}]
    # the same as analysing the export without those rows
    dropped = _analyse(run, tmp_path, export.drop(index=MARKED), name="dropped.csv")
    assert out["ols"] == dropped["ols"]
    assert out["components"] == dropped["components"]


def test_include_marked_errors_keeps_them(run, tmp_path, export):
    out = _analyse(run, tmp_path, export, "--include-marked-errors")
    assert out["data"]["analysed"] == len(export) and out["data"]["excluded"] == 0
    assert out["data"]["marked_error"] == len(MARKED) and out["data"]["marked_error_included"]
    left_out = _analyse(run, tmp_path, export)
    assert out["ols"] != left_out["ols"]


def test_every_analysis_output_reports_the_rows(run, tmp_path, export):
    for method in ("ols", "bayes", "both"):
        out = _analyse(run, tmp_path, export, "--method", method)
        assert out["data"]["analysed"] == len(export) - len(MARKED), method
    res = run("analyse", "factorial", DESIGN, tmp_path / "data.csv", "--engine", "fast",
              "--method", "ols")
    assert res.exit_code == 0 and "data.analysed" in res.stdout and "marked in error" in res.stdout


def test_a_bad_marked_error_value_is_named(run, tmp_path, export):
    bad = export.copy()
    bad["marked_error"] = bad["marked_error"].astype(object)
    bad.loc[5, "marked_error"] = "maybe"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    res = run("analyse", "factorial", DESIGN, path, "--engine", "fast")
    assert res.exit_code == 2 and "'maybe' at row 6" in res.stderr


@pytest.mark.parametrize(("value", "needle"), [
    (1e300, "has the value 1e+300 at row 8"), (np.inf, "1 infinite values (first at row 8)"),
    (-5e13, "has the value -5e+13 at row 8")])
@pytest.mark.parametrize("engine", ["fast", "prior"])
def test_absurd_or_non_finite_outcomes_are_refused_with_row_and_column(run, tmp_path, export,
                                                                       value, needle, engine):
    bad = export.copy()
    bad.loc[7, "phq9_change"] = value
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    res = run("analyse", "factorial", DESIGN, path, "--engine", engine, "--draws", "20",
              "--chains", "1", "--tune", "0")
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output
    assert "'phq9_change'" in lines[0] and needle in lines[0]


def test_absurd_covariate_is_refused(run, tmp_path, export):
    bad = export.copy()
    bad["baseline_phq9"] = 14.0
    bad.loc[9, "baseline_phq9"] = 9.99e307
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    res = run("analyse", "factorial", DESIGN, path, "--engine", "fast", "--covariate",
              "baseline_phq9")
    assert res.exit_code == 2 and "'baseline_phq9'" in res.stderr and "row 10" in res.stderr


def test_large_but_plausible_values_are_analysed(run, tmp_path, export):
    scaled = export.copy()
    scaled["phq9_change"] = scaled["phq9_change"] * 1e6   # e.g. another unit: still finite sums
    out = _analyse(run, tmp_path, scaled, "--method", "ols")
    assert all(np.isfinite(t["coef"]) for t in out["ols"])
