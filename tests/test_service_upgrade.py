"""A store written by trialkit 0.1 (unkeyed chain, clear-text draws) is upgraded once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dbtools import run_sql

from trialkit.service import Conflict, Tampered, Trial

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def old(tmp_path):
    shutil.copy(DATA / "v0.1-store.db", tmp_path / "old.db")
    keys = {}
    for name in ("blinded", "mrt"):
        keys[name] = tmp_path / f"{name}.key"
        shutil.copy(DATA / f"v0.1-{name}.key", keys[name])
        keys[name].chmod(0o600)
    return f"sqlite:///{tmp_path / 'old.db'}", keys


def test_an_old_trial_must_be_upgraded_before_any_write(old, run):
    url, keys = old
    res = run("trial", "enrol", "blinded_v01", "NEW", "--stratum", "site=a", "--db", url,
              "--key-file", keys["blinded"])
    assert res.exit_code == 2 and "upgrade" in res.output
    res = run("trial", "verify", "blinded_v01", "--key-file", keys["blinded"], "--db", url)
    assert res.exit_code == 1 and "upgrade" in res.stderr
    status = json.loads(run("trial", "status", "blinded_v01", "--db", url, "--format",
                            "json").output)
    assert status["enrolled"] == 12  # reading still works


def test_upgrade_keeps_every_allocation_and_removes_the_clear_text_draws(old, run):
    url, keys = old
    before = json.loads(run("trial", "export", "blinded_v01", "--db", url, "--format",
                            "json").output)
    leaked = run_sql(url, "SELECT COUNT(*) FROM participants WHERE block_no IS NOT NULL")
    assert leaked == [(12,)]  # 0.1 stored every block position in clear
    res = run("trial", "upgrade", "blinded_v01", "--key-file", keys["blinded"], "--user",
              "dm-1", "--db", url, "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["upgraded_rows"] == 15 and out["replayed"] == 12
    assert run_sql(url, "SELECT COUNT(*) FROM participants WHERE block_no IS NOT NULL OR "
                        "block_pos IS NOT NULL OR state != '{}' OR audit_seq IS NULL") == [(0,)]
    assert all("state" not in json.loads(p) for (p,) in
               run_sql(url, "SELECT payload FROM audit WHERE action = 'enrol'"))
    after = json.loads(run("trial", "export", "blinded_v01", "--db", url, "--format",
                           "json").output)
    assert after == before
    with Trial.open(url, "blinded_v01", key_file=str(keys["blinded"])) as trial:
        assert trial.verify(str(keys["blinded"]))["ok"]
        assert trial.status()["consort"] == {"randomised": 12, "marked_error": 1,
                                             "included": 11, "unblinded": 1}
        new = trial.enrol("B12", {"site": "a"})
        assert new["new"] is True and new["sequence"] == 13
        assert trial.verify(str(keys["blinded"]))["ok"]
        with pytest.raises(Conflict, match="nothing to upgrade"):
            trial.upgrade()
    legacy = json.loads(run_sql(url, "SELECT payload FROM audit WHERE action = 'upgrade'")[0][0])
    assert legacy["from_version"] == 1 and len(legacy["legacy_head"]) == 64


def test_an_mrt_upgrades_too(old):
    url, keys = old
    with Trial.open(url, "checkin_prompts_mrt", key_file=str(keys["mrt"])) as trial:
        assert trial.upgrade()["replayed"] == 15
        assert trial.decide("U0", 1)["new"] is False  # the logged decision, now with a receipt
        assert trial.verify(str(keys["mrt"]))["ok"]


def test_a_tampered_old_chain_is_not_upgraded(old):
    url, keys = old
    run_sql(url, "UPDATE participants SET allocation = 'XXXXXXXX' WHERE participant = 'B01'")
    run_sql(url, "UPDATE audit SET payload = replace(payload, (SELECT allocation FROM "
                 "participants WHERE participant = 'B02'), 'YYYYYYYY') WHERE seq = 4")
    with Trial.open(url, "blinded_v01", key_file=str(keys["blinded"])) as trial:
        with pytest.raises(Tampered, match="cannot be upgraded"):
            trial.upgrade()
    assert run_sql(url, "SELECT audit_version FROM trials WHERE name = 'blinded_v01'") == [(1,)]
