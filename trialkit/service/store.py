"""Stores: an SQLite file (embedded default) or PostgreSQL, chosen by URL, with named migrations.

``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or ``postgresql://user@host/db``
(``postgres://`` too); the ``TRIALKIT_DB`` environment variable supplies the URL when none is given.
Every write is one short transaction that first takes the trial's write lock: on SQLite an
exclusive file lock plus ``BEGIN IMMEDIATE``; on PostgreSQL ``SELECT … FOR UPDATE`` on the trial's
row. Concurrent enrolments therefore serialise; UNIQUE constraints are the last line of defence.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from trialkit.errors import ServiceError

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
]

_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"""


def resolve_url(url: str | None) -> str:
    """Return ``url``, or ``$TRIALKIT_DB``, or raise when neither is set."""
    url = url or os.environ.get("TRIALKIT_DB")
    if not url:
        raise ServiceError("no database given — pass --db sqlite:///trial.db (or postgresql://…) "
                           "or set TRIALKIT_DB")
    return url


def _utc_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Store:
    """A database connection with one dialect-neutral API.

    SQL is written with ``?`` placeholders; the PostgreSQL store rewrites them to ``%s``.
    """

    dialect = ""
    url = ""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a query and return all rows."""
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement."""
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""
        for row in rows:
            self.execute(sql, row)

    @contextlib.contextmanager
    def write(self, trial: str | None) -> Iterator[None]:
        """A write transaction holding the lock of ``trial`` (the store's lock when ``None``)."""
        raise NotImplementedError
        yield

    def lock_trial_row(self, trial: str) -> tuple | None:
        """Inside :meth:`write`: return the trial's row (locked on PostgreSQL), or ``None``."""
        rows = self.query("SELECT name FROM trials WHERE name = ?", (trial,))
        return rows[0] if rows else None

    def close(self) -> None:
        """Close the connection."""

    # -- migrations ---------------------------------------------------------------------------
    def applied_migrations(self) -> set[str] | None:
        """Names of applied migrations, or ``None`` when the schema does not exist yet."""
        raise NotImplementedError

    def migrate(self) -> list[str]:
        """Apply every pending named migration; return the names applied."""
        applied_now: list[str] = []
        done = self.applied_migrations()
        if done is not None and all(name in done for name, _ in MIGRATIONS):
            return applied_now
        with self.write(None):
            self.execute(_MIGRATIONS_TABLE)
            done = {r[0] for r in self.query("SELECT name FROM schema_migrations")}
            for name, statements in MIGRATIONS:
                if name in done:
                    continue
                for sql in statements:
                    self.execute(sql)
                self.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                             (name, _utc_now()))
                applied_now.append(name)
        return applied_now

    def require_schema(self) -> None:
        """Raise unless the trialkit schema exists; apply pending migrations of an older one."""
        done = self.applied_migrations()
        if done is None:
            raise ServiceError(f"{self.url} holds no trialkit trials — create one with "
                               "'trialkit trial create DESIGN --db URL --key-file PATH'")
        if not all(name in done for name, _ in MIGRATIONS):
            self.migrate()


