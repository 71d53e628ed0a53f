"""The adaptive look: a pure function of one batch of trials, the same for a batch of one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trialkit.adaptive import ArmData, ArmState, adaptive_look, setup_trial
from trialkit.adaptive.look import (
    CONTROL,
    INFERIOR,
    RUNNING,
    STOP_SUPERIORITY,
    SUPERIOR,
)

ROOT = Path(__file__).resolve().parent.parent
THREE_ARM = ROOT / "designs" / "three-arm-adaptive.toml"
CONTROL_DESIGN = ROOT / "tests" / "golden" / "adaptive__control_sqrt__futility.toml"


def _data(n, events) -> ArmData:
    n = np.asarray(n, dtype=float)
    s = np.asarray(events, dtype=float)
    return ArmData(n, s, s)  # binary outcomes: y² = y


def _row(data: ArmData, j: int) -> ArmData:
    return ArmData(data.n[[j]], data.total[[j]], data.total_sq[[j]])


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.final_status, b.final_status)
    np.testing.assert_array_equal(a.probs_best, b.probs_best)
    np.testing.assert_array_equal(a.alloc, b.alloc)
    for f in ("active", "status", "status_look", "control"):
        np.testing.assert_array_equal(getattr(a.state, f), getattr(b.state, f))


# three trials at the first look (300 patients): no difference, a clear winner, a clear loser
N = [[100, 100, 100]] * 3
EVENTS = [[25, 25, 25], [30, 5, 30], [25, 25, 60]]


def test_look_decides_and_leaves_its_arguments_alone():
    spec = setup_trial(THREE_ARM, "alternative", "exact")
    data, state = _data(N, EVENTS), ArmState.start(spec, 3)
    before = {f: np.copy(getattr(state, f)) for f in ("active", "status", "status_look")}
    res = adaptive_look(spec, 0, data, state)
    for f, v in before.items():
        np.testing.assert_array_equal(getattr(state, f), v)  # the caller's state is unchanged
    assert res.final_status.tolist() == [RUNNING, STOP_SUPERIORITY, RUNNING]
    assert res.state.status[1, 1] == SUPERIOR and res.state.status_look[1, 1] == 300
    assert res.state.status[2, 2] == INFERIOR and not res.state.active[2, 2]
    np.testing.assert_allclose(np.nansum(res.probs_best, axis=1), 1.0)
    assert np.isnan(res.alloc[1]).all()  # a stopped trial gets no new allocation
    np.testing.assert_allclose(res.alloc[[0, 2]].sum(axis=1), 1.0)
    assert res.alloc[2, 2] == 0 and (res.alloc[0] >= 0.2 - 1e-12).all()  # min_probs 0.2
    assert res.probs_better is None


@pytest.mark.parametrize("method", ["exact", "draws"])
def test_a_batch_of_one_gives_the_same_decisions(method):
    spec = setup_trial(CONTROL_DESIGN, "better_arm", method)
    data = _data([[70, 70, 60]] * 3, [[21, 7, 20], [21, 20, 19], [30, 10, 12]])
    state = ArmState.start(spec, 3)

    def rngs(seeds):
        return [np.random.default_rng(s) for s in seeds] if method == "draws" else None

    batch = adaptive_look(spec, 0, data, state, rngs([1, 2, 3]))
    for j in range(3):
        one = adaptive_look(spec, 0, _row(data, j), state.take(np.array([j])), rngs([j + 1]))
        _same(one, type(batch)(batch.state.take(np.array([j])), batch.probs_best[[j]],
                               None, batch.final_status[[j]], batch.alloc[[j]]))
        np.testing.assert_array_equal(one.probs_better, batch.probs_better[[j]])
    # the better arm (fewer events: lower is best) becomes the new control in the first trial,
    # the old control is dropped as inferior; the new one is then superior or still the control
    assert batch.state.control[0] == 1 and batch.state.status[0, 0] == INFERIOR
    assert batch.state.status[0, 1] in (CONTROL, SUPERIOR)


def test_draws_need_generators():
    spec = setup_trial(THREE_ARM, "alternative", "draws")
    with pytest.raises(ValueError, match="generator"):
        adaptive_look(spec, 0, _data(N, EVENTS), ArmState.start(spec, 3))
