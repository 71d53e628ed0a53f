"""Where the tasks of a run execute: this process, a local process pool, or a Dask cluster.

A *task* is a call ``func(*args, **kwargs)`` of a module-level function (a replicate generator
with its range of replicates and parameters) under a unique key. A backend runs a list of tasks
and hands every result to a callback as soon as it is back, in whatever order tasks finish; the
caller stores results by key, so what it computes never depends on the backend, the number of
workers or the order. Backends:

- :class:`InProcess` — one task after another in this process (``jobs = 1``);
- :class:`LocalPool` — a pool of ``jobs`` worker processes;
- :class:`DaskBackend` — a Dask cluster: a ``distributed.LocalCluster`` of worker processes
  started for the run (``"local"`` or ``"local:N"``), or an existing cluster's scheduler
  (``"tcp://HOST:PORT"``). Dask is imported only here, and only when used.

A task that raises stops the run with that error; a lost Dask worker's tasks are run again
elsewhere by the scheduler.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from trialkit.engine.memory import keep_freed_memory
from trialkit.errors import TrialkitError

Done = Callable[["Task", Any], None]


@dataclass(frozen=True)
class Task:
    """One call of a module-level function, under a unique ``key``."""

    key: str
    func: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> Any:
        """Run the call here."""
        return self.func(*self.args, **self.kwargs)


class Backend(Protocol):
    """What runs tasks."""

    name: str
    workers: int

    def run(self, tasks: Sequence[Task], done: Done) -> None:
        """Run ``tasks``; call ``done(task, result)`` as each one finishes."""

    def close(self) -> None:
        """Release the workers."""


class InProcess:
    """Run tasks one after another in this process."""

    name = "this process"
    workers = 1

    def run(self, tasks: Sequence[Task], done: Done) -> None:
        """Run ``tasks`` in order."""
        for task in tasks:
            done(task, task())

    def close(self) -> None:
        """Nothing to release."""


class LocalPool:
    """Run tasks in a pool of ``jobs`` worker processes on this machine."""

    def __init__(self, jobs: int):
        self.workers = jobs
        self.name = f"local pool of {jobs} processes"
        self._pool: ProcessPoolExecutor | None = None

    def run(self, tasks: Sequence[Task], done: Done) -> None:
        """Submit every task; hand results back as they finish."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                             initializer=keep_freed_memory)
        pending: dict[Future[Any], Task] = {
            self._pool.submit(t.func, *t.args, **t.kwargs): t for t in tasks}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    done(pending.pop(fut), fut.result())
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def parse_dask(spec: str) -> int:
    """Return the number of workers of ``--dask local[:N]`` (default 2).

    Examples
    --------
    >>> parse_dask("local"), parse_dask("local:3")
    (2, 3)
    """
    name, _, count = spec.partition(":")
    if name != "local" or (count and (not count.isdigit() or int(count) < 1)):
        raise TrialkitError(f"dask = {spec!r} is invalid — use 'local' or 'local:N' with N "
                            "worker processes (an existing cluster is given by its scheduler "
                            "address)", param="dask")
    return int(count) if count else 2


#: Environment a Dask nanny would set before starting a worker that slows trialkit's kernels.
SLOW_WORKER_ENV = "MALLOC_TRIM_THRESHOLD_"


def _local_cluster(distributed: Any, workers: int) -> Any:
    """Start a ``LocalCluster`` of ``workers`` single-threaded worker processes.

    Dask's nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (to hand freed memory
    back to the system at once). That also fixes glibc's threshold for serving allocations by
    ``mmap`` at 128 KiB, so every large temporary array of a vectorised kernel is mapped, faulted
    in and unmapped again: the same batch of adaptive trials then takes about 1.7 times the CPU
    time it takes in a local pool process. The workers started here keep glibc's defaults.
    """
    import dask

    saved = os.environ.pop(SLOW_WORKER_ENV, None)
    try:
        with dask.config.set({f"distributed.nanny.pre-spawn-environ.{SLOW_WORKER_ENV}": None}):
            return distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.ERROR)
    finally:
        if saved is not None:
            os.environ[SLOW_WORKER_ENV] = saved


