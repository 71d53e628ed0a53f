"""One adaptive analysis ("look"): posteriors, decisions and new allocation probabilities.

:func:`adaptive_look` is a pure function of the trial specification, the look's index, the per-arm
sufficient statistics of the outcome data and the arms' state. It is vectorised over a leading
*trials* axis: the simulator calls it once per look for every running trial of a block, and a live
trial calls the very same function with a batch of one trial. It reads nothing, writes nothing and
changes none of its arguments; with the ``draws`` method it consumes each trial's generator in a
fixed order, so a simulated trial is reproducible draw for draw.

The rules are those of adaptr's ``run_trial``. Without a common control: arms whose P(best) is
below the look's inferiority threshold are dropped (posteriors renewed until none is inferior),
the best arm is declared superior when its P(best) exceeds the superiority threshold, and all
remaining arms are declared equivalent when P(max − min < equivalence_diff) exceeds the
equivalence threshold. With a common control: arms are compared with the control (P(better),
P(equivalent), P(futile)); an arm better than the control with probability above the superiority
threshold becomes the new control (the old one is dropped as inferior) and the comparisons are
repeated; arms inferior to, equivalent to or futile against the control are dropped; the trial
stops when one arm is left. Trials that go on get new allocation probabilities: P(best) raised to
the look's softening power, with fixed probabilities, limits (rescaled after dropping arms when
asked) and the control allocation rule applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trialkit.adaptive.allocation import reallocate_rows, rescale_factor
from trialkit.adaptive.posterior import DrawsPosterior, ExactPosterior
from trialkit.adaptive.spec import TrialSpec

#: Final status of a trial: still running at its last look (``max``), or why it stopped.
FINAL_STATUS = ("max", "superiority", "equivalence", "futility")
#: Status of an arm.
ARM_STATUS = ("active", "control", "superior", "inferior", "equivalence", "futile")
ACTIVE, CONTROL, SUPERIOR, INFERIOR, EQUIVALENT, FUTILE = range(6)
#: Codes of :data:`FINAL_STATUS`.
RUNNING, STOP_SUPERIORITY, STOP_EQUIVALENCE, STOP_FUTILITY = range(4)

Posterior = DrawsPosterior | ExactPosterior


@dataclass(frozen=True)
class ArmData:
    """Per-arm sufficient statistics of the outcome data of ``t`` trials.

    Attributes
    ----------
    n : ndarray (t, A)
        Patients with outcome data per arm.
    total : ndarray (t, A)
        Sum of the outcomes (events, for a binary outcome).
    total_sq : ndarray (t, A)
        Sum of the squared outcomes (continuous outcomes; unused for binary ones).
    """

    n: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray


@dataclass(frozen=True)
class ArmState:
    """Which arms of ``t`` trials are still randomised to, and why the others are not.

    Attributes
    ----------
    active : ndarray of bool (t, A)
        Arms still randomised to.
    status : ndarray of int8 (t, A)
        Codes of :data:`ARM_STATUS`.
    status_look : ndarray of int64 (t, A)
        Patients with outcome data at the look that set the status (0 = never changed).
    control : ndarray of int64 (t,)
        Index of the current common control (−1: no common control).
    check_equivalence, check_futility : ndarray of bool (t,)
        Whether the equivalence and futility rules still apply (they stop after the first
        control change when ``equivalence_only_first`` / ``futility_only_first``).
    """

    active: np.ndarray
    status: np.ndarray
    status_look: np.ndarray
    control: np.ndarray
    check_equivalence: np.ndarray
    check_futility: np.ndarray

    @classmethod
    def start(cls, spec: TrialSpec, trials: int) -> ArmState:
        """Return the state of ``trials`` new trials: every arm active, the control marked."""
        a = spec.n_arms
        status = np.zeros((trials, a), dtype=np.int8)
        if spec.control >= 0:
            status[:, spec.control] = CONTROL
        return cls(active=np.ones((trials, a), dtype=bool), status=status,
                   status_look=np.zeros((trials, a), dtype=np.int64),
                   control=np.full(trials, spec.control, dtype=np.int64),
                   check_equivalence=np.full(trials, spec.equivalence_prob is not None),
                   check_futility=np.full(trials, spec.futility_prob is not None))

    def take(self, rows: np.ndarray) -> ArmState:
        """Return the state of trials ``rows`` (copies)."""
        return ArmState(*(np.array(getattr(self, f)[rows]) for f in _STATE_FIELDS))

    def put(self, rows: np.ndarray, other: ArmState) -> None:
        """Write ``other`` into trials ``rows`` (for a caller's own arrays)."""
        for f in _STATE_FIELDS:
            getattr(self, f)[rows] = getattr(other, f)


_STATE_FIELDS = ("active", "status", "status_look", "control", "check_equivalence",
                 "check_futility")


@dataclass(frozen=True)
class LookResult:
    """What one look decided for each of ``t`` trials.

    Attributes
    ----------
    state : ArmState
        The arms after the look (dropped arms inactive, their status and look recorded; a new
        control marked).
    probs_best : ndarray (t, A)
        P(each arm is best) among the arms still active after the look (``nan`` for the others).
    probs_better : ndarray (t, A) or None
        With a common control: P(arm better than the current control) after the look (``nan``
        for the control and dropped arms); ``None`` without a common control.
    final_status : ndarray of int8 (t,)
        :data:`RUNNING` (0) for trials that go on, else why the trial stopped
        (:data:`STOP_SUPERIORITY`, :data:`STOP_EQUIVALENCE`, :data:`STOP_FUTILITY`).
    alloc : ndarray (t, A)
        New allocation probabilities of the trials that go on (``nan`` rows for stopped ones).
    """

    state: ArmState
    probs_best: np.ndarray
    probs_better: np.ndarray | None
    final_status: np.ndarray
    alloc: np.ndarray

    @property
    def stopped(self) -> np.ndarray:
        """Which trials stopped at this look, (t,) booleans."""
        return self.final_status != RUNNING


def arm_posteriors(spec: TrialSpec, data: ArmData, active: np.ndarray,
                   rngs: Sequence[np.random.Generator] | None = None,
                   method: str | None = None) -> Posterior:
    """Posteriors of the active arms of ``t`` trials: by quadrature or from posterior draws.

    Binary outcomes: beta(prior + events, prior + non-events). Continuous outcomes: normal with
    the arm's mean and standard error (arms with fewer than two patients get a very wide one:
    1000 × the largest scenario SD, at least 1000). ``rngs`` (one per trial) is needed for
    ``method = "draws"``: each trial draws ``spec.draws`` values per active arm.
    """
    method = method or spec.method
    hib = spec.highest_is_best
    p1, p2 = _posterior_parameters(spec, data)
    if method == "exact":
        if spec.binary:
            return ExactPosterior.beta(p1, p2, active, hib)
        return ExactPosterior.normal(p1, p2, active, hib)
    if rngs is None:
        raise ValueError("the draws method needs one generator per trial (rngs)")
    t, a = active.shape
    out = np.full((t, a, spec.draws), -np.inf if hib else np.inf)
    for j, rng in enumerate(rngs):
        act = np.flatnonzero(active[j])
        draw = rng.beta if spec.binary else rng.normal
        out[j, act] = draw(p1[j, act, None], p2[j, act, None], size=(act.size, spec.draws))
    return DrawsPosterior(out, active, hib)


def _posterior_parameters(spec: TrialSpec, data: ArmData) -> tuple[np.ndarray, np.ndarray]:
    n, s = data.n, data.total
    if spec.binary:
        prior_a, prior_b = spec.prior
        return prior_a + s, prior_b + n - s
    mean = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
    var = np.divide(data.total_sq - n * mean**2, n - 1, out=np.zeros_like(s), where=n > 1)
    fallback = 1e3 * max(float(np.max(spec.sds)), 1.0)
    se = np.where(n > 1, np.sqrt(np.maximum(var, 0) / np.maximum(n, 1)), fallback)
    return mean, np.maximum(se, 1e-12)


def adaptive_look(spec: TrialSpec, look: int, data: ArmData, state: ArmState,
                  rngs: Sequence[np.random.Generator] | None = None,
                  method: str | None = None) -> LookResult:
    """Analyse ``t`` trials at look ``look`` and decide: drop arms, stop, reallocate.

    Parameters
    ----------
    spec : TrialSpec
        The trial (thresholds per look, control, allocation rules, posterior settings).
    look : int
        Index of the analysis, 0-based; its thresholds are ``spec.superiority[look]`` etc.
    data : ArmData
        Per-arm sufficient statistics (n, sum, sum of squares) of each trial's outcome data, with
        a leading trials axis (a live trial passes a batch of one).
    state : ArmState
        Active arms, arm status, current control and which rules still apply, per trial.
    rngs : sequence of numpy.random.Generator, optional
        One generator per trial; required by the ``draws`` method, unused by ``exact``.
    method : {"exact", "draws"}, optional
        Posterior probabilities by quadrature or from posterior draws (default
        ``spec.method``).

    Returns
    -------
    LookResult
        The new arm state, P(best) (and P(better than control)), why each trial stopped (if
        it did) and the allocation probabilities of the trials that go on.
    """
    state = state.take(np.arange(state.active.shape[0]))  # never change the caller's arrays
    post = arm_posteriors(spec, data, state.active, rngs, method)
    if spec.control < 0:
        probs_best, probs_better, final = _look_without_control(
            spec, look, data, state, post, rngs, method)
    else:
        probs_best, probs_better, final = _look_with_control(
            spec, look, data, state, post, rngs, method)
    alloc = np.full(probs_best.shape, np.nan)
    going = np.flatnonzero(final == RUNNING)
    if going.size:
        alloc[going] = _reallocate(spec, look, state.take(going), probs_best[going])
    return LookResult(state, probs_best, probs_better, final, alloc)


def _drop(state: ArmState, rows: np.ndarray | int, arms: np.ndarray, code: int, d1: int) -> None:
    """Mark ``arms`` (booleans over arms, per row) of trials ``rows`` with ``code``; drop them."""
    state.status[rows] = np.where(arms, code, state.status[rows])
    state.status_look[rows] = np.where(arms, d1, state.status_look[rows])
    state.active[rows] &= ~arms


def _look_without_control(spec, look, data, state, post, rngs, method):
    d1 = spec.data_looks[look]
    t = state.active.shape[0]
    final = np.zeros(t, dtype=np.int8)
    pb = post.prob_best()
    while True:  # inferiority: drop arms, renew the posteriors, until no arm is inferior
        inferior = state.active & (pb < spec.inferiority[look])
        rows = np.flatnonzero(inferior.any(axis=1))
        if rows.size == 0:
            break
        _drop(state, rows, inferior[rows], INFERIOR, d1)
        renewed = arm_posteriors(spec, _rows(data, rows), state.active[rows],
                                 None if rngs is None else [rngs[i] for i in rows], method)
        post.put(rows, renewed)
        pb[rows] = renewed.prob_best()
    best = pb.argmax(axis=1)
    sup = pb.max(axis=1) > spec.superiority[look]
    rows = np.flatnonzero(sup)
    state.status[rows, best[sup]] = SUPERIOR
    state.status_look[rows, best[sup]] = d1
    final[sup] = STOP_SUPERIORITY
    if spec.equivalence_prob is not None:
        rows = np.flatnonzero(~sup)
        if rows.size:
            p_eq = post.take(rows).prob_all_equivalent(spec.equivalence_diff)
            eq = rows[p_eq > spec.equivalence_prob[look]]
            _drop_equivalent(state, eq, d1)
            final[eq] = STOP_EQUIVALENCE
    return np.where(state.active, pb, np.nan), None, final


def _drop_equivalent(state: ArmState, rows: np.ndarray, d1: int) -> None:
    """All active arms of trials ``rows`` are equivalent (they stay active: the trial stops)."""
    act = state.active[rows]
    state.status[rows] = np.where(act, EQUIVALENT, state.status[rows])
    state.status_look[rows] = np.where(act, d1, state.status_look[rows])


def _rows(data: ArmData, rows) -> ArmData:
    return ArmData(data.n[rows], data.total[rows], data.total_sq[rows])


def _compare(spec: TrialSpec, post: Posterior, control: int):
    res = post.compare(np.array([control]), spec.equivalence_diff, spec.futility_diff)
    return tuple(None if x is None else x[0] for x in res)


def _look_with_control(spec, look, data, state, post, rngs, method):
    t, a = state.active.shape
    final = np.zeros(t, dtype=np.int8)
    probs_best = np.full((t, a), np.nan)
    probs_better = np.full((t, a), np.nan)
    pb = post.prob_best()
    for j in range(t):
        one = _ControlLook(spec, look, _rows(data, [j]), state, j,
                           None if rngs is None else [rngs[j]], method)
        final[j], probs_best[j], probs_better[j] = one.run(post.take([j]), pb[j])
    return probs_best, probs_better, final


class _ControlLook:
    """One look of one trial with a common control (adaptr's loop over control changes)."""

    def __init__(self, spec, look, data, state, row, rngs, method):
        self.spec, self.look, self.data, self.state, self.row = spec, look, data, state, row
        self.rngs, self.method = rngs, method
        self.d1 = spec.data_looks[look]
        self.eq_stop = self.fut_stop = False  # one arm left by equivalence / futility

    def run(self, post: Posterior, pb: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        """Apply the rules until no control change; return (final status, P(best), P(better))."""
        s, i = self.state, self.row
        act = s.active[i]
        pbetter, peq, pfut = _compare(self.spec, post, int(s.control[i]))
        stop_code = RUNNING
        while True:
            update = self._drop_inferior(act, pbetter)
            changed = self._new_control(act, pbetter)
            if not changed:
                update |= self._drop_equivalent_or_futile(act, peq, pfut)
            if act.sum() == 1:
                stop_code = self._last_arm(act)
            if changed or update:
                post = arm_posteriors(self.spec, self.data, act[None], self.rngs, self.method)
                pb = post.prob_best()[0]
                pbetter, peq, pfut = _compare(self.spec, post, int(s.control[i]))
            if stop_code != RUNNING or not changed:
                break
        return stop_code, np.where(act, pb, np.nan), pbetter

    def _drop_inferior(self, act: np.ndarray, pbetter: np.ndarray) -> bool:
        inferior = act & (np.nan_to_num(pbetter, nan=1.0) < self.spec.inferiority[self.look])
        if inferior.any():
            _drop(self.state, self.row, inferior, INFERIOR, self.d1)
        return bool(inferior.any())

    def _new_control(self, act: np.ndarray, pbetter: np.ndarray) -> bool:
        """Return an arm better than the control becomes the new control; the old one is dropped."""
        s, i, spec = self.state, self.row, self.spec
        better = np.nan_to_num(pbetter, nan=-1.0)
        better[~act] = -1.0
        if not (better > spec.superiority[self.look]).any():
            return False
        new, old = int(better.argmax()), int(s.control[i])
        s.status[i, new] = CONTROL
        s.status[i, old] = INFERIOR
        s.status_look[i, old] = self.d1
        act[old] = False
        s.control[i] = new
        if spec.equivalence_only_first:
            s.check_equivalence[i] = False
        if spec.futility_only_first:
            s.check_futility[i] = False
        return True

    def _drop_equivalent_or_futile(self, act, peq, pfut) -> bool:
        s, i, spec, look = self.state, self.row, self.spec, self.look
        update = False
        if s.check_equivalence[i] and peq is not None:
            eq = act & (np.nan_to_num(peq, nan=0.0) > spec.equivalence_prob[look])
            if eq.any():
                _drop(s, i, eq, EQUIVALENT, self.d1)
                update = True
                if act.sum() == 1:
                    self.eq_stop = True
                    s.check_futility[i] = False
        if s.check_futility[i] and pfut is not None:
            fut = act & (np.nan_to_num(pfut, nan=0.0) > spec.futility_prob[look])
            fut &= s.status[i] != EQUIVALENT
            if fut.any():
                _drop(s, i, fut, FUTILE, self.d1)
                update = True
                if act.sum() == 1:
                    self.fut_stop = True
        return update

    def _last_arm(self, act: np.ndarray) -> int:
        """One arm is left: it is superior, unless equivalence or futility left it alone."""
        eq_stop, fut_stop = self.eq_stop, self.fut_stop
        last = int(np.flatnonzero(act)[0])
        self.state.status[self.row, last] = ACTIVE if (eq_stop or fut_stop) else SUPERIOR
        self.state.status_look[self.row, last] = self.d1
        return STOP_EQUIVALENCE if eq_stop else STOP_FUTILITY if fut_stop else STOP_SUPERIORITY


def allocation_limits(spec: TrialSpec, state: ArmState):
    """Return fixed probabilities and limits per trial after the control rule and rescaling.

    Returns ``(fixed, mins, maxs, match)``: arrays (t, A) with ``nan`` for none, and the control
    arm to match per trial (``None`` unless the control allocation is ``match``).
    """
    t = state.active.shape[0]
    n_act = state.active.sum(axis=1)
    fx = np.tile(np.asarray(spec.fixed_probs, dtype=float), (t, 1))
    lo = np.tile(np.asarray(spec.min_probs, dtype=float), (t, 1))
    hi = np.tile(np.asarray(spec.max_probs, dtype=float), (t, 1))
    control_rule = spec.control >= 0 and spec.control_allocation != "none"
    factor = rescale_factor(spec.n_arms, n_act, control_rule)[:, None]
    if spec.rescale in ("fixed", "both"):
        fx = fx * factor
    if spec.rescale in ("limits", "both"):
        lo = lo * factor
        hi = np.minimum(hi * factor, 1.0)
    match = None
    if control_rule:
        c = state.control
        r = np.arange(t)
        lo[r, c] = np.nan
        hi[r, c] = np.nan
        if spec.control_allocation == "match":
            match = c
        else:
            fx[r, c] = [spec.control_fixed_for(int(k)) for k in n_act]
    return fx, lo, hi, match


def _reallocate(spec: TrialSpec, look: int, state: ArmState, probs_best: np.ndarray
                ) -> np.ndarray:
    fx, lo, hi, match = allocation_limits(spec, state)
    pb = np.where(state.active, probs_best, 0.0)
    return reallocate_rows(pb, state.active, fx, lo, hi, spec.softening[look], match)
