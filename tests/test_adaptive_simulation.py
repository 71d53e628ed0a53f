"""The vectorised adaptive-trial simulator: reproducibility, saved results, reference scenario."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from trialkit.adaptive import check_performance, run_trials, setup_trial
from trialkit.adaptive.posterior import DrawsPosterior, ExactPosterior
from trialkit.design import loads_design
from trialkit.errors import TrialkitError

CONTROL = """
kind = "adaptive"
name = "control_trial"
control = "usual"

[[arms]]
name = "usual"
[[arms]]
name = "better"
[[arms]]
name = "same"

[outcome]
type = "binary"

[looks]
data = [200, 400, 600, 800]

[allocation]
control = "sqrt-based"

[stopping]
superiority = 0.99
inferiority = 0.01
futility_prob = 0.9
futility_diff = 0.05

[posterior]
draws = 1000
selection = "control or best"

[scenarios.effect]
values = [0.30, 0.15, 0.30]
"""

CONTINUOUS = """
kind = "adaptive"
name = "continuous_trial"

[[arms]]
name = "a"
[[arms]]
name = "b"

[outcome]
type = "continuous"
highest_is_best = true

[looks]
data = [100, 200, 300]

[stopping]
superiority = 0.99
inferiority = 0.01

[posterior]
draws = 1000
selection = "best"

