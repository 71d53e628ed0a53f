"""Simulation power with the real estimator: agreement with the formulas, seeds and jobs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trialkit.mrt.planning import _formula_power, simulate_power_arrays
from trialkit.mrt.trajectory import day_basis, expand_days, trajectory_by_day


def liao_inputs() -> dict:
    """Return the Liao et al. (2016) reference scenario (42 days × 5, p = 3, q = 3)."""
    days, dpd = 42, 5
    return {"type": "continuous", "days": days, "decisions_per_day": dpd,
            "probability": np.full(days * dpd, 0.4),
            "availability": expand_days(trajectory_by_day("quadratic", 0.5, days, 0.7, 42), dpd),
            "effect": expand_days(trajectory_by_day("quadratic", 0.1, days, 0.0, 28), dpd),
            "baseline": None, "basis": day_basis(days, dpd, 3), "p": 3, "q": 3, "alpha": 0.05,
            "power": 0.8}


def binary_inputs() -> dict:
    days, dpd = 20, 3
    return {"type": "binary", "days": days, "decisions_per_day": dpd,
            "probability": np.full(days * dpd, 0.5), "availability": np.full(days * dpd, 0.8),
            "effect": expand_days(trajectory_by_day("linear", 0.15, days, 0.25), dpd),
            "baseline": expand_days(trajectory_by_day("linear", 0.2, days, 0.3), dpd),
            "basis": day_basis(days, dpd, 2), "p": 2, "q": 2, "alpha": 0.05, "power": 0.8}


@pytest.mark.slow
def test_simulation_agrees_with_liao_formula_within_mc_error():
    inp = liao_inputs()
    formula = _formula_power(inp, 40)                      # 0.73156 (R MRTSampleSize)
    sim = simulate_power_arrays(inp, 40, reps=2000, seed=11)
    assert abs(sim["power"] - formula) < 3 * sim["mc_se"], (sim["power"], formula)


@pytest.mark.slow
def test_binary_simulation_agrees_with_cohn_formula_within_mc_error():
    inp = binary_inputs()
    formula = _formula_power(inp, 60)
    sim = simulate_power_arrays(inp, 60, reps=600, seed=5)
    assert sim["converged"].all()
    assert 0.3 < formula < 0.95
    assert abs(sim["power"] - formula) < 3 * sim["mc_se"], (sim["power"], formula)


def test_size_under_the_null_is_close_to_alpha():
    inp = liao_inputs()
    inp["effect"] = np.zeros_like(inp["effect"])
    sim = simulate_power_arrays(inp, 30, reps=600, seed=3)
    assert abs(sim["power"] - 0.05) < 3 * np.sqrt(0.05 * 0.95 / 600)


def test_results_do_not_depend_on_jobs_or_chunking():
    inp = liao_inputs()
    one = simulate_power_arrays(inp, 20, reps=60, seed=4, jobs=1)
    two = simulate_power_arrays(inp, 20, reps=60, seed=4, jobs=2)
    np.testing.assert_array_equal(one["coef"], two["coef"])
    np.testing.assert_array_equal(one["p_value"], two["p_value"])
    assert one["power"] == two["power"]
    part = simulate_power_arrays(inp, 20, reps=35, seed=4, jobs=1)
    np.testing.assert_array_equal(part["coef"], one["coef"][:35])
    other = simulate_power_arrays(inp, 20, reps=60, seed=5, jobs=1)
    assert not np.array_equal(other["coef"], one["coef"])


@pytest.mark.slow
def test_strong_ar1_with_previous_outcome_control_breaks_the_formula():
    # docs/mrt.md: AR(1) residuals alone leave the formula right; controlling for the previous
    # outcome removes most residual variance, so the real power far exceeds the formula's.
    inp = liao_inputs()
    formula = _formula_power(inp, 40)
    plain = simulate_power_arrays(inp, 40, reps=400, seed=2, ar1=0.8)
    lagged = simulate_power_arrays(inp, 40, reps=400, seed=2, ar1=0.8, lag_control=True)
    assert abs(plain["power"] - formula) < 3 * plain["mc_se"] + 0.01
    assert lagged["power"] > formula + 0.15


#: The settings every MRT power result reports (a binary outcome adds ``baseline``).
SETTINGS = {"design", "outcome", "outcome_type", "method", "n_participants", "alpha",
            "decision_points", "probability", "availability", "effect", "p", "q", "df"}


def test_cli_simulated_power_contract_and_jobs(run, designs_dir):
    path = designs_dir / "checkin-prompts-mrt.toml"
    args = ["power", path, "--simulate", "--n-participants", "30", "--reps", "40", "--seed",
            "3", "--outcome", "mood", "--format", "json"]
    one = run(*args)
    assert one.exit_code == 0, one.output
    out = json.loads(one.output)
    assert set(out) == {"power", "mc_se", *SETTINGS, "reps", "seed"}
    assert 0 <= out["power"] <= 1
    assert out["mc_se"] == pytest.approx(np.sqrt(out["power"] * (1 - out["power"]) / 40))
    two = run(*args, "--jobs", "2")
    assert json.loads(two.output) == out


def test_cli_simulation_options_need_simulate(run, designs_dir):
    res = run("power", designs_dir / "checkin-prompts-mrt.toml", "--n-participants", "30",
              "--ar1", "0.5")
    assert res.exit_code == 2
    assert res.output.startswith("Error:") and "--simulate" in res.output


def test_cli_simulation_rejects_too_few_participants(run, designs_dir):
    res = run("power", designs_dir / "checkin-prompts-mrt.toml", "--simulate",
              "--n-participants", "5", "--reps", "10")
    assert res.exit_code == 2 and res.output.count("\n") == 1


def test_large_trials_use_smaller_batches_with_identical_results(monkeypatch):
    from trialkit.mrt import planning

    assert planning.batch_size(40, 210) == planning.BATCH
    assert planning.batch_size(500, 210) < planning.BATCH
    assert planning.batch_size(10**6, 210) == 1
    inp = liao_inputs()
    ref = simulate_power_arrays(inp, 20, reps=12, seed=3)
    # force small batches: the estimates must not change, for any number of jobs
    monkeypatch.setattr(planning, "BATCH_CELLS", 20 * 210 * 4)
    assert planning.batch_size(20, 210) == 4
    for jobs in (1, 2):
        small = simulate_power_arrays(inp, 20, reps=12, seed=3, jobs=jobs)
        np.testing.assert_allclose(small["coef"], ref["coef"], rtol=1e-12, atol=1e-14)
        assert small["power"] == ref["power"]
