"""The live twin: a live adaptive trial is the simulator's trial.

A complete live trial runs through the embedded service — participants enrolled up to each look's
``looks.randomised``, outcomes recorded for the first ``looks.data`` of them, the interim run when
due — and the simulator's own loop (``run_looks``: ``randomise_patients``, ``add_outcome_data``,
``adaptive_look``, ``apply_look``) are run on the same uniforms: the live trial's keyed
allocation uniforms and the same outcome numbers. Every allocation, every look's P(best),
P(better than control), arm states, stopping decision and new probabilities must agree.

Then over 200 complete live trials of a small design, the operating characteristics (stopping
for superiority or equivalence, the selected arm) agree with ``run_trials`` within 3 Monte Carlo
standard errors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from trialkit.adaptive import check_performance, run_trials, setup_trial
from trialkit.adaptive.look import ARM_STATUS, FINAL_STATUS
from trialkit.adaptive.simulator import Block, run_looks
from trialkit.design import loads_design
from trialkit.randomise import KeyedStream
from trialkit.service.keys import read_key_file
from trialkit.service.trial import Trial

DESIGNS = Path(__file__).resolve().parent.parent / "designs"

CONTROL = """
kind = "adaptive"
name = "control_live"
control = "usual"

[[arms]]
name = "usual"
[[arms]]
name = "better"
[[arms]]
name = "same"

[outcome]
type = "continuous"
highest_is_best = true

[looks]
data = [60, 120, 180, 240]
randomised = [80, 140, 200, 240]

[allocation]
control = "sqrt-based"

[stopping]
superiority = 0.99
inferiority = 0.02
futility_prob = 0.9
futility_diff = 0.1

[posterior]
selection = "control or best"

[scenarios.effect]
values = [0.0, 0.5, 0.0]
sds = [1.0, 1.0, 1.0]
"""

SMALL = """
kind = "adaptive"
name = "small_live"

[[arms]]
name = "a"
[[arms]]
name = "b"
[[arms]]
name = "c"

[outcome]
type = "binary"

[looks]
data = [50, 100, 150, 200, 250, 300]

[stopping]
superiority = 0.95
inferiority = 0.02
equivalence_prob = 0.9
equivalence_diff = 0.1

[posterior]
selection = "best"

[scenarios.effect]
values = [0.20, 0.20, 0.40]
"""


def _simulate_twin(spec, u_alloc: np.ndarray, u_out: np.ndarray) -> tuple[Block, list]:
    """Run the simulator's steps for one trial on given uniforms; return it and every look."""
    b = Block(spec, 1, u_alloc[None], u_out[None])
    looks: list = []
    run_looks(b, on_look=lambda look, rows, res: looks.append(res))
    return b, looks


def _run_live(trial: Trial, outcome) -> list[dict]:
    """Run a live trial to its end; ``outcome(i, arm)`` is participant i's outcome.

    Participants are enrolled up to each look's ``looks.randomised`` (in one group commit),
    outcomes recorded for the first ``looks.data`` of them, and the interim run. Returns every
    interim's result.
    """
    spec = trial.adapter.spec
    interims: list[dict] = []
    arms: dict[int, str] = {}
    enrolled = recorded = 0
    for look in range(spec.n_looks):
        target = spec.randomised_at_looks[look]
        done = trial.run_batch([(lambda i=i: trial.enrol(f"P{i:05d}"))
                                for i in range(enrolled + 1, target + 1)])
        for i, (ok, res) in enumerate(done, start=enrolled + 1):
            assert ok, res
            arms[i] = res["allocation"]
        enrolled = target
        need = spec.data_looks[look]
        trial.record_outcomes([{"participant": f"P{i:05d}", "value": outcome(i, arms[i])}
                               for i in range(recorded + 1, need + 1)])
        recorded = need
        interims.append(trial.interim())
        if interims[-1]["stopped"]:
            break
    return interims


def _new_trial(tmp_path: Path, design: Path | str, tag: str = "live") -> Trial:
    return Trial.create(str(design), f"sqlite:///{tmp_path / tag}.db?synchronous=normal",
                        key_file=str(tmp_path / f"{tag}.key"))


def _twin(tmp_path: Path, design_path: Path, seed: int) -> tuple[Trial, list, Block, list]:
    """Run a live trial and the simulator's steps on the same uniforms."""
    trial = _new_trial(tmp_path, design_path)
    spec = trial.adapter.spec
    key = read_key_file(str(tmp_path / "live.key"))
    u_alloc = np.array([KeyedStream(key, "adaptive", trial.name, i).uniform()
                        for i in range(1, spec.max_n + 1)])
    rng = np.random.default_rng(seed)
    u_out = rng.random(spec.max_n) if spec.binary else rng.standard_normal(spec.max_n)
    b, looks = _simulate_twin(spec, u_alloc, u_out)
    return trial, _run_live(trial, lambda i, arm: float(b.y[0, i - 1])), b, looks


def _close(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.allclose(a, b, rtol=0, atol=1e-12, equal_nan=True))


