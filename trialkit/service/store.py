"""Stores: the one storage interface of the live service, on SQLite or PostgreSQL.

Every SQL statement of the service lives in this module; trials, verification and reports read
and write through :class:`Store`'s methods. ``sqlite:///relative/path.db``,
``sqlite:////absolute/path.db`` or ``postgresql://user@host/db`` (``postgres://`` too); the
``TRIALKIT_DB`` environment variable supplies the URL when none is given.

Every write is one short transaction that first takes the trial's write lock: on SQLite an
exclusive lock on ``PATH.lock`` plus ``BEGIN IMMEDIATE``; on PostgreSQL ``SELECT … FOR UPDATE`` on
the trial's row. Every wait for a lock is bounded (``lock_timeout`` seconds, default 10 or
``$TRIALKIT_LOCK_TIMEOUT``), and every database failure becomes one :class:`ServiceError` saying
what happened: nothing ever hangs or ends in a traceback. Reads that must agree with each other
(verification, reports) run in one snapshot (:meth:`Store.snapshot`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import unquote

from trialkit.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    Unavailable,
)
from trialkit.service.audit import AuditRow
from trialkit.service.tokens import Token

# Named migrations, applied in order and recorded in schema_migrations. Never edit one that has
# shipped: add a new one.
MIGRATIONS: list[tuple[str, list[str]]] = [
    ("0001_initial", [
        """CREATE TABLE trials (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            design_sha256 TEXT NOT NULL,
            design_text TEXT NOT NULL,
            config TEXT NOT NULL,
            key_check TEXT NOT NULL,
            key_file TEXT,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            n_enrolled INTEGER NOT NULL DEFAULT 0,
            n_audit INTEGER NOT NULL DEFAULT 0,
            last_hash TEXT NOT NULL
        )""",
        """CREATE TABLE participants (
            trial TEXT NOT NULL REFERENCES trials(name),
            participant TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            stratum TEXT NOT NULL,
            strata TEXT NOT NULL,
            stratum_seq INTEGER NOT NULL,
            arm INTEGER,
            allocation TEXT NOT NULL,
            block_no INTEGER,
            block_pos INTEGER,
            state TEXT NOT NULL,
            enrolled_at TEXT NOT NULL,
            enrolled_by TEXT NOT NULL,
            error INTEGER NOT NULL DEFAULT 0,
            error_reason TEXT,
            PRIMARY KEY (trial, participant),
            UNIQUE (trial, sequence),
            UNIQUE (trial, stratum, stratum_seq)
        )""",
        """CREATE TABLE decisions (
            trial TEXT NOT NULL REFERENCES trials(name),
            participant TEXT NOT NULL,
            decision_point INTEGER NOT NULL,
            available INTEGER NOT NULL,
            reason TEXT,
            probability DOUBLE PRECISION NOT NULL,
            action INTEGER NOT NULL,
            draw DOUBLE PRECISION,
            decided_at TEXT NOT NULL,
            decided_by TEXT NOT NULL,
            PRIMARY KEY (trial, participant, decision_point)
        )""",
        """CREATE TABLE audit (
            trial TEXT NOT NULL,
            seq INTEGER NOT NULL,
            at TEXT NOT NULL,
            who TEXT NOT NULL,
            action TEXT NOT NULL,
            payload TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            PRIMARY KEY (trial, seq)
        )""",
    ]),
    # Keyed audit (HMAC chain), sealed allocation state, and the audit row of every allocation.
    ("0002_keyed_audit", [
        "ALTER TABLE trials ADD COLUMN state TEXT",
        "ALTER TABLE trials ADD COLUMN audit_version INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE participants ADD COLUMN audit_seq INTEGER",
        "ALTER TABLE decisions ADD COLUMN audit_seq INTEGER",
    ]),
    # Access tokens of the randomisation server (authenticated rows; secrets never stored).
    ("0003_tokens", [
        """CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            trial TEXT,
            role TEXT NOT NULL,
            sites TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            expires_at TEXT,
            revoked_at TEXT,
            secret_hash TEXT NOT NULL,
            mac TEXT NOT NULL
        )""",
        "CREATE INDEX audit_by_action ON audit (trial, action)",
    ]),
    # Outcomes recorded in a live trial (one per participant, outcome and decision point).
    ("0004_outcomes", [
        """CREATE TABLE outcomes (
            trial TEXT NOT NULL REFERENCES trials(name),
            participant TEXT NOT NULL,
            outcome TEXT NOT NULL,
            point INTEGER NOT NULL,
            value DOUBLE PRECISION NOT NULL,
            observed_at TEXT,
            recorded_at TEXT NOT NULL,
            recorded_by TEXT NOT NULL,
            corrections INTEGER NOT NULL,
            audit_seq INTEGER NOT NULL,
            PRIMARY KEY (trial, participant, outcome, point)
        )""",
    ]),
    # The context and policy version of every decision of an adaptive MRT.
    ("0005_decision_policy", [
        "ALTER TABLE decisions ADD COLUMN context TEXT",
        "ALTER TABLE decisions ADD COLUMN policy_version INTEGER",
    ]),
]

_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"""

