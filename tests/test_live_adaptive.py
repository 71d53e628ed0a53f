"""Live adaptive trials: outcomes, interims, allocation by probabilities, stopping; both stores.

Bad input changes nothing (the audit log and the outcomes table are compared before and after);
an interim rests on the authenticated log only, so an edited outcomes table cannot steer it; a
blinded trial keeps its interim results sealed; ``verify`` recomputes every interim.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dbtools import run_sql
from livekit import LIVE_DESIGN

from trialkit.design import loads_design
from trialkit.errors import Conflict, DesignError, InvalidInput, NotFound, Tampered
from trialkit.service import Trial

TODAY = datetime.now(UTC).date().isoformat()
LIVE = LIVE_DESIGN


def _design(tmp_path: Path, text: str = LIVE, extra: str = "") -> str:
    path = tmp_path / "live.toml"
    path.write_text(text + extra)
    return str(path)


def _snapshot(url: str) -> tuple:
    return (run_sql(url, "SELECT seq, hash FROM audit ORDER BY seq"),
            run_sql(url, "SELECT participant, value, corrections FROM outcomes ORDER BY 1"),
            run_sql(url, "SELECT n_audit, last_hash, state FROM trials"))


@pytest.fixture
def live(db_url, tmp_path):
    """Open a live adaptive trial (open-label): P01..P05 enrolled, P05 marked in error."""
    trial = Trial.create(_design(tmp_path), db_url, key_file=str(tmp_path / "k"))
    for i in range(1, 6):
        trial.enrol(f"P{i:02d}")
    trial.mark_error("P05", "enrolled twice by mistake")
    trial.record_outcome("P01", 1, observed_at=TODAY)
    yield trial
    trial.close()


BAD = [
    ({"participant": "P99", "value": 1}, NotFound, "not enrolled"),
    ({"participant": "P05", "value": 1}, Conflict, "marked in error"),
    ({"participant": "P02", "value": 2}, InvalidInput, "not 0 or 1"),
    ({"participant": "P02", "value": 0.5}, InvalidInput, "not 0 or 1"),
    ({"participant": "P02", "value": "yes"}, InvalidInput, "not a number"),
    ({"participant": "P02", "value": float("nan")}, InvalidInput, "not finite"),
    ({"participant": "P02", "value": "inf"}, InvalidInput, "not finite"),
    ({"participant": "P02", "value": None}, InvalidInput, "not a number"),
    ({"participant": "P01", "value": 0}, Conflict, "a correction needs a reason"),
    ({"participant": "P02", "value": 1, "reason": "typo"}, InvalidInput, "no outcome yet"),
    ({"participant": "P02", "value": 1, "observed_at": "yesterday"}, InvalidInput, "ISO 8601"),
    ({"participant": "P02", "value": 1, "observed_at": "1999-01-01"}, InvalidInput,
     "before the participant's enrolment"),
    ({"participant": "P02", "value": 1, "observed_at": "2999-01-01"}, InvalidInput, "future"),
    ({"participant": "P0\u200b2", "value": 1}, InvalidInput, "format"),
]


@pytest.mark.parametrize(("item", "error", "words"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_a_bad_outcome_changes_nothing(live, db_url, item, error, words):
    """Each bad outcome is refused with its own message, and nothing is written."""
    before = _snapshot(db_url)
    with pytest.raises(error, match=words):
        live.record_outcomes([item])
    assert _snapshot(db_url) == before


def test_a_bulk_upload_is_all_or_nothing(live, db_url):
    """One bad row among good ones: nothing is recorded, and the error names the row."""
    before = _snapshot(db_url)
    items = [{"participant": "P02", "value": 0}, {"participant": "P03", "value": 7},
             {"participant": "P04", "value": 1}]
    with pytest.raises(InvalidInput, match=r"^outcome 2: .*not 0 or 1.*nothing was recorded"):
        live.record_outcomes(items)
    assert _snapshot(db_url) == before
    items[1]["value"] = 1
    assert [r["value"] for r in live.record_outcomes(items)] == [0.0, 1.0, 1.0]


def test_a_correction_needs_a_reason_and_is_in_the_log_and_the_export(live):
    """A correction is logged with the old value and the reason; the export shows the new one."""
    out = live.record_outcome("P01", 0, observed_at=TODAY,
                              reason="entered for the wrong participant")
    assert out["corrected"] is True and out["value"] == 0.0
    rows = [r for r in live.audit_log() if r["action"].startswith("outcome")]
    assert [r["action"] for r in rows] == ["outcome", "outcome_correction"]
    assert rows[1]["payload"]["previous"] == 1.0
    assert rows[1]["payload"]["reason"] == "entered for the wrong participant"
    export = {r["participant"]: r for r in live.export()}
    assert export["P01"]["outcome"] == 0.0 and export["P01"]["outcome_corrections"] == 1
    assert export["P01"]["outcome_observed_at"] == f"{TODAY}T00:00:00Z"
    assert export["P02"]["outcome"] is None
    assert live.verify()["ok"]


def _fill(trial: Trial, upto: int, values) -> None:
    """Enrol P01..P{upto} (as far as allowed) and record outcomes ``values(i, arm)``."""
    have = {r["participant"]: r for r in trial.export()}
    for i in range(1, upto + 1):
        pid = f"P{i:02d}"
        if pid not in have:
            have[pid] = {"arm": trial.enrol(pid)["allocation"], "outcome": None,
                         "marked_error": 0}
    todo = [{"participant": p, "value": values(int(p[1:]), r["arm"])}
            for p, r in have.items() if r["outcome"] is None and not r["marked_error"]]
    if todo:
        trial.record_outcomes(todo)


def test_looks_enrolment_limits_and_stopping(live, db_url):
    """A look not yet due, the design's cap before each look, stopping, and after it."""
    for i in range(6, 32):  # P05 is marked in error: P31 replaces it
        live.enrol(f"P{i:02d}")
    with pytest.raises(Conflict, match="randomises 30 participants before look 1"):
        live.enrol("P32")
    live.record_outcomes([{"participant": f"P{i:02d}", "value": 0} for i in range(2, 20)
                          if i != 5])
    before = _snapshot(db_url)
    with pytest.raises(InvalidInput, match=r"needs outcomes of 20 participants and 18 are "
                                           r"recorded \(2 more\)"):
        live.interim()
    assert _snapshot(db_url) == before
    _fill(live, 31, lambda i, arm: i % 2)
    first = live.interim()
    assert first["look"] == 1 and first["participants_with_outcomes"] == 30
    assert live.status()["adaptive"]["looks_done"] == 1
    looks = [first]
    while not looks[-1]["stopped"]:
        nxt = live.status()["adaptive"]["next_look"]
        assert live.enrol(f"P{nxt['randomised_limit'] + 1:02d}")["look"] == len(looks)
        _fill(live, nxt["randomised_limit"] + 1, lambda i, arm: i % 2)
        looks.append(live.interim())
    last = looks[-1]
    assert last["probabilities"] is None and last["stop_reason"] in (
        "last look", "superiority", "equivalence")
    if last["stop_reason"] == "last look":
        assert last["look"] == 3
    stopped = rf"stopped at look {last['look']} \({last['stop_reason']}\) — nobody more"
    with pytest.raises(Conflict, match=stopped):
        live.enrol("P99")
    with pytest.raises(Conflict, match="no further look"):
        live.interim()
    status = live.status()["adaptive"]
    assert status["stopped"] and status["next_look"] is None
    assert status["stop_reason"] == last["stop_reason"]
    check = live.verify()
    n = len(live.export())
    assert check["ok"] and check["replayed"] == n + len(looks)