[scenarios.effect]
values = [0.0, 0.5]
sds = [1.0, 1.0]
"""

# adaptr 1.4.0 (REFERENCES.md), 1000 trials of the reference scenario
REFERENCE = {"size_mean": 1392, "prob_superior": 0.616, "prob_equivalence": 0.157,
             "prob_conclusive": 0.773, "idp": 98.65}


@pytest.fixture(scope="module")
def design_path(request):
    from pathlib import Path

    return Path(request.config.rootpath) / "designs" / "three-arm-adaptive.toml"


def _close_to_reference(m: dict, reps: int, width: float = 3.0) -> None:
    """Every reference metric within ``width`` Monte Carlo SEs of the difference between two runs
    (``reps`` trials here, 1000 in the reference)."""
    both = 1 / reps + 1 / 1000
    # IDP = 100 - 50 P(select A) - 100 P(select C) here; P(select A) is about 0.03
    se = {"size_mean": m["size_sd"] * math.sqrt(both),
          "idp": 50 * math.sqrt(0.03 * 0.97 * both)}
    for key in ("prob_superior", "prob_equivalence", "prob_conclusive"):
        p = REFERENCE[key]
        se[key] = math.sqrt(p * (1 - p) * both)
    for key, ref in REFERENCE.items():
        assert abs(m[key] - ref) <= width * se[key], (key, m[key], ref, se[key])


def test_identical_for_any_jobs_and_chunks(design_path):
    spec = setup_trial(design_path, "alternative")
    one = run_trials(spec, 24, seed=5, jobs=1)
    two = run_trials(spec, 24, seed=5, jobs=2)
    for key in one.arrays:
        np.testing.assert_array_equal(one.arrays[key], two.arrays[key], err_msg=key)
    other = run_trials(spec, 24, seed=6)
    assert not np.array_equal(one.arrays["final_n"], other.arrays["final_n"])


def test_saved_results_grow_and_refuse_another_seed(design_path, tmp_path):
    spec = setup_trial(design_path, "alternative", "exact")
    path = tmp_path / "run.json"
    small = run_trials(spec, 10, seed=3, path=path)
    saved = json.loads(path.read_text())
    assert saved["seed"] == 3 and saved["n_rep"] == 10 and saved["version"]
    assert saved["design"]["sha256"] == spec.design_sha256 and saved["seconds"] >= 0
    grown = run_trials(spec, 25, seed=3, path=path)
    fresh = run_trials(spec, 25, seed=3)
    assert grown.n_rep == 25 and small.n_rep == 10
    for key in fresh.arrays:
        np.testing.assert_allclose(grown.arrays[key], fresh.arrays[key], err_msg=key)
    with pytest.raises(TrialkitError, match="seed 3"):
        run_trials(spec, 30, seed=4, path=path)
    few = run_trials(spec, 5, seed=3, path=path)
    np.testing.assert_array_equal(few.arrays["final_n"], fresh.arrays["final_n"][:5])


def test_exact_probabilities_agree_with_many_draws():
    rng = np.random.default_rng(0)
    a = np.array([[30.0, 25, 40], [5, 8, 3]])
    b = np.array([[70.0, 75, 60], [20, 30, 25]])
    act = np.array([[1, 1, 1], [1, 0, 1]], dtype=bool)
    for hib in (False, True):
        v = rng.beta(a[:, :, None], b[:, :, None], size=(2, 3, 200_000))
        v[~act] = -np.inf if hib else np.inf
        draws = DrawsPosterior(v, act, hib)
        exact = ExactPosterior.beta(a, b, act, hib)
        tol = 4 * math.sqrt(0.25 / 200_000) + 2e-4
        np.testing.assert_allclose(exact.prob_best(), draws.prob_best(), atol=tol)
        np.testing.assert_allclose(exact.prob_all_equivalent(0.1),
                                   draws.prob_all_equivalent(0.1), atol=tol)
        for e, d in zip(exact.compare(np.array([0, 2]), 0.05, 0.02),
                        draws.compare(np.array([0, 2]), 0.05, 0.02), strict=True):
            np.testing.assert_allclose(e, d, atol=tol)


def test_reference_scenario_exact_1000_trials(design_path):
    # adaptr 1.4.0 reference scenario; exact posterior probabilities, 1000 trials
    res = run_trials(setup_trial(design_path, "alternative", "exact"), 1000, seed=11)
    _close_to_reference(check_performance(res), 1000)


@pytest.mark.slow
def test_reference_scenario_draws_1000_trials(design_path):
    # adaptr 1.4.0 reference scenario with its own method: 5000 posterior draws, 1000 trials
    res = run_trials(setup_trial(design_path, "alternative", "draws"), 1000, seed=12, jobs=2)
    assert res.spec.draws == 5000
    _close_to_reference(check_performance(res), 1000)


def test_null_scenario_rarely_declares_superiority(design_path):
    res = run_trials(setup_trial(design_path, "null", "exact"), 400, seed=2)
    m = check_performance(res)
    assert m["prob_superior"] < 0.08
    assert math.isnan(m["idp"])  # all arms equal: the IDP is undefined, never a silent number
    assert m["prob_select"]["none"] == 0  # "best" always selects an arm


def test_common_control_superiority_new_control_and_futility():
    design = loads_design(CONTROL, "control.toml")
    res = run_trials(setup_trial(design, method="draws"), 150, seed=4)
    arr = res.arrays
    m = check_performance(res)
    # the better arm becomes the new control; the trial then stops for superiority (the other
    # arm inferior to it) or for futility (the other arm futile against it)
    assert m["prob_superior"] > 0.5 and m["prob_futility"] > 0.1
    assert m["prob_conclusive"] > 0.95
    done = arr["final_status"] > 0
    assert np.mean(arr["final_control"][done] == 1) > 0.95
    assert m["prob_select"]["arm_better"] > 0.9 and m["rmse_te"] is not None
    # sqrt-based control allocation: 0.414 to control, 0.293 to others while all are active
    first = arr["alloc_history"][:, 1]
    full = ~np.isnan(first).any(axis=1) & (first > 0).all(axis=1)
    np.testing.assert_allclose(first[full, 0], math.sqrt(2) / (math.sqrt(2) + 2), atol=1e-6)
    exact = check_performance(run_trials(setup_trial(design, method="exact"), 150, seed=4))
    assert abs(exact["prob_superior"] - m["prob_superior"]) < 0.15


def test_continuous_outcome_finds_the_higher_mean():
    design = loads_design(CONTINUOUS, "cont.toml")
    for method in ("draws", "exact"):
        m = check_performance(run_trials(setup_trial(design, method=method), 100, seed=9))
        assert m["prob_select"]["arm_b"] > 0.9
        assert m["rmse"] < 0.2


def test_time_trend_shifts_outcomes_over_calendar_time(design_path):
    text = design_path.read_text().replace(
        "[scenarios.null]\nvalues = [0.25, 0.25, 0.25]",
        "[scenarios.null]\nvalues = [0.25, 0.25, 0.25]\ntrend = 0.3")
    spec = setup_trial(loads_design(text, "trend.toml"), "null", "exact")
    base = setup_trial(design_path, "null", "exact")
    drift = run_trials(spec, 100, seed=1)
    flat = run_trials(base, 100, seed=1)
    assert (drift.arrays["sum_ys_all"].sum(axis=1) / drift.arrays["final_n"]).mean() > \
        (flat.arrays["sum_ys_all"].sum(axis=1) / flat.arrays["final_n"]).mean() + 0.05


def test_rescaled_limits_after_dropping_an_arm(design_path):
    text = design_path.read_text().replace("min_probs = [0.2, 0.2, 0.2]",
                                           "min_probs = [0.25, 0.25, 0.25]")
    lows = {}
    for rescale in ("none", "limits"):
        t = text.replace("min_probs = [0.25, 0.25, 0.25]",
                         f'min_probs = [0.25, 0.25, 0.25]\nrescale = "{rescale}"')
        res = run_trials(setup_trial(loads_design(t, "r.toml"), "alternative", "exact"), 200, 3)
        h = res.arrays["alloc_history"].reshape(-1, 3).astype(float)
        two = h[~np.isnan(h).any(axis=1) & ((h == 0).sum(axis=1) == 1)]
        assert two.shape[0] > 50
        np.testing.assert_allclose(two.sum(axis=1), 1.0, atol=1e-6)
        lows[rescale] = two[two > 0].min()
    # minimum 0.25 scaled by 3 arms / 2 active arms = 0.375 once an arm is dropped
    assert lows["limits"] >= 0.375 - 1e-6
    assert lows["none"] < 0.375 - 1e-3
