"""Results of many simulated trials: run, remember how they were made, save, load and grow."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from trialkit.adaptive.simulator import block_size, simulate_range
from trialkit.adaptive.spec import TrialSpec
from trialkit.engine.runner import run_replicates
from trialkit.errors import TrialkitError

_INT_KEYS = ("final_status", "final_n", "followed_n", "looks", "arm_status", "status_look",
             "ns_all", "final_control")


@dataclass
class TrialResults:
    """Simulated trials of one specification with their provenance.

    Attributes
    ----------
    spec : TrialSpec
        What was simulated (design and scenario).
    seed : int
        Base seed; trial ``i`` used ``SeedSequence(seed, spawn_key=(i,))``.
    arrays : dict of ndarray
        One row per trial (see :mod:`trialkit.adaptive.simulator`).
    version : str
        trialkit version that produced the trials.
    seconds : float
        Simulation time (summed over growth steps).
    created : str
        UTC time of the first run (ISO 8601).
    source : str, optional
        The file the results were read from (:func:`load_results`).
    """

    spec: TrialSpec
    seed: int
    arrays: dict[str, np.ndarray]
    version: str
    seconds: float
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    source: str | None = field(default=None, repr=False, compare=False)

    @property
    def n_rep(self) -> int:
        """Number of simulated trials."""
        return int(self.arrays["final_n"].shape[0])

    def to_dict(self) -> dict:
        """Plain JSON-ready form (design text included so a file is self-describing)."""
        return {
            "format": "trialkit-adaptive-results/1",
            "design": {"name": self.spec.design_name, "sha256": self.spec.design_sha256,
                       "text": self.spec.design_text},
            "scenario": self.spec.scenario,
            "spec": self.spec.describe(),
            "seed": self.seed,
            "n_rep": self.n_rep,
            "version": self.version,
            "seconds": round(self.seconds, 3),
            "created": self.created,
            "arrays": {k: np.where(np.isnan(v), np.array(None, dtype=object), v).tolist()
                       if v.dtype.kind == "f" else v.tolist() for k, v in self.arrays.items()},
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the results as JSON."""
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh)

    def plot(self, selection: str | None = None, preferences: Any = None) -> Any:
        """Return a figure: allocation over looks, stopping times and arm selection."""
        from trialkit.adaptive.plots import results_figure

        return results_figure(self, selection, preferences)


def load_results(path: str | os.PathLike[str], spec: TrialSpec) -> TrialResults:
    """Read results saved by :meth:`TrialResults.save` for ``spec`` (design and scenario)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise TrialkitError(f"{path}: cannot be read as saved results ({exc}) — give a file "
                            "written by TrialResults.save", param="path") from None
    if data.get("format") != "trialkit-adaptive-results/1":
        raise TrialkitError(f"{path}: is not a trialkit adaptive results file — give a file "
                            "written by TrialResults.save", param="path")
    try:
        if data["design"]["sha256"] != spec.design_sha256 or data["scenario"] != spec.scenario:
            raise TrialkitError(f"{path}: was simulated from another design or scenario — use a "
                                "new file name or the same design and scenario")
        saved = data["spec"]
        old = (saved.get("method", "draws"), saved.get("draws"))
        if old[0] != spec.method or (spec.method == "draws" and old[1] != spec.draws):
            def how(method, draws):
                return f"{method!r}" + (f" with {draws} draws" if method == "draws" else "")

            raise TrialkitError(f"{path}: was simulated by method {how(*old)}, not "
                                f"{how(spec.method, spec.draws)} — use the same method and draws "
                                "to grow it, or a new file name")
        arrays = {}
        for k, v in data["arrays"].items():
            arr = np.array(v, dtype=float if k not in _INT_KEYS else np.int64)
            arrays[k] = arr
        arrays["final_status"] = arrays["final_status"].astype(np.int8)
        arrays["arm_status"] = arrays["arm_status"].astype(np.int8)
        arrays["alloc_history"] = arrays["alloc_history"].astype(np.float32)
        if len({v.shape[0] for v in arrays.values()}) != 1:
            raise ValueError("arrays of different lengths")
        return TrialResults(spec, int(data["seed"]), arrays, data["version"],
                            float(data["seconds"]), data["created"], source=str(path))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TrialkitError(f"{path}: is an incomplete or damaged results file ({exc!r}) — "
                            "delete it or use a new file name") from None


def run_trials(
    spec: TrialSpec,
    reps: int,
    seed: int,
    jobs: int = 1,
    path: str | os.PathLike[str] | None = None,
    *,
    resume: TrialResults | None = None,
) -> TrialResults:
    """Simulate ``reps`` trials of ``spec``, or grow earlier results to ``reps`` trials.

    Parameters
    ----------
    spec : TrialSpec
        From :func:`~trialkit.adaptive.spec.setup_trial`.
    reps : int
        Total number of trials wanted.
    seed : int
        Base seed; results are identical for any ``jobs``.
    jobs : int
        Worker processes.
    path : path, optional
        A convenience for saved results (as adaptr's ``path``): the file's trials are resumed
        when it exists and the grown results written back — the same as :func:`load_results`,
        ``resume`` and :meth:`TrialResults.save`.
    resume : TrialResults, optional
        Earlier results of ``spec`` with the same ``seed``: their trials are kept and only the
        missing ones simulated (with more than ``reps``, the first ``reps`` are returned).
    """
    if path is not None and resume is None and os.path.exists(path):
        resume = load_results(path, spec)
    res = _grow(spec, reps, seed, jobs, resume)
    if path is not None and (resume is None or res.n_rep > resume.n_rep):
        res.save(path)
    return res


def _grow(spec: TrialSpec, reps: int, seed: int, jobs: int, old: TrialResults | None
          ) -> TrialResults:
    from trialkit.constants import VERSION

    if old is not None and old.seed != seed:
        where = old.source or "the earlier results"
        raise TrialkitError(f"{where}: was simulated with seed {old.seed}, not {seed} — use "
                            f"seed {old.seed} to grow it, or a new file name", param="seed")
    if old is not None and old.n_rep >= reps:  # enough trials: the first ``reps`` of them
        return TrialResults(spec, seed, {k: v[:reps] for k, v in old.arrays.items()},
                            old.version, old.seconds, old.created)
    start = 0 if old is None else old.n_rep
    t0 = time.perf_counter()
    arrays = run_replicates(simulate_range, reps - start, start=start, jobs=jobs,
                            batch=block_size(spec), spec=spec, seed=seed,
                            progress="simulating trials")
    seconds = time.perf_counter() - t0
    if old is None:
        return TrialResults(spec, seed, arrays, VERSION, seconds)
    arrays = {k: np.concatenate([old.arrays[k], arrays[k]]) for k in arrays}
    return TrialResults(spec, seed, arrays, VERSION, old.seconds + seconds, old.created)
