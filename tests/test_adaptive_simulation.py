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

# adaptr 1.4.0 (docs/references.md), 1000 trials of the reference scenario
REFERENCE = {"size_mean": 1392, "prob_superior": 0.616, "prob_equivalence": 0.157,
             "prob_conclusive": 0.773, "idp": 98.65}


@pytest.fixture(scope="module")
def design_path(request):
    from pathlib import Path

    return Path(request.config.rootpath) / "designs" / "three-arm-adaptive.toml"


def _close_to_reference(m: dict, reps: int, width: float = 3.0) -> None:
    """Check every reference metric against ``width`` Monte Carlo SEs of a difference.

    The difference is between two runs: ``reps`` trials here, 1000 in the reference.
    """
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


def test_falling_trend_inflates_type_i_error_of_rar_not_of_fixed_allocation(design_path):
    # Proschan & Evans 2020; Robertson et al. 2023: a calendar-time trend inflates the Bayesian
    # type I error of response-adaptive randomisation, not that of fixed equal allocation
    fixed_path = design_path.with_name("three-arm-fixed.toml")
    p = {}
    for name, path in (("rar", design_path), ("fixed", fixed_path)):
        for scenario in ("null", "null_falling"):
            res = run_trials(setup_trial(path, scenario, "exact"), 400, seed=7)
            p[name, scenario] = check_performance(res)["prob_superior"]
    se = math.sqrt(0.05 * 0.95 / 400)
    assert p["rar", "null"] < 0.05 + 3 * se and p["fixed", "null"] < 0.05 + 3 * se
    assert p["rar", "null_falling"] > p["rar", "null"] + 0.08
    assert p["rar", "null_falling"] > p["fixed", "null_falling"] + 0.08
    assert p["fixed", "null_falling"] < 0.05 + 3 * se


FOUR_ARM_CONTROL = """
kind = "adaptive"
name = "four_arm_control"
control = "usual"
[[arms]]
name = "usual"
[[arms]]
name = "good"
[[arms]]
name = "bad"
[[arms]]
name = "same"
[outcome]
type = "binary"
[looks]
data = [200, 400, 600, 800, 1000]
[allocation]
control = "sqrt-based"
min_probs = { good = 0.15, bad = 0.15, same = 0.15 }
rescale = "RESCALE"
[stopping]
superiority = 0.999
inferiority = 0.01
[posterior]
selection = "best"
[scenarios.one_bad]
values = [0.30, 0.22, 0.50, 0.30]
"""


def test_rescaled_limits_ignore_a_control_with_its_own_allocation_rule():
    # adaptr (rescale_probs, rescale_ignore): with a control allocation rule the control takes no
    # part in rescaling; limits of the others grow by (4 - 1) / (3 - 1) once one arm is dropped
    lows = {}
    for rescale in ("none", "limits"):
        design = loads_design(FOUR_ARM_CONTROL.replace("RESCALE", rescale), "c.toml")
        res = run_trials(setup_trial(design), 200, seed=5)
        h = res.arrays["alloc_history"].reshape(-1, 4).astype(float)
        three = h[~np.isnan(h).any(axis=1) & ((h == 0).sum(axis=1) == 1) & (h[:, 0] > 0)]
        assert three.shape[0] > 50
        # the control keeps its square-root-based share for 2 other active arms
        np.testing.assert_allclose(three[:, 0], math.sqrt(2) / (math.sqrt(2) + 2), atol=1e-6)
        others = three[:, 1:][three[:, 1:] > 0]
        lows[rescale] = others.min()
    assert lows["none"] == pytest.approx(0.15, abs=1e-6)
    assert lows["limits"] == pytest.approx(0.15 * 3 / 2, abs=1e-6)


def test_list_selection_strategies(design_path):
    from trialkit.adaptive.performance import select_arms
    from trialkit.adaptive.simulator import ACTIVE, EQUIVALENT

    res = run_trials(setup_trial(design_path, "alternative", "exact"), 300, seed=8)
    arr = res.arrays
    best = select_arms(res, "best")
    sup = arr["final_status"] == 1
    # without a control, the arms remaining at the end are the active or equivalent ones
    remaining = np.isin(arr["arm_status"], [ACTIVE, EQUIVALENT])
    for prefs in (["full_package"], ["full_package", "usual_app"], ["core_package"]):
        listed = select_arms(res, "list", prefs)
        or_best = select_arms(res, "list or best", prefs)
        np.testing.assert_array_equal(listed[sup], best[sup])
        expected = np.full(res.n_rep, -1)
        for k in reversed([res.spec.arms.index(a) for a in prefs]):
            expected = np.where(remaining[:, k], k, expected)
        np.testing.assert_array_equal(listed[~sup], expected[~sup])
        np.testing.assert_array_equal(or_best, np.where(listed >= 0, listed, best))
    # the worst arm is often dropped: "list" then selects nothing, "list or best" the best
    only_worst = select_arms(res, "list", ["full_package"])
    assert (only_worst[~sup] == -1).any() and (only_worst[~sup] == 2).any()
    prefs = ["full_package", "usual_app"]
    listed = select_arms(res, "list", prefs)
    m = check_performance(res, "list", prefs)
    assert m["prob_select"]["none"] == pytest.approx(np.mean(listed == -1))
    assert sum(m["prob_select"].values()) == pytest.approx(1.0)
    with pytest.raises(TrialkitError, match="needs preferences"):
        check_performance(res, "list")
    with pytest.raises(TrialkitError, match="not an arm"):
        check_performance(res, "list or best", ["nope"])
    with pytest.raises(TrialkitError, match="only used with"):
        check_performance(res, "best", prefs)


