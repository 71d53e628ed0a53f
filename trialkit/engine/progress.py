"""Progress of long runs: one bar on stderr for every simulation, calibration and grid.

A run reports how many of its units (replicates, evaluations, grid points) are done;
:class:`Progress` draws ``label: 45% (450/1000 replicates) 3s elapsed, ~4s left`` on one line of
stderr. The bar appears only when it is switched on (:func:`show_progress`, which the command
line does unless ``--quiet``), only when stderr is a terminal, and only once the run has lasted
``DELAY`` seconds — short runs, pipes, files and the Python API stay silent.

Runs nest: while a bar is open, :func:`progress_bar` hands back that bar, so a calibration's
bar advances with the replicates of every simulation it runs instead of drawing a bar per
simulation.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from collections.abc import Iterator
from typing import IO

#: Seconds a run lasts before its bar is drawn.
DELAY = 1.0
#: Seconds between redraws.
REFRESH = 0.2

_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("trialkit_progress",
                                                                 default=False)
_ACTIVE: contextvars.ContextVar[Progress | None] = contextvars.ContextVar(
    "trialkit_progress_bar", default=None)


def default_stream() -> IO[str]:
    """Return where bars are drawn: stderr."""
    return sys.stderr


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """A one-line progress bar for ``total`` units of work.

    Parameters
    ----------
    total : int
        Units of work (replicates, evaluations, grid points).
    label : str
        What runs, e.g. ``"simulating"``.
    unit : str
        Name of the units, e.g. ``"replicates"``.
    stream : file, optional
        Where to draw (default: :func:`default_stream`, stderr).
    terminal_only : bool
        Draw only when ``stream`` is a terminal.
    delay : float, optional
        Seconds before the first drawing (default :data:`DELAY`).
    """

    def __init__(self, total: int, label: str, unit: str = "replicates",
                 stream: IO[str] | None = None, terminal_only: bool = True,
                 delay: float | None = None):
        self.total, self.label, self.unit = max(int(total), 1), label, unit
        self.stream = stream if stream is not None else default_stream()
        isatty = getattr(self.stream, "isatty", None)
        self.visible = not terminal_only or bool(isatty and isatty())
        self.delay = DELAY if delay is None else delay
        self.done = 0
        self.start = time.monotonic()
        self._first: tuple[float, int] | None = None   # time and count at the first report
        self._drawn = 0.0
        self._shown = False

    def advance(self, units: int = 1) -> None:
        """Count ``units`` more as done and redraw (at most every :data:`REFRESH` seconds)."""
        now = time.monotonic()
        if self._first is None:
            self._first = (now, self.done)
        self.done = min(self.total, self.done + int(units))
        if self.visible and now - self.start >= self.delay and (
                now - self._drawn >= REFRESH or self.done >= self.total):
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = now - self.start
        pct = int(100 * self.done / self.total)
        line = (f"\r{self.label}: {pct:3d}% ({self.done}/{self.total} {self.unit}) "
                f"{_duration(elapsed)} elapsed")
        first = self._first
        if first is not None and now > first[0] and first[1] < self.done < self.total:
            # the rate since the first report: set-up time (compiling) is not extrapolated
            rate = (now - first[0]) / (self.done - first[1])
            line += f", ~{_duration(rate * (self.total - self.done))} left"
        self.stream.write(line.ljust(78))
        self.stream.flush()
        self._drawn, self._shown = now, True

    def close(self) -> None:
        """End the line once anything was drawn (complete runs show 100%)."""
        if self._shown:
            if self.done < self.total:
                self.done = self.total
                self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


@contextlib.contextmanager
def show_progress(enabled: bool = True) -> Iterator[None]:
    """Switch progress bars on (or off) for the runs inside the ``with`` block."""
    token = _ENABLED.set(enabled)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def progress_enabled() -> bool:
    """Whether progress bars are switched on here."""
    return _ENABLED.get()


@contextlib.contextmanager
def progress_bar(total: int, label: str, unit: str = "replicates") -> Iterator[Progress | None]:
    """Open a bar for ``total`` units while progress is switched on; yields ``None`` otherwise.

    Inside an open bar this yields that bar (the outer run counts the inner run's units).
    """
    active = _ACTIVE.get()
    if active is not None:
        yield active
        return
    if not _ENABLED.get():
        yield None
        return
    bar = Progress(total, label, unit)
    token = _ACTIVE.set(bar)
    try:
        yield bar
    finally:
        _ACTIVE.reset(token)
        bar.close()


def advance(bar: Progress | None, units: int = 1) -> None:
    """Advance ``bar`` by ``units`` (nothing when there is no bar)."""
    if bar is not None:
        bar.advance(units)
