"""Faults end in one line and exit code 2 within the lock timeout plus 5 s, and change nothing.

Every case runs the real command line in its own process: locks held by stopped processes and by
other connections, a full disk, read-only files and folders, a lock file the user cannot open,
concurrent creation, a PostgreSQL backend killed mid-transaction and a PostgreSQL restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from dbtools import run_sql

from trialkit.service import Trial

ROOT = Path(__file__).resolve().parent.parent
ADAPTIVE = ROOT / "designs" / "three-arm-adaptive.toml"
MRT = ROOT / "designs" / "checkin-prompts-mrt.toml"
NOBODY = 65534
IS_ROOT = os.geteuid() == 0


def cli(*args, user: int | None = None, timeout: float = 30, env: dict | None = None):
    """Run ``trialkit ARGS`` in a new process (as ``user`` when given); return
    (exit code, stdout, stderr, seconds)."""
    cmd = [sys.executable, "-m", "trialkit", *map(str, args)]
    if user is not None and IS_ROOT:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=ROOT)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


def one_line_error(code, out, err):
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "—" in lines[0], err
    assert "Traceback" not in err
    return lines[0]


def files_digest(db: Path) -> dict:
    """The bytes of the database and its write-ahead log (an empty log holds nothing)."""
    return {s: hashlib.sha256(Path(f"{db}{s}").read_bytes()).hexdigest()
            for s in ("", "-wal") if Path(f"{db}{s}").exists() and
            Path(f"{db}{s}").stat().st_size}


@pytest.fixture
def shared(tmp_path):
    """A folder other users can enter (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="tk-fault-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_trial(folder: Path, name: str = "f") -> tuple[str, Path, Path]:
    db = folder / f"{name}.db"
    key = folder / f"{name}.key"
    with Trial.create(ADAPTIVE, f"sqlite:///{db}", key_file=str(key)) as trial:
        trial.enrol("P0")
    return f"sqlite:///{db}", db, key


HOLD = """
import os, signal, sys
from trialkit.service.store import connect
store = connect(sys.argv[1])
with store.write("three_arm_adaptive"):
    store.load_trial("three_arm_adaptive", lock=True)
    print("held", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)
"""


def test_a_stopped_process_holding_the_lock_times_out_in_one_line(db_url, tmp_path):
    key = tmp_path / "k"
    Trial.create(ADAPTIVE, db_url, key_file=str(key)).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, db_url], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = run_sql(db_url, "SELECT COUNT(*) FROM audit")
        code, out, err, secs = cli("trial", "enrol", "three_arm_adaptive", "P1", "--db", db_url,
                                   "--lock-timeout", "1")
        line = one_line_error(code, out, err)
        assert "lock" in line and secs < 1 + 5
        code, out, err, secs = cli("trial", "enrol", "three_arm_adaptive", "P1", "--db", db_url,
                                   env={"TRIALKIT_LOCK_TIMEOUT": "0.5"})
        assert "lock" in one_line_error(code, out, err) and secs < 0.5 + 5
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        holder.stdout.close()
    assert run_sql(db_url, "SELECT COUNT(*) FROM audit") == before
    with Trial.open(db_url) as trial:  # the lock died with its holder
        assert trial.enrol("P1")["new"] is True