def test_metrics_follow_their_definitions_and_bootstrap(design_path):
    res = run_trials(setup_trial(design_path, "alternative", "exact"), 300, seed=13)
    arr = res.arrays
    m = check_performance(res, uncertainty=True, n_boot=300, boot_seed=1)
    n = arr["final_n"].astype(float)
    assert m["size_mean"] == pytest.approx(n.mean())
    assert m["size_sd"] == pytest.approx(n.std(ddof=1))
    assert (m["size_min"], m["size_p25"], m["size_median"], m["size_p75"], m["size_max"]) == \
        pytest.approx(tuple(np.quantile(n, [0, 0.25, 0.5, 0.75, 1])))
    assert m["sum_ys_mean"] == pytest.approx(arr["sum_ys_all"].sum(axis=1).mean())
    fs = arr["final_status"]
    assert m["prob_max"] == pytest.approx(np.mean(fs == 0))
    assert m["prob_conclusive"] == pytest.approx(1 - m["prob_max"])
    assert m["prob_superior"] + m["prob_equivalence"] + m["prob_futility"] == \
        pytest.approx(m["prob_conclusive"])
    # "best" always selects here; errors of the selected arm's posterior median
    sel = np.array([res.spec.arms.index(a[4:]) for a in m["prob_select"] if a != "none"])
    assert sel.tolist() == [0, 1, 2]
    from trialkit.adaptive.performance import select_arms

    s = select_arms(res)
    err = arr["post_all"][np.arange(res.n_rep), s] - np.asarray(res.spec.true_values)[s]
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert m["mae"] == pytest.approx(np.median(np.abs(err)))
    # bootstrap SE of a proportion is close to the binomial SE; intervals contain the estimate
    unc = m["uncertainty"]
    p = m["prob_superior"]
    assert unc["prob_superior"]["se"] == pytest.approx(math.sqrt(p * (1 - p) / 300), rel=0.25)
    for key in ("size_mean", "prob_superior", "idp"):
        assert unc[key]["lo"] <= m[key] <= unc[key]["hi"]
    only_sup = check_performance(res, restrict="superior")
    assert only_sup["prob_superior"] == 1 and only_sup["n_summarised"] == int(np.sum(fs == 1))


def test_results_do_not_depend_on_block_size(design_path, monkeypatch):
    from trialkit.adaptive import simulator

    spec = setup_trial(design_path, "alternative", "draws")
    base = run_trials(spec, 12, seed=21)
    # many posterior draws shrink the blocks (bounded memory); the trials stay the same
    monkeypatch.setattr(simulator, "_BLOCK_VALUES", spec.n_arms * spec.draws * 5)
    sizes = []
    original = simulator._simulate_block

    def spy(start, stop, *args):
        sizes.append(stop - start)
        return original(start, stop, *args)

    monkeypatch.setattr(simulator, "_simulate_block", spy)
    small = run_trials(spec, 12, seed=21)
    assert sizes == [5, 5, 2]
    for key in base.arrays:
        np.testing.assert_array_equal(base.arrays[key], small.arrays[key], err_msg=key)


def test_resume_grows_earlier_results_without_files(design_path):
    spec = setup_trial(design_path, "alternative", "exact")
    small = run_trials(spec, 10, seed=3)
    grown = run_trials(spec, 25, seed=3, resume=small)
    fresh = run_trials(spec, 25, seed=3)
    assert grown.n_rep == 25 and grown.created == small.created
    for key in fresh.arrays:
        np.testing.assert_array_equal(grown.arrays[key], fresh.arrays[key], err_msg=key)
    assert run_trials(spec, 4, seed=3, resume=grown).n_rep == 4
    with pytest.raises(TrialkitError, match="the earlier results: was simulated with seed 3"):
        run_trials(spec, 30, seed=4, resume=small)
