"""Adaptive MRTs: design-file validation, the simulation's reproducibility and its coverage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trialkit.design import load_design, loads_design
from trialkit.errors import DesignError
from trialkit.mrt.planning import simulate_mrt_power


@pytest.fixture(scope="module")
def text(designs_dir_module):
    return (designs_dir_module / "adaptive-prompts-mrt.toml").read_text()


@pytest.fixture(scope="module")
def designs_dir_module():
    from tests.conftest import DESIGNS

    return DESIGNS


def small(text: str, days: int = 28, every: int = 7) -> str:
    """Return the example design over fewer days."""
    return (text.replace("days = 70", f"days = {days}")
            .replace("update_every_days = 7", f"update_every_days = {every}"))


@pytest.mark.parametrize(
    ("old", "new", "key", "value"),
    [
        ("p_min = 0.2", "p_min = 0.0", "policy.p_min", "0.0"),
        ("p_max = 0.8", "p_max = 1.0", "policy.p_max", "1.0"),
        ("p_min = 0.2", "p_min = 0.8", "policy.p_min", "0.8"),
        ('context = ["stress", "engaged"]', 'context = ["stress", "mood"]', "policy.context",
         "'mood'"),
        ("[outcomes.brushing.context_effect]   # how the context moderates the prompt's effect\n"
         "stress = -0.05", "[outcomes.brushing.context_effect]\nsleep = -0.05",
         "outcomes.brushing.context_effect.sleep", "-0.05"),
        ("update_every_days = 7", "update_every_days = 70", "policy.update_every_days", "70"),
        ("update_every_days = 7", "update_every_decisions = 140",
         "policy.update_every_decisions", "140"),
        ('outcome = "brushing"', 'outcome = "mood"', "policy.outcome", "'mood'"),
        ("smoothing = \"logistic\"", "smoothing = \"hard\"", "policy.smoothing", "'hard'"),
    ],
)
def test_bad_policy_names_file_key_and_value(text, old, new, key, value):
    assert old in text
    with pytest.raises(DesignError) as info:
        loads_design(text.replace(old, new, 1), "bad.toml")
    message = str(info.value)
    assert message.startswith("bad.toml: ") and f"'{key}' = {value}" in message
    assert " — " in message and "\n" not in message


def test_context_without_a_policy_is_refused(designs_dir_module):
    text = (designs_dir_module / "checkin-prompts-mrt.toml").read_text()
    with pytest.raises(DesignError, match=r"'context' = .*without a \[policy\]"):
        loads_design(text + '\n[context.stress]\ndistribution = "normal"\n', "bad.toml")


def test_bad_policy_in_the_cli_is_one_line(run, tmp_path, text):
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("p_max = 0.8", "p_max = 0.1"))
    result = run("design", "validate", bad)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "'policy.p_min' = 0.2" in result.output and "p_max" in result.output


def test_the_example_loads_and_fixed_designs_have_no_policy(designs_dir_module):
    design = load_design(designs_dir_module / "adaptive-prompts-mrt.toml")
    assert design.policy is not None and design.policy.update_every == 14
    assert design.policy.context == ("stress", "engaged")
    assert len(design.policy.prior_mean) == 9
    fixed = load_design(designs_dir_module / "checkin-prompts-mrt.toml")
    assert fixed.policy is None and fixed.context == ()


def test_results_do_not_depend_on_jobs(text):
    design = loads_design(small(text, days=14), "small.toml")
    one = simulate_mrt_power(design, 12, reps=30, seed=4, jobs=1).to_dict()
    two = simulate_mrt_power(design, 12, reps=30, seed=4, jobs=2).to_dict()
    assert one == two
    other = simulate_mrt_power(design, 12, reps=30, seed=5, jobs=1).to_dict()
    assert other["mean_estimate"] != one["mean_estimate"]


def test_coverage_and_type_i_error_of_the_adaptive_sandwich(text):
    design = loads_design(small(text), "small.toml")
    res = simulate_mrt_power(design, 30, reps=400, seed=11, jobs=1)
    # 400 replicates: Monte Carlo SE of a 0.95 coverage is 0.011, of a 0.05 rate 0.011
    assert 0.91 <= res["coverage"]["adaptive"] <= 0.99
    assert 0.91 <= res["coverage"]["null_adaptive"] <= 0.99
    assert res["type_i_error"] <= 0.09
    assert res["power"] > 0.15                   # well above α: the effect is there to be found
    assert abs(res["mean_estimate"] - res["effect"]) < 0.01
    prob = res["probability"]
    assert 0.2 <= prob["q05"] <= prob["mean"] <= prob["q95"] <= 0.8
    assert res["regret"]["per_decision"] > 0


def test_cli_power_simulate_of_an_adaptive_design(run, designs_dir_module):
    result = run("power", designs_dir_module / "adaptive-prompts-mrt.toml", "--simulate",
                 "--n-participants", "12", "--reps", "10", "--seed", "1", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) >= {"power", "power_standard", "type_i_error", "coverage", "probability",
                        "regret", "policy"}
    assert out["policy"]["p_min"] <= out["probability"]["q05"]
    assert np.isfinite(out["mean_estimate"])
    bad = run("power", designs_dir_module / "adaptive-prompts-mrt.toml", "--simulate",
              "--reps", "10", "--control-previous-outcome")
    assert bad.exit_code == 2 and "Traceback" not in bad.output


# -- analysis of a logged adaptive trial ----------------------------------------------------
def logged_trial(text: str, seed: int = 2):
    """One simulated trial as an export: id, decision point, context, probability, version."""
    import pandas as pd

    from trialkit.engine import replicate_rngs
    from trialkit.mrt.adaptive import adaptive_inputs, draw_exogenous, run_policy
    from trialkit.mrt.adaptive_variance import fit_marginal
    from trialkit.mrt.planning import design_inputs

    design = loads_design(small(text, days=21), "small.toml")
    inp = adaptive_inputs(design, design_inputs(design, "brushing"))
    ex = draw_exogenous(replicate_rngs(seed, 0, 1), 20, inp)
    hist = run_policy(design.policy, inp, ex)
    n, t = ex["avail"].shape[1:]
    version = np.broadcast_to(hist["version"], ex["avail"].shape)
    ref = fit_marginal(design.policy, hist, version, hist["params"], hist["reward"],
                       ex["avail"], 0.5, False)
    avail = ex["avail"][0].ravel()
    frame = pd.DataFrame({
        "id": np.repeat(np.arange(1, n + 1), t),
        "decision_point": np.tile(np.arange(1, t + 1), n),
        "availability": avail.astype(int), "treatment": hist["action"][0].ravel().astype(int),
        "probability": hist["probability"][0].ravel(),
        "policy_version": np.tile(hist["version"], n),
        "stress": hist["context"][0, ..., 0].ravel(), "engaged": hist["context"][0, ..., 1].ravel(),
        "brushing": np.where(avail > 0, hist["reward"][0].ravel(), np.nan)})
    return design, frame, ref


def test_analyse_mrt_adaptive_variance_from_an_export(text):
    from trialkit.mrt.analysis import analyse_mrt

    design, frame, ref = logged_trial(text)
    res = analyse_mrt(frame, design=design, variance="adaptive")
    row = res["effects"][0]
    assert row["estimate"] == pytest.approx(ref["estimate"][0], abs=1e-12)
    assert row["std_error"] == pytest.approx(ref["se_adaptive"][0], rel=1e-10)
    assert row["std_error_standard"] == pytest.approx(ref["se_standard"][0], rel=1e-10)
    assert res["variance"].startswith("adaptive sandwich")
    plain = analyse_mrt(frame, design=design, control="stress + engaged", numerator_prob=0.5,
                        small=False)
    assert plain["effects"][0]["std_error"] == pytest.approx(row["std_error_standard"], rel=1e-10)


def test_adaptive_variance_refuses_probabilities_the_policy_did_not_give(text):
    from trialkit.errors import DataError
    from trialkit.mrt.analysis import analyse_mrt

    design, frame, _ = logged_trial(text)
    frame.loc[frame.index[frame["policy_version"] == 2][0], "probability"] += 0.01
    with pytest.raises(DataError, match="does not reproduce the logged probabilities at 1 "):
        analyse_mrt(frame, design=design, variance="adaptive")


def test_cli_analyse_mrt_adaptive(run, tmp_path, text):
    design, frame, ref = logged_trial(text)
    frame.to_csv(tmp_path / "export.csv", index=False)
    (tmp_path / "design.toml").write_text(small(text, days=21))
    result = run("analyse", "mrt", tmp_path / "export.csv", "--design", tmp_path / "design.toml",
                 "--variance", "adaptive", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["effects"][0]["std_error"] == pytest.approx(ref["se_adaptive"][0], rel=1e-8)
    bad = run("analyse", "mrt", tmp_path / "export.csv", "--outcome", "brushing",
              "--variance", "adaptive")
    assert bad.exit_code == 2 and "needs the design of an adaptive MRT" in bad.output


def test_binary_outcome_runs_with_emee(text):
    binary = small(text, days=14).replace('type = "continuous"', 'type = "binary"')
    binary = binary.replace("stress = -0.3\nengaged = 0.4\n", "").replace(
        "stress = -0.05\n", "").replace("[outcomes.brushing.context_baseline]", "").replace(
        "[outcomes.brushing.context_effect]", "[outcomes.brushing.baseline]\nmean = 0.3")
    design = loads_design(binary, "binary.toml")
    res = simulate_mrt_power(design, 20, reps=20, seed=2)
    assert res["outcome_type"] == "binary" and "EMEE" in res["method"]
    assert res["effect"] == pytest.approx(0.08)
    assert 0.5 <= res["coverage"]["adaptive"] <= 1.0
    assert 0.2 <= res["probability"]["q05"] and res["probability"]["q95"] <= 0.8
