"""Direct SQL on a test store (as an auditor or a tamperer would), for SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3


def run_sql(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Run ``sql`` (``?`` placeholders) on the store at ``url`` outside trialkit; return rows."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql.replace("%", "%%").replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []


TABLES = ("trials", "participants", "decisions", "audit")


def copy_store(url: str) -> dict:
    """Return a copy of a whole store (SQLite: the files' bytes; PostgreSQL: every row)."""
    if url.startswith("sqlite:///"):
        import os

        path = url[len("sqlite:///"):].split("?")[0]
        out = {}
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                with open(path + suffix, "rb") as fh:
                    out[suffix] = fh.read()
        return out
    out = {}
    for table in TABLES:
        cols = [r[0] for r in run_sql(url, "SELECT column_name FROM information_schema.columns "
                                           "WHERE table_name = ? AND table_schema = "
                                           "current_schema() ORDER BY ordinal_position",
                                      (table,))]
        out[table] = (cols, run_sql(url, f"SELECT {', '.join(cols)} FROM {table}"))
    return out


def restore_store(url: str, copy: dict) -> None:
    """Put back what :func:`copy_store` took (as restoring a backup would)."""
    if url.startswith("sqlite:///"):
        import os

        path = url[len("sqlite:///"):].split("?")[0]
        for suffix in ("", "-wal", "-shm"):
            if suffix in copy:
                with open(path + suffix, "wb") as fh:
                    fh.write(copy[suffix])
            elif os.path.exists(path + suffix):
                os.unlink(path + suffix)
        return
    for table in reversed(TABLES):
        run_sql(url, f"DELETE FROM {table}")
    for table in TABLES:
        cols, rows = copy[table]
        marks = ", ".join("?" for _ in cols)
        for row in rows:
            run_sql(url, f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", row)
