"""Benchmark: MRT simulation power with the real estimator (WCLS with the small-sample adjustment).

Scenario: 40 participants × 210 decision points (42 days × 5), the Liao et al. (2016) reference
trajectories, 1000 replicates. trialkit's batched path (all replicates and participants at once)
is timed against a straightforward per-replicate loop of an unvectorised WCLS fit (participant by
participant, with the explicit T×T inverse (I − H_ii)⁻¹ of the Mancl–DeRouen adjustment, as the R
reference does). The loop is timed on its first LOOP_REPS replicates and extrapolated to 1000; its
estimates and standard errors are compared with the batched path's for the same replicates.

Adaptive MRT (second part): 1000 simulated trials of the Oralytics-like design
designs/adaptive-prompts-mrt.toml (pooled Thompson sampling, probabilities within [0.2, 0.8],
70 days × 2 decisions a day, 70 participants, weekly updates) under its assumed effect and 1000
under the null, with jobs=2: coverage of the marginal excursion effect with the adaptive and the
standard sandwich, power, type I error against 0.05 ± its Monte Carlo error, and the time taken
(goal: 1000 trials in under 60 s).

Run: .venv/bin/python scripts/bench_mrt.py [--adaptive-only]
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from trialkit.engine import replicate_rngs
from trialkit.mrt.generate import generate_arrays
from trialkit.mrt.inference import hotelling_pvalue
from trialkit.mrt.planning import _analysis_bases, simulate_mrt_power, simulate_power_arrays
from trialkit.mrt.trajectory import day_basis, expand_days, trajectory_by_day

REPS, N, DAYS, DPD, SEED, LOOP_REPS = 1000, 40, 42, 5, 2024, 20


def inputs() -> dict:
    return {"type": "continuous", "days": DAYS, "decisions_per_day": DPD,
            "probability": np.full(DAYS * DPD, 0.4),
            "availability": expand_days(trajectory_by_day("quadratic", 0.5, DAYS, 0.7, 42), DPD),
            "effect": expand_days(trajectory_by_day("quadratic", 0.1, DAYS, 0.0, 28), DPD),
            "baseline": None, "basis": day_basis(DAYS, DPD, 3), "p": 3, "q": 3, "alpha": 0.05,
            "power": 0.8}


def wcls_one(y, a, avail, prob, num_prob, controls, moderators):
    """Unvectorised WCLS for one data set: loops over participants, explicit T×T inverses."""
    n, n_points = y.shape
    xs, ws = [], []
    bread = 0.0
    rhs = 0.0
    for i in range(n):
        x = np.column_stack([controls, (a[i] - num_prob)[:, None] * moderators])
        w = avail[i] * np.where(a[i] == 1, num_prob / prob, (1 - num_prob) / (1 - prob))
        bread = bread + x.T @ (w[:, None] * x)
        rhs = rhs + x.T @ (w * y[i])
        xs.append(x)
        ws.append(w)
    coef = np.linalg.solve(bread, rhs)
    binv = np.linalg.inv(bread)
    meat = 0.0
    for i in range(n):
        x, w = xs[i], ws[i]
        h = x @ binv @ x.T * w[None, :]
        e = np.linalg.solve(np.eye(n_points) - h, y[i] - x @ coef)
        s = x.T @ (w * e)
        meat = meat + np.outer(s, s)
    return coef, binv @ meat @ binv


def main() -> None:
    inp = inputs()
    simulate_power_arrays(inp, N, 25, SEED)                       # warm-up (imports, caches)
    t0 = time.perf_counter()
    fast = simulate_power_arrays(inp, N, REPS, SEED, jobs=1)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast2 = simulate_power_arrays(inp, N, REPS, SEED, jobs=2)
    t_fast2 = time.perf_counter() - t0
    assert np.array_equal(fast["coef"], fast2["coef"]), "jobs changed the estimates"

    controls, moderators = _analysis_bases(inp)
    prob = inp["probability"]
    t0 = time.perf_counter()
    coefs, pvals = [], []
    for r in range(LOOP_REPS):
        d = generate_arrays(replicate_rngs(SEED, r, r + 1), N, prob, inp["availability"],
                            inp["effect"])
        coef, cov = wcls_one(d["y"][0], d["a"][0], d["avail"][0], prob, prob, controls,
                             moderators)
        coefs.append(coef)
        pvals.append(hotelling_pvalue(coef[None, 3:], cov[None, 3:, 3:],
                                      np.array([N - 6]))[0])
    t_loop = (time.perf_counter() - t0) / LOOP_REPS * REPS
    coefs = np.array(coefs)
    diff = np.abs(coefs - fast["coef"][:LOOP_REPS]).max()
    pdiff = np.abs(np.array(pvals) - fast["p_value"][:LOOP_REPS]).max()

    print(f"scenario: {N} participants x {DAYS * DPD} decision points, {REPS} replicates, "
          "WCLS + Mancl-DeRouen + Hotelling test")
    print(f"trialkit batched, jobs=1 : {t_fast:7.2f} s  (power {fast['power']:.3f} ± "
          f"{fast['mc_se']:.3f})")
    print(f"trialkit batched, jobs=2 : {t_fast2:7.2f} s  (identical estimates: True)")
    print(f"per-replicate loop       : {t_loop:7.2f} s  (timed on {LOOP_REPS} replicates, "
          f"extrapolated to {REPS})")
    print(f"ratio loop / trialkit    : {t_loop / t_fast:7.1f}x (jobs=1), "
          f"{t_loop / t_fast2:.1f}x (jobs=2)")
    print(f"per fit: trialkit {1000 * t_fast / REPS:.2f} ms, loop {1000 * t_loop / REPS:.1f} ms; "
          f"R MRTAnalysis reference 770 ms")
    print(f"max |estimate difference| vs per-fit path: {diff:.2e}; max |p-value difference|: "
          f"{pdiff:.2e}")
    print(f"ratio R reference (0.77 s per fit) / trialkit: {0.77 * REPS / t_fast:.0f}x "
          "(goal >= 100x)")
    print(f"goal 1000 replicates < 8 s: {'met' if min(t_fast, t_fast2) < 8 else 'NOT met'}")
    assert diff < 1e-10 and pdiff < 1e-10, "batched and per-fit estimates differ"


def adaptive_main(reps: int = 1000, n: int = 70, seed: int = 2024) -> None:
    from trialkit.design import load_design

    design = load_design(Path(__file__).resolve().parent.parent / "designs"
                         / "adaptive-prompts-mrt.toml")
    simulate_mrt_power(design, n, reps=25, seed=seed)                  # warm-up
    t0 = time.perf_counter()
    res = simulate_mrt_power(design, n, reps=reps, seed=seed, jobs=2)
    elapsed = time.perf_counter() - t0
    cov, alpha = res["coverage"], design.alpha
    mc_cov = math.sqrt(0.95 * 0.05 / reps)
    t1e_ok = abs(res["type_i_error"] - alpha) <= 2 * res["type_i_mc_se"]
    print(f"\nadaptive MRT: {n} participants x {design.schedule.n_decision_points} decision "
          f"points, pooled Thompson sampling in [{design.policy.p_min}, {design.policy.p_max}], "
          f"weekly updates; {reps} trials under the assumed effect + {reps} under the null, "
          "jobs=2")
    print(f"time: {elapsed:.1f} s for {2 * reps} trials, {elapsed / 2:.1f} s per {reps} "
          f"(goal < 60 s: {'met' if elapsed / 2 < 60 else 'NOT met'})")
    print(f"true marginal effect {res['effect']:.4f}, mean estimate {res['mean_estimate']:.4f}")
    print(f"95% CI coverage, adaptive sandwich: {cov['adaptive']:.3f} (null "
          f"{cov['null_adaptive']:.3f}); standard sandwich: {cov['standard']:.3f} (null "
          f"{cov['null_standard']:.3f}); Monte Carlo SE {mc_cov:.3f}; goal adaptive >= 0.94: "
          f"{'met' if cov['adaptive'] >= 0.94 else 'NOT met'}")
    print(f"power, adaptive sandwich: {res['power']:.3f} ± {res['mc_se']:.3f}; standard: "
          f"{res['power_standard']:.3f}")
    print(f"type I error, adaptive sandwich: {res['type_i_error']:.3f} (0.05 ± "
          f"{2 * res['type_i_mc_se']:.3f}: {'within' if t1e_ok else 'OUTSIDE'}); standard: "
          f"{res['type_i_error_standard']:.3f}")
    p = res["probability"]
    print(f"probabilities used: mean {p['mean']:.3f}, sd {p['sd']:.3f}, 5%-95% "
          f"{p['q05']:.3f}-{p['q95']:.3f}, at a bound {p['at_bound']:.3f}; regret per decision "
          f"point {res['regret']['per_decision']:.4f}")


if __name__ == "__main__":
    if "--adaptive-only" not in sys.argv:
        main()
    adaptive_main()
