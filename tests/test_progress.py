"""Replicate cap and the one progress bar of long runs: stderr, terminals only, --quiet."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from trialkit.constants import MAX_REPS
from trialkit.engine import progress as progress_module
from trialkit.engine import run_replicates, show_progress
from trialkit.errors import TrialkitError

ROOT = Path(__file__).resolve().parent.parent
FACTORIAL = ROOT / "designs" / "app-components-factorial.toml"
MRT = ROOT / "designs" / "checkin-prompts-mrt.toml"
ADAPTIVE = ROOT / "designs" / "three-arm-adaptive.toml"


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _ones(reps: range, *, seed: int) -> np.ndarray:
    return np.ones(len(reps))


@pytest.fixture
def terminal(monkeypatch):
    """Return a terminal standing in for stderr; bars are drawn at once."""
    stream = Terminal()
    monkeypatch.setattr(progress_module, "default_stream", lambda: stream)
    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    return stream


def test_reps_above_the_cap_exit_2_before_any_work(run):
    res = run("simulate", ADAPTIVE, "--reps", "1000000000000")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "--reps" in lines[0] and str(MAX_REPS) in lines[0]


def test_the_library_refuses_reps_above_the_cap():
    with pytest.raises(TrialkitError, match="10,000,000 replicates") as info:
        run_replicates(_ones, 10**12, seed=0)
    assert info.value.param == ("reps",)


def test_the_cap_is_documented():
    text = (ROOT / "docs" / "development.md").read_text() + (ROOT / "README.md").read_text()
    assert "10,000,000" in text


def test_a_run_draws_its_bar_on_a_terminal_when_switched_on(terminal):
    with show_progress():
        run_replicates(_ones, 50, seed=0, batch=10, progress="simulating trials")
    assert "simulating trials: 100% (50/50 replicates)" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")


def test_no_bar_when_switched_off_without_label_or_not_a_terminal(terminal, monkeypatch):
    run_replicates(_ones, 50, seed=0, batch=10, progress="simulating trials")  # off by default
    with show_progress():
        run_replicates(_ones, 50, seed=0, batch=10)  # no label
    assert terminal.getvalue() == ""
    pipe = io.StringIO()
    monkeypatch.setattr(progress_module, "default_stream", lambda: pipe)
    with show_progress():
        run_replicates(_ones, 50, seed=0, batch=10, progress="simulating trials")
    assert pipe.getvalue() == ""


def test_a_short_run_stays_silent(monkeypatch):
    stream = Terminal()
    monkeypatch.setattr(progress_module, "default_stream", lambda: stream)
    with show_progress():
        run_replicates(_ones, 50, seed=0, batch=10, progress="simulating trials")
    assert stream.getvalue() == ""   # over before the bar's delay


def test_workers_advance_the_bar_too(terminal):
    with show_progress():
        out = run_replicates(_ones, 40, seed=0, batch=10, jobs=2, progress="simulating trials")
    assert out.shape == (40,)
    assert "100% (40/40 replicates)" in terminal.getvalue()


@pytest.mark.parametrize("simulate", ["mrt", "factorial", "adaptive", "decision"])
def test_every_simulation_reports_progress(terminal, simulate):
    from trialkit.design import load_design

    with show_progress():
        if simulate == "mrt":
            from trialkit.mrt.planning import simulate_mrt_power

            simulate_mrt_power(load_design(MRT), 30, reps=4, outcome="mood")
        elif simulate == "factorial":
            from trialkit.factorial.planning import simulate_factorial_power

            simulate_factorial_power(load_design(FACTORIAL), reps=20)
        elif simulate == "adaptive":
            from trialkit.adaptive import run_trials, setup_trial

            run_trials(setup_trial(ADAPTIVE), 6, 0)
        else:
            from trialkit.bayes.decision_study import simulate_decision

            simulate_decision(load_design(FACTORIAL), reps=10, seed=0)
    assert "simulating trials: 100%" in terminal.getvalue()


def test_calibration_is_one_bar_over_all_its_simulations(terminal):
    from trialkit.adaptive import calibrate_trial, setup_trial

    with show_progress():
        res = calibrate_trial(setup_trial(ADAPTIVE, "null"), reps=8, seed=0, tol=0.02)
    text = terminal.getvalue()
    assert text.count("\n") == 1 and "calibrating: 100%" in text
    assert "simulating trials" not in text
    # every evaluation and the check ran 8 trials each, all counted by the one bar
    assert f"({8 * (len(res['evaluations']) + 1)}/" in text.split("100%")[-1]


def test_power_curve_grid_reports_progress(terminal):
    from trialkit.design import load_design
    from trialkit.factorial.planning import factorial_power_curve

    with show_progress():
        factorial_power_curve(load_design(FACTORIAL), 100, 500, points=5)
    assert "power curve: 100% (5/5 sample sizes)" in terminal.getvalue()


@pytest.mark.parametrize("args", [
    ("power", FACTORIAL, "--simulate", "--reps", "20"),
    ("power", MRT, "--simulate", "--reps", "4", "--n-participants", "30", "--outcome", "mood"),
    ("simulate", ADAPTIVE, "--reps", "6"),
    ("simulate", "decision", FACTORIAL, "--reps", "10"),
])
def test_cli_draws_the_bar_unless_quiet(run, monkeypatch, args):
    # CliRunner's stderr is no terminal: count it as one to see the bar
    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    original = progress_module.Progress.__init__

    def as_terminal(self, *a, **k):
        original(self, *a, **k)
        self.visible = True

    monkeypatch.setattr(progress_module.Progress, "__init__", as_terminal)
    shown = run(*args)
    assert shown.exit_code == 0, shown.output
    assert "simulating trials: 100%" in shown.stderr
    quiet = run(*args, "--quiet")
    assert quiet.exit_code == 0, quiet.output
    assert "simulating trials" not in quiet.stderr

    def numbers(text: str) -> list[str]:   # the output, without the time taken
        return [line for line in text.splitlines() if "seconds" not in line]

    assert numbers(quiet.stdout) == numbers(shown.stdout)


def test_no_bar_on_stderr_that_is_not_a_terminal(run):
    res = run("power", FACTORIAL, "--simulate", "--reps", "20")
    assert res.exit_code == 0 and res.stderr == ""


def test_the_bootstrap_of_operating_characteristics_reports_progress(terminal):
    from trialkit.adaptive import check_performance, run_trials, setup_trial

    res = run_trials(setup_trial(ADAPTIVE), 20, 0)
    with show_progress():
        check_performance(res, uncertainty=True, n_boot=50)
    assert "bootstrap: 100% (50/50 resamples)" in terminal.getvalue()
