"""Options that would be ignored are refused; wrong-kind errors name the command to use."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACTORIAL = ROOT / "designs" / "app-components-factorial.toml"
MRT = ROOT / "designs" / "checkin-prompts-mrt.toml"
ADAPTIVE = ROOT / "designs" / "three-arm-adaptive.toml"


def _error(res) -> str:
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in res.output
    return lines[0]


# -- options that only a simulation uses -------------------------------------------------------
@pytest.mark.parametrize(("design", "extra"), [
    (FACTORIAL, ("--reps", "50")), (FACTORIAL, ("--seed", "3")), (FACTORIAL, ("--jobs", "2")),
    (MRT, ("--n-participants", "30", "--reps", "50")),
    (MRT, ("--n-participants", "30", "--seed", "3", "--jobs", "2")),
])
def test_simulation_options_without_simulate_are_refused(run, design, extra):
    line = _error(run("power", design, *extra))
    assert "only with --simulate" in line
    assert any(flag in line for flag in ("--reps", "--seed", "--jobs"))


@pytest.mark.parametrize("extra", [
    ("--n-from", "100"), ("--out", "power.png"), ("--simulate", "--exact"),
    ("--curve", "--n-from", "100", "--n-to", "200", "--n-total", "300"),
])
def test_factorial_power_options_of_another_form_are_refused(run, tmp_path, extra):
    extra = tuple(str(tmp_path / e) if e.endswith(".png") else e for e in extra)
    line = _error(run("power", FACTORIAL, *extra))
    assert "--" in line


def test_defaults_and_the_simulation_itself_still_work(run):
    assert run("power", FACTORIAL, "--format", "json").exit_code == 0
    res = run("power", FACTORIAL, "--simulate", "--reps", "20", "--seed", "3", "--format", "json")
    assert res.exit_code == 0, res.output


# -- wrong kinds name the command to use ------------------------------------------------------
@pytest.mark.parametrize(("args", "use"), [
    (("power", ADAPTIVE), "use `trialkit simulate FILE`"),
    (("samplesize", ADAPTIVE), "use `trialkit simulate FILE`"),
    (("mde", ADAPTIVE), "use `trialkit simulate FILE`"),
    (("mde", MRT), "use `trialkit power FILE`"),
    (("simulate", FACTORIAL), "use `trialkit power FILE --simulate`"),
    (("simulate", MRT), "use `trialkit power FILE --simulate`"),
    (("simulate", "decision", MRT), "use `trialkit power FILE --simulate`"),
    (("simulate", "decision", ADAPTIVE), "use `trialkit simulate FILE`"),
    (("calibrate", FACTORIAL), "use `trialkit power FILE`"),
    (("analyse", "prior-predictive", MRT), "use `trialkit power FILE`"),
])
def test_wrong_kind_names_the_command_to_use(run, args, use):
    line = _error(run(*args))
    assert "design, but 'trialkit" in line and use in line


def test_analysis_of_another_kind_names_its_analysis(run, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("id,decision_point,availability,treatment,probability,mood\n")
    line = _error(run("analyse", "factorial", MRT, data))
    assert "is an MRT design" in line and "use `trialkit analyse mrt DATA --design FILE`" in line
    line = _error(run("analyse", "mrt", data, "--design", FACTORIAL, "--outcome", "mood"))
    assert "use `trialkit analyse factorial FILE DATA`" in line


# -- trialkit mde FILE -----------------------------------------------------------------------------
def test_mde_of_a_design_file_matches_the_quick_command(run):
    import json

    res = run("mde", FACTORIAL, "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n_total"] == 512 and out["n_analysed"] == pytest.approx(435.2)
    # the same setting by hand: 512 enrolled, 15% dropout, sd 5, model order 2
    quick = json.loads(run("mde", "factorial", "--factors", "5", "--n-total", "435.2",
                           "--sigma", "5", "--model-order", "2", "--format", "json").stdout)
    assert out["raw_main"] == pytest.approx(quick["raw_main"], rel=1e-12)
    assert out["d_main"] == pytest.approx(quick["d_main"], rel=1e-12)


def test_mde_of_a_binary_outcome_has_the_target_power(run):
    import json

    out = json.loads(run("mde", FACTORIAL, "--outcome", "retention", "--format", "json").stdout)
    back = json.loads(run("power", "factorial", "--factors", "5", "--n-total", "435.2",
                          "--baseline", "0.45", "--logodds-main", repr(out["logodds_main"]),
                          "--model-order", "2", "--format", "json").stdout)
    assert back["power"] == pytest.approx(0.8, abs=1e-9)
    assert out["odds_ratio"] > 1 and 0 < out["risk_diff"] < 0.55


def test_mde_of_a_design_file_with_a_larger_sample_is_smaller(run):
    import json

    small = json.loads(run("mde", FACTORIAL, "--format", "json").stdout)
    large = json.loads(run("mde", FACTORIAL, "--n-total", "2000", "--format", "json").stdout)
    assert large["raw_main"] < small["raw_main"]


# -- echoed values are cut to 40 characters ---------------------------------------------------
def test_a_long_bad_value_is_cut_in_design_errors(run, tmp_path):
    long = "x" * 300
    path = tmp_path / "long.toml"
    path.write_text(FACTORIAL.read_text().replace("dropout = 0.15",
                                                  f'dropout = 0.15\nassignment = "{long}"'))
    res = run("design", "validate", path)
    assert res.exit_code == 2 and "x" * 41 not in res.output
    assert "x" * 30 in res.output and "…" in res.output


def test_a_long_bad_value_is_cut_in_cli_errors(run):
    long = "9" * 80 + "z"
    line = _error(run("power", FACTORIAL, "--simulate", "--reps", long))
    assert "9" * 41 not in line and "…" in line
    line = _error(run("power", "q" * 200))
    assert "q" * 41 not in line and "…" in line


# -- MRT power says what it used ----------------------------------------------------------------
def test_mrt_power_prints_its_settings(run):
    res = run("power", MRT, "--n-participants", "40")
    assert res.exit_code == 0, res.output
    table = dict(line.split(None, 1) for line in res.stdout.splitlines() if line.strip())
    assert table["outcome"] == "engagement_1h" and table["n_participants"] == "40"
    assert table["alpha"] == "0.05" and table["probability"] == "0.6"
    assert table["availability.mean"] == "0.8"
    assert table["effect.shape"] == "linear" and table["effect.scale"] == "log relative risk"
    # the design's effect runs from 0.25 on day 1 to 2 × 0.15 − 0.25 = 0.05 on day 42
    assert (table["effect.min"], table["effect.mean"], table["effect.max"]) == (
        "0.05", "0.15", "0.25")
    assert table["baseline.mean"] == "0.2" and table["method"].startswith("formula: Cohn")
    assert (table["p"], table["q"], table["df"]) == ("2", "3", "35")


def test_simulated_mrt_power_prints_its_settings(run):
    import json

    res = run("power", MRT, "--n-participants", "30", "--outcome", "mood", "--simulate",
              "--reps", "10", "--seed", "2", "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["method"] == "simulation: WCLS" and out["reps"] == 10 and out["seed"] == 2
    assert out["outcome"] == "mood" and out["effect"]["scale"] == "standardised"
    assert out["effect"]["shape"] == "quadratic" and out["effect"]["mean"] == pytest.approx(0.1)
    assert out["df"] == 30 - 3 - 3
