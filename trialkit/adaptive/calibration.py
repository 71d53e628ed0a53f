"""Calibration: the symmetric stopping threshold giving a target Bayesian type I error.

Superiority ``x`` and inferiority ``1 - x`` (the same at every look) are searched by bisection on
``x``. Every evaluation simulates the same trials (same seed: common random numbers), so the
estimated P(superiority) moves smoothly with ``x`` and the search is reproducible. The chosen
threshold is then re-checked on fresh trials (seed + 1), whose P(superiority) and its Monte Carlo
standard error are reported as the honest estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from trialkit.adaptive.performance import check_performance
from trialkit.adaptive.results import run_trials
from trialkit.adaptive.spec import TrialSpec
from trialkit.engine import check_reps, progress_bar
from trialkit.errors import TrialkitError
from trialkit.results import Result


def _bisect(evaluate, target: float, lo: float, hi: float, tol: float, max_iter: int) -> None:
    """Bisect on the threshold while P(superiority) at it is above ``target``."""
    for _ in range(max_iter):
        if hi - lo <= tol:
            return
        mid = (lo + hi) / 2
        if evaluate(mid) > target:
            lo = mid
        else:
            hi = mid


def calibrate_trial(
    spec: TrialSpec, target: float = 0.05, reps: int = 1000, seed: int = 0, jobs: int = 1,
    lower: float = 0.9, upper: float = 0.9999, tol: float = 1e-4, max_iter: int = 20,
) -> Calibration:
    """Find ``x`` so that P(superiority) under ``spec`` (a null scenario) is close to ``target``.

    Returns
    -------
    Calibration
        ``superiority``, ``inferiority``, ``prob_superior`` (at the chosen threshold, search
        trials), ``check`` (``prob_superior``, ``mc_se``, ``ci_low``, ``ci_high`` on fresh trials),
        ``evaluations`` (every threshold tried with its P(superiority)), ``reps``, ``seed``.
    """
    if not 0 < target < 1:
        raise TrialkitError(f"target = {target} is invalid — use a probability in (0, 1)",
                            param="target")
    if not 0.5 < lower < upper < 1:
        raise TrialkitError("calibration range is invalid — use 0.5 < lower < upper < 1",
                            param=("lower", "upper"))
    check_reps(reps)
    # 2 ends, the bisection steps down to ``tol``, and the check on fresh trials
    steps = min(max_iter, max(0, math.ceil(math.log2((upper - lower) / tol))))
    with progress_bar((steps + 3) * reps, "calibrating", "simulated trials"):
        return _calibrate(spec, target, reps, seed, jobs, lower, upper, tol, max_iter)


def _calibrate(spec: TrialSpec, target: float, reps: int, seed: int, jobs: int, lower: float,
               upper: float, tol: float, max_iter: int) -> Calibration:
    evaluations: list[dict] = []

    def prob(x: float, s: int = seed) -> float:
        res = run_trials(spec.with_thresholds(x, 1 - x), reps, s, jobs=jobs)
        p = check_performance(res)["prob_superior"]
        return p

    def record(x: float) -> float:
        p = prob(x)
        evaluations.append({"superiority": x, "prob_superior": p})
        return p

    p_lo, p_hi = record(lower), record(upper)
    if p_lo < target:
        raise TrialkitError(f"P(superiority) is {p_lo:.3f} already at threshold {lower} — the "
                            "target is reached with lower thresholds; lower the search bound")
    if p_hi > target:
        raise TrialkitError(f"P(superiority) is {p_hi:.3f} even at threshold {upper} — use more "
                            "looks' data, fewer looks or a higher target")
    _bisect(record, target, lower, upper, tol, max_iter)
    best = min(evaluations, key=lambda e: (abs(e["prob_superior"] - target), -e["superiority"]))
    x = best["superiority"]
    p_check = prob(x, seed + 1)
    se = math.sqrt(max(p_check * (1 - p_check), 1e-12) / reps)
    return Calibration(
        target=target, superiority=x, inferiority=1 - x, prob_superior=best["prob_superior"],
        check={"seed": seed + 1, "prob_superior": p_check, "mc_se": se,
               "ci_low": max(0.0, p_check - 1.96 * se),
               "ci_high": min(1.0, p_check + 1.96 * se)},
        reps=reps, seed=seed, evaluations=sorted(evaluations, key=lambda e: e["superiority"]))


@dataclass(frozen=True)
class Calibration(Result):
    """The calibrated symmetric threshold, its re-check on fresh trials and every evaluation."""

    primary: ClassVar[str | None] = "evaluations"
    target: float
    superiority: float
    inferiority: float
    prob_superior: float
    check: dict[str, float]
    reps: int
    seed: int
    evaluations: list[dict[str, float]]
