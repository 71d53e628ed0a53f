"""Run a grid of designs × settings and summarise it as one tidy table, resumably.

:func:`run_grid` cuts every cell's replicates into batches (the kind's batch size, or the grid's
``batch``; never a function of the backend), runs the batches not yet stored on a backend of
:mod:`trialkit.engine.backends` (this process, a local pool or Dask) and stores each finished
batch in a :class:`GridStore` — a folder next to the output (``OUT.parts``) holding one file per
batch, written under a temporary name and renamed into place, so an interrupted run (Ctrl-C, a
killed client, a lost worker) keeps what was finished and the next run with the same output
resumes from there. ``grow`` adds replicates to every cell. The table is then computed from the
stored replicates in replicate order, so a resumed, grown or distributed run gives exactly the
table of a fresh run of the same total.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from trialkit.constants import MAX_REPS, VERSION
from trialkit.design.grid import SCENARIO_AXIS, Cell, GridSpec
from trialkit.engine.backends import Backend, InProcess, Task
from trialkit.engine.progress import progress_bar
from trialkit.engine.runner import one_blas_thread, replicate_batches
from trialkit.errors import TrialkitError
from trialkit.results import Result, hidden
from trialkit.study.cells import cell_replicates, default_batch

STORE_FORMAT = "trialkit-grid-parts/1"
_PART = re.compile(r"^c(\d+)_(\d+)_(\d+)\.npz$")
#: Output extensions a grid table may have.
TABLE_FORMATS = (".parquet", ".csv")


class GridStore:
    """The finished batches of a grid: ``manifest.json`` and one ``cC_START_STOP.npz`` per batch.

    Parameters
    ----------
    folder : str
        The store's folder (created when needed).
    """

    def __init__(self, folder: str):
        self.folder = folder

    @staticmethod
    def beside(out: str) -> GridStore:
        """Return the store kept next to the output table ``out`` (``OUT.parts``)."""
        return GridStore(os.fspath(out) + ".parts")

    def _write(self, name: str, write: Any) -> None:
        os.makedirs(self.folder, exist_ok=True)
        final = os.path.join(self.folder, name)
        tmp = f"{final}.tmp{os.getpid()}"
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)

    def manifest(self) -> dict[str, Any] | None:
        """Return the stored manifest (``None`` for a new store)."""
        path = os.path.join(self.folder, "manifest.json")
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as fh:
                data: dict[str, Any] = json.load(fh)
        except (OSError, json.JSONDecodeError) as exc:
            raise TrialkitError(f"{path}: cannot be read ({exc}) — delete {self.folder} to "
                                "start the grid afresh", param="out") from None
        if data.get("format") != STORE_FORMAT:
            raise TrialkitError(f"{self.folder} is not a trialkit grid store — choose another "
                                "output path", param="out")
        return data

    def open(self, grid: GridSpec, grow: int) -> int:
        """Check the store belongs to ``grid``, record the replicates wanted; return them."""
        old = self.manifest()
        fingerprint = grid.fingerprint()
        if old is not None and old.get("fingerprint") != fingerprint:
            raise TrialkitError(f"{self.folder} holds replicates of another grid (designs, "
                                "cells, seed or batch differ) — choose another output path, or "
                                f"delete {self.folder} to start afresh", param="out")
        reps = max(grid.reps, int(old["reps"]) if old else 0) + grow
        if reps > MAX_REPS:
            raise TrialkitError(f"{reps} replicates per cell are more than {MAX_REPS:,} — grow "
                                "by less", param="grow")
        text = json.dumps({"format": STORE_FORMAT, "grid": grid.name, "fingerprint": fingerprint,
                           "reps": reps}, indent=1).encode()
        self._write("manifest.json", lambda fh: fh.write(text))
        return reps

    def parts(self) -> dict[int, list[range]]:
        """Return the stored batches, per cell, in replicate order."""
        out: dict[int, list[range]] = {}
        names = os.listdir(self.folder) if os.path.isdir(self.folder) else []
        for name in names:
            m = _PART.match(name)
            if m:
                c, a, b = (int(g) for g in m.groups())
                out.setdefault(c, []).append(range(a, b))
        return {c: sorted(r, key=lambda x: x.start) for c, r in out.items()}

    def put(self, cell: int, reps: range, arrays: dict[str, np.ndarray]) -> None:
        """Store the metrics of replicates ``reps`` of ``cell`` (atomically)."""
        name = f"c{cell:06d}_{reps.start:010d}_{reps.stop:010d}.npz"
        self._write(name, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]

    def load(self, cell: int, ranges: list[range], reps: int) -> dict[str, np.ndarray]:
        """Return the metrics of replicates ``0 … reps − 1`` of ``cell``, in replicate order."""
        chunks: list[dict[str, np.ndarray]] = []
        for r in ranges:
            name = f"c{cell:06d}_{r.start:010d}_{r.stop:010d}.npz"
            with np.load(os.path.join(self.folder, name)) as data:
                chunks.append({k: data[k] for k in data.files})
        return {k: np.concatenate([c[k] for c in chunks])[:reps] for k in chunks[0]}


def missing(ranges: list[range], reps: int) -> list[range]:
    """Replicate intervals of ``0 … reps − 1`` not covered by ``ranges`` (sorted, disjoint).

    Examples
    --------
    >>> missing([range(0, 5), range(8, 10)], 12)
    [range(5, 8), range(10, 12)]
    """
    out, at = [], 0
    for r in ranges:
        if r.start > at:
            out.append(range(at, min(r.start, reps)))
        at = max(at, r.stop)
    if at < reps:
        out.append(range(at, reps))
    return [r for r in out if len(r)]


@dataclass(frozen=True)
class GridResult(Result):
    """A grid's operating characteristics: one row per cell and metric (``rows``).

    Each row has the grid, the cell, its design (label, kind, outcome, scenario), one column per
    axis, whether the cell averages over a design prior (``assurance``, with ``prior``), the
    replicates, the cell's seed, the metric, its estimate (the mean over replicates) and its Monte
    Carlo standard error (``sqrt(var / reps)``).
    """

    primary: ClassVar[str | None] = "rows"

    grid: str
    title: str
    seed: int
    reps: int
    cells: int
    axes: list[str]
    rows: list[dict[str, Any]]
    version: str = VERSION
    backend: str = hidden("")
    computed: int = hidden(0)
    seconds: float = hidden(0.0)

    def to_frame(self, key: str | None = None) -> Any:
        """Return the tidy table as a pandas DataFrame (axis columns: numbers or JSON text)."""
        import pandas as pd

        frame = pd.DataFrame(self.rows, columns=_columns(self.axes))
        for col in self.axes:
            values = [v for v in frame[col] if v is not None]
            if values and all(isinstance(v, float) for v in values):
                frame[col] = frame[col].astype(float)
        return frame

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the table as Parquet or CSV (by extension), atomically."""
        path = os.fspath(path)
        frame = self.to_frame()
        tmp = f"{path}.tmp{os.getpid()}"
        if path.lower().endswith(".parquet"):
            frame.to_parquet(tmp, index=False)
        elif path.lower().endswith(".csv"):
            frame.to_csv(tmp, index=False)
        else:
            raise TrialkitError(f"{path}: a grid table is written as "
                                + " or ".join(TABLE_FORMATS) + " — use one of these "
                                "extensions", param="out")
        os.replace(tmp, path)
        return path


