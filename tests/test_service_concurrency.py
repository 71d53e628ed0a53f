"""Many processes enrolling at once, and a process killed mid-enrolment (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from dbtools import run_sql

from trialkit.service import Trial

ROOT = Path(__file__).resolve().parent.parent
ADAPTIVE = ROOT / "designs" / "three-arm-adaptive.toml"

RANDOMISATION = """
[randomisation]
method = "blocks"
ratio = [2, 1, 1]
block_sizes = [4, 8]

[randomisation.strata]
site = ["a", "b", "c"]
"""

WORKER = """
import sys
from trialkit.service import Trial
url, key, prefix, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with Trial.open(url, "multi", key_file=key) as trial:
    i = 0
    while n < 0 or i < n:
        trial.enrol(f"{prefix}-{i}", {"site": "abc"[i % 3]})
        i += 1
"""


@pytest.fixture
def multi(db_url, tmp_path):
    design = tmp_path / "multi.toml"
    text = ADAPTIVE.read_text().replace('name = "three_arm_adaptive"', 'name = "multi"')
    design.write_text(text.split("\n[randomisation]")[0] + RANDOMISATION)
    key = str(tmp_path / "multi.key")
    Trial.create(design, db_url, key_file=key).close()
    return db_url, key


def _start(url, key, prefix, n):
    return subprocess.Popen([sys.executable, "-c", WORKER, url, key, prefix, str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_eight_processes_enrol_2000_participants(multi):
    url, key = multi
    procs = [_start(url, key, f"w{w}", 250) for w in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    rows = run_sql(url, "SELECT participant, sequence, stratum, arm FROM participants")
    assert len(rows) == 2000
    assert len({r[0] for r in rows}) == 2000
    assert sorted(r[1] for r in rows) == list(range(1, 2001))
    stratum = {r[0]: r[2] for r in rows}
    with Trial.open(url, "multi") as trial:
        replayed = trial.replay(key)
    blocks = defaultdict(list)
    for r in replayed:
        arm, block_no = r["arm"], r["detail"]["block"][0]
        blocks[(stratum[r["participant"]], block_no)].append(arm)
    last = {s: max(b for (s2, b) in blocks if s2 == s) for s, _ in blocks}
    checked = 0
    for (stratum, block_no), arms in blocks.items():
        if block_no == last[stratum]:
            continue
        counts = Counter(arms)
        size = len(arms)
        assert size in (4, 8)
        assert [counts[0], counts[1], counts[2]] == [size // 2, size // 4, size // 4]
        checked += 1
    assert checked > 200
    with Trial.open(url, "multi") as trial:
        result = trial.verify(key)
    assert result["ok"] and result["replayed"] == 2000 and result["audit_rows"] == 2001


@pytest.mark.slow
def test_sigkill_mid_loop_leaves_no_half_written_participant(multi):
    url, key = multi
    proc = _start(url, key, "k", -1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            if run_sql(url, "SELECT n_enrolled FROM trials")[0][0] >= 60:
                break
        except sqlite3.OperationalError:
            continue
    time.sleep(0.0137)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    n_enrolled = run_sql(url, "SELECT n_enrolled FROM trials")[0][0]
    n_rows = run_sql(url, "SELECT COUNT(*) FROM participants")[0][0]
    n_logged = run_sql(url, "SELECT COUNT(*) FROM audit WHERE action = 'enrol'")[0][0]
    assert n_enrolled >= 60 and n_enrolled == n_rows == n_logged
    with Trial.open(url, "multi", key_file=key) as trial:
        assert trial.verify(key)["ok"]
        before = {r["participant"]: r["arm"] for r in trial.export()}
        for i, participant in enumerate(sorted(before)):
            again = trial.enrol(participant, {"site": "abc"[int(participant[2:]) % 3]})
            assert again["new"] is False and again["allocation"] == before[participant]
            if i > 40:
                break
        # the trial carries on where the killed process stopped
        nxt = trial.enrol("after-kill", {"site": "a"})
        assert nxt["new"] is True and nxt["sequence"] == n_enrolled + 1
        assert trial.verify(key)["ok"]


SAME = """
import json, sys
from trialkit.service import Trial
url, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Trial.open(url, "multi", key_file=key) as trial:
    out = [trial.enrol(f"same-{i}", {"site": "abc"[i % 3]}) for i in range(n)]
print(json.dumps([[r["participant"], r["allocation"], r["sequence"], r["new"]] for r in out]))
"""


def test_processes_enrolling_the_same_participants_draw_each_once(multi):
    import json

    url, key = multi
    procs = [subprocess.Popen([sys.executable, "-c", SAME, url, key, "40"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results += json.loads(out)
    assert len(results) == 160
    by_participant = defaultdict(set)
    for participant, allocation, sequence, _ in results:
        by_participant[participant].add((allocation, sequence))
    assert len(by_participant) == 40
    assert all(len(v) == 1 for v in by_participant.values())  # one allocation, everywhere
    assert Counter(r[0] for r in results if r[3]) == Counter({f"same-{i}": 1 for i in range(40)})
    assert run_sql(url, "SELECT COUNT(*) FROM participants")[0][0] == 40
    assert run_sql(url, "SELECT COUNT(*) FROM audit WHERE action = 'enrol'")[0][0] == 40
    with Trial.open(url, "multi") as trial:
        assert trial.verify(key)["ok"]