AUDIT_VERSION = 2
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class TrialRecord:
    """The ``trials`` row of one trial."""

    name: str
    kind: str
    design_sha256: str
    design_text: str
    config: str
    key_check: str
    key_file: str | None
    created_at: str
    created_by: str
    n_enrolled: int
    n_audit: int
    last_hash: str
    state: str | None
    audit_version: int


@dataclass(frozen=True)
class ParticipantRecord:
    """The ``participants`` row of one enrolment."""

    participant: str
    sequence: int
    stratum: str
    strata: str
    stratum_seq: int
    arm: int | None
    allocation: str
    enrolled_at: str
    enrolled_by: str
    error: int
    error_reason: str | None
    audit_seq: int | None


@dataclass(frozen=True)
class DecisionRecord:
    """The ``decisions`` row of one MRT decision point."""

    participant: str
    decision_point: int
    available: int
    reason: str | None
    probability: float
    action: int
    draw: float | None
    decided_at: str
    decided_by: str
    audit_seq: int | None
    #: The context (canonical JSON) and policy version of an adaptive MRT's decision.
    context: str | None = None
    policy_version: int | None = None


@dataclass(frozen=True)
class OutcomeRecord:
    """The ``outcomes`` row of one outcome (``point`` 0 for an outcome per participant)."""

    participant: str
    outcome: str
    point: int
    value: float
    observed_at: str | None
    recorded_at: str
    recorded_by: str
    corrections: int
    audit_seq: int


@functools.cache
def _columns(record: type) -> str:
    return ", ".join(f.name for f in fields(record))


@functools.cache
def _placeholders(record: type) -> str:
    return ", ".join("?" for _ in fields(record))


def astuple(record: Any) -> tuple:
    """Return the field values of a (flat) record dataclass, in field order."""
    return tuple(record.__dict__.values())


def default_lock_timeout() -> float:
    """``$TRIALKIT_LOCK_TIMEOUT`` (seconds) or 10."""
    text = os.environ.get("TRIALKIT_LOCK_TIMEOUT", "").strip()
    if not text:
        return 10.0
    return check_lock_timeout(text)


