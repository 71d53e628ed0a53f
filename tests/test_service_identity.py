"""Participant identity: ids are matched whole and normalised; look-alikes are refused.

Control characters and look-alikes are refused for single enrolment, bulk CSV, trial names and
strata; messages quote at most 40 characters; one participant has one stratum.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from dbtools import run_sql

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run(trial_run):
    """Every command of these tests, embedded and through a server."""
    return trial_run
FACTORIAL = ROOT / "designs" / "app-components-factorial.toml"
ADAPTIVE = ROOT / "designs" / "three-arm-adaptive.toml"
MRT = ROOT / "designs" / "checkin-prompts-mrt.toml"

LOOK_ALIKES = {
    "trailing_newline": "P2\n",
    "zero_width_space": "P2\u200b",
    "full_width": "\uff30\uff12",
    "bidi_override": "\u202eP2",
    "escape_sequence": "P2\x1b[31m",
    "nul": "P2\x00",
    "ligature": "\ufb01le",
    "line_separator": "P2\u2028",
}


@pytest.fixture
def adaptive(db_url, tmp_path, run):
    assert run("trial", "create", ADAPTIVE, "--db", db_url, "--key-file",
               tmp_path / "k").exit_code == 0
    assert run("trial", "enrol", "three_arm_adaptive", "P2", "--db", db_url).exit_code == 0
    return db_url


@pytest.mark.parametrize("case", list(LOOK_ALIKES))
def test_look_alike_ids_are_refused_and_nothing_is_written(adaptive, run, case):
    before = run_sql(adaptive, "SELECT COUNT(*) FROM audit")
    res = run("trial", "enrol", "three_arm_adaptive", LOOK_ALIKES[case], "--db", adaptive)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: participant id")
    assert "\x1b" not in res.output and "\x00" not in res.output  # the terminal is safe
    assert run_sql(adaptive, "SELECT COUNT(*) FROM audit") == before


def test_nfc_forms_are_one_participant(adaptive, run):
    composed = unicodedata.normalize("NFC", "Ren\u00e9e")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    first = json.loads(run("trial", "enrol", "three_arm_adaptive", composed, "--db", adaptive,
                           "--format", "json").output)
    again = json.loads(run("trial", "enrol", "three_arm_adaptive", decomposed, "--db", adaptive,
                           "--format", "json").output)
    assert first["new"] is True and again["new"] is False
    assert again["participant"] == composed and again["allocation"] == first["allocation"]


def test_long_ids_are_quoted_to_40_characters(adaptive, run):
    res = run("trial", "enrol", "three_arm_adaptive", "X" * 300, "--db", adaptive)
    assert res.exit_code == 2
    assert "X" * 41 not in res.output and "X" * 40 + "'…" in res.output


def test_bulk_csv_with_a_look_alike_changes_nothing(db_url, tmp_path, run):
    run("trial", "create", MRT, "--db", db_url, "--key-file", tmp_path / "m")
    text = "participant,decision_point,available\nU1,1,1\n\"U1\u200b\",2,1\n"
    before = run_sql(db_url, "SELECT COUNT(*) FROM audit")
    res = run("trial", "decide", "checkin_prompts_mrt", "--bulk", "--db", db_url, input=text)
    assert res.exit_code == 2 and "U+200B" in res.output
    assert run_sql(db_url, "SELECT COUNT(*) FROM audit") == before


@pytest.mark.parametrize("name", ["t\n", "t x", "../t", "t\u200b", "\uff54"])
def test_bad_trial_names_are_refused(tmp_path, run, name):
    db = tmp_path / "n.db"
    res = run("trial", "create", MRT, "--name", name, "--db", f"sqlite:///{db}", "--key-file",
              tmp_path / "k")
    assert res.exit_code == 2 and "trial name" in res.output
    assert not db.exists() and not (tmp_path / "k").exists()


@pytest.mark.parametrize("value", ["london\n", "lon\u200bdon",
                                   "\uff4c\uff4f\uff4e\uff44\uff4f\uff4e"])
def test_stratum_values_follow_the_same_rules(db_url, tmp_path, run, value):
    run("trial", "create", FACTORIAL, "--db", db_url, "--key-file", tmp_path / "f")
    res = run("trial", "enrol", "app_components_factorial", "P1", "--stratum", f"site={value}",
              "--db", db_url)
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "--stratum" in res.output
    assert run_sql(db_url, "SELECT COUNT(*) FROM participants") == [(0,)]


def test_a_design_with_a_look_alike_stratum_value_cannot_be_created(tmp_path, run):
    text = FACTORIAL.read_text()
    assert 'site = ["london"' in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('site = ["london"', 'site = ["lon\u200bdon"'))
    res = run("trial", "create", bad, "--db", f"sqlite:///{tmp_path / 'b.db'}", "--key-file",
              tmp_path / "k")
    assert res.exit_code == 2 and "U+200B" in res.output
    assert not (tmp_path / "b.db").exists()


def test_reenrolling_with_another_stratum_is_a_conflict(db_url, tmp_path, run):
    run("trial", "create", FACTORIAL, "--db", db_url, "--key-file", tmp_path / "f")
    assert run("trial", "enrol", "app_components_factorial", "P1", "--stratum", "site=london",
               "--db", db_url).exit_code == 0
    res = run("trial", "enrol", "app_components_factorial", "P1", "--stratum", "site=online",
              "--db", db_url)
    assert res.exit_code == 2 and "already enrolled in stratum site=london" in res.output
    assert run_sql(db_url, "SELECT COUNT(*) FROM audit WHERE action = 'enrol'") == [(1,)]


@pytest.mark.parametrize("dp", ["inf", "nan", "1e10", "-1", "2.5", "٣", "1_0", ""])
def test_bad_decision_points_are_one_line(db_url, tmp_path, run, dp):
    run("trial", "create", MRT, "--db", db_url, "--key-file", tmp_path / "m")
    res = run("trial", "decide", "checkin_prompts_mrt", "U1", "--decision-point", dp,
              "--available", "--db", db_url)
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "decision point" in res.output


def test_python_api_refuses_non_finite_decision_points(db_url, tmp_path):
    from trialkit.service import InvalidInput, Trial

    Trial.create(MRT, db_url, key_file=str(tmp_path / "m")).close()
    with Trial.open(db_url) as trial:
        for bad in (float("inf"), float("nan"), 2.5, True, None):
            with pytest.raises(InvalidInput, match="decision point"):
                trial.decide("U1", bad)
        assert trial.decide("U1", 4.0)["decision_point"] == 4
