"""Group commit: the writes to one trial that arrive together share one transaction.

Each trial gets one writer thread per server process. Requests queue for it; it takes everything
queued (up to :data:`MAX_BATCH`), runs each request as a savepoint of one transaction
(:meth:`Trial.run_batch`) and commits once: one lock and one fsync for the whole batch, while a
request that fails changes nothing and gets its own error. Under load this turns the fsync per
write into an fsync per batch; a lone request waits for nothing.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from trialkit.service.trial import Trial

MAX_BATCH = 128


class Batcher:
    """The writer thread of one trial."""

    def __init__(self, open_trial: Callable[[], Trial], name: str):
        self._open = open_trial
        self._queue: queue.SimpleQueue[tuple[Callable[[Trial], Any], Future]] = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"writer-{name}", daemon=True)
        self._thread.start()

    def submit(self, call: Callable[[Trial], Any]) -> Future:
        """Queue ``call(trial)``; the future holds its result or its error."""
        future: Future = Future()
        self._queue.put((call, future))
        return future

    def _run(self) -> None:
        trial: Trial | None = None
        while True:
            items = [self._queue.get()]
            while len(items) < MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                trial = trial or self._open()
                bound = trial
                outcomes = bound.run_batch([functools.partial(call, bound) for call, _ in items])
            except BaseException as exc:
                if trial is not None:
                    trial.close()
                trial = None
                for _, future in items:
                    future.set_exception(exc)
                continue
            for (_, future), (ok, value) in zip(items, outcomes, strict=True):
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
