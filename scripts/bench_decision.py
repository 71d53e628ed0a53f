"""Benchmark: decision simulation with the fast paths versus fitting the pymc model per replicate.

The 2^5 example design (designs/app-components-factorial.toml), N = 512, 2000 replicates, the
design's assumed effects. trialkit's decision simulation is timed in full. Fitting the pymc model
(NUTS, 4 chains × 1000 draws after 1000 tuning steps, the analysis defaults) on every replicate
would take far too long, so a few replicates are fitted and the time per fit is extrapolated to
2000 replicates. The script also checks, on those replicates, that the fast path agrees with
pymc under the same prior (coefficient means within 0.1 posterior SD, P(best) within 0.05).

    .venv/bin/python scripts/bench_decision.py [--reps 2000] [--fits 3] [--outcome phq9_change]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from trialkit.bayes import backend_pymc, fast
from trialkit.bayes.analyse import combination_draws
from trialkit.bayes.decision_study import individual_data, simulate_decision
from trialkit.bayes.spec import build_spec
from trialkit.design import load_design

DESIGN = Path(__file__).resolve().parent.parent / "designs" / "app-components-factorial.toml"


def p_best(spec, b):
    v = combination_draws(spec, b)
    v = -v if spec.better == "lower" else v
    return np.bincount(v.argmax(1), minlength=v.shape[1]) / len(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--fits", type=int, default=3)
    ap.add_argument("--outcome", default="phq9_change")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--cores", type=int, default=None)
    args = ap.parse_args()
    design = load_design(DESIGN)
    out = next(o for o in design.outcomes if o.name == args.outcome)

    simulate_decision(design, reps=20, seed=99, outcome=args.outcome)  # warm-up (imports)
    t0 = time.perf_counter()
    res = simulate_decision(design, reps=args.reps, seed=1, outcome=args.outcome)
    t_fast = time.perf_counter() - t0
    print(f"design {design.name}: 2^{design.k}, N = {design.sample.n_total}, outcome "
          f"{args.outcome}, {args.reps} replicates")
    print(f"trialkit decision simulation (fast path, 3 rules): {t_fast:.2f} s "
          f"({1e3 * t_fast / args.reps:.2f} ms per replicate)")
    print("  P(correct best): " + ", ".join(f"{k} {v['p_correct']:.3f} ± {v['p_correct_se']:.3f}"
                                           for k, v in res["rules"].items()))

    times, worst_z, worst_p = [], 0.0, 0.0
    for i in range(args.fits):
        cols = individual_data(design, args.outcome, dict(out.effects),
                               design.sample.n_total, seed=1000 + i)
        codes = np.column_stack([cols[f] for f in design.factor_names]).astype(float)
        y = cols[args.outcome].astype(float)
        spec = build_spec(design, args.outcome, y=y)
        x = spec.design_matrix(codes)
        t1 = time.perf_counter()
        idata = backend_pymc.sample(spec, x, y, draws=1000, tune=1000, chains=args.chains,
                                    cores=args.cores, random_seed=i)
        times.append(time.perf_counter() - t1)
        b = backend_pymc.beta_draws(idata)
        if spec.family == "normal":
            post = fast.normal_posterior(spec, *fast.normal_stats(x, y))
        else:
            post = fast.logistic_posterior(spec, x, np.ones((1, len(y))), y[None])
        z = np.abs(b.mean(0) - post.mean()[0]) / post.sd()[0]
        fb = post.draws([np.random.default_rng(i)], 20000)[0]
        worst_z = max(worst_z, float(z.max()))
        worst_p = max(worst_p, float(np.abs(p_best(spec, b) - p_best(spec, fb)).max()))
        print(f"  pymc fit {i + 1}: {times[-1]:.1f} s (NUTS {args.chains} chains × 1000 draws, "
              f"1000 tune)")
    per_fit = float(np.mean(times[1:] if len(times) > 1 else times))
    t_pymc = per_fit * args.reps
    print(f"pymc per replicate: {per_fit:.1f} s (mean of fits 2..{args.fits}; fit 1 includes "
          f"compilation: {times[0]:.1f} s)")
    print(f"pymc for {args.reps} replicates (extrapolated): {t_pymc:.0f} s "
          f"= {t_pymc / 3600:.1f} h")
    print(f"speed-up: {t_pymc / t_fast:,.0f}x (goal >= 1000x)")
    print(f"agreement on the fitted replicates: max |mean difference| / posterior SD = "
          f"{worst_z:.3f} (limit 0.1); max |P(best) difference| = {worst_p:.3f} (limit 0.05)")


if __name__ == "__main__":
    main()