def check_lock_timeout(value: Any) -> float:
    """Return a lock timeout in seconds: a finite number in (0, 3600]."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not 0 < seconds <= 3600:  # also false for NaN
        raise InvalidInput(f"lock timeout {str(value)[:40]!r} is invalid — give seconds in "
                           "(0, 3600]", param="lock_timeout")
    return seconds


def resolve_url(url: str | None) -> str:
    """Return ``url``, or ``$TRIALKIT_DB``, or raise when neither is set."""
    url = url or os.environ.get("TRIALKIT_DB")
    if not url:
        raise InvalidInput("no database given — give a database URL (sqlite:///trial.db or "
                           "postgresql://…) or set TRIALKIT_DB", param="db")
    return url


def utc_now() -> str:
    """Return the current UTC time, ISO 8601 with microseconds and ``Z``."""
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Store:
    """The live service's storage: every read and write, behind one dialect-neutral interface.

    Trials, participants, decisions, tokens and the audit trail are read and written here only.

    Subclasses provide the connection, the transactions and the translation of driver errors;
    the SQL (``?`` placeholders) is shared.
    """

    dialect = ""
    url = ""
    lock_timeout = 10.0

    # -- primitives (subclasses) ----------------------------------------------------------
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def write(self, trial: str | None) -> Iterator[None]:
        """Return a write transaction holding the lock of ``trial`` (of the store for ``None``)."""
        raise NotImplementedError
        yield  # pragma: no cover

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Return a read transaction: every read inside sees the same consistent state."""
        raise NotImplementedError
        yield  # pragma: no cover

    def applied_migrations(self) -> set[str] | None:
        """Names of applied migrations, or ``None`` when the schema does not exist yet."""
        raise NotImplementedError

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside :meth:`write`: a nested step whose writes are undone if it fails."""
        self._savepoints = getattr(self, "_savepoints", 0) + 1
        name = f"step_{self._savepoints}"
        self._run(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            with contextlib.suppress(ServiceError):
                self._run(f"ROLLBACK TO SAVEPOINT {name}")
                self._run(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            self._run(f"RELEASE SAVEPOINT {name}")

    def close(self) -> None:
        """Close the connection."""

    def discard(self) -> None:
        """Close, and remove the database if this store created it and it holds no trial."""
        self.close()

    # -- schema ---------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply every pending named migration; return the names applied."""
        done = self.applied_migrations()
        if done is not None and all(name in done for name, _ in MIGRATIONS):
            return []
        applied_now: list[str] = []
        with self.write(None):
            self._run(_MIGRATIONS_TABLE)
            done = {r[0] for r in self._rows("SELECT name FROM schema_migrations")}
            for name, statements in MIGRATIONS:
                if name in done:
                    continue
                for sql in statements:
                    self._run(sql)
                self._run("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                          (name, utc_now()))
                applied_now.append(name)
        return applied_now

    def require_schema(self) -> None:
        """Raise unless the trialkit schema exists; apply pending migrations of an older one."""
        done = self.applied_migrations()
        if done is None:
            raise NotFound(f"{self.url} holds no trialkit trials — create one first",
                           param="db")
        if not all(name in done for name, _ in MIGRATIONS):
            self.migrate()

    # -- trials ---------------------------------------------------------------------------
    def trial_names(self) -> list[str]:
        """Names of every trial in the store, sorted."""
        return [r[0] for r in self._rows("SELECT name FROM trials ORDER BY name")]

    def load_trial(self, name: str, lock: bool = False) -> TrialRecord | None:
        """Return the trial's row, or ``None``; ``lock`` (inside :meth:`write`) locks it."""
        sql = f"SELECT {_columns(TrialRecord)} FROM trials WHERE name = ?"
        rows = self._rows(sql + (self._for_update if lock else ""), (name,))
        return TrialRecord(*rows[0]) if rows else None

    _for_update = ""

    def insert_trial(self, record: TrialRecord) -> None:
        """Insert a new trial's row."""
        self._run(f"INSERT INTO trials ({_columns(TrialRecord)}) VALUES "
                  f"({_placeholders(TrialRecord)})", astuple(record))

    def set_head(self, name: str, n_enrolled: int, n_audit: int, last_hash: str,
                 state: str | None) -> None:
        """Record the trial's counts, chain head and sealed allocation state."""
        self._run("UPDATE trials SET n_enrolled = ?, n_audit = ?, last_hash = ?, state = ? "
                  "WHERE name = ?", (n_enrolled, n_audit, last_hash, state, name))

    def set_audit_version(self, name: str, version: int) -> None:
        """Record the format of the trial's audit chain."""
        self._run("UPDATE trials SET audit_version = ? WHERE name = ?", (version, name))

    # -- participants ---------------------------------------------------------------------
    def participant(self, trial: str, participant: str) -> ParticipantRecord | None:
        """One enrolment, or ``None``."""
        rows = self._rows(f"SELECT {_columns(ParticipantRecord)} FROM participants WHERE "
                          "trial = ? AND participant = ?", (trial, participant))
        return ParticipantRecord(*rows[0]) if rows else None

    def participants(self, trial: str) -> list[ParticipantRecord]:
        """Every enrolment of ``trial`` in enrolment order."""
        rows = self._rows(f"SELECT {_columns(ParticipantRecord)} FROM participants WHERE "
                          "trial = ? ORDER BY sequence", (trial,))
        return [ParticipantRecord(*r) for r in rows]

    def insert_participant(self, trial: str, record: ParticipantRecord) -> None:
        """Insert one enrolment (the obsolete clear-text state columns stay empty)."""
        self._run(f"INSERT INTO participants (trial, {_columns(ParticipantRecord)}, state) "
                  f"VALUES (?, {_placeholders(ParticipantRecord)}, '{{}}')",
                  (trial, *astuple(record)))

    def error_count(self, trial: str) -> int:
        """Return how many enrolments of ``trial`` are marked in error."""
        return int(self._rows("SELECT COUNT(*) FROM participants WHERE trial = ? AND error = 1",
                              (trial,))[0][0])

    def set_error(self, trial: str, participant: str, reason: str) -> None:
        """Flag an enrolment as made in error."""
        self._run("UPDATE participants SET error = 1, error_reason = ? WHERE trial = ? AND "
                  "participant = ?", (reason, trial, participant))

    def rewrite_participant(self, trial: str, participant: str, audit_seq: int) -> None:
        """Clear an enrolment's obsolete clear-text state and record its audit row."""
        self._run("UPDATE participants SET state = '{}', block_no = NULL, block_pos = NULL, "
                  "audit_seq = ? WHERE trial = ? AND participant = ?",
                  (audit_seq, trial, participant))

    # -- decisions ------------------------------------------------------------------------
    def decision(self, trial: str, participant: str, point: int) -> DecisionRecord | None:
        """One decision point, or ``None``."""
        rows = self._rows(f"SELECT {_columns(DecisionRecord)} FROM decisions WHERE trial = ? "
                          "AND participant = ? AND decision_point = ?",
                          (trial, participant, point))
        return DecisionRecord(*rows[0]) if rows else None

    def decisions(self, trial: str) -> list[DecisionRecord]:
        """Every decision of ``trial``, by participant and decision point."""
        rows = self._rows(f"SELECT {_columns(DecisionRecord)} FROM decisions WHERE trial = ? "
                          "ORDER BY participant, decision_point", (trial,))
        return [DecisionRecord(*r) for r in rows]

    def insert_decision(self, trial: str, record: DecisionRecord) -> None:
        """Insert one decision."""
        self._run(f"INSERT INTO decisions (trial, {_columns(DecisionRecord)}) VALUES "
                  f"(?, {_placeholders(DecisionRecord)})", (trial, *astuple(record)))

    def set_decision_audit(self, trial: str, participant: str, point: int, seq: int) -> None:
        """Record the audit row of a decision."""
        self._run("UPDATE decisions SET audit_seq = ? WHERE trial = ? AND participant = ? AND "
                  "decision_point = ?", (seq, trial, participant, point))

    # -- outcomes -------------------------------------------------------------------------
    def outcome(self, trial: str, participant: str, outcome: str,
                point: int = 0) -> OutcomeRecord | None:
        """Return one recorded outcome, or ``None``."""
        rows = self._rows(f"SELECT {_columns(OutcomeRecord)} FROM outcomes WHERE trial = ? AND "
                          "participant = ? AND outcome = ? AND point = ?",
                          (trial, participant, outcome, point))
        return OutcomeRecord(*rows[0]) if rows else None

    def outcomes(self, trial: str) -> list[OutcomeRecord]:
        """Return every recorded outcome of ``trial``, by participant."""
        rows = self._rows(f"SELECT {_columns(OutcomeRecord)} FROM outcomes WHERE trial = ? "
                          "ORDER BY participant, outcome, point", (trial,))
        return [OutcomeRecord(*r) for r in rows]

    def put_outcome(self, trial: str, record: OutcomeRecord) -> None:
        """Insert an outcome, or replace it (a correction)."""
        self._run("DELETE FROM outcomes WHERE trial = ? AND participant = ? AND outcome = ? AND "
                  "point = ?", (trial, record.participant, record.outcome, record.point))
        self._run(f"INSERT INTO outcomes (trial, {_columns(OutcomeRecord)}) VALUES "
                  f"(?, {_placeholders(OutcomeRecord)})", (trial, *astuple(record)))

    # -- audit ----------------------------------------------------------------------------
    def audit_rows(self, trial: str, action: str | None = None) -> list[AuditRow]:
        """Return the trial's audit rows in order (only those of ``action`` when given)."""
        sql = f"SELECT {_columns(AuditRow)} FROM audit WHERE trial = ?"
        params: tuple = (trial,)
        if action is not None:
            sql += " AND action = ?"
            params += (action,)
        return [AuditRow(*r) for r in self._rows(sql + " ORDER BY seq", params)]

    def last_audit_row(self, trial: str, action: str) -> AuditRow | None:
        """Return the trial's last audit row of ``action``, or ``None``."""
        rows = self._rows(f"SELECT {_columns(AuditRow)} FROM audit WHERE trial = ? AND "
                          "action = ? ORDER BY seq DESC LIMIT 1", (trial, action))
        return AuditRow(*rows[0]) if rows else None

    def audit_row(self, trial: str, seq: int) -> AuditRow | None:
        """One audit row, or ``None``."""
        rows = self._rows(f"SELECT {_columns(AuditRow)} FROM audit WHERE trial = ? AND seq = ?",
                          (trial, seq))
        return AuditRow(*rows[0]) if rows else None

    def append_audit(self, trial: str, row: AuditRow) -> None:
        """Append one audit row."""
        self._run(f"INSERT INTO audit (trial, {_columns(AuditRow)}) VALUES "
                  f"(?, {_placeholders(AuditRow)})", (trial, *astuple(row)))

    def rewrite_audit(self, trial: str, row: AuditRow) -> None:
        """Replace an audit row's payload and MACs (only when a trial's chain is upgraded)."""
        self._run("UPDATE audit SET payload = ?, prev_hash = ?, hash = ? WHERE trial = ? AND "
                  "seq = ?", (row.payload, row.prev_hash, row.hash, trial, row.seq))


    # -- tokens ---------------------------------------------------------------------------
    def insert_token(self, token: Token) -> None:
        """Store a new token's row."""
        self._run(f"INSERT INTO tokens ({_columns(Token)}) VALUES ({_placeholders(Token)})",
                  astuple(token))

    def token(self, token_id: str) -> Token | None:
        """One token's row, or ``None``."""
        rows = self._rows(f"SELECT {_columns(Token)} FROM tokens WHERE id = ?", (token_id,))
        return Token(*rows[0]) if rows else None

    def tokens(self, trial: str | None) -> list[Token]:
        """Return the tokens of ``trial`` (server-wide ones for ``None``), oldest first."""
        where = "trial IS NULL" if trial is None else "trial = ?"
        rows = self._rows(f"SELECT {_columns(Token)} FROM tokens WHERE {where} ORDER BY "
                          "created_at, id", () if trial is None else (trial,))
        return [Token(*r) for r in rows]

    def update_token(self, token: Token) -> None:
        """Replace a token's revocation time and MAC."""
        self._run("UPDATE tokens SET revoked_at = ?, mac = ? WHERE id = ?",
                  (token.revoked_at, token.mac, token.id))


# -- SQLite ---------------------------------------------------------------------------------------
def _sqlite_problem(exc: Exception, path: str, timeout: float) -> ServiceError:
    import sqlite3

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(f"the write conflicts with what database {path} holds ({text}) — "
                        "nothing was written; retry")
    if "locked" in low or "busy" in low:
        return Unavailable(f"database {path} is locked by another writer (waited {timeout:g} s) "
                           "— nothing was written; retry, or find the process holding it",
                           param="lock_timeout")
    if "full" in low:
        return Unavailable(f"the disk holding database {path} is full — nothing was written; "
                           "free space, then retry")
    if "readonly" in low or "read-only" in low:
        return Forbidden(f"database {path} is read-only for this user — nothing was written; "
                         "check the permissions of the file and its folder", param="db")
    if "unable to open" in low or "cannot open" in low:
        return Forbidden(f"cannot open database {path} ({text}) — check it exists and this user "
                         "may read and write it and its folder", param="db")
    if "not a database" in low or "malformed" in low or "no such table" in low:
        return InvalidInput(f"database {path} is not a trialkit database or is damaged "
                            f"({text}) — check the database URL", param="db")
    return Unavailable(f"database {path} failed ({text}) — nothing was written; retry, and check "
                       "the disk and the file")


class SqliteStore(Store):
    """An SQLite file in WAL mode; writes serialise on a lock file next to it.

    ``synchronous="full"`` (the default) makes every allocation durable on disk before it is
    returned (one fsync per allocation). ``"normal"`` (URL ``sqlite:///trial.db?synchronous=normal``,
    SQLite's usual setting in WAL mode) survives the crash or kill of any process, but an
    operating-system crash or power loss can roll back the last allocations; it is faster.

    The database, its ``-wal`` and ``-shm`` files and the lock file are created readable and
    writable by their owner only (mode 0600).
    """

    dialect = "sqlite"

    def __init__(self, url: str, path: str, create: bool, synchronous: str = "full",
                 lock_timeout: float | None = None):
        import sqlite3

        self.url, self.path = url, path
        self.lock_timeout = default_lock_timeout() if lock_timeout is None else lock_timeout
        self.created = False
        self._depth = 0
        self._check_path(create)
        try:
            uri = f"file:{_uri_path(os.path.abspath(path))}?mode=rw"
            self.conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                                        timeout=self.lock_timeout, check_same_thread=False)
        except sqlite3.Error as exc:
            self._forget_created()
            raise _sqlite_problem(exc, path, self.lock_timeout) from None
        try:
            self._configure(synchronous, create)
        except ServiceError:
            self.discard()
            raise

    def _check_path(self, create: bool) -> None:
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise NotFound(f"cannot open database {self.path}: folder {parent} does not exist — "
                           "check the database URL", param="db")
        if os.path.exists(self.path):
            return
        if not create:
            raise NotFound(f"database file {self.path} does not exist — check the database URL, "
                           "or create a trial first", param="db")
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self.created = True
        except FileExistsError:
            pass  # created by a concurrent process: open it
        except OSError as exc:
            raise Forbidden(f"cannot create database {self.path} ({exc.strerror}) — check the "
                            "folder is writable", param="db") from None

    def _configure(self, synchronous: str, create: bool) -> None:
        self._run(f"PRAGMA busy_timeout = {int(self.lock_timeout * 1000)}")
        if create and self._rows("PRAGMA journal_mode")[0][0] != "wal":
            with self._file_lock():  # two creators must not race on the journal mode
                self._run("PRAGMA journal_mode = WAL")
        self._run(f"PRAGMA synchronous = {synchronous.upper()}")
        self._run("PRAGMA foreign_keys = ON")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        import sqlite3

        try:
            return self.conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise _sqlite_problem(exc, self.path, self.lock_timeout) from None

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._rows(sql, params)

    def _lock_file(self) -> int:
        try:
            return os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise Forbidden(f"cannot open the lock file {self.path}.lock ({exc.strerror}) — "
                            "check this user may write it and its folder", param="db") from None

    def _acquire(self, fd: int) -> None:
        import fcntl

        deadline = time.monotonic() + self.lock_timeout
        delay = 0.0002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                raise Unavailable(f"trial lock {self.path}.lock is held by another process "
                                  f"(waited {self.lock_timeout:g} s) — nothing was written; "
                                  "retry, or find the process holding it (a stopped process "
                                  "keeps it)", param="lock_timeout")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.005)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        # Threads of one process queue on a lock of their own (no polling), then take the file
        # lock that serialises processes.
        thread_lock = _thread_lock(self.path)
        if not thread_lock.acquire(timeout=self.lock_timeout):
            raise Unavailable(f"trial lock {self.path}.lock is held by another thread of this "
                              f"process (waited {self.lock_timeout:g} s) — nothing was written; "
                              "retry", param="lock_timeout")
        try:
            fd = self._lock_file()
            try:
                self._acquire(fd)
                yield
            finally:
                os.close(fd)  # releases the file lock
        finally:
            thread_lock.release()

    @contextlib.contextmanager
    def write(self, trial: str | None) -> Iterator[None]:  # noqa: D102
        if self._depth:
            yield
            return
        with self._file_lock():
            self._run("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
                self._run("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    self.conn.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:  # noqa: D102
        if self._depth:
            yield
            return
        self._run("BEGIN")
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            with contextlib.suppress(Exception):
                self.conn.execute("COMMIT")

    def applied_migrations(self) -> set[str] | None:  # noqa: D102
        exists = self._rows("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                            "AND name = 'schema_migrations'")
        if not exists:
            return None
        return {r[0] for r in self._rows("SELECT name FROM schema_migrations")}

    def close(self) -> None:  # noqa: D102
        with contextlib.suppress(Exception):
            self.conn.close()

    def _forget_created(self) -> None:
        if self.created:
            for suffix in ("", "-wal", "-shm", ".lock"):
                with contextlib.suppress(OSError):
                    os.unlink(self.path + suffix)
            self.created = False

    def discard(self) -> None:
        """Close; remove the database if this store created it and no trial was stored."""
        empty = False
        if self.created:
            with contextlib.suppress(ServiceError):
                empty = self.applied_migrations() is None or not self.trial_names()
        self.close()
        if empty:
            self._forget_created()


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: str) -> threading.Lock:
    key = os.path.realpath(path)
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(key, threading.Lock())


def _uri_path(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


# -- PostgreSQL -----------------------------------------------------------------------------------
class ConnectionLost(Unavailable):
    """The connection to the database server broke; the next call reconnects."""


class PostgresStore(Store):
    """A PostgreSQL database through psycopg 3; a trial's row is the lock of its writes.

    A broken connection (server restart, backend killed) raises :class:`ConnectionLost` once;
    the next call opens a new connection.
    """

    dialect = "postgresql"
    _for_update = " FOR UPDATE"

    def __init__(self, url: str, lock_timeout: float | None = None):
        import psycopg

        self.url = url
        self.lock_timeout = default_lock_timeout() if lock_timeout is None else lock_timeout
        self._psycopg = psycopg
        self._tx: Any = None
        self.conn: Any = None
        self._connect()

    def _connect(self) -> None:
        psycopg = self._psycopg
        try:
            self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10,
                                        application_name="trialkit")
            ms = int(self.lock_timeout * 1000)
            self.conn.execute(f"SET lock_timeout = {ms}")
            self.conn.execute(f"SET statement_timeout = {ms + 60_000}")
        except psycopg.Error as exc:
            self.conn = None
            raise Unavailable(f"cannot connect to PostgreSQL ({_first_line(exc)}) — check the "
                              "database URL and that the server is running", param="db") from None

    def _live(self) -> Any:
        if self.conn is None or self.conn.closed or self.conn.broken:
            if self._tx is not None:
                raise ConnectionLost("the connection to PostgreSQL was lost in a transaction — "
                                     "nothing was written; retry")
            with contextlib.suppress(Exception):
                if self.conn is not None:
                    self.conn.close()
            self._connect()
        return self.conn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        try:
            cur = self._live().execute(sql.replace("?", "%s"), tuple(params))
            return cur.fetchall() if cur.description else []
        except self._psycopg.Error as exc:
            raise self._problem(exc) from None

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._rows(sql, params)

    def _problem(self, exc: Exception) -> ServiceError:
        errors = self._psycopg.errors
        text = _first_line(exc)
        if isinstance(exc, errors.LockNotAvailable | errors.QueryCanceled):
            return Unavailable(f"the trial is locked by another writer (waited "
                               f"{self.lock_timeout:g} s) — nothing was written; retry",
                               param="lock_timeout")
        if isinstance(exc, errors.UniqueViolation | errors.IntegrityError):
            return Conflict(f"the write conflicts with what the database holds ({text}) — "
                            "nothing was written; retry")
        if isinstance(exc, errors.UndefinedTable):
            return NotFound(f"{self.url} holds no trialkit tables — create a trial first",
                            param="db")
        if isinstance(exc, errors.InsufficientPrivilege | errors.ReadOnlySqlTransaction):
            return Forbidden(f"PostgreSQL refused the write ({text}) — check this user's "
                             "privileges", param="db")
        if isinstance(exc, errors.DiskFull):
            return Unavailable("the PostgreSQL server's disk is full — nothing was written; "
                               "free space, then retry")
        if isinstance(exc, self._psycopg.DataError):
            return InvalidInput(f"PostgreSQL refused a value ({text}) — check the input")
        if isinstance(exc, self._psycopg.OperationalError) or self.conn is None or \
                self.conn.broken or self.conn.closed:
            return ConnectionLost(f"the connection to PostgreSQL was lost ({text}) — nothing "
                                  "was written; retry (the next call reconnects)")
        return Unavailable(f"PostgreSQL failed ({text}) — nothing was written; retry")

    @contextlib.contextmanager
    def _transaction(self, first: str | None) -> Iterator[None]:
        if self._tx is not None:
            yield
            return
        conn = self._live()
        try:
            with conn.transaction() as tx:
                self._tx = tx
                if first:
                    self._run(first)
                yield
        except self._psycopg.Error as exc:
            raise self._problem(exc) from None
        finally:
            self._tx = None

    @contextlib.contextmanager
    def write(self, trial: str | None) -> Iterator[None]:  # noqa: D102
        with self._transaction("SELECT pg_advisory_xact_lock(7318442001)" if trial is None
                               else None):
            yield

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:  # noqa: D102
        with self._transaction("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"):
            yield

    def applied_migrations(self) -> set[str] | None:  # noqa: D102
        exists = self._rows("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]
        if not exists:
            return None
        return {r[0] for r in self._rows("SELECT name FROM schema_migrations")}

    def backend_pid(self) -> int:
        """Return the server process serving this connection (for diagnostics and tests)."""
        return int(self._rows("SELECT pg_backend_pid()")[0][0])

    def close(self) -> None:  # noqa: D102
        with contextlib.suppress(Exception):
            if self.conn is not None:
                self.conn.close()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _sqlite_target(url: str) -> tuple[str, str]:
    """Return the file path and the ``synchronous`` setting of an ``sqlite:///`` URL."""
    rest = url[len("sqlite:///"):]
    raw_path, _, query = rest.partition("?")
    try:
        if _BAD_ESCAPE.search(raw_path):
            raise ValueError
        path = unquote(raw_path, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(f"database URL {url[:60]!r} has a '%' that is not an escape of UTF-8 "
                           "text — write %25 for a literal '%'", param="db") from None
    if not path:
        raise InvalidInput(f"database URL {url[:60]!r} has no path — write sqlite:///trial.db",
                           param="db")
    if "\x00" in path:
        raise InvalidInput("database URL has a NUL character — give a plain file path",
                           param="db")
    synchronous = "full"
    for item in filter(None, query.split("&")):
        name, _, value = item.partition("=")
        if name != "synchronous" or value.lower() not in ("full", "normal"):
            raise InvalidInput(f"database URL option {item[:40]!r} is not supported — the only "
                               "SQLite option is synchronous=full|normal", param="db")
        synchronous = value.lower()
    return path, synchronous


def sqlite_path(url: str) -> str | None:
    """Return the file of an ``sqlite:///`` URL (``None`` for other stores)."""
    return _sqlite_target(url)[0] if url.startswith("sqlite:///") else None


def connect(url: str | None = None, create: bool = False,
            lock_timeout: float | None = None) -> Store:
    """Open the store named by ``url`` (or ``$TRIALKIT_DB``).

    Parameters
    ----------
    url : str, optional
        ``sqlite:///path`` or ``postgresql://…``. In an SQLite path, ``%XX`` escapes are decoded
        (``%3F`` for ``?``, ``%25`` for ``%``); ``#`` is an ordinary character; ``?`` starts the
        options.
    create : bool
        Create the SQLite file when missing (only ``trial create`` does).
    lock_timeout : float, optional
        Seconds to wait for a lock (default ``$TRIALKIT_LOCK_TIMEOUT`` or 10).
    """
    url = resolve_url(url)
    if lock_timeout is not None:
        lock_timeout = check_lock_timeout(lock_timeout)
    if url.startswith("sqlite:///"):
        path, synchronous = _sqlite_target(url)
        return SqliteStore(url, path, create, synchronous, lock_timeout)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, lock_timeout)
    raise InvalidInput(f"database URL {url[:60]!r} is not supported — use sqlite:///PATH or "
                       "postgresql://USER@HOST/DB", param="db")
