"""One interim analysis of a live adaptive trial, from its participants' arms and outcomes.

:func:`live_look` turns the outcome data a live trial holds (one arm and one outcome per
participant with an outcome) and the arms' state after the previous look into the per-arm
sufficient statistics the simulator keeps, and calls the simulator's own look,
:func:`trialkit.adaptive.look.adaptive_look`, with a batch of one trial. It adds only what a live
trial needs around it: which arms the look dropped, why the trial stopped (including the last
planned look, after which nothing more is randomised) and a JSON-able record that the service
logs and that verification recomputes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from trialkit.adaptive.look import (
    ARM_STATUS,
    FINAL_STATUS,
    RUNNING,
    ArmData,
    ArmState,
    LookResult,
    adaptive_look,
)
from trialkit.adaptive.spec import TrialSpec
from trialkit.results import Result

#: Why a live trial stopped, by the code kept in its allocation state (0: it runs).
STOP_REASONS = ("", "superiority", "equivalence", "futility", "last look")
STOP_LAST_LOOK = 4

_STATE_KEYS = ("active", "status", "status_look", "control", "check_equivalence",
               "check_futility")


def arm_data(spec: TrialSpec, arms: np.ndarray, values: np.ndarray) -> ArmData:
    """Return the per-arm sufficient statistics of one trial (a batch of one).

    Parameters
    ----------
    spec : TrialSpec
        The trial (its number of arms and outcome type).
    arms : ndarray of int
        The arm (0-based) of each participant with an outcome.
    values : ndarray of float
        Their outcomes, in the same order.
    """
    a = spec.n_arms
    n = np.bincount(arms, minlength=a).astype(float)
    total = np.bincount(arms, weights=values, minlength=a)
    total_sq = (np.zeros(a) if spec.binary
                else np.bincount(arms, weights=values * values, minlength=a))
    return ArmData(n[None], total[None], total_sq[None])


def state_to_dict(state: ArmState) -> dict[str, Any]:
    """Return one trial's arm state (a batch of one) as plain lists."""
    return {k: np.asarray(getattr(state, k))[0].tolist() for k in _STATE_KEYS}


def state_from_dict(spec: TrialSpec, data: dict[str, Any] | None) -> ArmState:
    """Return the arm state logged by the previous look (the start state for ``None``)."""
    if data is None:
        return ArmState.start(spec, 1)
    dtypes = {"active": bool, "status": np.int8, "status_look": np.int64, "control": np.int64,
              "check_equivalence": bool, "check_futility": bool}
    return ArmState(**{k: np.asarray([data[k]], dtype=dtypes[k]) for k in _STATE_KEYS})


@dataclass(frozen=True)
class LiveLook(Result):
    """What one interim analysis of a live trial found and decided.

    Attributes
    ----------
    look : int
        The look's number (1-based).
    participants_with_outcomes : int
        Participants whose outcomes were analysed.
    arms : list of dict
        Per arm: ``arm``, ``n``, ``total`` (events or sum), ``total_sq`` (continuous outcomes),
        ``p_best``, ``p_better_than_control`` (with a common control), ``status`` and ``active``.
    control : str or None
        The common control after the look.
    dropped : list of str
        Arms this look dropped.
    stopped : bool
        Whether the trial stopped at this look (nothing more is randomised).
    stop_reason : str or None
        ``superiority``, ``equivalence``, ``futility`` or ``last look``.
    superior : str or None
        The arm declared superior.
    probabilities : list of float or None
        The allocation probabilities from now on (``None`` once stopped).
    state : dict
        The arms' state for the next look.
    method : str
        How posterior probabilities were computed (``exact`` or ``draws``).
    """

    look: int
    participants_with_outcomes: int
    arms: list[dict[str, Any]]
    control: str | None
    dropped: list[str]
    stopped: bool
    stop_reason: str | None
    superior: str | None
    probabilities: list[float] | None
    state: dict[str, Any]
    method: str

    primary: ClassVar[str | None] = "arms"

    @property
    def stop_code(self) -> int:
        """Return the code of :data:`STOP_REASONS` (0 while the trial goes on)."""
        return STOP_REASONS.index(self.stop_reason) if self.stop_reason else 0


def live_look(spec: TrialSpec, look: int, arms: Sequence[int] | np.ndarray,
              values: Sequence[float] | np.ndarray,
              previous: dict[str, Any] | None, seed: int | None = None) -> LiveLook:
    """Analyse a live trial at look ``look`` (0-based) with the simulator's look function.

    Parameters
    ----------
    spec : TrialSpec
        The trial's specification (from its design).
    look : int
        Index of the look, 0-based.
    arms, values : ndarray
        Arm (0-based) and outcome of every participant with an outcome.
    previous : dict or None
        The arms' state logged by the previous look (``None`` before the first).
    seed : int, optional
        Seed of the posterior draws (``draws`` method only; a live trial derives it from its
        key, so the look replays exactly).

    Returns
    -------
    LiveLook
    """
    data = arm_data(spec, np.asarray(arms, dtype=np.int64), np.asarray(values, dtype=float))
    before = state_from_dict(spec, previous)
    rngs = [np.random.default_rng(seed)] if spec.method == "draws" else None
    res = adaptive_look(spec, look, data, before, rngs)
    return _describe(spec, look, data, before, res)


def _describe(spec: TrialSpec, look: int, data: ArmData, before: ArmState,
              res: LookResult) -> LiveLook:
    final = int(res.final_status[0])
    last = look == spec.n_looks - 1
    reason = FINAL_STATUS[final] if final != RUNNING else ("last look" if last else None)
    status = res.state.status[0]
    better = None if res.probs_better is None else res.probs_better[0]
    arms = []
    for j, name in enumerate(spec.arms):
        rec: dict[str, Any] = {"arm": name, "n": int(data.n[0, j]),
                               "total": float(data.total[0, j])}
        if not spec.binary:
            rec["total_sq"] = float(data.total_sq[0, j])
        rec["p_best"] = _number(res.probs_best[0, j])
        if better is not None:
            rec["p_better_than_control"] = _number(better[j])
        rec.update({"status": ARM_STATUS[int(status[j])], "active": bool(res.state.active[0, j])})
        arms.append(rec)
    dropped = [spec.arms[j] for j in range(spec.n_arms)
               if before.active[0, j] and not res.state.active[0, j]]
    superior = [spec.arms[j] for j in range(spec.n_arms) if ARM_STATUS[int(status[j])] ==
                "superior"]
    control = int(res.state.control[0])
    probabilities = None if reason else [float(p) for p in res.alloc[0]]
    return LiveLook(look=look + 1, participants_with_outcomes=int(data.n.sum()), arms=arms,
                    control=spec.arms[control] if control >= 0 else None, dropped=dropped,
                    stopped=reason is not None, stop_reason=reason,
                    superior=superior[0] if superior else None, probabilities=probabilities,
                    state=state_to_dict(res.state), method=spec.method)


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
