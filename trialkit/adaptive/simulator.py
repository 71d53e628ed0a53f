"""The adaptive-trial simulator: the replicate generator of the adaptive kind, vectorised.

All trials of a block advance look by look together, in named steps: :func:`draw_uniforms` (each
trial's random numbers for allocation and outcomes), :func:`randomise_patients` (arrivals and their
outcomes up to the look), :func:`add_outcome_data` (the per-arm sufficient statistics), the look
itself — :func:`trialkit.adaptive.look.adaptive_look`, the pure decision function a live trial
calls too — and :func:`apply_look` (dropped arms, stopped trials, new allocation probabilities).
:func:`final_analysis` then estimates every arm from all randomised patients.

Trial ``i`` of a run seeded ``s`` draws everything from its own generator
(``SeedSequence(s, spawn_key=(i,))``): first one uniform per patient for the allocation and one
number per patient for the outcome, then the posterior draws of each analysis. Results therefore
do not depend on blocks or ``--jobs``; the engine cuts the trials into blocks of
:func:`block_size` (bounded memory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from trialkit.adaptive.beta import beta_median
from trialkit.adaptive.look import (
    ACTIVE,
    ARM_STATUS,
    CONTROL,
    EQUIVALENT,
    FINAL_STATUS,
    FUTILE,
    INFERIOR,
    SUPERIOR,
    ArmData,
    ArmState,
    LookResult,
    adaptive_look,
)
from trialkit.adaptive.spec import TrialSpec
from trialkit.engine.runner import memory_batch, replicate_rngs
from trialkit.stats import arms_from_uniforms

__all__ = ["ACTIVE", "ARM_STATUS", "CONTROL", "EQUIVALENT", "FINAL_STATUS", "FUTILE", "INFERIOR",
           "SUPERIOR", "block_size", "run_looks", "simulate_range"]

BLOCK = 200
_BLOCK_VALUES = 20_000_000  # at most this many values per large array of a block (~160 MB)


def block_size(spec: TrialSpec) -> int:
    """Trials simulated together: at most 200, fewer when the arrays of a block would be large."""
    per_trial = max(spec.max_n, spec.n_arms * spec.draws if spec.method == "draws" else 0)
    return memory_batch(per_trial, _BLOCK_VALUES, BLOCK)


def simulate_range(reps: range, spec: TrialSpec, seed: int) -> dict:
    """Simulate trials ``reps`` (the replicate generator :func:`run_replicates` calls)."""
    return _simulate_block(reps.start, reps.stop, spec, seed)


@dataclass
class Block:
    """Everything about ``t`` trials simulated together (one row per trial)."""

    spec: TrialSpec
    t: int
    u_alloc: np.ndarray
    u_out: np.ndarray
    state: ArmState = field(init=False)

    def __post_init__(self) -> None:
        t, a, n_max = self.t, self.spec.n_arms, self.spec.max_n
        self.state = ArmState.start(self.spec, t)
        self.arm_of = np.zeros((t, n_max), dtype=np.int8)
        self.y = np.zeros((t, n_max))
        self.n = np.zeros((t, a))
        self.total = np.zeros((t, a))
        self.total_sq = np.zeros((t, a))
        self.alloc = np.tile(np.asarray(self.spec.start_probs, dtype=float), (t, 1))
        self.alloc_hist = np.full((t, self.spec.n_looks, a), np.nan, dtype=np.float32)
        self.probs_best = np.full((t, a), np.nan)
        self.final_status = np.zeros(t, dtype=np.int8)
        self.running = np.ones(t, dtype=bool)
        self.looks = np.zeros(t, dtype=np.int64)
        self.followed_n = np.zeros(t, dtype=np.int64)
        self.final_n = np.zeros(t, dtype=np.int64)

    def data(self, rows: np.ndarray) -> ArmData:
        """Return the outcome data of trials ``rows`` as per-arm sufficient statistics."""
        return ArmData(self.n[rows], self.total[rows], self.total_sq[rows])


def draw_uniforms(rngs: list[np.random.Generator], spec: TrialSpec) -> tuple[np.ndarray, ...]:
    """Each trial's allocation uniforms and outcome numbers (uniform, or standard normal)."""
    n_max = spec.max_n
    u_alloc = np.empty((len(rngs), n_max))
    u_out = np.empty((len(rngs), n_max))
    for j, rng in enumerate(rngs):
        u_alloc[j] = rng.random(n_max)
        u_out[j] = rng.random(n_max) if spec.binary else rng.standard_normal(n_max)
    return u_alloc, u_out