# -- SQLite ---------------------------------------------------------------------------------------
class SqliteStore(Store):
    """An SQLite file in WAL mode; writes serialise on a lock file next to it.

    ``synchronous="full"`` (the default) makes every allocation durable on disk before it is
    returned (one fsync per allocation). ``"normal"`` (URL ``sqlite:///trial.db?synchronous=normal``,
    SQLite's usual setting in WAL mode) survives the crash or kill of any process, but an
    operating-system crash or power loss can roll back the last allocations; it is faster.
    """

    dialect = "sqlite"

    def __init__(self, url: str, path: str, create: bool, synchronous: str = "full"):
        self.url = url
        self.path = path
        if not create and not os.path.exists(path):
            raise ServiceError(f"database file {path} does not exist — check --db, or create a "
                               "trial first with 'trialkit trial create'")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise ServiceError(f"cannot open database {path}: folder {parent} does not exist — "
                               "check --db")
        try:
            uri = f"file:{path}?mode={'rwc' if create else 'rw'}"
            self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0,
                                        check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout = 30000")
            mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal" and create:
                self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            self.conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise ServiceError(f"cannot open database {path} ({exc}) — check --db") from None
        self._lock_fd: int | None = None
        self._depth = 0

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:  # noqa: D102
        try:
            return self.conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise ServiceError(f"database {self.path} failed ({exc}) — check it is a trialkit "
                               "database") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:  # noqa: D102
        self.conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:  # noqa: D102
        self.conn.executemany(sql, [tuple(r) for r in rows])

    @contextlib.contextmanager
    def write(self, trial: str | None) -> Iterator[None]:  # noqa: D102
        import fcntl

        if self._depth:
            yield
            return
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0
        finally:
            os.close(fd)  # releases the lock

    def applied_migrations(self) -> set[str] | None:  # noqa: D102
        exists = self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                            "AND name = 'schema_migrations'")
        if not exists:
            return None
        return {r[0] for r in self.query("SELECT name FROM schema_migrations")}

    def close(self) -> None:  # noqa: D102
        self.conn.close()


# -- PostgreSQL -----------------------------------------------------------------------------------
class PostgresStore(Store):
    """A PostgreSQL database through psycopg 3; a trial's row is the lock of its writes."""

    dialect = "postgresql"

    def __init__(self, url: str):
        import psycopg

        self.url = url
        self._psycopg = psycopg
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ServiceError(f"cannot connect to PostgreSQL ({first}) — check --db and that "
                               "the server is running") from None
        self._tx = None

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:  # noqa: D102
        try:
            return self.conn.execute(self._sql(sql), tuple(params)).fetchall()
        except self._psycopg.errors.UndefinedTable:
            raise ServiceError(f"{self.url} holds no trialkit tables — create a trial first "
                               "with 'trialkit trial create'") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:  # noqa: D102
        self.conn.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:  # noqa: D102
        with self.conn.cursor() as cur:
            cur.executemany(self._sql(sql), [tuple(r) for r in rows])

    @contextlib.contextmanager
    def write(self, trial: str | None) -> Iterator[None]:  # noqa: D102
        if self._tx is not None:
            yield
            return
        with self.conn.transaction() as tx:
            self._tx = tx
            try:
                if trial is None:
                    self.conn.execute("SELECT pg_advisory_xact_lock(7318442001)")
                yield
            finally:
                self._tx = None

    def lock_trial_row(self, trial: str) -> tuple | None:  # noqa: D102
        rows = self.query("SELECT name FROM trials WHERE name = ? FOR UPDATE", (trial,))
        return rows[0] if rows else None

    def applied_migrations(self) -> set[str] | None:  # noqa: D102
        exists = self.query("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]
        if not exists:
            return None
        return {r[0] for r in self.query("SELECT name FROM schema_migrations")}

    def close(self) -> None:  # noqa: D102
        self.conn.close()


def connect(url: str | None = None, create: bool = False) -> Store:
    """Open the store named by ``url`` (or ``$TRIALKIT_DB``).

    Parameters
    ----------
    url : str, optional
        ``sqlite:///path`` or ``postgresql://…``.
    create : bool
        Create the SQLite file when missing (only ``trial create`` does).
    """
    url = resolve_url(url)
    if url.startswith("sqlite:///"):
        path, _, query = url[len("sqlite:///"):].partition("?")
        if not path:
            raise ServiceError(f"database URL {url!r} has no path — write sqlite:///trial.db")
        synchronous = "full"
        for item in filter(None, query.split("&")):
            name, _, value = item.partition("=")
            if name != "synchronous" or value.lower() not in ("full", "normal"):
                raise ServiceError(f"database URL option {item!r} is not supported — the only "
                                   "SQLite option is synchronous=full|normal")
            synchronous = value.lower()
        return SqliteStore(url, path, create, synchronous)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    raise ServiceError(f"database URL {url!r} is not supported — use sqlite:///PATH or "
                       "postgresql://USER@HOST/DB")
