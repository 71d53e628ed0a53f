"""``trialkit trial outcome|interim|status --out`` on a live adaptive trial, embedded and served.

The same commands run in embedded mode and as clients of a real server on loopback (with the
token of the role each needs: outcomes by an ``app`` token, interims by a ``statistician``).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from livekit import LIVE_DESIGN

TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture
def run(trial_run):
    """Run ``trialkit`` embedded or through a server."""
    return trial_run


@pytest.fixture
def live(run, tmp_path):
    """Create the trial ``live`` in a SQLite store and enrol P01..P30; return the store URL."""
    design = tmp_path / "live.toml"
    design.write_text(LIVE_DESIGN)
    db = f"sqlite:///{tmp_path / 'live.db'}"
    created = run("trial", "create", design, "--db", db, "--key-file", tmp_path / "k",
                  "--format", "json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["method"] == "adaptive"
    for i in range(1, 31):
        assert run("trial", "enrol", "live", f"P{i:02d}", "--db", db).exit_code == 0
    return db


def _one_line_error(result, words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert words in result.stderr, result.stderr


def test_outcomes_interim_status_and_export(run, live, tmp_path):
    """Record outcomes (one, then a bulk CSV), run the first look, and read it back."""
    one = run("trial", "outcome", "live", "P01", "--value", "1", "--observed-at", TODAY,
              "--db", live, "--format", "json")
    assert one.exit_code == 0, one.output
    out = json.loads(one.stdout)
    assert out["value"] == 1.0 and out["corrected"] is False and out["receipt"].startswith("tk1:")
    not_due = run("trial", "interim", "live", "--db", live)
    _one_line_error(not_due, "look 1 is not due: it needs outcomes of 20 participants and 1")
    rows = "participant,value,observed_at\n" + "".join(
        f"P{i:02d},{i % 2},{TODAY}\n" for i in range(2, 21))
    bulk = run("trial", "outcome", "live", "--bulk", "--db", live, "--format", "json",
               input=rows)
    assert bulk.exit_code == 0, bulk.output
    assert len(json.loads(bulk.stdout)["outcomes"]) == 19
    look = run("trial", "interim", "live", "--db", live, "--format", "json")
    assert look.exit_code == 0, look.output
    result = json.loads(look.stdout)
    assert result["look"] == 1 and result["participants_with_outcomes"] == 20
    assert sum(a["n"] for a in result["arms"]) == 20
    assert abs(sum(result["probabilities"]) - 1) < 1e-12
    status = json.loads(run("trial", "status", "live", "--db", live, "--format",
                            "json").stdout)["adaptive"]
    assert status["looks_done"] == 1 and status["outcomes"] == 20
    assert list(status["probabilities"].values()) == result["probabilities"]
    assert status["next_look"] == {"look": 2, "needs_outcomes": 40, "randomised_limit": 50}
    png = tmp_path / "looks.png"
    plotted = run("trial", "status", "live", "--out", png, "--db", live)
    assert plotted.exit_code == 0, plotted.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    exported = run("trial", "export", "live", "--format", "csv", "--db", live)
    table = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(table) == 30
    assert {"look", "allocation_probability", "outcome", "outcome_recorded_at"} <= set(table[0])
    assert table[0]["outcome"] == "1.0" and table[25]["outcome"] == ""


@pytest.mark.parametrize(("args", "stdin", "words"), [
    (["P99", "--value", "1"], None, "participant 'P99' is not enrolled"),
    (["P01", "--value", "3"], None, "not 0 or 1"),
    (["P01"], None, "give PARTICIPANT and --value"),
    (["--bulk"], "who,value\nP01,1\n", "need a header with participant and value"),
    (["--bulk"], "participant,value\n", "no outcome rows"),
    (["--bulk", "P01"], "participant,value\nP01,1\n", "--bulk reads everything from stdin"),
    (["--bulk"], "participant,value\nP01,1\nP02,x\n", "outcome 2:"),
])
def test_bad_outcomes_exit_2_with_one_line(run, live, args, stdin, words):
    """Bad outcome commands: one line, exit 2, and no outcome recorded."""
    result = run("trial", "outcome", "live", *args, "--db", live, input=stdin)
    _one_line_error(result, words)
    exported = run("trial", "export", "live", "--format", "json", "--db", live)
    assert all(r["outcome"] is None for r in json.loads(exported.stdout))


def test_plotting_a_trial_without_looks_is_refused(run, tmp_path):
    """``status --out`` of a fixed-allocation trial says why it cannot draw anything."""
    design = tmp_path / "fixed.toml"
    design.write_text(LIVE_DESIGN + '\n[randomisation]\nmethod = "blocks"\n')
    db = f"sqlite:///{tmp_path / 'f.db'}"
    assert run("trial", "create", design, "--db", db, "--key-file", tmp_path / "k").exit_code == 0
    result = run("trial", "status", "live", "--out", tmp_path / "p.png", "--db", db)
    _one_line_error(result, "no interim analyses to plot")
    _one_line_error(run("trial", "interim", "live", "--db", db), "does not take 'interim'")


def test_roles_for_outcomes_and_interims_on_the_server(tmp_path):
    """Apps and a site's coordinator post outcomes (own site only); a statistician runs looks."""
    from serverkit import Server, call

    from trialkit.service import Trial

    design = tmp_path / "live.toml"
    design.write_text(LIVE_DESIGN + '\n[randomisation]\nmethod = "adaptive"\n\n'
                                    '[randomisation.strata]\nsite = ["a", "b"]\n')
    db = f"sqlite:///{tmp_path / 's.db'}"
    with Trial.create(str(design), db, key_file=str(tmp_path / "k")) as trial:
        for i in range(1, 21):
            trial.enrol(f"P{i:02d}", {"site": "a" if i <= 10 else "b"})
        tokens = {role: trial.create_token(role)["token"]
                  for role in ("app", "statistician", "auditor")}
        tokens["coordinator_a"] = trial.create_token("coordinator", {"site": ["a"]})["token"]
    with Server(db) as server:
        url, path = server.url, "/v1/trials/live"
        status, body = call(url, "POST", path + "/outcomes", tokens["coordinator_a"],
                            {"participant": "P15", "value": 1})
        assert status == 403 and "site = a" in body["error"]
        status, body = call(url, "POST", path + "/outcomes", tokens["coordinator_a"],
                            [{"participant": f"P{i:02d}", "value": i % 2} for i in range(1, 11)])
        assert status == 200, body
        assert len(body) == 10
        status, body = call(url, "POST", path + "/outcomes", tokens["app"],
                            [{"participant": f"P{i:02d}", "value": "1"} for i in range(11, 21)])
        assert status == 200, body
        for role in ("app", "coordinator_a", "auditor"):
            assert call(url, "POST", path + "/interim", tokens[role])[0] == 403
        status, look = call(url, "POST", path + "/interim", tokens["statistician"])
        assert status == 200 and look["look"] == 1 and look["participants_with_outcomes"] == 20
        status, again = call(url, "POST", path + "/interim", tokens["statistician"])
        assert status == 400 and "look 2 is not due" in again["error"]
        for role in ("statistician", "auditor"):
            status, looks = call(url, "GET", path + "/looks", tokens[role])
            assert status == 200 and looks[0]["probabilities"] == look["probabilities"]
        assert call(url, "GET", path + "/looks", tokens["app"])[0] == 403
        status, bad = call(url, "POST", path + "/outcomes", tokens["app"],
                           {"participant": "P01", "value": 1, "extra": True})
        assert status == 400
