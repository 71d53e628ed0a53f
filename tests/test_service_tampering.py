"""An insider who can write the database tampers with a live trial; `verify` catches every case.

Verification with the key, on SQLite and PostgreSQL.

The tamperer has the trialkit library and write access to every table, but not the key: where a
case rebuilds the audit chain, it does so as such a tamperer can (links and SHA-256 hashes).
A cut tail or a restored older copy is a valid, shorter history: receipts kept outside the
database expose it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from dbtools import copy_store, restore_store, run_sql

from trialkit.service import Trial

ROOT = Path(__file__).resolve().parent.parent
ADAPTIVE = ROOT / "designs" / "three-arm-adaptive.toml"
MRT = ROOT / "designs" / "checkin-prompts-mrt.toml"


def design(tmp_path: Path, randomisation: str, name: str = "three_arm") -> Path:
    text = ADAPTIVE.read_text().split("\n[randomisation]")[0]
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace('name = "three_arm_adaptive"', f'name = "{name}"') + "\n"
                    + randomisation)
    return path


def rebuild_chain(url: str, trial: str, start: int = 1) -> None:
    """Re-link and re-hash audit rows ``start``.. as a tamperer without the key can."""
    rows = run_sql(url, "SELECT seq, at, who, action, payload, hash FROM audit WHERE trial = ? "
                        "ORDER BY seq", (trial,))
    prev = "0" * 64 if start == 1 else rows[start - 2][5]
    for seq, at, who, action, payload, _ in rows[start - 1:]:
        text = json.dumps([trial, seq, at, who, action, payload, prev], separators=(",", ":"),
                          ensure_ascii=False)
        new = hashlib.sha256(text.encode()).hexdigest()
        run_sql(url, "UPDATE audit SET prev_hash = ?, hash = ? WHERE trial = ? AND seq = ?",
                (prev, new, trial, seq))
        prev = new
    run_sql(url, "UPDATE trials SET n_audit = ?, last_hash = ? WHERE name = ?",
            (len(rows), prev, trial))


@pytest.fixture
def open_trial(db_url, tmp_path):
    """Return an open-label trial: create (row 1), P0..P4 enrolled (rows 2-6), P2 marked (row 7)."""
    key = str(tmp_path / "k")
    with Trial.create(design(tmp_path, "[randomisation]\nblock_sizes = [3]\n"), db_url,
                      key_file=key) as t:
        receipts = [t.enrol(f"P{i}")["receipt"] for i in range(5)]
        state6 = run_sql(db_url, "SELECT state FROM trials")[0][0]
        receipts.append(t.mark_error("P2", "consent withdrawn before allocation")["receipt"])
        assert t.verify(key)["ok"]
    return {"url": db_url, "key": key, "receipts": receipts, "tmp": tmp_path, "state6": state6}


def _cut_tail(url: str, old_state: str) -> None:
    """Delete the last row (mark_error of P2), undo its effect and move the head back."""
    run_sql(url, "DELETE FROM audit WHERE seq = 7")
    run_sql(url, "UPDATE participants SET error = 0, error_reason = NULL WHERE participant = 'P2'")
    h6 = run_sql(url, "SELECT hash FROM audit WHERE seq = 6")[0][0]
    run_sql(url, "UPDATE trials SET n_audit = 6, last_hash = ?, state = ?", (h6, old_state))


def _swap_key(url: str, tmp: Path) -> None:
    from trialkit.service.keys import create_key_file, key_check

    theirs = tmp / "attacker.key"
    secret = create_key_file(str(theirs))
    run_sql(url, "UPDATE trials SET key_check = ?, key_file = ?",
            (key_check(secret, "three_arm"), str(theirs)))


def _forge_forced_slot(url: str) -> None:
    """Insert an enrolment in the block slot whose arm is forced, with a rebuilt chain."""
    rows = run_sql(url, "SELECT participant, arm FROM participants ORDER BY sequence")
    arms = [a for _, a in rows[3:5]]  # block 2 holds P3, P4: the third slot is forced
    forced = ({0, 1, 2} - set(arms)).pop()
    groups = ["usual_app", "core_package", "full_package"]
    at, who = run_sql(url, "SELECT at, who FROM audit WHERE seq = 7")[0]
    payload = json.dumps({"allocation": groups[forced], "participant": "X", "sequence": 6,
                          "strata": {}}, sort_keys=True, separators=(",", ":"))
    run_sql(url, "INSERT INTO audit (trial, seq, at, who, action, payload, prev_hash, hash) "
                 "VALUES ('three_arm', 8, ?, ?, 'enrol', ?, '', '')", (at, who, payload))
    run_sql(url, "INSERT INTO participants (trial, participant, sequence, stratum, strata, "
                 "stratum_seq, arm, allocation, state, enrolled_at, enrolled_by, error, "
                 "audit_seq) VALUES ('three_arm', 'X', 6, '', '{}', 6, ?, ?, '{}', ?, ?, 0, 8)",
            (forced, groups[forced], at, who))
    run_sql(url, "UPDATE trials SET n_enrolled = 6")
    rebuild_chain(url, "three_arm", 8)


SQL = {
    "edit_payload": ["UPDATE audit SET payload = replace(payload, 'P1', 'P9') WHERE seq = 3"],
    "delete_row": ["DELETE FROM audit WHERE seq = 3"],
    "delete_last_row": ["DELETE FROM audit WHERE seq = 7"],
    "insert_row": ["INSERT INTO audit (trial, seq, at, who, action, payload, prev_hash, hash) "
                   "SELECT trial, 8, at, who, action, payload, hash, hash FROM audit "
                   "WHERE seq = 7"],
    "reorder": ["UPDATE audit SET seq = -1 WHERE seq = 3", "UPDATE audit SET seq = 3 WHERE seq = 4",
                "UPDATE audit SET seq = 4 WHERE seq = -1"],
    "edit_mac": ["UPDATE audit SET hash = replace(hash, substr(hash, 1, 1), 'x') WHERE seq = 4"],
    "edit_head": ["UPDATE trials SET last_hash = (SELECT hash FROM audit WHERE seq = 6)"],
    "edit_allocation": ["UPDATE participants SET allocation = CASE WHEN allocation = "
                        "'usual_app' THEN 'core_package' ELSE 'usual_app' END "
                        "WHERE participant = 'P0'"],
    "edit_arm": ["UPDATE participants SET arm = (arm + 1) % 3 WHERE participant = 'P0'"],
    "edit_arm_and_allocation": [
        "UPDATE participants SET arm = (arm + 1) % 3 WHERE participant = 'P0'",
        "UPDATE participants SET allocation = CASE arm WHEN 0 THEN 'usual_app' WHEN 1 THEN "
        "'core_package' ELSE 'full_package' END WHERE participant = 'P0'"],
    "clear_error_flag": ["UPDATE participants SET error = 0, error_reason = NULL "
                         "WHERE participant = 'P2'"],
    "edit_error_reason": ["UPDATE participants SET error_reason = 'x' WHERE participant = 'P2'"],
    "edit_strata": ["UPDATE participants SET strata = '{\"site\":\"a\"}' WHERE participant = 'P0'"],
    "insert_participant": ["INSERT INTO participants (trial, participant, sequence, stratum, "
                           "strata, stratum_seq, arm, allocation, state, enrolled_at, "
                           "enrolled_by, error) SELECT trial, 'Z', 99, stratum, strata, 99, arm, "
                           "allocation, state, enrolled_at, enrolled_by, error FROM participants "
                           "WHERE participant = 'P0'"],
    "edit_settings": ["UPDATE trials SET config = replace(config, '\"block_sizes\":[3]', "
                      "'\"block_sizes\":[6]')"],
    "replace_design": ["UPDATE trials SET design_text = 'edited', design_sha256 = "
                       f"'{hashlib.sha256(b'edited').hexdigest()}'"],
    "edit_created_by": ["UPDATE trials SET created_by = 'mallory'"],
    "lower_n_enrolled": ["UPDATE trials SET n_enrolled = n_enrolled - 1"],
    "replace_sealed_state": ["UPDATE trials SET state = 'AAAA' || substr(state, 5)"],
}
ROW = {"edit_payload": 3, "delete_row": 3, "delete_last_row": 7, "insert_row": 8, "reorder": 3,
       "edit_mac": 4, "edit_head": 7, "edit_allocation": 2, "edit_arm": 2,
       "edit_arm_and_allocation": 2, "clear_error_flag": 4, "edit_error_reason": 4,
       "edit_strata": 2, "insert_participant": None, "edit_settings": 1, "replace_design": 1,
       "edit_created_by": 1, "lower_n_enrolled": None, "replace_sealed_state": None}
# After these, the service must also refuse to enrol anyone (one line, nothing written).
REFUSES_ENROL = {"delete_last_row", "insert_row", "edit_head", "lower_n_enrolled",
                 "replace_sealed_state"}


def _verify(run, t, receipts=None):
    args = ["trial", "verify", "three_arm", "--key-file", t["key"], "--db", t["url"],
            "--format", "json"]
    if receipts is not None:
        path = t["tmp"] / "receipts.txt"
        path.write_text("\n".join(receipts) + "\n")
        args += ["--receipts", path]
    return run(*args)


@pytest.mark.parametrize("case", list(SQL))
def test_direct_edits_are_detected_with_the_key(open_trial, run, case):
    t = open_trial
    for sql in SQL[case]:
        run_sql(t["url"], sql)
    res = _verify(run, t)
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    assert out["ok"] is False and out["first_bad_row"] == ROW[case], out
    if ROW[case] is not None:
        assert f"row {ROW[case]}" in res.stderr
    if case in REFUSES_ENROL:
        before = run_sql(t["url"], "SELECT COUNT(*) FROM audit")
        refused = run("trial", "enrol", "three_arm", "NEW", "--db", t["url"])
        assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) == 1
        assert "verify" in refused.output
        assert run_sql(t["url"], "SELECT COUNT(*) FROM audit") == before


def test_a_rebuilt_chain_with_a_swapped_design_fails(open_trial, run):
    t = open_trial
    fake = "kind = \"adaptive\"\n# a different design\n"
    sha = hashlib.sha256(fake.encode()).hexdigest()
    payload = run_sql(t["url"], "SELECT payload FROM audit WHERE seq = 1")[0][0]
    old_sha = run_sql(t["url"], "SELECT design_sha256 FROM trials")[0][0]
    run_sql(t["url"], "UPDATE trials SET design_text = ?, design_sha256 = ?", (fake, sha))
    run_sql(t["url"], "UPDATE audit SET payload = ? WHERE seq = 1",
            (payload.replace(old_sha, sha),))
    rebuild_chain(t["url"], "three_arm")
    plain = run("trial", "verify", "three_arm", "--db", t["url"], "--format", "json")
    assert plain.exit_code == 0  # without the key a rebuilt chain looks fine...
    assert json.loads(plain.stdout)["authenticated"] is False
    res = _verify(run, t)  # ...with it, row 1 is not authentic
    assert res.exit_code == 1 and "row 1" in res.stderr and "MAC" in res.stderr


def test_rewriting_who_and_when_with_a_rebuilt_chain_fails(open_trial, run):
    t = open_trial
    run_sql(t["url"], "UPDATE audit SET who = 'someone-else', at = '2020-01-01T00:00:00Z' "
                      "WHERE seq = 3")
    run_sql(t["url"], "UPDATE participants SET enrolled_by = 'someone-else', enrolled_at = "
                      "'2020-01-01T00:00:00Z' WHERE participant = 'P1'")
    rebuild_chain(t["url"], "three_arm", 3)
    res = _verify(run, t)
    assert res.exit_code == 1 and "row 3" in res.stderr


def test_deleting_a_mark_error_row_and_rebuilding_fails(open_trial, run):
    t = open_trial
    with Trial.open(t["url"], "three_arm") as trial:
        trial.enrol("P5")  # the mark_error row (7) is now in the middle of the chain
    run_sql(t["url"], "DELETE FROM audit WHERE seq = 7")
    run_sql(t["url"], "UPDATE audit SET seq = 7 WHERE seq = 8")
    run_sql(t["url"], "UPDATE participants SET error = 0, error_reason = NULL, audit_seq = "
                      "CASE participant WHEN 'P5' THEN 7 ELSE audit_seq END")
    rebuild_chain(t["url"], "three_arm", 7)
    res = _verify(run, t)
    assert res.exit_code == 1 and "row 7" in res.stderr


def test_deleting_an_unblind_row_and_rebuilding_fails(db_url, tmp_path, run):
    key = str(tmp_path / "b.key")
    with Trial.create(design(tmp_path, "[randomisation]\nblinded = true\nblock_sizes = [3]\n"),
                      db_url, key_file=key) as trial:
        for i in range(4):
            trial.enrol(f"B{i}")
        trial.unblind("B1", "serious adverse event")  # row 6
        trial.enrol("B4")                              # row 7
        assert trial.status()["consort"]["unblinded"] == 1
    run_sql(db_url, "DELETE FROM audit WHERE seq = 6")
    run_sql(db_url, "UPDATE audit SET seq = 6 WHERE seq = 7")
    run_sql(db_url, "UPDATE participants SET audit_seq = 6 WHERE participant = 'B4'")
    rebuild_chain(db_url, "three_arm", 6)
    with Trial.open(db_url, "three_arm") as trial:
        assert trial.status()["consort"]["unblinded"] == 0  # the edit hides the unblinding...
        result = trial.verify(key)  # ...and verification exposes it
    assert result["ok"] is False and result["first_bad_row"] == 6


def test_a_forged_enrolment_in_a_forced_block_slot_fails(open_trial, run):
    t = open_trial
    _forge_forced_slot(t["url"])
    res = _verify(run, t)
    assert res.exit_code == 1 and "row 8" in res.stderr


def test_a_swapped_key_is_caught_by_verify_and_refused_by_enrol(open_trial, run):
    t = open_trial
    _swap_key(t["url"], t["tmp"])
    res = _verify(run, t)  # the genuine key
    assert res.exit_code == 1, res.output
    assert "key check" in res.stderr
    enrol = run("trial", "enrol", "three_arm", "NEW", "--db", t["url"])  # stored path: theirs
    assert enrol.exit_code == 2 and "swapped" in enrol.output
    assert run_sql(t["url"], "SELECT COUNT(*) FROM participants WHERE participant = 'NEW'") == \
        [(0,)]


def test_a_cut_tail_with_the_old_state_is_caught_by_a_receipt(open_trial, run):
    t = open_trial
    url = t["url"]
    with Trial.open(url, "three_arm") as trial:
        t["receipts"].append(trial.enrol("P5")["receipt"])  # row 8
    # cut rows 7-8 (P2's correction, P5) and put back the sealed state of row 6, which the
    # tamperer kept from an earlier copy of the database
    run_sql(url, "DELETE FROM audit WHERE seq >= 7")
    run_sql(url, "DELETE FROM participants WHERE participant = 'P5'")
    run_sql(url, "UPDATE participants SET error = 0, error_reason = NULL WHERE participant = "
                 "'P2'")
    h6 = run_sql(url, "SELECT hash FROM audit WHERE seq = 6")[0][0]
    run_sql(url, "UPDATE trials SET n_audit = 6, n_enrolled = 5, last_hash = ?, state = ?",
            (h6, t["state6"]))
    silent = _verify(run, t)
    assert silent.exit_code == 0  # a valid, shorter history: undetectable without receipts
    res = _verify(run, t, receipts=t["receipts"])
    assert res.exit_code == 1, res.output
    assert "receipt 6" in res.stderr and "cut" in res.stderr


def test_a_cut_tail_without_the_old_state_is_caught_even_without_receipts(open_trial, run):
    t = open_trial
    _cut_tail(t["url"], run_sql(t["url"], "SELECT state FROM trials")[0][0])
    res = _verify(run, t)
    assert res.exit_code == 1 and "sealed allocation state" in res.stderr


def test_restoring_an_older_copy_is_caught_by_any_later_receipt(open_trial, run):
    t = open_trial
    url = t["url"]
    old = copy_store(url)
    with Trial.open(url, "three_arm") as trial:
        later = [trial.enrol(f"L{i}")["receipt"] for i in range(3)]
        later.append(trial.checkpoint()["receipt"])
    restore_store(url, old)
    assert _verify(run, t, receipts=t["receipts"]).exit_code == 0  # receipts from before: fine
    res = _verify(run, t, receipts=t["receipts"] + later[-1:])
    assert res.exit_code == 1 and "receipt 7" in res.stderr
    assert "older copy" in res.stderr or "cut" in res.stderr
    # a receipt that was not made with the key is reported as forged
    forged = later[0][:-4] + ("0000" if not later[0].endswith("0000") else "1111")
    res = _verify(run, t, receipts=[forged])
    assert res.exit_code == 1 and "forged" in res.stderr


def test_verify_without_the_key_says_what_it_did_not_check(open_trial, run):
    res = run("trial", "verify", "three_arm", "--db", open_trial["url"], "--format", "json")
    out = json.loads(res.stdout)
    assert res.exit_code == 0 and out["authenticated"] is False and out["replay_ok"] is None
    assert "without the key" in out["note"]


def test_mrt_decision_edits_are_detected(db_url, tmp_path, run):
    key = tmp_path / "m.key"
    run("trial", "create", MRT, "--db", db_url, "--key-file", key)
    for dp in (1, 2, 3):
        run("trial", "decide", "checkin_prompts_mrt", "U1", "--decision-point", dp,
            "--available", "--db", db_url)
    for sql, row in [("UPDATE decisions SET probability = 0.9 WHERE decision_point = 2", 3),
                     ("UPDATE decisions SET decided_by = 'x' WHERE decision_point = 1", 2)]:
        copy = copy_store(db_url)
        run_sql(db_url, sql)
        res = run("trial", "verify", "checkin_prompts_mrt", "--key-file", key, "--db", db_url)
        assert res.exit_code == 1 and f"row {row}" in res.stderr
        restore_store(db_url, copy)
    # a repeated decision whose stored row was edited is refused, not returned
    run_sql(db_url, "UPDATE decisions SET action = 1 - action WHERE decision_point = 1")
    again = run("trial", "decide", "checkin_prompts_mrt", "U1", "--decision-point", "1",
                "--available", "--db", db_url)
    assert again.exit_code == 2 and "does not match" in again.output


def test_an_edited_arm_is_never_returned_to_a_repeated_enrolment(open_trial, run):
    t = open_trial
    run_sql(t["url"], "UPDATE participants SET arm = (arm + 1) % 3, allocation = CASE arm "
                      "WHEN 0 THEN 'core_package' WHEN 1 THEN 'full_package' ELSE 'usual_app' "
                      "END WHERE participant = 'P0'")
    again = run("trial", "enrol", "three_arm", "P0", "--db", t["url"])
    assert again.exit_code == 2 and "does not match its authenticated audit row" in again.output