def test_another_sqlite_writer_times_out_in_one_line(tmp_path):
    url, db, _ = make_trial(tmp_path)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        before = files_digest(db)
        code, out, err, secs = cli("trial", "enrol", "three_arm_adaptive", "P1", "--db", url,
                                   "--lock-timeout", "1")
        assert "locked" in one_line_error(code, out, err) and secs < 1 + 5
        assert files_digest(db) == before
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.mark.skipif(not IS_ROOT, reason="mounting a small file system needs root")
def test_a_full_disk_is_one_line_and_changes_nothing(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        url, db, key = make_trial(mount)
        filler = mount / "filler"
        with open(filler, "wb", buffering=0) as fh, contextlib.suppress(OSError):
            while True:  # unbuffered: the write that does not fit fails here, not at close
                fh.write(b"\0" * 65536)
        before = files_digest(db)
        code, out, err, _ = cli("trial", "enrol", "three_arm_adaptive", "P1", "--db", url)
        assert "full" in one_line_error(code, out, err)
        assert files_digest(db) == before
        filler.unlink()
        code, out, err, _ = cli("trial", "enrol", "three_arm_adaptive", "P1", "--db", url)
        assert code == 0, err
        with Trial.open(url) as trial:
            assert trial.verify(str(key))["ok"]
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _hand_to(folder: Path, uid: int) -> None:
    for path in [folder, *folder.iterdir()]:
        os.chown(path, uid, uid)


@pytest.mark.skipif(not IS_ROOT, reason="file permissions bind root only through another user")
@pytest.mark.parametrize("case", ["read_only_file", "read_only_folder", "locked_lock_file",
                                  "unreadable_database"])
def test_permission_faults_are_one_line_and_change_nothing(shared, case):
    url, db, _ = make_trial(shared)
    _hand_to(shared, NOBODY)
    if case == "read_only_file":
        db.chmod(0o400)
    elif case == "read_only_folder":
        Path(f"{db}.lock").unlink()
        shared.chmod(0o555)
    elif case == "locked_lock_file":
        os.chown(f"{db}.lock", 0, 0)
    else:
        os.chown(db, 0, 0)
    before = files_digest(db)
    code, out, err, _ = cli("trial", "enrol", "three_arm_adaptive", "P1", "--db", url,
                            user=NOBODY)
    line = one_line_error(code, out, err)
    assert any(w in line for w in ("read-only", "permission", "cannot open", "lock file")), line
    assert files_digest(db) == before


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_six_concurrent_creates_of_one_name(store, tmp_path, request):
    url = (f"sqlite:///{tmp_path / 'race.db'}" if store == "sqlite"
           else request.getfixturevalue("pg_schema_url"))
    procs = [subprocess.Popen([sys.executable, "-m", "trialkit", "trial", "create", str(MRT),
                               "--db", url, "--key-file", str(tmp_path / f"k{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(6)]
    results = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert sorted(code for code, _, _ in results) == [0, 2, 2, 2, 2, 2], results
    for code, out, err in results:
        if code:
            assert "already exists" in one_line_error(code, out, err)
    keys = [k for k in tmp_path.iterdir() if k.name.startswith("k")]
    assert len(keys) == 1
    with Trial.open(url) as trial:
        assert trial.verify(str(keys[0]))["ok"]


def _pg_rows(url):
    return {t: run_sql(url, f"SELECT * FROM {t} ORDER BY 1, 2") for t in
            ("trials", "participants", "decisions", "audit")}


def _waiting_backend(url: str, not_pid: int | None = None) -> int:
    """The pid of the trialkit backend waiting for a lock (other than ``not_pid``)."""
    for _ in range(400):
        rows = run_sql(url, "SELECT pid FROM pg_stat_activity WHERE application_name = "
                            "'trialkit' AND wait_event_type = 'Lock'")
        pids = [r[0] for r in rows if r[0] != not_pid]
        if pids:
            return pids[0]
        time.sleep(0.025)
    raise AssertionError("no trialkit backend is waiting for the lock")


@pytest.mark.parametrize("kills", [1, 2])
def test_a_killed_postgres_backend_is_retried_once_then_one_line(pg_schema_url, tmp_path, kills):
    import psycopg

    url = pg_schema_url
    Trial.create(ADAPTIVE, url, key_file=str(tmp_path / "k")).close()
    before = _pg_rows(url)
    with psycopg.connect(url) as locker:  # hold the trial's row lock in a transaction
        locker.execute("SELECT name FROM trials FOR UPDATE")
        proc = subprocess.Popen([sys.executable, "-m", "trialkit", "trial", "enrol",
                                 "three_arm_adaptive", "P1", "--db", url],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pid = None
        for _ in range(kills):  # kill the backend mid-transaction, then its retry's
            pid = _waiting_backend(url, pid)
            run_sql(url, "SELECT pg_terminate_backend(?)", (pid,))
        if kills == 1:
            _waiting_backend(url, pid)  # the retry waits on a new connection
        locker.rollback()
        out, err = proc.communicate(timeout=30)
    if kills == 2:
        assert "connection to PostgreSQL was lost" in one_line_error(proc.returncode, out, err)
        assert _pg_rows(url) == before
    else:  # one lost connection: retried, allocated once
        assert proc.returncode == 0 and '"new": true' not in err, err
        assert run_sql(url, "SELECT COUNT(*) FROM participants") == [(1,)]


def test_the_python_api_reconnects_after_a_killed_backend(pg_schema_url, tmp_path):
    url = pg_schema_url
    key = str(tmp_path / "k")
    Trial.create(ADAPTIVE, url, key_file=key).close()
    with Trial.open(url) as trial:
        run_sql(url, "SELECT pg_terminate_backend(?)", (trial.store.backend_pid(),))
        assert trial.enrol("P1")["new"] is True
        run_sql(url, "SELECT pg_terminate_backend(?)", (trial.store.backend_pid(),))
        assert trial.enrol("P1")["new"] is False  # idempotent: the same allocation
        run_sql(url, "SELECT pg_terminate_backend(?)", (trial.store.backend_pid(),))
        assert trial.status()["enrolled"] == 1  # reads reconnect too
        assert trial.verify(key)["ok"]


def _pg_bin() -> Path | None:
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin")):
        if (d / "pg_ctl").exists():
            return d
    return None


@pytest.mark.slow
@pytest.mark.skipif(_pg_bin() is None, reason="no PostgreSQL server binaries")
def test_an_open_trial_reconnects_after_a_postgres_restart(tmp_path):
    import socket

    bindir = _pg_bin()
    data = Path(tempfile.mkdtemp(prefix="tk-pg-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    as_pg = ["su", "postgres", "-s", "/bin/sh", "-c"] if IS_ROOT else ["sh", "-c"]
    if IS_ROOT:
        shutil.chown(data, "postgres")

    def pg(cmd: str) -> None:
        subprocess.run([*as_pg, cmd], check=True, capture_output=True, timeout=60)

    opts = f"-h 127.0.0.1 -p {port} -k {data}"
    pg(f"{bindir}/initdb -D {data}/db -A trust -U tk")
    pg(f"{bindir}/pg_ctl -D {data}/db -l {data}/log -w -t 30 -o '{opts}' start")
    try:
        url = f"postgresql://tk@127.0.0.1:{port}/postgres"
        key = str(tmp_path / "k")
        Trial.create(MRT, url, key_file=key).close()
        with Trial.open(url) as trial:
            assert trial.decide("U1", 1)["new"] is True
            pg(f"{bindir}/pg_ctl -D {data}/db -l {data}/log -w -t 30 -m fast -o '{opts}' "
               "restart")
            assert trial.decide("U1", 2)["new"] is True  # reconnected
            assert trial.verify(key)["ok"]
    finally:
        subprocess.run([*as_pg, f"{bindir}/pg_ctl -D {data}/db -w -t 30 -m immediate stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


def test_refused_creates_leave_no_file_behind(tmp_path):
    db = tmp_path / "x.db"
    code, out, err, _ = cli("trial", "create", MRT, "--db", f"sqlite:///{db}", "--key-file", db)
    assert "is the database file" in one_line_error(code, out, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # a refused create in an existing store leaves it byte-identical
    url, db2, _ = make_trial(tmp_path, "y")
    before = files_digest(db2)
    code, out, err, _ = cli("trial", "create", ADAPTIVE, "--db", url, "--key-file",
                            tmp_path / "again.key")
    assert "already exists" in one_line_error(code, out, err)
    assert files_digest(db2) == before and not (tmp_path / "again.key").exists()


@pytest.mark.skipif(not IS_ROOT, reason="file permissions bind root only through another user")
def test_a_key_folder_the_user_cannot_write_leaves_no_database(shared):
    keys = shared / "keys"
    keys.mkdir(mode=0o755)  # owned by root: nobody cannot write here
    os.chown(shared, NOBODY, NOBODY)
    code, out, err, _ = cli("trial", "create", MRT, "--db", f"sqlite:///{shared / 'n.db'}",
                            "--key-file", keys / "n.key", user=NOBODY)
    assert "key file" in one_line_error(code, out, err)
    assert sorted(p.name for p in shared.iterdir()) == ["keys"]


@pytest.mark.parametrize("name,stored", [("h#1.db", "h#1.db"), ("a%3Fb.db", "a?b.db"),
                                         ("c%25d.db", "c%d.db"), ("sp%20ace.db", "sp ace.db")])
def test_url_paths_with_hash_question_mark_and_percent_are_exact(tmp_path, name, stored):
    url = f"sqlite:///{tmp_path}/{name}"
    code, out, err, _ = cli("trial", "create", MRT, "--db", url, "--key-file", tmp_path / "k")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == \
        sorted(["k", stored])
    code, out, err, _ = cli("trial", "decide", "checkin_prompts_mrt", "U1", "--decision-point",
                            "1", "--available", "--db", url)
    assert code == 0, err


def test_a_bad_percent_escape_is_refused(tmp_path):
    code, out, err, _ = cli("trial", "create", MRT, "--db", f"sqlite:///{tmp_path}/a%zz.db",
                            "--key-file", tmp_path / "k")
    assert "%25" in one_line_error(code, out, err)
    assert list(tmp_path.iterdir()) == []


def test_store_files_are_private_to_their_owner(tmp_path):
    old = os.umask(0o022)
    try:
        url, db, key = make_trial(tmp_path)
        with Trial.open(url) as trial:  # keep it open: the -wal and -shm files exist now
            trial.enrol("P1")
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    finally:
        os.umask(old)
    assert {"f.db", "f.db-wal", "f.db-shm", "f.db.lock", "f.key"} <= set(modes)
    assert all(mode == 0o600 for mode in modes.values()), modes
