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
over the workers, each call at most ``max_batch`` long. With ``jobs`` > 1 every call is submitted
to a pool of ``jobs`` worker processes. :func:`memory_batch` sizes a batch for a memory budget.

A run is at most :data:`~trialkit.constants.MAX_REPS` replicates; with ``progress`` it advances
the progress bar of :mod:`trialkit.engine.progress` as calls finish.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np

from trialkit.constants import MAX_REPS
from trialkit.engine.memory import keep_freed_memory
from trialkit.engine.progress import advance, progress_bar
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


def check_reps(reps: Any, param: str = "reps") -> None:
    """Refuse a number of replicates that is not a whole number in 1..MAX_REPS."""
    if not isinstance(reps, int | np.integer) or isinstance(reps, bool) or reps < 1:
        raise TrialkitError(f"{param} = {reps!r} is invalid — use a whole number of at least 1",
                            param=param)
    if reps > MAX_REPS:
        raise TrialkitError(f"{param} = {reps} is more than the {MAX_REPS:,} replicates a run "
                            "may have — use fewer (Monte Carlo error falls only with the square "
                            "root of the replicates)", param=param)


def _run_calls(func: Callable[..., Any], ranges: Sequence[range], params: dict[str, Any],
               jobs: int, bar: Any) -> list[Any]:
    """Call ``func`` on every range (in a pool of ``jobs`` workers); results in range order."""
    if jobs == 1 or len(ranges) == 1:
        results = []
        for r in ranges:
            results.append(func(r, **params))
            advance(bar, len(r))
        return results
    with ProcessPoolExecutor(max_workers=jobs, initializer=keep_freed_memory) as pool:
        futures = {pool.submit(func, r, **params): r for r in ranges}
        for done in as_completed(futures):
            advance(bar, len(futures[done]))
        return [f.result() for f in futures]


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
    progress: str | None = None,
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
    progress : str, optional
        Label of the progress bar (drawn on a terminal while progress is switched on, see
        :mod:`trialkit.engine.progress`).
    **params
        Passed to ``func``.
    """
    check_reps(reps)
    if not isinstance(jobs, int) or jobs < 1:
        raise TrialkitError(f"jobs = {jobs!r} is invalid — use a whole number of at least 1",
                            param="jobs")
    ranges = replicate_batches(reps, start=start, jobs=jobs, batch=batch or chunk_size,
                               max_batch=max_batch)
    with one_blas_thread(), \
            progress_bar(reps, progress) if progress else contextlib.nullcontext() as bar:
        results = _run_calls(func, ranges, params, jobs, bar)
    return (combine or concatenate)(results)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread in this process (and the worker processes it forks).

    The simulators are vectorised across replicates: their matrix products are many small ones,
    for which BLAS threads cost more than they save — on a busy 2-core machine a (31 × 32) by
    (32 × 10,000) product took 16 ms with two OpenBLAS threads and 0.5 ms with one. Parallelism
    comes from worker processes instead.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def concatenate(results: list[Any]) -> Any:
    """Concatenate call results: arrays along axis 0, dicts key by key, lists end to end."""
    first = results[0]
    if isinstance(first, dict):
        return {k: concatenate([r[k] for r in results]) for k in first}
    if isinstance(first, list):
        return [x for r in results for x in r]
    return np.concatenate([np.asarray(r) for r in results], axis=0)