def test_an_edited_outcomes_table_cannot_steer_a_look(live, db_url, tmp_path):
    """The look reads the authenticated log: a table edit changes nothing, and verify names it."""
    _fill(live, 21, lambda i, arm: i % 2)
    run_sql(db_url, "UPDATE outcomes SET value = 1 WHERE participant = 'P02'")
    look = live.interim()
    events = sum(a["total"] for a in look["arms"])
    logged = sum(i % 2 for i in range(2, 22) if i != 5) + 1  # P01 was recorded as 1
    assert events == logged
    check = live.verify()
    assert not check["ok"] and check["tables_ok"] is False
    assert "outcome of participant 'P02'" in check["problem"]


def test_an_edited_log_stops_the_look(live, db_url):
    """An outcome changed in the audit log (its MAC no longer fits): the look refuses."""
    _fill(live, 21, lambda i, arm: i % 2)
    run_sql(db_url, "UPDATE audit SET payload = REPLACE(payload, '\"value\":1.0', "
                    "'\"value\":0.0') WHERE action = 'outcome' AND seq = (SELECT MIN(seq) FROM "
                    "audit WHERE action = 'outcome')")
    before = _snapshot(db_url)
    with pytest.raises(Tampered, match="does not verify with its key"):
        live.interim()
    assert _snapshot(db_url) == before


