"""WCLS and EMEE with default options reproduce R MRTAnalysis 0.3.1 on the public reference data.

Source: docs/references.md, "MRT analysis" — R ``MRTAnalysis`` 0.3.1 ``wcls()`` and ``emee()``
with their default summary (small-sample adjusted) on ``tests/data/mrt_reference_data.csv`` (60
participants × 30 decision points), ``numerator_prob = 0.5``, ``moderator_formula = ~mood``,
``control_formula = ~mood + decision_point``, ``availability = "available"``; tolerance 1e-6.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data" / "mrt_reference_data.csv"

REFERENCE = {
    # call: [(term, estimate, std. error)]
    "emee": [("Intercept", 0.1093021779, 0.0850773027), ("mood", 0.0370845534, 0.0867163602)],
    "wcls": [("Intercept", 0.2550226212, 0.0500707111), ("mood", -0.1764743504, 0.0585231671)],
}
#: EMEE degrees of freedom (60 − 5 parameters) and p-values of the reference summary.
EMEE_DF, EMEE_P = 55, (0.2042679, 0.6705732)


def _analyse(run, binary: bool, *extra: str) -> dict:
    args = ["analyse", "mrt", DATA, "--id", "id", "--decision-point", "decision_point",
            "--outcome", "engaged" if binary else "mood_next", "--treatment", "treated",
            "--prob", "prob", "--availability", "available", "--moderator", "mood",
            "--control", "mood + decision_point", "--numerator-prob", "0.5", "--format", "json",
            *extra]
    res = run(*args, *(["--binary"] if binary else []))
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.parametrize("call", ["emee", "wcls"])
def test_default_options_match_the_reference_package(run, call):
    out = _analyse(run, call == "emee")
    assert out["n_participants"] == 60
    for (term, estimate, se), row in zip(REFERENCE[call], out["effects"], strict=True):
        assert row["term"] == term
        assert row["estimate"] == pytest.approx(estimate, abs=1e-6)
        assert row["std_error"] == pytest.approx(se, abs=1e-6)


def test_emee_degrees_of_freedom_and_p_values(run):
    out = _analyse(run, True)
    assert [row["df"] for row in out["effects"]] == [EMEE_DF, EMEE_DF]
    for row, p in zip(out["effects"], EMEE_P, strict=True):
        assert row["p_value"] == pytest.approx(p, abs=1e-6)


def test_the_small_sample_option_is_kept(run):
    always = _analyse(run, False, "--small-sample", "yes")
    never = _analyse(run, True, "--small-sample", "no")
    # the adjustment inflates the standard errors: WCLS with it, EMEE without it differ from R
    assert always["effects"][0]["std_error"] > REFERENCE["wcls"][0][2] + 1e-4
    assert never["effects"][0]["std_error"] < REFERENCE["emee"][0][2] - 1e-4
