"""Verification of a trial that is being enrolled into: no false alarms, real edits still caught."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dbtools import run_sql

from trialkit.service import Trial

ROOT = Path(__file__).resolve().parent.parent
ADAPTIVE = ROOT / "designs" / "three-arm-adaptive.toml"

LOOP = """
import os, sys, time
from trialkit.service import Trial
url, key, prefix, stop = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
deadline = time.monotonic() + 90
with Trial.open(url, "live", key_file=key) as trial:
    i = 0
    while not os.path.exists(stop) and time.monotonic() < deadline and i < 5000:
        trial.enrol(f"{prefix}{i}", {"site": "ab"[i % 2]})
        i += 1
print(i)
"""


@pytest.mark.slow
def test_thirty_verifies_during_two_enrolment_loops_raise_no_false_alarm(db_url, tmp_path):
    design = tmp_path / "live.toml"
    text = ADAPTIVE.read_text().split("\n[randomisation]")[0]
    design.write_text(text.replace('name = "three_arm_adaptive"', 'name = "live"') +
                      '\n[randomisation]\nblock_sizes = [3, 6]\n\n[randomisation.strata]\n'
                      'site = ["a", "b"]\n')
    key = str(tmp_path / "k")
    Trial.create(design, db_url, key_file=key).close()
    stop = tmp_path / "stop"
    procs = [subprocess.Popen([sys.executable, "-c", LOOP, db_url, key, p, str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for p in ("x", "y")]
    try:
        results = []
        with Trial.open(db_url, "live") as trial:
            while run_sql(db_url, "SELECT n_enrolled FROM trials")[0][0] < 20:
                time.sleep(0.02)
            for _ in range(30):
                results.append(trial.verify(key))
            grown = [r["audit_rows"] for r in results]
            # a real edit while the loops go on is still caught
            run_sql(db_url, "UPDATE participants SET allocation = CASE WHEN allocation = "
                            "'usual_app' THEN 'core_package' ELSE 'usual_app' END WHERE "
                            "participant = 'x0'")
            edited = trial.verify(key)
    finally:
        stop.touch()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
    assert [r["problem"] for r in results if not r["ok"]] == []
    assert grown[-1] > grown[0]  # the loops really were enrolling meanwhile
    assert edited["ok"] is False and "participant 'x0'" in edited["problem"]
    assert os.path.exists(stop)
