"""Benchmark: simulated power of a 2^5 factorial (N = 512, model order 2), 10,000 replicates.

Prints, in one run: trialkit's time; the time of a plain loop of statsmodels fits (OLS for the
continuous outcome, Logit for the binary one) on the same data-generating model and seeds; the
time needed just to draw the outcomes; their ratios; and the power from both paths with Monte
Carlo standard errors. trialkit and the draws are timed in alternation, best of 7 each (so
their ratio compares the same machine state); the statsmodels loops once.
Goals: continuous >= 30x faster than the OLS loop and within 2x of the
draws; binary >= 40x faster than the Logit loop and within 3x of the draws. The statsmodels fits
see the same simulated trials (replicate i from the stream (seed, i)), so the script also counts
the replicates whose test decisions differ between trialkit and statsmodels (goal: none). Both
run with one BLAS thread (trialkit's engine sets it; the statsmodels loop is given the same).

Usage: python scripts/bench_factorial.py [--reps 10000] [--sm-reps N]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from trialkit.design import loads_design
from trialkit.engine.runner import one_blas_thread
from trialkit.engine.streams import ReplicateStreams
from trialkit.factorial.model import model_matrix, model_terms
from trialkit.factorial.planning import factorial_simulation, simulate_factorial_power
from trialkit.factorial.replicates import generate_factorial_data, simulate_chunk, trial_layout

NAMES = ["human_voice", "validating_statements", "personalised_notifications",
         "activity_choice", "goal_setting"]
DESIGN = """kind = "factorial"
name = "bench"
{factors}
[analysis]
model_order = 2
[sample]
n_total = 512
[outcomes.phq9]
type = "continuous"
sd = 5.0
[outcomes.phq9.effects]
human_voice = -1.0
validating_statements = -0.8
personalised_notifications = -0.4
activity_choice = -0.6
"human_voice:validating_statements" = 0.6
[outcomes.retention]
type = "binary"
baseline = 0.45
[outcomes.retention.effects]
human_voice = 0.3
validating_statements = 0.2
personalised_notifications = 0.4
activity_choice = 0.1
"human_voice:validating_statements" = -0.2
""".format(factors="\n".join(f'[[factors]]\nname = "{n}"' for n in NAMES))


def timed(func, repeat: int = 1):
    """Best wall time of ``repeat`` runs (as timeit does) and the last result."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - t0)
    return best, out


def timed_pair(first, second, repeat: int = 7):
    """Best wall times of two functions timed in alternation (the same machine state for both)."""
    best = [float("inf"), float("inf")]
    out = None
    for _ in range(repeat):
        for j, func in enumerate((first, second)):
            t0 = time.perf_counter()
            res = func()
            best[j] = min(best[j], time.perf_counter() - t0)
            if j == 0:
                out = res
    return best[0], best[1], out


def draw_only(x, beta, reps, seed, outcome):
    """Only draw the outcomes (same streams and draws as the simulation)."""
    return generate_factorial_data(ReplicateStreams(seed, 0, reps), x, beta, outcome=outcome,
                                   sd=5.0)["y"]


def statsmodels_loop(x, beta, reps, seed, outcome):
    """Return a plain loop: draw each replicate, fit statsmodels, test each coefficient."""
    import statsmodels.api as sm

    reject = np.zeros((reps, x.shape[1] - 1), dtype=bool)
    for i, rng in enumerate(ReplicateStreams(seed, 0, reps)):
        y = generate_factorial_data([rng], x, beta, outcome=outcome, sd=5.0)["y"][0]
        if outcome == "continuous":
            fit = sm.OLS(y, x).fit()
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = sm.Logit(y, x).fit(disp=0)
        reject[i] = fit.pvalues[1:] < 0.05
    return reject


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10_000)
    parser.add_argument("--sm-reps", type=int, default=None,
                        help="replicates of the statsmodels loops (default: --reps)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    reps, sm_reps, seed = args.reps, args.sm_reps or args.reps, args.seed
    design = loads_design(DESIGN, "bench.toml")
    codes = design.conditions()
    terms = model_terms(5, 2)
    lay = trial_layout(codes.shape[0], 512)
    x = model_matrix(codes[lay.condition], terms)
    print(f"2^5 full factorial, N = 512, model order 2 ({len(terms)} coefficients), "
          f"{reps} replicates; statsmodels loops: {sm_reps} replicates")
    goals = {"continuous": 30.0, "binary": 40.0}
    draw_goals = {"continuous": 2.0, "binary": 3.0}
    for outcome, name in (("continuous", "phq9"), ("binary", "retention")):
        o = next(o for o in design.outcomes if o.name == name)
        from trialkit.factorial.planning import _truth

        _, beta = _truth(design, o, terms)
        simulate_factorial_power(design, 50, seed, outcome=name)  # warm-up (imports, caches)
        t_tk, t_draw, res = timed_pair(
            lambda name=name: simulate_factorial_power(design, reps, seed, outcome=name),
            lambda beta=beta, outcome=outcome: draw_only(x, beta, reps, seed, outcome))
        with one_blas_thread():  # as trialkit's simulations run (small matrices)
            t_sm, sm_reject = timed(lambda beta=beta, outcome=outcome: statsmodels_loop(
                x, beta, sm_reps, seed, outcome))
        sm_power = sm_reject.mean(axis=0)
        spec, _, _ = factorial_simulation(design, name)
        tk_reject = simulate_chunk(range(sm_reps), seed=seed, spec=spec)["reject"]
        t_sm_full = t_sm * reps / sm_reps
        print(f"\n[{outcome}]")
        print(f"  trialkit simulate_factorial_power : {t_tk:8.3f} s")
        print(f"  drawing the outcomes only         : {t_draw:8.3f} s")
        scaled = "" if sm_reps == reps else f" ({t_sm:.2f} s for {sm_reps}, scaled)"
        fit_name = "OLS" if outcome == "continuous" else "Logit"
        print(f"  statsmodels {fit_name:5s} loop            : {t_sm_full:8.3f} s{scaled}")
        speedup = t_sm_full / t_tk
        print(f"  speed-up vs statsmodels loop      : {speedup:8.1f}x  (goal >= "
              f"{goals[outcome]:g}x: {'met' if speedup >= goals[outcome] else 'NOT met'})")
        ratio = t_tk / t_draw
        goal = draw_goals[outcome]
        print(f"  trialkit time / drawing time      : {ratio:8.2f}x  (goal <= {goal:g}x: "
              f"{'met' if ratio <= goal else 'NOT met'})")
        if tk_reject.shape == sm_reject.shape:
            differ = int((tk_reject != sm_reject).any(axis=1).sum())
            print(f"  replicates with another decision  : {differ} of {sm_reps} (same trials)")
        print("  power by effect (trialkit ± MC SE | statsmodels ± MC SE):")
        worst = 0.0
        for j, e in enumerate(res["effects"]):
            if e["effect"] == 0:
                continue
            p_sm = sm_power[j]
            se = np.sqrt(e["mc_se"] ** 2 + p_sm * (1 - p_sm) / sm_reps)
            z = abs(e["power"] - p_sm) / se if se > 0 else 0.0
            worst = max(worst, z)
            print(f"    {e['term']:36s} {e['power']:.4f} ± {e['mc_se']:.4f} | {p_sm:.4f} ± "
                  f"{np.sqrt(p_sm * (1 - p_sm) / sm_reps):.4f}")
        print(f"  largest difference: {worst:.2f} combined MC SEs")


if __name__ == "__main__":
    main()
