"""MRT sample size and power by formula: reference numbers, trajectories, warnings, CLI contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trialkit.errors import TrialkitError
from trialkit.mrt import samplesize as ss
from trialkit.mrt.checks import MrtWarning
from trialkit.mrt.trajectory import day_basis, expand_days, trajectory_by_day

DAYS, DPD = 42, 5


def liao_reference_inputs():
    """docs/references.md, R MRTSampleSize 0.3.0 (Liao et al. 2016) example."""
    effect = expand_days(trajectory_by_day("quadratic", 0.1, DAYS, 0.0, 28), DPD)
    avail = expand_days(trajectory_by_day("quadratic", 0.5, DAYS, 0.7, 42), DPD)
    return effect, avail, 0.4, day_basis(DAYS, DPD, 3)


def test_liao_sample_size_reference():
    # R MRTSampleSize 0.3.0 calculateSampleSize(...) -> 46 (docs/references.md)
    effect, avail, prob, basis = liao_reference_inputs()
    res = ss.continuous_sample_size(effect, avail, prob, basis, controls=3, alpha=0.05, power=0.8)
    assert res["n_participants"] == 46
    assert 45 < res["n_exact"] <= 46
    assert res["power"] >= 0.8
    assert ss.continuous_power(45, effect, avail, prob, basis, 3) < 0.8


def test_liao_power_reference():
    # R MRTSampleSize 0.3.0 calculatePower(..., N = 40) -> 0.73156, tolerance 1e-4
    # (docs/references.md)
    effect, avail, prob, basis = liao_reference_inputs()
    assert ss.continuous_power(40, effect, avail, prob, basis, 3, 0.05) == pytest.approx(
        0.73156, abs=1e-4)


def test_cohn_binary_sample_size_reference():
    # R MRTSampleSizeBinary 0.1.2 mrt_binary_ss(exact=TRUE) -> 274.00551 (1e-4), 275 rounded up
    t = np.arange(1, 11)
    f = np.column_stack([np.ones(10), t])
    res = ss.binary_sample_size(f, [0.15, -0.01], f, [-0.2, -0.1], 0.8, 0.4, level=0.05,
                                power=0.8)
    assert res["n_exact"] == pytest.approx(274.00551, abs=1e-4)
    assert res["n_participants"] == 275
    assert ss.binary_power(res["n_exact"], f, [0.15, -0.01], f, [-0.2, -0.1], 0.8, 0.4) == (
        pytest.approx(0.8, abs=1e-9))


def test_trajectories_follow_their_definition():
    quad = trajectory_by_day("quadratic", 0.1, DAYS, 0.0, 28)
    assert quad.mean() == pytest.approx(0.1)
    assert quad[0] == pytest.approx(0.0)
    assert int(np.argmax(quad)) + 1 == 28
    lin = trajectory_by_day("linear", 0.5, 10, 0.7)
    assert lin[0] == pytest.approx(0.7) and lin[-1] == pytest.approx(0.3)
    assert lin.mean() == pytest.approx(0.5)
    avail = trajectory_by_day("quadratic", 0.5, DAYS, 0.7, 42)
    assert avail.mean() == pytest.approx(0.5) and avail[0] == pytest.approx(0.7)
    assert int(np.argmin(avail)) + 1 == 42
    with pytest.raises(TrialkitError, match="at least 3 days"):
        trajectory_by_day("quadratic", 0.1, 2, 0.0, 1)


def test_extreme_probability_warns():
    effect, avail, _, basis = liao_reference_inputs()
    with pytest.warns(MrtWarning, match="weights explode"):
        ss.continuous_power(40, effect, avail, 0.02, basis, 3)


def test_tiny_effect_warns_about_huge_n():
    effect, avail, prob, basis = liao_reference_inputs()
    with pytest.warns(MrtWarning, match="beyond 5000"):
        res = ss.continuous_sample_size(effect / 40, avail, prob, basis, 3)
    assert res["n_participants"] > 5000


def test_zero_effect_is_an_error():
    effect, avail, prob, basis = liao_reference_inputs()
    with pytest.raises(TrialkitError, match="effect is zero"):
        ss.continuous_sample_size(0 * effect, avail, prob, basis, 3)


def test_binary_success_probability_above_one_is_an_error():
    f = np.ones((10, 1))
    with pytest.raises(TrialkitError, match="reaches 1"):
        ss.binary_sample_size(f, [1.0], f, [np.log(0.6)], 0.8, 0.4)


def test_effect_outside_control_span_warns():
    t = np.arange(1, 11)
    f = np.column_stack([np.ones(10), t])
    with pytest.warns(MrtWarning, match="span"):
        ss.binary_power(300, f, [0.15, -0.01], np.ones((10, 1)), [-1.0], 0.8, 0.4)


# -- design files and the CLI ----------------------------------------------------------------------
REFERENCE_DESIGN = """
kind = "mrt"
name = "liao_reference"
[schedule]
days = 42
decisions_per_day = 5
[treatment]
probability = 0.4
[availability]
shape = "quadratic"
mean = 0.5
initial = 0.7
extremum_day = 42
[outcomes.y]
type = "continuous"
[outcomes.y.effect]
shape = "quadratic"
mean = 0.1
initial = 0.0
extremum_day = 28
[analysis]
controls = 3
alpha = 0.05
power = 0.8
"""


@pytest.fixture
def reference_design(tmp_path):
    path = tmp_path / "liao.toml"
    path.write_text(REFERENCE_DESIGN)
    return path


def test_cli_samplesize_reference_design(run, reference_design):
    # R MRTSampleSize 0.3.0 -> N = 46 (docs/references.md), through the design file and the CLI
    res = run("samplesize", reference_design, "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out) == {"n_participants", "n_exact", "power"}
    assert out["n_participants"] == 46
    assert out["power"] >= 0.8


def test_cli_power_reference_design(run, reference_design):
    # R MRTSampleSize 0.3.0 calculatePower at N = 40 -> 0.73156 (1e-4)
    res = run("power", reference_design, "--n-participants", "40", "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out) == {"power", "design", "outcome", "outcome_type", "method", "n_participants",
                        "alpha", "decision_points", "probability", "availability", "effect",
                        "p", "q", "df"}
    assert out["power"] == pytest.approx(0.73156, abs=1e-4)


def test_cli_binary_design_and_outcome_choice(run, designs_dir):
    path = designs_dir / "checkin-prompts-mrt.toml"
    binary = json.loads(run("samplesize", path, "--format", "json").output)
    mood = json.loads(run("samplesize", path, "--outcome", "mood", "--format", "json").output)
    assert binary["n_participants"] != mood["n_participants"]
    higher = json.loads(run("samplesize", path, "--power", "0.9", "--format", "json").output)
    assert higher["n_participants"] > binary["n_participants"]
    res = run("samplesize", path, "--outcome", "nope")
    assert res.exit_code == 2 and "outcome 'nope'" in res.output


def test_cli_power_warns_for_extreme_probability(run, tmp_path):
    path = tmp_path / "extreme.toml"
    path.write_text(REFERENCE_DESIGN.replace("probability = 0.4", "probability = 0.02"))
    res = run("power", path, "--n-participants", "40", "--format", "json")
    assert res.exit_code == 0
    assert "Warning:" in res.output and "weights explode" in res.output


def test_design_probability_per_decision_point(tmp_path):
    from trialkit.design import load_design

    text = REFERENCE_DESIGN.replace("probability = 0.4",
                                    'probability_by = "decision_point"\n'
                                    "probability = [0.3, 0.4, 0.5, 0.4, 0.3]")
    path = tmp_path / "dp.toml"
    path.write_text(text)
    design = load_design(path)
    assert design.probability_at(1) == 0.3 and design.probability_at(8) == 0.5
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("[0.3, 0.4, 0.5, 0.4, 0.3]", "[0.3, 0.4]"))
    from trialkit.errors import DesignError

    with pytest.raises(DesignError, match="has 2 entries"):
        load_design(bad)


def test_cli_design_with_unreachable_availability(run, tmp_path):
    path = tmp_path / "avail.toml"
    path.write_text(REFERENCE_DESIGN.replace("initial = 0.7\nextremum_day = 42",
                                             "initial = 0.3\nextremum_day = 20")
                    .replace("mean = 0.5", "mean = 0.9"))
    res = run("power", path, "--n-participants", "40")
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "availability trajectory leaves [0, 1]" in res.output


def test_cli_plot_is_written(run, reference_design, tmp_path):
    out = tmp_path / "mrt.png"
    res = run("samplesize", reference_design, "--plot", out)
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 10_000


def test_design_probability_per_day_reaches_the_formula(run, tmp_path):
    per_day = [round(0.3 + 0.01 * (d % 7), 2) for d in range(DAYS)]
    text = REFERENCE_DESIGN.replace("probability = 0.4",
                                    f'probability_by = "day"\nprobability = {per_day}')
    path = tmp_path / "day.toml"
    path.write_text(text)
    from trialkit.design import load_design

    design = load_design(path)
    assert design.probability_at(1) == per_day[0] and design.probability_at(5) == per_day[0]
    assert design.probability_at(6) == per_day[1] and design.probability_at(210) == per_day[-1]
    res = run("power", path, "--n-participants", "40", "--format", "json")
    assert res.exit_code == 0, res.output
    effect, avail, _, basis = liao_reference_inputs()
    expected = ss.continuous_power(40, effect, avail, expand_days(np.array(per_day), DPD),
                                   basis, 3)
    assert json.loads(res.output)["power"] == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx(ss.continuous_power(40, effect, avail, 0.4, basis, 3))
    bad = tmp_path / "short.toml"
    bad.write_text(text.replace(str(per_day), "[0.4, 0.5]"))
    res = run("power", bad, "--n-participants", "40")
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "treatment.probability" in res.output


def test_few_participants_warn(run, reference_design):
    res = run("power", reference_design, "--n-participants", "8", "--format", "json")
    assert res.exit_code == 0, res.output
    assert "Warning:" in res.output and "below 11" in res.output
    effect, avail, prob, basis = liao_reference_inputs()
    with pytest.warns(MrtWarning, match="below"):
        ss.continuous_sample_size(effect * 5, avail, prob, basis, 3)


def test_cli_power_plot_for_binary_design(run, designs_dir, tmp_path):
    out = tmp_path / "binary.svg"
    res = run("power", designs_dir / "checkin-prompts-mrt.toml", "--n-participants", "40",
              "--plot", out, "--format", "json")
    assert res.exit_code == 0, res.output
    assert "baseline success" in out.read_text()


def test_zero_effect_has_power_alpha_not_a_negative_number(run, tmp_path):
    # scipy's ncf.sf returns −(1 − α) at noncentrality 0; power under no effect is α
    effect, avail, prob, basis = liao_reference_inputs()
    assert ss.continuous_power(40, 0 * effect, avail, prob, basis, 3, 0.05) == pytest.approx(0.05)
    f = np.column_stack([np.ones(10), np.arange(1, 11)])
    assert ss.binary_power(300, f, [0.0, 0.0], f, [-0.2, -0.1], 0.8, 0.4, 0.1) == (
        pytest.approx(0.1))
    path = tmp_path / "null.toml"
    path.write_text(REFERENCE_DESIGN.replace("mean = 0.1", "mean = 0.0"))
    res = run("power", path, "--n-participants", "40", "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["power"] == pytest.approx(0.05)


def test_cli_binary_success_probability_above_one_names_the_day(run, designs_dir, tmp_path):
    path = tmp_path / "strong.toml"
    path.write_text((designs_dir / "checkin-prompts-mrt.toml").read_text()
                    .replace("mean = 0.15", "mean = 2.0"))
    for args in (["samplesize", path], ["power", path, "--simulate", "--n-participants", "30",
                                        "--reps", "5"]):
        res = run(*args)
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
        assert "engagement_1h" in res.output and "reaches 1 on day 16" in res.output