def _columns(axes: list[str]) -> list[str]:
    return ["grid", "cell", "design", "kind", "outcome", "scenario", *axes, "assurance",
            "prior", "reps", "seed", "metric", "estimate", "mc_se"]


def _plain(value: Any) -> Any:
    return json.dumps(list(value)) if isinstance(value, tuple) else value


def _cell_rows(grid: GridSpec, cell: Cell, axes: list[str], arrays: dict[str, np.ndarray],
               reps: int) -> list[dict[str, Any]]:
    settings = dict(cell.settings)
    base = {"grid": grid.name, "cell": cell.index, "design": cell.design.label,
            "kind": cell.design.kind, "outcome": cell.design.outcome, "scenario": cell.scenario,
            **{a: _plain(settings.get(a)) for a in axes}, "assurance": cell.assurance,
            "prior": "; ".join(f"{p.key} ~ {p.describe()}" for p in cell.design.priors)
            if cell.assurance else None, "reps": reps, "seed": cell.seed(grid.seed)}
    rows = []
    for metric, values in arrays.items():
        mean = float(np.mean(values))
        rows.append({**base, "metric": metric, "estimate": mean,
                     "mc_se": float(np.sqrt(np.mean((values - mean) ** 2) / values.size))})
    return rows


def _plan(grid: GridSpec, cells: list[Cell], store: GridStore, reps: int) -> list[Task]:
    """Return the batches still to run, cut at multiples of each cell's batch."""
    stored = store.parts()
    tasks = []
    for cell in cells:
        batch = grid.batch or default_batch(cell)
        seed = cell.seed(grid.seed)
        for gap in missing(stored.get(cell.index, []), reps):
            for r in replicate_batches(len(gap), start=gap.start, batch=batch):
                tasks.append(Task(f"grid-{grid.name}-c{cell.index}-{r.start}-{r.stop}",
                                  cell_replicates, (r,), {"cell": cell, "seed": seed}))
    return tasks


