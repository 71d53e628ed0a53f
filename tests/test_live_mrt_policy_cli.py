"""``trialkit trial decide|outcome|policy-update|policy|schedule`` on a live adaptive MRT.

The same commands run embedded and as clients of a real server on loopback (decisions and
schedules with an ``app`` token, updates with a ``statistician`` token).
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from livemrt import LIVE_MRT


@pytest.fixture
def run(trial_run):
    """Run ``trialkit`` embedded or through a server."""
    return trial_run


@pytest.fixture
def live(run, tmp_path):
    """Create the adaptive MRT ``live_mrt`` in a SQLite store; return the store URL."""
    design = tmp_path / "live_mrt.toml"
    design.write_text(LIVE_MRT)
    db = f"sqlite:///{tmp_path / 'live.db'}"
    created = run("trial", "create", design, "--db", db, "--key-file", tmp_path / "k")
    assert created.exit_code == 0, created.output
    return db


def _error(result, words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert words in result.stderr, result.stderr


def test_decide_outcome_update_schedule_export_verify(run, live, tmp_path):
    one = run("trial", "decide", "live_mrt", "U1", "--decision-point", "1", "--available",
              "--context", "stress=0.4", "--context", "engaged=1", "--db", live,
              "--format", "json")
    assert one.exit_code == 0, one.output
    got = json.loads(one.stdout)
    assert got["policy_version"] == 0 and got["context"] == {"stress": 0.4, "engaged": 1.0}
    assert 0.2 <= got["probability"] <= 0.8
    bulk = ("participant,decision_point,available,reason,stress,engaged\n"
            "U2,1,1,,-0.5,0\nU3,1,0,driving,,\n")
    many = run("trial", "decide", "live_mrt", "--bulk", "--db", live, "--format", "json",
               input=bulk)
    assert many.exit_code == 0, many.output
    assert [d["available"] for d in json.loads(many.stdout)["decisions"]] == [True, False]
    outs = "participant,decision_point,value\nU1,1,0.7\nU2,1,-0.2\n"
    rec = run("trial", "outcome", "live_mrt", "--bulk", "--db", live, input=outs)
    assert rec.exit_code == 0, rec.output
    up = run("trial", "policy-update", "live_mrt", "--db", live, "--format", "json")
    assert up.exit_code == 0, up.output
    made = json.loads(up.stdout)
    assert (made["version"], made["rows"], made["missing"]) == (1, 2, 0)
    sched = run("trial", "schedule", "live_mrt", "OFF", "--decision-points", "1..3",
                "--context", "engaged=1", "--db", live, "--format", "json")
    assert sched.exit_code == 0, sched.output
    decisions = json.loads(sched.stdout)["decisions"]
    assert [d["policy_version"] for d in decisions] == [1, 1, 1]
    shown = run("trial", "policy", "live_mrt", "--db", live, "--format", "json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["version"] == 1
    export = run("trial", "export", "live_mrt", "--db", live, "--format", "csv")
    assert export.exit_code == 0, export.output
    rows = list(csv.DictReader(io.StringIO(export.stdout)))
    assert list(rows[0]) == ["id", "decision_point", "availability", "treatment", "probability",
                             "policy_version", "scheduled", "stress", "engaged", "brushing"]
    assert [r["brushing"] for r in rows if r["id"] in ("U1", "U2")] == ["0.7", "-0.2"]
    key = [] if run.__self__.mode == "server" else ["--key-file", tmp_path / "k"]
    checked = run("trial", "verify", "live_mrt", "--db", live, *key, "--format", "json")
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.stdout)
    assert report["ok"] and report["replayed"] == 7   # 6 decisions and one update


def test_bad_context_and_outcomes_exit_2_with_one_line(run, live):
    base = ("trial", "decide", "live_mrt", "U1", "--decision-point", "1", "--available",
            "--db", live)
    _error(run(*base, "--context", "stress=nan", "--context", "engaged=1"), "not finite")
    _error(run(*base, "--context", "stress=1"), "missing the context engaged")
    _error(run(*base, "--context", "stress=1", "--context", "engaged=1", "--context",
               "mood=2"), "'mood' is not one of")
    _error(run(*base, "--context", "stress"), "is not KEY=VALUE")
    _error(run("trial", "decide", "live_mrt", "--bulk", "--db", live,
               input="participant,decision_point,available,stress,engaged\nU1,1,1,x,1\n"),
           "is not a number")
    _error(run("trial", "outcome", "live_mrt", "U1", "--decision-point", "1", "--value", "1",
               "--db", live), "has not been decided")
    _error(run("trial", "schedule", "live_mrt", "U1", "--decision-points", "5..2",
               "--db", live), "wrong order")
    status = run("trial", "status", "live_mrt", "--db", live, "--format", "json")
    assert json.loads(status.stdout)["decision_points"] == 0
