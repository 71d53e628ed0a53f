"""Run replicate simulations in chunks, optionally in worker processes, reproducibly.

Every replicate ``i`` of a run with seed ``s`` draws from its own stream,
``numpy.random.SeedSequence(s, spawn_key=(i,))`` — the same stream ``SeedSequence(s).spawn(n)[i]``
gives — so results do not depend on the chunk size or the number of workers. A simulation is then a
pure function ``func(replicate_range, **params)`` of the replicate range and its parameters
(design, scenario, seed), which is what lets the same work run on a process pool or, later, Dask.
Where creating a generator per replicate costs more than the replicate's draws,
:class:`trialkit.simulate.streams.ReplicateStreams` gives the identical streams faster.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from trialkit.errors import TrialkitError


def replicate_seeds(seed: int, start: int, stop: int) -> list[np.random.SeedSequence]:
    """Return the seed sequences of replicates ``start .. stop-1`` of a run seeded with ``seed``."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise TrialkitError(f"seed {seed!r} is invalid — use a non-negative whole number")
    return [np.random.SeedSequence(int(seed), spawn_key=(i,)) for i in range(start, stop)]


def replicate_rngs(seed: int, start: int, stop: int) -> list[np.random.Generator]:
    """Return one independent :class:`numpy.random.Generator` per replicate in ``[start, stop)``."""
    return [np.random.default_rng(s) for s in replicate_seeds(seed, start, stop)]


def _chunks(reps: int, chunk_size: int) -> list[range]:
    return [range(a, min(a + chunk_size, reps)) for a in range(0, reps, chunk_size)]


def run_replicates(
    func: Callable[..., Any],
    reps: int,
    *,
    jobs: int = 1,
    chunk_size: int | None = None,
    combine: Callable[[list[Any]], Any] | None = None,
    **params: Any,
) -> Any:
    """Run ``func(range, **params)`` over replicates ``0 .. reps-1`` in chunks.

    Parameters
    ----------
    func : callable
        A module-level function (picklable) taking a ``range`` of replicate indices and keyword
        parameters, returning a result for those replicates (typically arrays with one row per
        replicate). It must seed replicate ``i`` from ``(seed, i)`` only, e.g. with
        :func:`replicate_rngs`.
    reps : int
        Number of replicates.
    jobs : int
        Worker processes (1 runs in this process).
    chunk_size : int, optional
        Replicates per call; by default ``reps`` split evenly over ``jobs``.
    combine : callable, optional
        Combines the list of chunk results (in replicate order); by default arrays are
        concatenated along axis 0 and dicts of arrays key by key.
    **params
        Passed to ``func``.
    """
    if not isinstance(reps, int) or reps < 1:
        raise TrialkitError(f"--reps {reps!r} is invalid — use a whole number of at least 1")
    if not isinstance(jobs, int) or jobs < 1:
        raise TrialkitError(f"--jobs {jobs!r} is invalid — use a whole number of at least 1")
    if chunk_size is None:
        chunk_size = max(1, -(-reps // jobs))
    chunks = _chunks(reps, chunk_size)
    if jobs == 1 or len(chunks) == 1:
        results = [func(r, **params) for r in chunks]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(func, r, **params) for r in chunks]
            results = [f.result() for f in futures]
    return (combine or concatenate)(results)


def concatenate(results: list[Any]) -> Any:
    """Concatenate chunk results: arrays along axis 0, dicts key by key, lists end to end."""
    first = results[0]
    if isinstance(first, dict):
        return {k: concatenate([r[k] for r in results]) for k in first}
    if isinstance(first, list):
        return [x for r in results for x in r]
    return np.concatenate([np.asarray(r) for r in results], axis=0)
