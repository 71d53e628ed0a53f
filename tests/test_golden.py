"""Golden seeded results: every simulation kind reproduces its pinned numbers for a fixed seed.

The cases and the stored files live in ``scripts/regenerate_golden.py`` and ``tests/golden/``
(file names say the scenario). A failure here means a random stream or a result changed. If the
change is intended, regenerate the files with

    .venv/bin/python scripts/regenerate_golden.py

review the diff of ``tests/golden/`` and say why the numbers moved in the commit message.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "regenerate_golden.py"
_spec = importlib.util.spec_from_file_location("regenerate_golden", SCRIPT)
assert _spec is not None and _spec.loader is not None
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)


def test_every_golden_file_has_a_case_and_every_kind_is_pinned():
    stored = {p.stem for p in golden.GOLDEN.glob("*.json")}
    assert stored == set(golden.CASES)
    kinds = {name.split("__")[0] for name in golden.CASES}
    assert kinds == {"adaptive", "factorial", "mrt", "decision", "rehearsal"}


@pytest.mark.parametrize("name", sorted(golden.CASES))
def test_golden_result(name):
    expected = golden.decode(json.loads(golden.path_of(name).read_text()))
    got = golden.decode(golden.encode(golden.CASES[name]()))
    problems = golden.differences(expected, got, name)
    assert not problems, ("; ".join(problems[:5]) + " — a random stream or result changed; if "
                          "intended, run scripts/regenerate_golden.py and review tests/golden/")


def test_comparison_catches_a_changed_value():
    a = {"x": np.array([1.0, 2.0, np.nan]), "n": np.array([1, 2]), "s": "a"}
    assert golden.differences(a, {"x": np.array([1.0, 2.0, np.nan]), "n": np.array([1, 2]),
                                  "s": "a"}) == []
    assert golden.differences(a, {"x": np.array([1.0, 2.0 + 1e-9, np.nan]),
                                  "n": np.array([1, 2]), "s": "a"})
    assert golden.differences(a, {"x": a["x"], "n": np.array([1, 3]), "s": "a"})
    assert golden.differences(a, {"x": a["x"], "n": a["n"], "s": "b"})
    assert golden.differences(a, {"x": a["x"], "n": a["n"]})
