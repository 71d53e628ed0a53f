"""Run replicate simulations in batches, optionally in worker processes, reproducibly.

Every replicate ``i`` of a run with seed ``s`` draws from its own stream,
``numpy.random.SeedSequence(s, spawn_key=(i,))`` — the same stream ``SeedSequence(s).spawn(n)[i]``
gives — so results do not depend on the batches or the number of workers. A simulation is then a
*replicate generator*: a pure function ``func(replicate_range, **params)`` of a range of
replicate indices and its parameters (design, scenario, seed), which is what lets the same work
run on a process pool or, later, a distributed engine. Where creating a generator per replicate
costs more than the replicate's draws, :class:`trialkit.engine.streams.ReplicateStreams` gives
the identical streams faster.

The one chunking policy (:func:`replicate_batches`): replicates ``start … start + reps − 1`` are
cut into calls of ``batch`` replicates at multiples of ``batch`` (so which replicates share a call
depends on ``batch`` alone, never on ``jobs`` or ``start``), or — without ``batch`` — split evenly
over the workers, each call at most ``max_batch`` long. The calls are dealt to ``jobs`` workers in
contiguous groups. :func:`memory_batch` sizes a batch for a memory budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from trialkit.errors import TrialkitError


def replicate_seeds(seed: int, start: int, stop: int) -> list[np.random.SeedSequence]:
    """Return the seed sequences of replicates ``start .. stop-1`` of a run seeded with ``seed``."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise TrialkitError(f"seed = {seed!r} is invalid — use a non-negative whole number",
                            param="seed")
    return [np.random.SeedSequence(int(seed), spawn_key=(i,)) for i in range(start, stop)]


def replicate_rngs(seed: int, start: int, stop: int) -> list[np.random.Generator]:
    """Return one independent :class:`numpy.random.Generator` per replicate in ``[start, stop)``."""
    return [np.random.default_rng(s) for s in replicate_seeds(seed, start, stop)]


def memory_batch(values_per_replicate: int, budget: int, most: int | None = None) -> int:
    """Replicates per batch so that a batch holds at most ``budget`` values (at least 1).

    Examples
    --------
    >>> memory_batch(512, 2**23), memory_batch(512, 2**23, most=200), memory_batch(10**9, 100)
    (16384, 200, 1)
    """
    size = max(1, budget // max(1, int(values_per_replicate)))
    return size if most is None else max(1, min(size, most))


def replicate_batches(reps: int, *, start: int = 0, jobs: int = 1, batch: int | None = None,
                      max_batch: int | None = None) -> list[range]:
    """Cut replicates ``start … start + reps − 1`` into the ranges of successive calls.

    With ``batch``, calls end at multiples of ``batch``; otherwise the replicates are split
    evenly over ``jobs`` calls of at most ``max_batch`` each.

    Examples
    --------
    >>> replicate_batches(12, batch=5)
    [range(0, 5), range(5, 10), range(10, 12)]
    >>> replicate_batches(6, start=3, batch=5)
    [range(3, 5), range(5, 9)]
    >>> replicate_batches(10, jobs=2, max_batch=3)
    [range(0, 3), range(3, 5), range(5, 8), range(8, 10)]
    """
    stop = start + reps
    if batch is not None:
        edges = [start, *range((start // batch + 1) * batch, stop, batch), stop]
        return [range(a, b) for a, b in zip(edges, edges[1:], strict=False)]
    size = max(1, -(-reps // jobs))
    out: list[range] = []
    for a in range(start, stop, size):
        b = min(a + size, stop)
        step = b - a if max_batch is None else max(1, max_batch)
        out += [range(c, min(c + step, b)) for c in range(a, b, step)]
    return out


def _run_group(func: Callable[..., Any], ranges: Sequence[range], params: dict[str, Any]
               ) -> list[Any]:
    return [func(r, **params) for r in ranges]


def run_replicates(
    func: Callable[..., Any],
    reps: int,
    *,
    start: int = 0,
    jobs: int = 1,
    batch: int | None = None,
    max_batch: int | None = None,
    chunk_size: int | None = None,
    combine: Callable[[list[Any]], Any] | None = None,
    **params: Any,
) -> Any:
    """Run the replicate generator ``func(range, **params)`` over ``reps`` replicates.

    Parameters
    ----------
    func : callable
        A module-level function (picklable) taking a ``range`` of replicate indices and keyword
        parameters, returning a result for those replicates (typically arrays with one row per
        replicate). It must seed replicate ``i`` from ``(seed, i)`` only, e.g. with
        :func:`replicate_rngs`.
    reps : int
        Number of replicates.
    start : int
        Index of the first replicate (to add replicates to an earlier run).
    jobs : int
        Worker processes (1 runs in this process).
    batch : int, optional
        Replicates per call, cut at multiples of ``batch`` (see :func:`replicate_batches`).
    max_batch : int, optional
        Without ``batch``: the most replicates per call of the even split.
    chunk_size : int, optional
        Older name of ``batch``.
    combine : callable, optional
        Combines the list of call results (in replicate order); by default arrays are
        concatenated along axis 0 and dicts of arrays key by key.
    **params
        Passed to ``func``.
    """
    if not isinstance(reps, int) or reps < 1:
        raise TrialkitError(f"reps = {reps!r} is invalid — use a whole number of at least 1",
                            param="reps")
    if not isinstance(jobs, int) or jobs < 1:
        raise TrialkitError(f"jobs = {jobs!r} is invalid — use a whole number of at least 1",
                            param="jobs")
    ranges = replicate_batches(reps, start=start, jobs=jobs, batch=batch or chunk_size,
                               max_batch=max_batch)
    if jobs == 1 or len(ranges) == 1:
        results = _run_group(func, ranges, params)
    else:
        per = -(-len(ranges) // jobs)
        groups = [ranges[a:a + per] for a in range(0, len(ranges), per)]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_run_group, func, g, params) for g in groups]
            results = [r for f in futures for r in f.result()]
    return (combine or concatenate)(results)


def concatenate(results: list[Any]) -> Any:
    """Concatenate call results: arrays along axis 0, dicts key by key, lists end to end."""
    first = results[0]
    if isinstance(first, dict):
        return {k: concatenate([r[k] for r in results]) for k in first}
    if isinstance(first, list):
        return [x for r in results for x in r]
    return np.concatenate([np.asarray(r) for r in results], axis=0)
