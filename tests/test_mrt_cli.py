"""``trialkit analyse mrt``: JSON contract, file formats, and bad input (exit 2, one line)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trialkit.mrt.generate import generate_mrt_data

T = 30


@pytest.fixture
def frame() -> pd.DataFrame:
    data = generate_mrt_data(25, np.full(T, 0.4), np.full(T, 0.75), np.full(T, 0.3), seed=8,
                             decisions_per_day=3)
    df = pd.DataFrame(data)
    df["stress"] = np.random.default_rng(1).normal(size=len(df))
    df["engaged"] = (np.random.default_rng(2).random(len(df)) < 0.3).astype(int)
    return df


def _write(df: pd.DataFrame, tmp_path, name="mrt.csv"):
    path = tmp_path / name
    if name.endswith(".parquet"):
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False)
    return path


BASE = ["--id", "id", "--decision-point", "decision_point", "--outcome", "y", "--treatment", "a",
        "--prob", "prob", "--availability", "avail"]


def test_contract_with_moderator_lincomb_and_conf_level(run, frame, tmp_path):
    path = _write(frame, tmp_path)
    res = run("analyse", "mrt", path, *BASE, "--moderator", "day", "--control", "stress",
              "--lincomb", "1,20", "--conf-level", "0.9", "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out) == {"effects", "n_participants", "outcome", "estimator", "numerator_prob",
                        "small_sample", "moderators", "controls", "data"}
    assert out["n_participants"] == 25
    assert [e["term"] for e in out["effects"]] == ["Intercept", "day", "Intercept + 20*day"]
    for e in out["effects"]:
        assert set(e) == {"term", "estimate", "std_error", "ci_low", "ci_high", "p_value", "df"}
        assert e["df"] == 25 - 2 - 2
        assert e["ci_low"] < e["estimate"] < e["ci_high"]
    inter, slope, comb = out["effects"]
    assert comb["estimate"] == pytest.approx(inter["estimate"] + 20 * slope["estimate"])


def test_parquet_and_csv_agree_and_unavailable_na_outcomes_are_fine(run, frame, tmp_path):
    assert frame.loc[frame.avail == 0, "y"].isna().all()       # NA outcomes where unavailable
    csv = json.loads(run("analyse", "mrt", _write(frame, tmp_path), *BASE, "--format",
                         "json").output)
    pq = json.loads(run("analyse", "mrt", _write(frame, tmp_path, "mrt.parquet"), *BASE,
                        "--format", "json").output)
    assert csv == pq


def test_numerator_probability_default_comes_from_the_design(run, frame, tmp_path, designs_dir):
    path = _write(frame, tmp_path)
    design = designs_dir / "checkin-prompts-mrt.toml"             # constant probability 0.6
    with_design = run("analyse", "mrt", path, *BASE, "--design", design, "--format", "json")
    explicit = run("analyse", "mrt", path, *BASE, "--numerator-prob", "0.6", "--format", "json")
    default = run("analyse", "mrt", path, *BASE, "--format", "json")
    half = run("analyse", "mrt", path, *BASE, "--numerator-prob", "0.5", "--format", "json")
    assert json.loads(with_design.output) == json.loads(explicit.output)
    assert json.loads(default.output) == json.loads(half.output)
    assert json.loads(default.output) != json.loads(explicit.output)


def test_binary_outcome_uses_emee(run, frame, tmp_path):
    path = _write(frame, tmp_path)
    args = [("engaged" if prev == "--outcome" else v) for prev, v in zip(["", *BASE], BASE)]
    res = run("analyse", "mrt", path, *args, "--binary", "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert abs(out["effects"][0]["estimate"]) < 1.0      # engagement is independent of treatment
    y_fit = json.loads(run("analyse", "mrt", path, *BASE, "--format", "json").output)
    assert y_fit != out
    res = run("analyse", "mrt", path, *BASE, "--binary")
    assert res.exit_code == 2 and "'y'" in res.output and "0 or 1" in res.output


def _bad(run, df, tmp_path, *extra):
    res = run("analyse", "mrt", _write(df, tmp_path), *BASE, *extra)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error:") and res.output.count("\n") == 1, res.output
    return res.output


def test_bad_treatment(run, frame, tmp_path):
    df = frame.copy()
    first = int(np.flatnonzero(df.avail == 1)[3])
    df.loc[first, "a"] = 2
    out = _bad(run, df, tmp_path)
    assert "'a'" in out and f"row {first + 1}" in out
    df = frame.copy()
    df.loc[first, "a"] = np.nan
    out = _bad(run, df, tmp_path)
    assert "'a'" in out and f"row {first + 1}" in out and "missing" in out


def test_missing_treatment_column(run, frame, tmp_path):
    out = _bad(run, frame.drop(columns="a"), tmp_path)
    assert "column 'a' is not in the data" in out


def test_probability_outside_unit_interval(run, frame, tmp_path):
    df = frame.copy()
    row = int(np.flatnonzero(df.avail == 1)[5])
    df.loc[row, "prob"] = 1.0
    out = _bad(run, df, tmp_path)
    assert "'prob'" in out and f"row {row + 1}" in out
    out = _bad(run, frame, tmp_path, "--prob", "0")  # the later --prob wins
    assert "--prob" in out


def test_na_in_used_column_at_available_row(run, frame, tmp_path):
    df = frame.copy()
    row = int(np.flatnonzero(df.avail == 1)[7])
    df.loc[row, "stress"] = np.nan
    out = _bad(run, df, tmp_path, "--control", "stress")
    assert "'stress'" in out and f"row {row + 1}" in out
    df = frame.copy()
    df.loc[row, "y"] = np.nan
    out = _bad(run, df, tmp_path)
    assert "'y'" in out and f"row {row + 1}" in out


def test_rows_not_grouped_by_participant(run, frame, tmp_path):
    df = pd.concat([frame.iloc[:10], frame.iloc[40:50], frame.iloc[10:40], frame.iloc[50:]])
    out = _bad(run, df.reset_index(drop=True), tmp_path)
    assert "'id'" in out and "not grouped" in out and "row 21" in out


def test_constant_moderator(run, frame, tmp_path):
    df = frame.copy()
    df["site"] = 3
    out = _bad(run, df, tmp_path, "--moderator", "site")
    assert "'site'" in out and "constant" in out


def test_bad_options(run, frame, tmp_path):
    assert "--conf-level" in _bad(run, frame, tmp_path, "--conf-level", "1.5")
    assert "--lincomb" in _bad(run, frame, tmp_path, "--lincomb", "1,2,3")
    assert "formula" in _bad(run, frame, tmp_path, "--moderator", "day *")
    assert "--numerator-prob" in _bad(run, frame, tmp_path, "--numerator-prob", "1")


def test_missing_file(run, tmp_path):
    res = run("analyse", "mrt", tmp_path / "nope.csv", *BASE)
    assert res.exit_code == 2 and "no such file" in res.output


def test_commands_have_examples():
    from trialkit.cli.mrt import analyse_mrt, power_design, samplesize_design

    for cmd in (analyse_mrt, power_design, samplesize_design):
        assert "\b\n    Example:" in cmd.help or "Example:" in cmd.help


def test_collinear_moderators_and_missing_decision_point(run, frame, tmp_path):
    df = frame.copy()
    df["day2"] = 2 * df["day"]
    out = _bad(run, df, tmp_path, "--moderator", "day + day2")
    assert "collinear" in out
    df = frame.copy()
    row = int(np.flatnonzero(df.avail == 1)[2])
    df.loc[row, "decision_point"] = np.nan
    out = _bad(run, df, tmp_path)
    assert "'decision_point'" in out and f"row {row + 1}" in out


def test_too_few_participants_and_no_available_rows(run, frame, tmp_path):
    few = frame[frame.id <= 3].reset_index(drop=True)              # 3 participants, p + q = 3
    out = _bad(run, few, tmp_path, "--moderator", "day")
    assert "only 3 participant(s)" in out and "df = n − p − q = 0" in out
    never = frame.copy()
    never["avail"] = 0
    out = _bad(run, never, tmp_path)
    assert "'avail'" in out and "0 on every row" in out


def test_constant_treatment_or_outcome_at_available_rows(run, frame, tmp_path):
    first = int(np.flatnonzero(frame.avail == 1)[0])
    df = frame.copy()
    df.loc[df.avail == 1, "a"] = 1
    out = _bad(run, df, tmp_path)
    assert "'a'" in out and "every available row" in out and f"row {first + 1}" in out
    df = frame.copy()
    df.loc[df.avail == 1, "engaged"] = 1                           # always engaged: no EMEE
    args = [("engaged" if prev == "--outcome" else v) for prev, v in zip(["", *BASE], BASE)]
    res = run("analyse", "mrt", _write(df, tmp_path), *args, "--binary")
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "'engaged'" in res.output and "is 1 at every available row" in res.output


def test_non_finite_or_zero_lincomb_and_nan_probability(run, frame, tmp_path):
    assert "not a finite number" in _bad(run, frame, tmp_path, "--lincomb", "nan")
    assert "not a finite number" in _bad(run, frame, tmp_path, "--lincomb", "inf")
    assert "all zero" in _bad(run, frame, tmp_path, "--lincomb", "1;0")
    out = _bad(run, frame, tmp_path, "--prob", "nan")               # the later --prob wins
    assert "--prob" in out and "nan" in out and "row 1" in out


def test_missing_values_at_unavailable_rows_are_ignored(run, frame, tmp_path):
    full = json.loads(run("analyse", "mrt", _write(frame, tmp_path), *BASE, "--control",
                          "stress", "--format", "json").output)
    df = frame.copy()
    off = df.avail == 0
    df["a"] = df["a"].astype(float)
    df.loc[off, ["a", "prob", "stress"]] = np.nan
    holes = run("analyse", "mrt", _write(df, tmp_path, "holes.csv"), *BASE, "--control",
                "stress", "--format", "json")
    assert holes.exit_code == 0, holes.output
    assert json.loads(holes.output) == full


def test_probability_as_a_number_and_extreme_probability_warning(run, frame, tmp_path):
    path = _write(frame, tmp_path)                                  # the prob column is 0.4
    column = json.loads(run("analyse", "mrt", path, *BASE, "--format", "json").output)
    number = run("analyse", "mrt", path, *BASE, "--prob", "0.4", "--format", "json")
    assert number.exit_code == 0, number.output
    assert json.loads(number.output) == column
    res = run("analyse", "mrt", path, *BASE, "--prob", "0.02")
    assert res.exit_code == 0, res.output
    assert "Warning:" in res.output and "weights explode" in res.output
