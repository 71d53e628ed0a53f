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