@pytest.mark.parametrize(("design", "seed"), [
    ("three-arm-adaptive.toml", 1), ("three-arm-fixed.toml", 2), (CONTROL, 3), (CONTROL, 4),
    (SMALL, 5)])
def test_a_live_trial_is_the_simulators_trial(tmp_path, design, seed):
    """Every allocation and every look of a live trial equal the simulator's on its uniforms."""
    path = DESIGNS / design if design.endswith(".toml") else tmp_path / "design.toml"
    if not design.endswith(".toml"):
        path.write_text(design)
    trial, interims, b, looks = _twin(tmp_path, path, seed)
    spec = trial.adapter.spec
    assert len(interims) == len(looks)
    rows = trial.export()
    final_n = int(b.final_n[0])
    assert len(rows) == final_n
    assert [r["arm"] for r in rows] == [spec.arms[a] for a in b.arm_of[0, :final_n]]
    for live, sim in zip(interims, looks, strict=True):
        assert _close([a["p_best"] if a["p_best"] is not None else np.nan for a in live["arms"]],
                      sim.probs_best[0])
        if sim.probs_better is not None:
            assert _close([np.nan if a["p_better_than_control"] is None
                           else a["p_better_than_control"] for a in live["arms"]],
                          sim.probs_better[0])
        assert [a["status"] for a in live["arms"]] == [ARM_STATUS[s] for s in
                                                       sim.state.status[0]]
        assert [a["active"] for a in live["arms"]] == sim.state.active[0].tolist()
        if live["probabilities"] is not None:
            assert _close(live["probabilities"], sim.alloc[0])
    stop = FINAL_STATUS[int(b.final_status[0])]
    assert interims[-1]["stop_reason"] == ("last look" if stop == "max" else stop)
    # every enrolment was allocated with the probabilities in force at its look
    in_force = [list(spec.start_probs)] + [lk["probabilities"] for lk in interims]
    for r in rows:
        assert r["allocation_probability"] == in_force[r["look"]][spec.arms.index(r["arm"])]
        assert [r[f"p_{arm}"] for arm in spec.arms] == in_force[r["look"]]
    assert trial.verify()["ok"]


SMALL_OC = SMALL.replace("data = [50, 100, 150, 200, 250, 300]", "data = [40, 80, 120, 160, 200]")
LIVE_TRIALS = 200


def _selected(interims: list[dict]) -> str:
    """Return the arm selected by the design's rule (``best``): the superior arm, else the best."""
    last = interims[-1]
    if last["superior"]:
        return last["superior"]
    active = [a for a in last["arms"] if a["active"]]
    return max(active, key=lambda a: a["p_best"])["arm"]


def test_operating_characteristics_of_live_trials_match_the_simulator(tmp_path, monkeypatch):
    """Over 200 complete live trials, stopping and selection agree with run_trials (3 MC SE)."""
    import random

    from trialkit.service import keys

    path = tmp_path / "design.toml"
    path.write_text(SMALL_OC)
    spec = setup_trial(loads_design(SMALL_OC))
    keygen = random.Random(20261129)
    monkeypatch.setattr(keys.secrets, "token_bytes", keygen.randbytes)
    rng = np.random.default_rng(7)
    truth = dict(zip(spec.arms, spec.true_values, strict=True))
    counts = {"superiority": 0, "equivalence": 0, "last look": 0}
    selected = dict.fromkeys(spec.arms, 0)
    sizes = []
    for k in range(LIVE_TRIALS):
        trial = Trial.create(str(path), f"sqlite:///{tmp_path / 'oc.db'}?synchronous=normal",
                             key_file=str(tmp_path / f"t{k}.key"), name=f"t{k}")
        interims = _run_live(trial, lambda i, arm: float(rng.random() < truth[arm]))
        trial.close()
        counts[interims[-1]["stop_reason"]] += 1
        selected[_selected(interims)] += 1
        sizes.append(spec.randomised_at_looks[len(interims) - 1])
    sim = check_performance(run_trials(spec, 20_000, 11), "best")
    expected = {"superiority": sim["prob_superior"], "equivalence": sim["prob_equivalence"],
                "last look": sim["prob_max"],
                **{f"select {a}": sim["prob_select"][f"arm_{a}"] for a in spec.arms}}
    observed = {**{k: v / LIVE_TRIALS for k, v in counts.items()},
                **{f"select {a}": n / LIVE_TRIALS for a, n in selected.items()}}
    assert 0.1 < expected["superiority"] < 0.9 and expected["equivalence"] > 0.05
    for name, p in expected.items():
        se = math.sqrt(max(p * (1 - p), 1e-4) * (1 / LIVE_TRIALS + 1 / 20_000))
        assert abs(observed[name] - p) <= 3 * se, (name, observed[name], p, se)
    se_size = sim["size_sd"] * math.sqrt(1 / LIVE_TRIALS + 1 / 20_000)
    assert abs(np.mean(sizes) - sim["size_mean"]) <= 3 * se_size, (np.mean(sizes), sim)
