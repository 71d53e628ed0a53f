"""Shared fixtures: example design paths, a CLI runner and a real PostgreSQL URL."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
DESIGNS = ROOT / "designs"


@pytest.fixture
def designs_dir() -> Path:
    """Return the folder of example design files."""
    return DESIGNS


def _invoker():
    from trialkit.cli import cli

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(cli, [str(a) for a in args], input=input, prog_name="trialkit")

    return invoke


@pytest.fixture
def run():
    """Invoke the ``trialkit`` CLI in-process; returns the click Result."""
    return _invoker()


@pytest.fixture
def embedded_run():
    """``run`` itself, for a test in a module whose ``run`` goes through a server too."""
    return _invoker()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of a real PostgreSQL server (``scripts/start-postgres.sh`` starts one).

    Under CI (``CI`` set) a missing server is a failure, never a skip.
    """
    url = os.environ.get("TRIALKIT_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TRIALKIT_TEST_PG_URL is not set — run the tests through `make test`")
        pytest.skip("no PostgreSQL server: run `eval \"$(scripts/start-postgres.sh)\"` first")
    return url


@pytest.fixture
def pg_schema_url(pg_url):
    """Return a new, empty schema in the test PostgreSQL database (dropped afterwards)."""
    import psycopg

    schema = "tk_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in pg_url else "?"
    yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """Return a fresh store: an SQLite file, or a new schema in the test PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'trial.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture(params=["embedded", "server"])
def trial_run(request):
    """Like ``run``, for ``trialkit trial`` tests: embedded, then as a client of a real server."""
    from cliharness import TrialCli

    harness = TrialCli(request.param)
    yield harness.invoke
    harness.close()
