"""Golden seeded results: one small pinned result per simulation kind and scenario.

Each case runs a simulation with a fixed seed and stores every number it returns in
``tests/golden/<case>.json``; the file name says the scenario (kind, design, scenario, method,
seed, size). ``tests/test_golden.py`` reruns every case and compares: integers and booleans
exactly, floats to 1e-12 relative (a changed random stream moves them by far more; the last bits
of vectorised maths may differ between CPUs). After an intended change of a random stream, run

    .venv/bin/python scripts/regenerate_golden.py            # rewrite every golden file
    .venv/bin/python scripts/regenerate_golden.py --check    # compare bit for bit, write nothing

and explain the change in the commit message.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
DESIGNS = ROOT / "designs"


def _adaptive(path: Path, scenario: str, method: str, reps: int, seed: int) -> Callable[[], Any]:
    def run() -> Any:
        from trialkit.adaptive import run_trials, setup_trial

        res = run_trials(setup_trial(path, scenario, method), reps, seed)
        return dict(res.arrays)

    return run


def _factorial(outcome: str, reps: int, seed: int) -> Callable[[], Any]:
    def run() -> Any:
        from trialkit.design import load_design

        try:
            from trialkit.factorial.planning import simulate_factorial_power
        except ImportError:  # before the planning modules shared one name
            from trialkit.factorial.plan import simulate_factorial_power
        design = load_design(DESIGNS / "app-components-factorial.toml")
        out = simulate_factorial_power(design, reps, seed, outcome=outcome)
        return _plain(out)

    return run


def _mrt(outcome: str, reps: int, seed: int, n: int, **extra: Any) -> Callable[[], Any]:
    def run() -> Any:
        from trialkit.design import load_design
        from trialkit.mrt.planning import design_inputs, simulate_power_arrays

        design = load_design(DESIGNS / "checkin-prompts-mrt.toml")
        res = simulate_power_arrays(design_inputs(design, outcome), n, reps, seed, **extra)
        return {k: res[k] for k in ("power", "p_value", "coef", "converged")}

    return run


def _decision(scenario: str, reps: int, seed: int) -> Callable[[], Any]:
    def run() -> Any:
        from trialkit.design import load_design

        try:
            from trialkit.bayes.decision_study import simulate_decision
        except ImportError:  # before the decision simulation had its own name
            from trialkit.bayes.simulate import simulate_decision
        design = load_design(DESIGNS / "app-components-factorial.toml")
        out = _plain(simulate_decision(design, reps=reps, seed=seed, scenario=scenario))
        out.pop("elapsed_seconds")
        return out

    return run


def _rehearsal(seed: int) -> Callable[[], Any]:
    def run() -> Any:
        import pandas as pd

        from trialkit.design import load_design
        from trialkit.factorial.rehearse import rehearsal_outcomes

        design = load_design(DESIGNS / "app-components-factorial.toml")
        codes = design.conditions()
        rows = codes[np.arange(48) % codes.shape[0]]
        table = pd.DataFrame(rows, columns=list(design.factor_names))
        out = rehearsal_outcomes(design, table, seed=seed)
        return {c: out[c].to_numpy() for c in out.columns if c not in design.factor_names}

    return run


def _plain(result: Any) -> Any:
    """Return a result object or dict as plain nested values."""
    if hasattr(result, "to_dict"):
        return result.to_dict()
    return result


CONTROL = GOLDEN / "adaptive__control_sqrt__futility.toml"
CONTINUOUS = GOLDEN / "adaptive__continuous__match_control__limits.toml"
CASES: dict[str, Callable[[], Any]] = {
    "adaptive__three_arm__alternative__exact__seed_5__40_trials":
        _adaptive(DESIGNS / "three-arm-adaptive.toml", "alternative", "exact", 40, 5),
    "adaptive__three_arm__null__draws__seed_6__6_trials":
        _adaptive(DESIGNS / "three-arm-adaptive.toml", "null", "draws", 6, 6),
    "adaptive__three_arm_fixed__null_falling__exact__seed_2__30_trials":
        _adaptive(DESIGNS / "three-arm-fixed.toml", "null_falling", "exact", 30, 2),
    "adaptive__control_sqrt__futility__exact__seed_4__40_trials":
        _adaptive(CONTROL, "better_arm", "exact", 40, 4),
    "adaptive__control_sqrt__futility__draws__seed_4__20_trials":
        _adaptive(CONTROL, "better_arm", "draws", 20, 4),
    "adaptive__continuous__match_control__limits__exact__seed_8__40_trials":
        _adaptive(CONTINUOUS, "one_better_trend", "exact", 40, 8),
    "adaptive__continuous__match_control__limits__draws__seed_8__20_trials":
        _adaptive(CONTINUOUS, "one_better_trend", "draws", 20, 8),
    "factorial__app_components__phq9_change__seed_7__200_reps":
        _factorial("phq9_change", 200, 7),
    "factorial__app_components__retention__seed_7__200_reps":
        _factorial("retention", 200, 7),
    "mrt__checkin_prompts__mood__ar1_icc__seed_3__30_reps":
        _mrt("mood", 30, 3, 30, ar1=0.3, icc=0.2),
    "mrt__checkin_prompts__engagement_1h__seed_3__30_reps":
        _mrt("engagement_1h", 30, 3, 40),
    "decision__app_components__antagonistic__seed_3__300_reps":
        _decision("antagonistic", 300, 3),
    "decision__app_components__assumed__seed_4__300_reps":
        _decision("assumed", 300, 4),
    "rehearsal__app_components__all_outcomes__seed_11":
        _rehearsal(11),
}


# -- storing and comparing --------------------------------------------------------------------
def encode(value: Any) -> Any:
    """Plain JSON with arrays tagged by dtype and shape (floats written exactly, by repr)."""
    if isinstance(value, np.ndarray):
        data = value.astype(float) if value.dtype.kind == "f" else value
        return {"__array__": value.dtype.str, "shape": list(value.shape),
                "data": data.ravel().tolist()}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode(value: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(value, dict) and "__array__" in value:
        return np.array(value["data"], dtype=np.dtype(value["__array__"])).reshape(value["shape"])
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def differences(expected: Any, got: Any, where: str = "", rtol: float = 1e-12) -> list[str]:
    """Where ``got`` differs from ``expected`` (floats within ``rtol``; 0 means bit for bit)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return [f"{where}: keys differ"]
        return [d for k in expected for d in differences(expected[k], got[k], f"{where}.{k}",
                                                        rtol)]
    if isinstance(expected, list) and not isinstance(got, np.ndarray):
        if not isinstance(got, list | tuple) or len(got) != len(expected):
            return [f"{where}: lengths differ"]
        return [d for i, (e, g) in enumerate(zip(expected, got, strict=True))
                for d in differences(e, g, f"{where}[{i}]", rtol)]
    e, g = np.asarray(expected), np.asarray(got)
    if e.shape != g.shape:
        return [f"{where}: shape {g.shape} instead of {e.shape}"]
    if e.dtype.kind in "fc" or g.dtype.kind in "fc":
        ef, gf = e.astype(float), g.astype(float)
        same = (ef == gf) | (np.isnan(ef) & np.isnan(gf))
        close = same | (np.abs(ef - gf) <= rtol * np.abs(ef))
        return [] if close.all() else [f"{where}: {int((~close).sum())} values differ"]
    return [] if np.array_equal(e, g) else [f"{where}: values differ"]


def path_of(name: str) -> Path:
    """Return the golden file of case ``name``."""
    return GOLDEN / f"{name}.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="compare with the stored results bit for bit; write nothing")
    ap.add_argument("cases", nargs="*", help="case names (default: all)")
    args = ap.parse_args()
    bad = 0
    for name in args.cases or CASES:
        got = encode(CASES[name]())
        if args.check:
            found = differences(decode(json.loads(path_of(name).read_text())), decode(got),
                                name, rtol=0.0)
            bad += bool(found)
            print(f"{'identical' if not found else 'DIFFERENT'}  {name}")
            for line in found[:5]:
                print("   ", line)
        else:
            path_of(name).write_text(json.dumps(got, indent=1) + "\n")
            print(f"wrote {path_of(name).relative_to(ROOT)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
