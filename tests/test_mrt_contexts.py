"""Adaptive MRTs simulated on context trajectories from data (participants resampled)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DESIGNS
from trialkit.design import loads_design
from trialkit.engine import replicate_rngs
from trialkit.errors import DataError, TrialkitError
from trialkit.mrt.adaptive import adaptive_inputs, draw_exogenous, true_effect
from trialkit.mrt.contexts import context_trajectories
from trialkit.mrt.planning import design_inputs, simulate_mrt_power

DAYS = 14


@pytest.fixture(scope="module")
def design():
    text = (DESIGNS / "adaptive-prompts-mrt.toml").read_text()
    return loads_design(text.replace("days = 70", f"days = {DAYS}"), "small.toml")


def table(n_people: int = 5, points: int = DAYS * 2, stress_shift: float = 1.0) -> pd.DataFrame:
    """Participant p has stress = shift + p/10 + a daily wave and engaged = 1 on odd points."""
    rows = []
    for p in range(n_people):
        for t in range(1, points + 1):
            rows.append({"participant": f"p{p}", "decision_point": t,
                         "stress": stress_shift + p / 10 + 0.5 * np.sin(t), "engaged": t % 2})
    return pd.DataFrame(rows)


def test_simulated_participants_take_whole_trajectories_of_the_table(design):
    data = table()
    traj = context_trajectories(design, data)
    assert traj.values.shape == (5, DAYS * 2, 2) and traj.participants[0] == "p0"
    inputs = adaptive_inputs(design, design_inputs(design, "brushing"), contexts=traj)
    ex = draw_exogenous(replicate_rngs(3, 0, 4), 9, inputs)
    ctx = ex["context"]
    assert ctx.shape == (4, 9, DAYS * 2, 2)
    # every simulated participant is one participant of the table, whole trajectory
    for r in range(4):
        for i in range(9):
            assert any(np.array_equal(ctx[r, i], traj.values[k]) for k in range(5))
    # with 36 draws from 5 participants, several participants are used
    firsts = {round(float(x), 6) for x in ctx[:, :, 0, 0].ravel()}
    assert len(firsts) >= 3
    # the same seed gives the same participants; another seed other ones
    again = draw_exogenous(replicate_rngs(3, 0, 4), 9, inputs)["context"]
    other = draw_exogenous(replicate_rngs(4, 0, 4), 9, inputs)["context"]
    assert np.array_equal(ctx, again) and not np.array_equal(ctx, other)


def test_the_true_effect_uses_the_tables_mean_context(design):
    inputs = adaptive_inputs(design, design_inputs(design, "brushing"),
                             contexts=context_trajectories(design, table(stress_shift=1.0)))
    expected_stress = table(stress_shift=1.0).groupby("decision_point")["stress"].mean()
    # effect 0.08 moderated by −0.05 × stress, availability constant
    assert true_effect(inputs) == pytest.approx(0.08 - 0.05 * expected_stress.mean(), abs=1e-12)
    declared = adaptive_inputs(design, design_inputs(design, "brushing"))
    assert true_effect(declared) == pytest.approx(0.08)


def test_simulation_on_trajectories_is_unbiased_and_stable_across_jobs(design):
    data = table(n_people=8, stress_shift=2.0)
    one = simulate_mrt_power(design, 16, reps=40, seed=2, jobs=1, contexts=data)
    two = simulate_mrt_power(design, 16, reps=40, seed=2, jobs=2, contexts=data)
    assert one.to_dict() == two.to_dict()
    assert one.contexts == {"source": "trajectories resampled by participant",
                            "participants": 8, "decision_points": DAYS * 2,
                            "variables": ["stress", "engaged"]}
    # stress around 2.35: the marginal effect is 0.08 − 0.05 × 2.35 ≈ −0.04, not 0.08
    assert one.effect == pytest.approx(0.08 - 0.05 * data["stress"].mean(), abs=1e-12)
    declared = simulate_mrt_power(design, 16, reps=40, seed=2, jobs=1)
    assert declared.effect == pytest.approx(0.08) and "contexts" not in declared.to_dict()
    assert one.mean_estimate != declared.mean_estimate


def test_estimates_centre_on_the_effect_of_the_tables_contexts(design):
    data = table(n_people=6, stress_shift=2.0)
    res = simulate_mrt_power(design, 30, reps=120, seed=5, jobs=1, contexts=data)
    # the spread of one estimate is about 0.04 here: 120 replicates give an SE of ~0.004
    assert abs(res.mean_estimate - res.effect) < 0.015
    assert abs(res.mean_estimate - 0.08) > 0.05


BAD = [
    (lambda t: t.drop(columns="engaged"), "no column 'engaged'"),
    (lambda t: t.assign(mood=1.0), "'mood' that are not context variables"),
    (lambda t: t.assign(decision_point=t.decision_point.where(t.index != 3, 99)),
     "'decision_point' has the value 99 at row 4"),
    (lambda t: t.assign(decision_point=t.decision_point.astype(float).where(t.index != 2, 2.5)),
     "'decision_point' has the value 2.5 at row 3"),
    (lambda t: t[t.index != 5], "decision point 6 not at all"),
    (lambda t: pd.concat([t, t.iloc[[7]]]), "decision point 8 twice"),
    (lambda t: t.assign(engaged=t.engaged.where(t.index != 4, 2)),
     "'engaged' has the value 2 at row 5, but engaged is a bernoulli variable"),
    (lambda t: t.assign(stress=t.stress.where(t.index != 6, np.nan)), "missing values"),
    (lambda t: t.assign(stress=t.stress.where(t.index != 6, np.inf)), "infinite values"),
    (lambda t: t.assign(stress=t.stress.astype(object).where(t.index != 1, "high")),
     "non-numeric values"),
    (lambda t: t.iloc[:0], "has no rows"),
    (lambda t: t.assign(participant=t.participant.where(t.index != 9, None)),
     "'participant' is empty at row 10"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_tables_are_refused_with_what_and_where(design, change, message):
    with pytest.raises(DataError) as info:
        context_trajectories(design, change(table()))
    text = str(info.value)
    assert message in text and "\n" not in text and " — " in text


def test_trajectories_need_a_design_whose_policy_reads_context():
    fixed = loads_design((DESIGNS / "checkin-prompts-mrt.toml").read_text(), "fixed.toml")
    with pytest.raises(TrialkitError, match="fixed probabilities"):
        simulate_mrt_power(fixed, 20, reps=5, contexts=table())
    with pytest.raises(DataError, match="declares no"):
        context_trajectories(fixed, table())


def test_cli_power_simulate_with_contexts(run, tmp_path):
    path = tmp_path / "contexts.csv"
    table(n_people=4, points=140).to_csv(path, index=False)
    design = DESIGNS / "adaptive-prompts-mrt.toml"
    res = run("power", design, "--simulate", "--n-participants", "10", "--reps", "4",
              "--contexts", path, "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["contexts"]["participants"] == 4 and np.isfinite(out["mean_estimate"])
    # a table for another schedule: one line, exit 2, naming the column and the fix
    short = tmp_path / "short.csv"
    table(n_people=2, points=10).to_csv(short, index=False)
    bad = run("power", design, "--simulate", "--reps", "4", "--contexts", short)
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1
    assert "decision point 11 not at all" in bad.output and "Traceback" not in bad.output
    missing = run("power", design, "--simulate", "--reps", "4", "--contexts",
                  tmp_path / "none.csv")
    assert missing.exit_code == 2 and "no such file" in missing.output
    unused = run("power", design, "--contexts", path)
    assert unused.exit_code == 2 and "--contexts applies only with --simulate" in unused.output
