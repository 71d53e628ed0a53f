"""The ``trialkit trial`` command line: bad input exits 2 with one line and changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dbtools import run_sql

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run(trial_run):
    """Every command of these tests, embedded and through a server."""
    return trial_run
FACTORIAL = ROOT / "designs" / "app-components-factorial.toml"
MRT = ROOT / "designs" / "checkin-prompts-mrt.toml"


def snapshot(url: str):
    """SQLite: the database files' bytes; PostgreSQL: row counts of every table."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        return {s: hashlib.sha256(Path(path + s).read_bytes()).hexdigest()
                for s in ("", "-wal") if os.path.exists(path + s)}
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("trials", "participants", "decisions", "audit", "schema_migrations")}


@pytest.fixture
def trials(db_url, tmp_path, run):
    """Return a store with a stratified factorial trial (one enrolment) and an MRT (a decision)."""
    fkey, mkey = tmp_path / "f.key", tmp_path / "m.key"
    assert run("trial", "create", FACTORIAL, "--db", db_url, "--key-file", fkey).exit_code == 0
    assert run("trial", "create", MRT, "--db", db_url, "--key-file", mkey).exit_code == 0
    assert run("trial", "enrol", "app_components_factorial", "P1", "--stratum", "site=london",
               "--db", db_url).exit_code == 0
    assert run("trial", "decide", "checkin_prompts_mrt", "U1", "--decision-point", "5",
               "--available", "--db", db_url).exit_code == 0
    bad = tmp_path / "bad.key"
    bad.write_text("trialkit-key v1\nnot-hex\n")
    bad.chmod(0o600)
    return {"db": db_url, "fkey": str(fkey), "mkey": str(mkey), "bad": str(bad)}


BAD = {
    "unknown_trial": ["enrol", "no_such_trial", "P2", "--stratum", "site=london"],
    "unknown_stratum": ["enrol", "app_components_factorial", "P2", "--stratum", "site=london",
                        "--stratum", "region=north"],
    "missing_stratum": ["enrol", "app_components_factorial", "P2"],
    "bad_stratum_value": ["enrol", "app_components_factorial", "P2", "--stratum", "site=paris"],
    "duplicate_decision_point": ["decide", "checkin_prompts_mrt", "U1", "--decision-point", "5",
                                 "--unavailable", "--reason", "asleep"],
    "decision_point_out_of_range": ["decide", "checkin_prompts_mrt", "U1", "--decision-point",
                                    "999", "--available"],
    "unavailable_without_reason": ["decide", "checkin_prompts_mrt", "U1", "--decision-point",
                                   "6", "--unavailable"],
    "malformed_key_file": ["enrol", "app_components_factorial", "P2", "--stratum", "site=london",
                           "--key-file", "{bad}"],
    "wrong_key": ["enrol", "app_components_factorial", "P2", "--stratum", "site=london",
                  "--key-file", "{mkey}"],
    "wrong_key_verify": ["verify", "app_components_factorial", "--key-file", "{mkey}"],
    "missing_key_file": ["unblind", "app_components_factorial", "P1", "--reason", "x",
                         "--key-file", "{bad}.missing"],
    "enrol_into_mrt": ["enrol", "checkin_prompts_mrt", "P2"],
    "unknown_participant": ["mark-error", "app_components_factorial", "P404", "--reason", "x"],
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_with_one_line_and_leaves_the_store_unchanged(trials, run, case):
    args = [a.format(**trials) for a in BAD[case]]
    before = snapshot(trials["db"])
    result = run("trial", *args, "--db", trials["db"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "—" in lines[0]  # what is wrong — what to do
    assert snapshot(trials["db"]) == before


def test_bad_bulk_row_leaves_the_store_unchanged(trials, run):
    before = snapshot(trials["db"])
    text = "participant,decision_point,available,reason\nU2,1,1,\nU2,2,0,\n"
    result = run("trial", "decide", "checkin_prompts_mrt", "--bulk", "--db", trials["db"],
                 input=text)
    assert result.exit_code == 2 and "reason" in result.output
    assert snapshot(trials["db"]) == before


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/no/such/folder/x.db", "sqlite:///{tmp}/none.db",
                                 "postgresql://nobody@127.0.0.1:1/nothing", "mysql://x/y"])
def test_unreachable_database_exits_2(run, tmp_path, url):
    url = url.format(tmp=tmp_path)
    result = run("trial", "enrol", "t", "P1", "--db", url)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error: ")
    assert not (tmp_path / "none.db").exists()  # nothing is created by a failed enrolment


def test_db_from_environment_variable(tmp_path, run, monkeypatch):
    monkeypatch.setenv("TRIALKIT_DB", f"sqlite:///{tmp_path / 'env.db'}")
    assert run("trial", "create", MRT, "--key-file", tmp_path / "k").exit_code == 0
    res = run("trial", "decide", "checkin_prompts_mrt", "U1", "--decision-point", "1",
              "--available", "--format", "json")
    assert json.loads(res.output)["decision_point"] == 1
    monkeypatch.delenv("TRIALKIT_DB")
    assert run("trial", "status", "checkin_prompts_mrt").exit_code == 2


def test_enrol_path_imports_no_heavy_library(tmp_path, run):
    db = f"sqlite:///{tmp_path / 't.db'}"
    assert run("trial", "create", FACTORIAL, "--db", db, "--key-file", tmp_path / "k").exit_code \
        == 0
    code = ("import sys; from trialkit.cli import cli; "
            "cli.main(['trial', 'enrol', 'app_components_factorial', 'P1', '--stratum', "
            "'site=online', '--db', sys.argv[1], '--format', 'json'], standalone_mode=False); "
            "heavy = {'numpy', 'pandas', 'scipy', 'pymc', 'arviz', 'matplotlib', 'pytensor'}; "
            "print('LOADED', sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", code, db], capture_output=True, text=True,
                          check=True)
    assert '"new": true' in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "LOADED []"