def randomise_patients(b: Block, look: int, rows: np.ndarray) -> None:
    """Randomise the patients who arrive before ``look`` in trials ``rows``, and draw outcomes."""
    spec = b.spec
    r0 = spec.randomised_at_looks[look - 1] if look else 0
    r1 = spec.randomised_at_looks[look]
    b.alloc_hist[rows, look] = b.alloc[rows]
    if r1 > r0:
        new = arms_from_uniforms(b.u_alloc[rows, r0:r1], b.alloc[rows])
        b.arm_of[rows, r0:r1] = new
        drift = spec.trend * np.arange(r0, r1) / max(spec.max_n - 1, 1)
        base = np.asarray(spec.true_values, dtype=float)[new] + drift
        if spec.binary:
            b.y[rows, r0:r1] = b.u_out[rows, r0:r1] < np.clip(base, 0.0, 1.0)
        else:
            sds = np.asarray(spec.sds, dtype=float)
            b.y[rows, r0:r1] = base + sds[new] * b.u_out[rows, r0:r1]
    b.final_n[rows] = r1


def add_outcome_data(b: Block, look: int, rows: np.ndarray) -> None:
    """Add the outcomes that become known by ``look`` to the per-arm sums of trials ``rows``."""
    spec = b.spec
    d0 = spec.data_looks[look - 1] if look else 0
    d1 = spec.data_looks[look]
    n, total, total_sq = arm_sums(b.arm_of[rows, d0:d1], b.y[rows, d0:d1], spec.n_arms,
                                  squares=not spec.binary)
    b.n[rows] += n
    b.total[rows] += total
    if total_sq is not None:
        b.total_sq[rows] += total_sq
    b.followed_n[rows] = d1
    b.looks[rows] = look + 1


def arm_sums(arm_of: np.ndarray, y: np.ndarray, n_arms: int, *, squares: bool = False,
             within: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per trial and arm: the number of patients, the sum of their outcomes (and of squares).

    ``arm_of`` and ``y`` are (trials × patients); only the patients where ``within`` is true
    count. Each sum adds its patients in order, as a sum over the patients axis would.
    """
    t = arm_of.shape[0]
    bins = np.arange(t)[:, None] * n_arms + arm_of
    keep = None if within is None else within.ravel()
    bins, yy = bins.ravel(), y.ravel()
    if keep is not None:
        bins, yy = bins[keep], yy[keep]
    size = t * n_arms
    n = np.bincount(bins, minlength=size).reshape(t, n_arms).astype(float)
    total = np.bincount(bins, weights=yy, minlength=size).reshape(t, n_arms)
    sq = (np.bincount(bins, weights=yy * yy, minlength=size).reshape(t, n_arms) if squares
          else None)
    return n, total, sq


def apply_look(b: Block, rows: np.ndarray, res: LookResult) -> None:
    """Record a look's decisions for trials ``rows``: arm states, stops, new allocations."""
    b.state.put(rows, res.state)
    b.probs_best[rows] = res.probs_best
    stopped = res.stopped
    b.final_status[rows[stopped]] = res.final_status[stopped]
    b.running[rows[stopped]] = False
    b.alloc[rows[~stopped]] = res.alloc[~stopped]


def final_analysis(b: Block) -> dict[str, np.ndarray]:
    """Estimate every arm from all randomised patients; return the block's result arrays.

    Binary outcomes: the posterior median (adaptr's default, robust estimate); continuous: the
    mean.
    """
    spec = b.spec
    within = np.arange(spec.max_n)[None, :] < b.final_n[:, None]
    ns_all, sums_all, _ = arm_sums(b.arm_of, b.y, spec.n_arms, within=within)
    if spec.binary:
        prior_a, prior_b = spec.prior
        post_all = beta_median(prior_a + sums_all, prior_b + ns_all - sums_all)
    else:
        post_all = np.divide(sums_all, ns_all, out=np.full_like(sums_all, np.nan),
                             where=ns_all > 0)
    return {
        "final_status": b.final_status,
        "final_n": b.final_n,
        "followed_n": b.followed_n,
        "looks": b.looks,
        "arm_status": b.state.status,
        "status_look": b.state.status_look,
        "probs_best_last": b.probs_best,
        "ns_all": ns_all.astype(np.int64),
        "sum_ys_all": sums_all,
        "post_all": post_all,
        "final_control": b.state.control,
        "alloc_history": b.alloc_hist,
    }


def run_looks(b: Block, rngs: list[np.random.Generator] | None = None,
              on_look: Callable[[int, np.ndarray, LookResult], None] | None = None) -> None:
    """Advance the trials of ``b`` look by look until every one has stopped.

    ``rngs`` (one generator per trial) feeds the ``draws`` method's posterior draws; ``on_look``,
    if given, sees every look's result (look index, trials, result) before it is applied.
    """
    spec = b.spec
    for look in range(spec.n_looks):
        rows = np.flatnonzero(b.running)
        if rows.size == 0:
            break
        randomise_patients(b, look, rows)
        add_outcome_data(b, look, rows)
        res = adaptive_look(spec, look, b.data(rows), b.state.take(rows),
                            None if rngs is None else [rngs[i] for i in rows])
        if on_look is not None:
            on_look(look, rows, res)
        apply_look(b, rows, res)


def _simulate_block(start: int, stop: int, spec: TrialSpec, seed: int) -> dict:
    rngs = replicate_rngs(seed, start, stop)
    b = Block(spec, stop - start, *draw_uniforms(rngs, spec))
    run_looks(b, rngs if spec.method == "draws" else None)
    return final_analysis(b)