def _keep_freed_memory_plugin(distributed: Any) -> Any:
    """Return a worker plugin calling :func:`keep_freed_memory` in every worker (restarted too).

    (Through ``mallopt`` at run time: an environment set before the worker starts would be
    written by Dask's nanny into this process's own environment, too.)
    """

    class KeepFreedMemory(distributed.WorkerPlugin):  # type: ignore[misc]
        name = "trialkit-keep-freed-memory"

        def setup(self, worker: Any) -> None:
            keep_freed_memory()

    return KeepFreedMemory()


class DaskBackend:
    """Run tasks on a Dask cluster: a new local one (``workers``) or an existing ``scheduler``.

    Parameters
    ----------
    workers : int, optional
        Start a ``distributed.LocalCluster`` of this many single-threaded worker processes.
    scheduler : str, optional
        Address of an existing cluster's scheduler, e.g. ``tcp://127.0.0.1:8786``.
    timeout : float
        Seconds to wait for the scheduler.
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None,
                 timeout: float = 30.0):
        try:
            import distributed
        except ImportError:  # pragma: no cover - dask is a dependency
            raise TrialkitError("running on Dask needs the package dask[distributed] — "
                                "install it", param="dask") from None
        logging.getLogger("distributed").setLevel(logging.ERROR)
        self._cluster: Any = None
        self._imported: set[str] = set()
        if scheduler is None:
            self._cluster = _local_cluster(distributed, workers or 2)
            address = self._cluster.scheduler_address
        else:
            address = scheduler
        try:
            self._client: Any = distributed.Client(  # type: ignore[no-untyped-call]
                address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise TrialkitError(f"cannot reach the Dask scheduler at {address} ({exc}) — start "
                                "it, or check the address", param="scheduler") from None
        self.workers = len(self._client.scheduler_info().get("workers", {}))
        if scheduler is None:  # workers started here keep freed memory, as pool workers do
            self._client.register_plugin(_keep_freed_memory_plugin(distributed))
        where = "local Dask cluster" if scheduler is None else f"Dask cluster at {address}"
        self.trimmed = self._trimmed_workers()
        slow = (f"; {self.trimmed} with {SLOW_WORKER_ENV} set, which makes them about 1.7 times "
                "slower — see docs/grids.md" if self.trimmed else "")
        self.name = f"{where} ({self.workers} workers{slow})"

    def _trimmed_workers(self) -> int:
        """Return how many workers run with :data:`SLOW_WORKER_ENV` set."""
        values = self._client.run(os.getenv, SLOW_WORKER_ENV)
        return sum(1 for v in values.values() if v is not None)

    def run(self, tasks: Sequence[Task], done: Done) -> None:
        """Submit every task to the scheduler; hand results back as they finish.

        Every worker first imports the modules of the tasks' functions (once), so the first
        tasks do not wait for imports one after another.
        """
        import distributed

        for module in sorted({t.func.__module__ for t in tasks} - self._imported):
            self._client.run(importlib.import_module, module)
            self._imported.add(module)
        futures = {self._client.submit(t.func, *t.args, key=t.key, pure=False, **t.kwargs): t
                   for t in tasks}
        try:
            finished = distributed.as_completed(  # type: ignore[no-untyped-call]
                list(futures), loop=self._client.loop)
            for fut in finished:
                done(futures[fut], fut.result())
                fut.release()
        except BaseException:
            self._client.cancel(list(futures))
            raise

    def close(self) -> None:
        """Close the client (and the local cluster it started)."""
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def open_backend(jobs: int = 1, dask: str | None = None, scheduler: str | None = None
                 ) -> Backend:
    """Return the backend for ``jobs`` processes, ``dask="local[:N]"`` or a ``scheduler``."""
    if dask is not None and scheduler is not None:
        raise TrialkitError("dask and scheduler both given — start a local cluster or use an "
                            "existing one, not both", param="scheduler")
    if scheduler is not None:
        return DaskBackend(scheduler=scheduler)
    if dask is not None:
        return DaskBackend(workers=parse_dask(dask))
    if not isinstance(jobs, int) or jobs < 1:
        raise TrialkitError(f"jobs = {jobs!r} is invalid — use a whole number of at least 1",
                            param="jobs")
    return InProcess() if jobs == 1 else LocalPool(jobs)