def test_every_trial_command_has_an_example(run):
    from trialkit.cli.trial import trial

    names = set(trial.commands)
    assert names == {"create", "enrol", "decide", "status", "export", "unblind", "mark-error",
                     "verify", "checkpoint", "upgrade", "outcome", "interim"}
    for cmd in trial.commands.values():
        assert "Example:" in cmd.help


def test_sqlite_url_options_and_opening_the_only_trial(tmp_path, run):
    from trialkit.errors import ServiceError
    from trialkit.service import Trial

    url = f"sqlite:///{tmp_path / 'n.db'}?synchronous=normal"
    assert run("trial", "create", MRT, "--db", url, "--key-file", tmp_path / "k").exit_code == 0
    with Trial.open(f"sqlite:///{tmp_path / 'n.db'}") as trial:  # default: FULL
        assert trial.store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    with Trial.open(url) as trial:  # the only trial in the store
        assert trial.name == "checkin_prompts_mrt"
        assert trial.store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert trial.decide("U1", 7, available=True)["decision_point"] == 7
    bad = run("trial", "status", "checkin_prompts_mrt", "--db",
              f"sqlite:///{tmp_path / 'n.db'}?fsync=off")
    assert bad.exit_code == 2 and "synchronous" in bad.output
    assert run("trial", "create", FACTORIAL, "--db", url, "--key-file",
               tmp_path / "k2").exit_code == 0
    with pytest.raises(ServiceError, match="holds 2 trials"):
        Trial.open(url)


@pytest.mark.parametrize("where", ["missing_folder", "existing_file"])
def test_create_with_a_bad_key_path_creates_no_database(tmp_path, run, where):
    key = tmp_path / "no" / "such" / "k" if where == "missing_folder" else tmp_path / "old.key"
    if where == "existing_file":
        key.write_text("keep me\n")
    db = tmp_path / "new.db"
    result = run("trial", "create", MRT, "--db", f"sqlite:///{db}", "--key-file", key)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "—" in lines[0]
    assert not db.exists() and not Path(f"{db}.lock").exists()
    if where == "existing_file":
        assert key.read_text() == "keep me\n"


def test_a_command_on_an_empty_file_leaves_it_byte_identical(tmp_path, run):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    result = run("trial", "enrol", "t", "P1", "--db", f"sqlite:///{empty}")
    assert result.exit_code == 2 and result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) == 1
    assert empty.read_bytes() == b""


@pytest.mark.parametrize("table", [False, True], ids=["rows", "allocation_table"])
def test_export_to_a_missing_folder_exits_2_and_logs_nothing(trials, run, tmp_path, table):
    before = snapshot(trials["db"])
    extra = ["--allocation-table", "--key-file", trials["fkey"]] if table else []
    result = run("trial", "export", "app_components_factorial", *extra, "--out",
                 tmp_path / "missing" / "out.csv", "--db", trials["db"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "--out" in lines[0]
    assert snapshot(trials["db"]) == before


def test_empty_export_still_has_the_analysis_columns(db_url, tmp_path, run):
    assert run("trial", "create", MRT, "--db", db_url, "--key-file",
               tmp_path / "m.key").exit_code == 0
    assert run("trial", "create", FACTORIAL, "--db", db_url, "--key-file",
               tmp_path / "f.key").exit_code == 0
    empty = run("trial", "export", "checkin_prompts_mrt", "--db", db_url)
    assert empty.output.splitlines() == ["id,decision_point,availability,treatment,probability"]
    header = run("trial", "export", "app_components_factorial", "--db", db_url).output
    run("trial", "enrol", "app_components_factorial", "P1", "--stratum", "site=online",
        "--db", db_url)
    full = run("trial", "export", "app_components_factorial", "--db", db_url).output
    assert header.splitlines() == full.splitlines()[:1]
    assert len(full.splitlines()) == 2


def test_mrt_randomisation_settings_that_would_be_ignored_are_refused(tmp_path, run):
    design = tmp_path / "mrt.toml"
    design.write_text(MRT.read_text() + '\n[randomisation]\nblinded = true\n\n'
                      '[randomisation.strata]\nsite = ["a", "b"]\n')
    db = tmp_path / "m.db"
    result = run("trial", "create", design, "--db", f"sqlite:///{db}", "--key-file",
                 tmp_path / "k")
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert "strata, blinded" in result.output
    assert not db.exists() and not (tmp_path / "k").exists()


def test_user_is_recorded_in_the_audit_trail(tmp_path, embedded_run, monkeypatch):
    """Embedded only: through a server the audit records the token (tests/test_server.py)."""
    run = embedded_run
    monkeypatch.setenv("TRIALKIT_USER", "os-user")
    db = f"sqlite:///{tmp_path / 'u.db'}"
    assert run("trial", "create", MRT, "--db", db, "--key-file", tmp_path / "k",
               "--user", "alice").exit_code == 0
    assert run("trial", "decide", "checkin_prompts_mrt", "U1", "--decision-point", "1",
               "--unavailable", "--reason", "driving", "--user", "bob", "--db", db).exit_code == 0
    assert run("trial", "decide", "checkin_prompts_mrt", "U1", "--decision-point", "2",
               "--available", "--db", db).exit_code == 0
    rows = run_sql(db, "SELECT who, action FROM audit ORDER BY seq")
    assert rows == [("alice", "create"), ("bob", "decide"), ("os-user", "decide")]
    # an unavailable point: action 0, no draw, the reason recorded
    assert run_sql(db, "SELECT action, draw, reason FROM decisions WHERE decision_point = 1") \
        == [(0, None, "driving")]
