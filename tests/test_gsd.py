"""Group-sequential boundaries against rpact and classical tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trialkit.adaptive.gsd import gsd_boundaries, spending


def test_obrien_fleming_three_looks_matches_rpact():
    # rpact getDesignGroupSequential(kMax = 3, alpha = 0.025, sided = 1, typeOfDesign = "OF"),
    # 1e-6 (docs/references.md, "Group-sequential boundaries")
    got = gsd_boundaries(3, 0.025, "OF")
    np.testing.assert_allclose(got["critical_values"], [3.4710914, 2.4544323, 2.0040356],
                               atol=1e-6)
    assert got["alpha_spent"][-1] == pytest.approx(0.025, abs=1e-9)
    assert np.all(np.diff(got["alpha_spent"]) > 0)


def test_pocock_constant_and_one_look_is_fixed_design():
    # Pocock (1977) K = 3, one-sided 0.025 (two-sided 0.05): 2.289
    p = gsd_boundaries(3, 0.025, "P")["critical_values"]
    assert p[0] == pytest.approx(2.289, abs=1e-3) and np.ptp(p) < 1e-12
    assert gsd_boundaries(1, 0.025, "OF")["critical_values"][0] == pytest.approx(1.959964,
                                                                                 abs=1e-6)


def test_obrien_fleming_spending_three_looks_matches_rpact():
    # rpact getDesignGroupSequential(kMax = 3, alpha = 0.025, sided = 1, typeOfDesign = "asOF"):
    # 3.710, 2.511, 1.993 (as printed by rpact, 3 decimals)
    got = gsd_boundaries(3, 0.025, "asOF")["critical_values"]
    np.testing.assert_allclose(got, [3.710, 2.511, 1.993], atol=5e-4)


@pytest.mark.parametrize("kind", ["asOF", "asP"])
def test_spending_designs_spend_exactly_the_spending_function(kind):
    info = [0.3, 0.7, 1.0]
    got = gsd_boundaries(3, 0.025, kind, info)
    np.testing.assert_allclose(got["alpha_spent"], spending(kind, np.array(info), 0.025),
                               atol=1e-9)


def test_inflation_and_sample_size():
    # Jennison & Turnbull (2000) Table 2.4/2.1: Pocock K = 3, alpha 0.05 two-sided, power 0.8:
    # R = 1.166
    p = gsd_boundaries(3, 0.025, "P", effect=0.3, power=0.8)
    assert p["inflation"] == pytest.approx(1.166, abs=1e-3)
    n_fixed = 4 * (1.959964 + 0.841621) ** 2 / 0.3**2
    assert p["n"] == int(np.ceil(p["inflation"] * n_fixed - 1e-9))
    assert p["power_by_look"][-1] == pytest.approx(0.8, abs=1e-9)
    assert gsd_boundaries(3, 0.025, "OF", power=0.8)["inflation"] < p["inflation"]


def test_gsd_cli_json_contract(run):
    result = run("gsd", "--looks", "3", "--alpha", "0.025", "--type", "OF", "--effect", "0.3",
                 "--power", "0.8", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("critical_values", "alpha_spent", "inflation", "n"):
        assert key in data
    assert data["critical_values"][0] == pytest.approx(3.4710914, abs=1e-6)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--looks", "3", "--info-fractions", "0.5,0.4,1"], "--info-fractions"),
        (["--looks", "3", "--alpha", "0.7"], "--alpha"),
        (["--looks", "3", "--effect", "0.3"], "--effect"),
        (["--looks", "3", "--type", "XX"], "--type"),
        (["--looks", "3", "--effect", "nan", "--power", "0.8"], "--effect"),
        (["--looks", "3", "--effect", "inf", "--power", "0.8"], "--effect"),
        (["--looks", "3", "--effect", "1e-200", "--power", "0.8"], "--effect"),
        (["--looks", "3", "--info-fractions", "nan,0.5,1"], "--info-fractions"),
        (["--looks", "3", "--power", "nan"], "--power"),
    ],
)
def test_gsd_bad_input_exit_2(run, args, needle):
    result = run("gsd", *args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0]
