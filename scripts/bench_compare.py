"""Benchmark two checkouts of trialkit side by side: every kernel, old and new alternately.

Each round runs every kernel once per checkout (on that checkout's own example designs), in a
fresh process (``PYTHONPATH`` set to the checkout), old and new in turn, so load from other work
on the machine hits both alike. A
kernel's time is the best of ``--repeat`` runs inside its process after one warm-up run. The
report gives, per kernel, the median over rounds of new/old and the ratio of the best times over
all rounds (below 1: faster); on a busy machine the best times are the steadier measure.

Usage: .venv/bin/python scripts/bench_compare.py OLD_CHECKOUT NEW_CHECKOUT [--rounds 3]
       [--repeat 3] [--clock wall|cpu] [--only TEXT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each kernel is Python code run in the checkout; it defines ``setup()`` returning the callable to
# time. Only names that both versions provide are used.
KERNELS = {
    "adaptive exact, alternative, 1000 trials": """
def setup():
    from trialkit.adaptive import run_trials, setup_trial
    spec = setup_trial(DESIGNS + "/three-arm-adaptive.toml", "alternative", "exact")
    return lambda: run_trials(spec, 1000, 1)
""",
    "adaptive exact, null, 1000 trials": """
def setup():
    from trialkit.adaptive import run_trials, setup_trial
    spec = setup_trial(DESIGNS + "/three-arm-adaptive.toml", "null", "exact")
    return lambda: run_trials(spec, 1000, 1)
""",
    "adaptive draws, alternative, 200 trials": """
def setup():
    from trialkit.adaptive import run_trials, setup_trial
    spec = setup_trial(DESIGNS + "/three-arm-adaptive.toml", "alternative", "draws")
    return lambda: run_trials(spec, 200, 1)
""",
    "adaptive control (sqrt, futility), exact, 400 trials": """
def setup():
    from trialkit.adaptive import run_trials, setup_trial
    spec = setup_trial(GOLDEN + "/adaptive__control_sqrt__futility.toml", "better_arm", "exact")
    return lambda: run_trials(spec, 400, 1)
""",
    "factorial simulated power, continuous, 10000 reps": """
def setup():
    import trialkit
    from trialkit.design import load_design
    design = load_design(DESIGNS + "/app-components-factorial.toml")
    f = trialkit.simulate_factorial_power
    return lambda: f(design, 10000, 2026, outcome="phq9_change")
""",
    "factorial simulated power, binary, 4000 reps": """
def setup():
    import trialkit
    from trialkit.design import load_design
    design = load_design(DESIGNS + "/app-components-factorial.toml")
    f = trialkit.simulate_factorial_power
    return lambda: f(design, 4000, 2026, outcome="retention")
""",
    "mrt simulated power, WCLS, 40 x 210, 500 reps": """
def setup():
    import trialkit
    from trialkit.design import load_design
    design = load_design(DESIGNS + "/checkin-prompts-mrt.toml")
    f = trialkit.simulate_mrt_power
    return lambda: f(design, 40, reps=500, seed=2024, outcome="mood")
""",
    "decision simulation, 2000 reps": """
def setup():
    import trialkit
    from trialkit.design import load_design
    design = load_design(DESIGNS + "/app-components-factorial.toml")
    f = trialkit.simulate_decision
    return lambda: f(design, reps=2000, seed=1)
""",
}

RUNNER = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
DESIGNS, GOLDEN, repeat, clock = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
now = time.process_time if clock == "cpu" else time.perf_counter
exec(sys.stdin.read())
fn = setup()
fn()
best = min((lambda t0: (fn(), now() - t0)[1])(now()) for _ in range(repeat))
print(json.dumps(best))
"""
THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run_kernel(checkout: Path, code: str, repeat: int, clock: str = "wall") -> float:
    """Seconds (best of ``repeat``) of one kernel in a fresh process using ``checkout``.

    ``clock="cpu"`` measures the process's CPU time with one BLAS/OpenMP thread: on a machine
    shared with other work it is steadier than wall time.
    """
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    if clock == "cpu":
        env.update({k: "1" for k in THREADS})
    out = subprocess.run([sys.executable, "-c", RUNNER, str(checkout / "designs"),
                          str(ROOT / "tests" / "golden"), str(repeat), clock], input=code,
                         env=env,
                         capture_output=True, text=True, check=True, cwd="/")
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="", help="run kernels whose name contains this text")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall time, or CPU time of one thread (steadier on a busy machine)")
    args = ap.parse_args()
    kernels = {k: v for k, v in KERNELS.items() if args.only in k}
    times: dict[str, dict[str, list[float]]] = {k: {"old": [], "new": []} for k in kernels}
    for r in range(args.rounds):
        for name, code in kernels.items():
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for which in order:
                times[name][which].append(run_kernel(getattr(args, which), code, args.repeat,
                                                     args.clock))
            print(f"round {r + 1}: {name}: old {times[name]['old'][-1]:.3f} s, "
                  f"new {times[name]['new'][-1]:.3f} s", flush=True)
    print(f"\n{'kernel':55s} {'old s':>7s} {'new s':>7s} {'median':>7s} {'best':>7s}"
          f" {'best':>7s} {'ratio of':>9s}")
    print(f"{'':55s} {'median':>7s} {'median':>7s} {'new/old':>7s} {'old s':>7s} {'new s':>7s}"
          f" {'bests':>9s}")
    for name, t in times.items():
        ratios = [n / o for o, n in zip(t["old"], t["new"], strict=True)]
        print(f"{name:55s} {statistics.median(t['old']):7.3f} {statistics.median(t['new']):7.3f}"
              f" {statistics.median(ratios):7.3f} {min(t['old']):7.3f} {min(t['new']):7.3f}"
              f" {min(t['new']) / min(t['old']):9.3f}")


if __name__ == "__main__":
    main()
