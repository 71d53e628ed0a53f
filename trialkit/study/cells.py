"""The replicates of one grid cell: per-replicate metrics of any design kind.

:func:`cell_replicates` is the replicate generator a grid runs: for replicates ``reps`` of a cell
it builds the cell's design (the design file with the cell's settings, validated by the kind's
reader; cached per process), simulates them with the kind's own replicate generator and returns
one array per metric with one value per replicate — metrics whose mean is what the grid reports:

- factorial: ``power.TERM`` (1 when the test of TERM rejects), ``effect.TERM`` (estimated
  factorial effect, twice the effect-coded coefficient) and ``failed`` (fits that did not
  converge);
- MRT: ``power`` (the Hotelling test of the effect coefficients rejects) and ``failed``;
- adaptive: ``prob_superior``, ``prob_equivalence``, ``prob_futility``, ``prob_max`` (no
  conclusion), ``prob_conclusive``, ``prob_select.ARM``, ``prob_select.none`` and
  ``expected_n`` (patients randomised).

Replicate ``i`` of a cell seeded ``s`` (:meth:`trialkit.design.grid.Cell.seed`) uses the stream
``(s, i)`` — exactly what the kind's own simulation command does with ``--seed s`` — so a cell
reproduces with one command. In an assurance cell every replicate first draws the prior keys
from its own stream ``(s', i)`` (``s'`` derived from ``s``) and is then simulated alone with
those values. Floating-point metrics are rounded to 10 significant digits: batched linear
algebra may differ in the last bit between batch sizes, the rounded values do not.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import numpy as np

from trialkit.design.grid import Cell, build_design

#: Significant digits kept of floating-point metrics.
DIGITS = 10


def round_significant(x: np.ndarray, digits: int = DIGITS) -> np.ndarray:
    """Round ``x`` to ``digits`` significant digits (0, inf and nan stay as they are).

    Examples
    --------
    >>> round_significant(np.array([1.23456789012345, -0.000123456789012345, 0.0]))
    array([ 1.23456789e+00, -1.23456789e-04,  0.00000000e+00])
    """
    x = np.asarray(x, dtype=float)
    finite = np.isfinite(x) & (x != 0)
    out = x.copy()
    mag = np.floor(np.log10(np.abs(x[finite])))
    scale = 10.0 ** (digits - 1 - mag)
    out[finite] = np.round(x[finite] * scale) / scale
    return out


# -- one kind each ------------------------------------------------------------------------------
def _factorial_setup(design: Any, cell: Cell) -> Any:
    from trialkit.factorial.planning import factorial_simulation

    return factorial_simulation(design, cell.design.outcome, cell.scenario)


def _factorial_metrics(reps: range, setup: Any, seed: int) -> dict[str, np.ndarray]:
    from trialkit.factorial.replicates import simulate_chunk

    spec, names, _ = setup
    res = simulate_chunk(reps, seed=seed, spec=spec)
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        out[f"power.{name}"] = res["reject"][:, j].astype(float)
    for j, name in enumerate(names):
        out[f"effect.{name}"] = 2 * res["estimate"][:, j]
    out["failed"] = res["failed"].astype(float)
    return out


def _mrt_setup(design: Any, cell: Cell) -> Any:
    from trialkit.mrt.planning import batch_size, design_inputs, mrt_sample_size

    inputs = design_inputs(design, cell.design.outcome)
    n = design.n_participants or mrt_sample_size(
        design, outcome=cell.design.outcome).n_participants
    return inputs, n, batch_size(n, inputs["days"] * inputs["decisions_per_day"])


def _mrt_metrics(reps: range, setup: Any, seed: int) -> dict[str, np.ndarray]:
    from trialkit.mrt.planning import power_replicates

    inputs, n, _ = setup
    res = power_replicates(reps, seed=seed, n_participants=n, inputs=inputs, ar1=0.0, icc=0.0,
                           small="auto")
    p = res["p_value"]
    ok = np.isfinite(p)
    return {"power": np.where(ok, p < inputs["alpha"], False).astype(float),
            "failed": (~(res["converged"] & ok)).astype(float)}


def _adaptive_setup(design: Any, cell: Cell) -> Any:
    from trialkit.adaptive.simulator import block_size
    from trialkit.adaptive.spec import setup_trial

    spec = setup_trial(design, cell.scenario)
    return spec, block_size(spec)


def _adaptive_metrics(reps: range, setup: Any, seed: int) -> dict[str, np.ndarray]:
    from trialkit.adaptive.performance import select_arms
    from trialkit.adaptive.results import TrialResults
    from trialkit.adaptive.simulator import simulate_range

    spec, _ = setup
    arrays = simulate_range(reps, spec, seed)
    sel = select_arms(TrialResults(spec, seed, arrays, "", 0.0))
    fs = arrays["final_status"]
    out = {"prob_superior": fs == 1, "prob_equivalence": fs == 2, "prob_futility": fs == 3,
           "prob_max": fs == 0, "prob_conclusive": fs != 0}
    for i, arm in enumerate(spec.arms):
        out[f"prob_select.{arm}"] = sel == i
    out["prob_select.none"] = sel < 0
    metrics = {k: np.asarray(v, dtype=float) for k, v in out.items()}
    metrics["expected_n"] = arrays["final_n"].astype(float)
    return metrics


KINDS = {
    "factorial": (_factorial_setup, _factorial_metrics),
    "mrt": (_mrt_setup, _mrt_metrics),
    "adaptive": (_adaptive_setup, _adaptive_metrics),
}


# -- a cell -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def cell_setup(cell: Cell) -> Any:
    """Build the cell's design and its kind's simulation set-up (cached in each process)."""
    design = build_design(cell.design, cell.overrides)
    return KINDS[cell.design.kind][0](design, cell)


def default_batch(cell: Cell) -> int:
    """Return the kind's replicates per call for this cell (bounded memory)."""
    return int(cell_setup(cell)[-1])


def prior_seed(seed: int) -> int:
    """Seed of the prior draws of a cell seeded ``seed``."""
    return int(hashlib.sha256(f"prior:{seed}".encode()).hexdigest()[:16], 16)


def _assurance(reps: range, cell: Cell, seed: int) -> dict[str, np.ndarray]:
    """Every replicate with the prior keys drawn from its own stream, simulated alone."""
    from trialkit.engine.runner import replicate_rngs

    priors = cell.design.priors
    setup_of, metrics_of = KINDS[cell.design.kind]
    rows = []
    for i, rng in zip(reps, replicate_rngs(prior_seed(seed), reps.start, reps.stop),
                      strict=True):
        drawn = tuple((p.key, float(p.mean + p.sd * rng.standard_normal())) for p in priors)
        setup = setup_of(build_design(cell.design, cell.overrides + drawn), cell)
        row = metrics_of(range(i, i + 1), setup, seed)
        row.update({f"prior.{k}": np.array([v]) for k, v in drawn})
        rows.append(row)
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def cell_replicates(reps: range, *, cell: Cell, seed: int) -> dict[str, np.ndarray]:
    """Simulate replicates ``reps`` of ``cell`` (seeded ``seed``): one array per metric."""
    if cell.assurance:
        out = _assurance(reps, cell, seed)
    else:
        out = KINDS[cell.design.kind][1](reps, cell_setup(cell), seed)
    return {k: round_significant(v) for k, v in out.items()}
