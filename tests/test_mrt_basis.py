"""MRT effects and baselines over a declared basis (the MRTSampleSizeBinary parameterisation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MRT = Path(__file__).resolve().parent.parent / "designs" / "checkin-prompts-mrt.toml"

# R MRTSampleSizeBinary 0.1.2 mrt_binary_ss(exact = TRUE) example (docs/references.md, "Micro-
# randomised trials"): 10 decision points, availability 0.8, p_t 0.4, f_t = g_t = (1, t),
# beta = (0.15, -0.01), alpha = (-0.2, -0.1), gamma 0.05, b 0.2 -> n = 274.00551 (1e-4), 275.
COHN = """kind = "mrt"
name = "cohn_binary_reference"
[schedule]
days = 10
decisions_per_day = 1
[treatment]
probability = 0.4
[availability]
mean = 0.8
[outcomes.engaged]
type = "binary"
[outcomes.engaged.effect]
basis = ["1", "t"]
coefficients = [0.15, -0.01]
[outcomes.engaged.baseline]
basis = ["1", "t"]
coefficients = [-0.2, -0.1]
[analysis]
alpha = 0.05
power = 0.8
"""


@pytest.fixture
def cohn(tmp_path):
    path = tmp_path / "cohn.toml"
    path.write_text(COHN)
    return path


def test_binary_sample_size_reference_through_a_design_file(run, cohn):
    res = run("samplesize", cohn, "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n_exact"] == pytest.approx(274.00551, abs=1e-4)
    assert out["n_participants"] == 275


def test_the_basis_is_shown_and_validated(run, cohn):
    res = run("design", "show", cohn, "--format", "json")
    assert res.exit_code == 0, res.output
    effect = json.loads(res.stdout)["outcomes"][0]["effect"]
    assert effect == {"shape": "basis", "basis": ["1", "t"], "coefficients": [0.15, -0.01]}


@pytest.mark.parametrize(("old", "new", "needle"), [
    ('basis = ["1", "t"]\ncoefficients = [0.15, -0.01]',
     'basis = ["1", "log(t)"]\ncoefficients = [0.15, -0.01]', "is not a basis term"),
    ('basis = ["1", "t"]\ncoefficients = [0.15, -0.01]',
     'basis = ["1", "t"]\ncoefficients = [0.15]', "has 1 entries"),
    ('basis = ["1", "t"]\ncoefficients = [0.15, -0.01]',
     'basis = ["1", "t"]\ncoefficients = [0.15, -0.01]\nshape = "linear"',
     "is given together with basis"),
    ('basis = ["1", "t"]\ncoefficients = [0.15, -0.01]',
     'basis = ["t", "t"]\ncoefficients = [0.15, -0.01]', "repeats a term"),
])
def test_bad_basis_is_refused_with_one_line(run, tmp_path, old, new, needle):
    path = tmp_path / "bad.toml"
    path.write_text(COHN.replace(old, new, 1))
    res = run("design", "validate", path)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "outcomes.engaged.effect" in lines[0]


def test_baseline_basis_leaving_the_unit_interval_is_refused(run, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(COHN.replace("coefficients = [-0.2, -0.1]", "coefficients = [-0.2, 0.1]"))
    res = run("samplesize", path)
    assert res.exit_code == 2
    assert "baseline success curve" in res.output or "reaches 1" in res.output


def test_a_linear_shape_and_its_basis_give_the_same_power(run, tmp_path):
    # linear from 0.25 on day 1 to 2 * 0.15 - 0.25 = 0.05 on day 42: 0.25 + (day - 1) * slope
    from trialkit.design import load_design
    from trialkit.mrt.planning import mrt_power

    shape = load_design(MRT)
    slope = (0.05 - 0.25) / 41
    text = MRT.read_text().replace(
        'shape = "linear"\nmean = 0.15\ninitial = 0.25',
        f'basis = ["1", "day"]\ncoefficients = [{0.25 - slope!r}, {slope!r}]')
    path = tmp_path / "basis.toml"
    path.write_text(text)
    basis = load_design(path)
    assert basis.outcomes[0].effect.shape == "basis"
    for n in (40, 120):
        assert mrt_power(basis, n, "engagement_1h")["power"] == pytest.approx(
            mrt_power(shape, n, "engagement_1h")["power"], rel=1e-9)


def test_simulated_power_of_a_basis_design_agrees_with_the_formula(cohn):
    from trialkit.design import load_design
    from trialkit.mrt.planning import mrt_power, simulate_mrt_power

    design = load_design(cohn)
    formula = mrt_power(design, 275)["power"]
    sim = simulate_mrt_power(design, 275, reps=300, seed=4)
    assert abs(sim["power"] - formula) < 3 * sim["mc_se"] + 0.01, (sim["power"], formula)