def run_grid(grid: GridSpec, out: str, backend: Backend | None = None,
             grow: int = 0) -> GridResult:
    """Run (or resume, or grow) ``grid``, storing batches next to ``out``; return its table.

    Parameters
    ----------
    grid : GridSpec
        From :func:`trialkit.design.grid.load_grid`.
    out : str
        The output table's path; finished batches are kept in ``out + ".parts"`` and reused by
        the next run with the same ``out``.
    backend : Backend, optional
        Where batches run (default: this process).
    grow : int
        Replicates to add to every cell beyond those stored (or the grid's ``reps``).
    """
    if not isinstance(grow, int) or grow < 0:
        raise TrialkitError(f"grow = {grow!r} is invalid — use a whole number ≥ 0", param="grow")
    backend = backend or InProcess()
    store = GridStore.beside(out)
    reps = store.open(grid, grow)
    cells = grid.cells()
    start = time.perf_counter()
    tasks = _plan(grid, cells, store, reps)
    todo = sum(len(t.args[0]) for t in tasks)
    _run(backend, tasks, store, cells, todo)
    stored = store.parts()
    axes = list(dict.fromkeys(k for d in grid.designs for k, _ in d.axes
                              if k != SCENARIO_AXIS))
    rows: list[dict[str, Any]] = []
    for cell in cells:
        ranges = stored.get(cell.index, [])
        rows += _cell_rows(grid, cell, axes, store.load(cell.index, ranges, reps), reps)
    return GridResult(grid=grid.name, title=grid.title, seed=grid.seed, reps=reps,
                      cells=len(cells), axes=axes, rows=rows, backend=backend.name,
                      computed=todo, seconds=time.perf_counter() - start)


def _run(backend: Backend, tasks: list[Task], store: GridStore, cells: list[Cell],
         todo: int) -> None:
    """Run ``tasks`` on ``backend``, storing each batch as it finishes; advance the bar."""
    if not tasks:
        return
    left = {c.index: 0 for c in cells}
    for t in tasks:
        left[t.kwargs["cell"].index] += 1
    finished_cells = sum(1 for v in left.values() if v == 0)
    with progress_bar(todo, f"grid: {finished_cells}/{len(cells)} cells") as bar:

        def done(task: Task, arrays: dict[str, np.ndarray]) -> None:
            nonlocal finished_cells
            cell = task.kwargs["cell"].index
            store.put(cell, task.args[0], arrays)
            left[cell] -= 1
            finished_cells += left[cell] == 0
            if bar is not None:
                bar.label = f"grid: {finished_cells}/{len(cells)} cells"
                bar.advance(len(task.args[0]))

        with one_blas_thread():  # this process and the pool processes it forks
            backend.run(tasks, done)