def test_verify_recomputes_every_look(live, db_url):
    """A logged look that does not follow from the logged outcomes is caught by the replay."""
    _fill(live, 30, lambda i, arm: i % 3 == 0)
    live.interim()
    assert live.verify()["ok"]
    # an outcome deleted from the table and the log (and the chain cut there) is a different
    # history: the chain no longer holds
    seq = run_sql(db_url, "SELECT MIN(seq) FROM audit WHERE action = 'outcome'")[0][0]
    run_sql(db_url, "DELETE FROM audit WHERE seq = ?", (seq,))
    check = live.verify()
    assert not check["ok"] and check["first_bad_row"] == seq


def test_a_blinded_adaptive_trial_keeps_its_looks_sealed(db_url, tmp_path):
    """Interim results and probabilities are stored sealed; the key opens them."""
    key = str(tmp_path / "k")
    with Trial.create(_design(tmp_path, extra='\n[randomisation]\nmethod = "adaptive"\n'
                                            'blinded = true\n'), db_url, key_file=key) as trial:
        _fill(trial, 30, lambda i, arm: int(i % 3 == 0))
        look = trial.interim()
        probs = look["probabilities"]
        moved = [p for p in probs if 0 < p < 1 and abs(p - 1 / 3) > 1e-6]
        assert moved  # the look moved them (a dropped arm's 0.0 says nothing)
        trial.enrol("P31")
        stored = json.dumps([run_sql(db_url, f"SELECT * FROM {t}") for t in
                             ("trials", "participants", "audit", "outcomes")], default=str)
        for p in moved:
            assert repr(p) not in stored and f"{p:.6f}" not in stored
        assert all(r["action"] != "interim" or set(r["payload"]) == {"look", "sealed"}
                   for r in trial.audit_log())
        assert "probabilities" not in trial.status()["adaptive"]
        plain = trial.export()
        assert "allocation_probability" not in plain[0] and "arm" not in plain[0]
        opened = trial.export(key_file=key, reason="final analysis")
        assert {r["arm"] for r in opened} <= {"a", "b", "c"}
        assert opened[-1]["p_a"] == probs[0]
        assert trial.looks(key)[0]["probabilities"] == probs
        assert trial.verify(key)["ok"]


def test_posterior_draws_are_keyed_and_replay(db_url, tmp_path):
    """With posterior draws the look's random numbers come from the key: verify recomputes them."""
    with Trial.create(_design(tmp_path, LIVE.replace('selection = "best"',
                                                     'selection = "best"\nmethod = "draws"\n'
                                                     'draws = 2000')),
                      db_url, key_file=str(tmp_path / "k")) as trial:
        _fill(trial, 30, lambda i, arm: i % 2)
        look = trial.interim()
        assert look["method"] == "draws"
        assert all(a["p_best"] is None or 0 <= a["p_best"] <= 1 for a in look["arms"])
        assert trial.verify()["ok"]


@pytest.mark.parametrize(("extra", "key"), [
    ('\n[randomisation]\nmethod = "adaptive"\nratio = [1, 1, 1]\n', "randomisation.ratio"),
    ('\n[randomisation]\nmethod = "adaptive"\nblock_sizes = [3]\n', "randomisation.block_sizes"),
    ('\n[randomisation]\nmethod = "sometimes"\n', "randomisation.method"),
])
def test_settings_that_cannot_run_live_are_named(extra, key):
    """A response-adaptive design with fixed-allocation settings names the key to remove."""
    with pytest.raises(DesignError, match=key.replace(".", r"\.")):
        loads_design(LIVE + extra)


def test_a_factorial_design_cannot_ask_for_adaptive_allocation():
    """``method = "adaptive"`` is for adaptive designs only."""
    text = (Path(__file__).resolve().parent.parent / "designs" /
            "app-components-factorial.toml").read_text()
    with pytest.raises(DesignError, match="randomisation.method"):
        loads_design(text.split("\n[randomisation]")[0] + '\n[randomisation]\nmethod = '
                                                          '"adaptive"\n')
