"""Context trajectories from data: participants resampled into a simulated adaptive MRT.

A designer who has context data from an earlier study (stress, step counts, time since the last
app use — the data Oralytics built its simulation environment from) can simulate an adaptive MRT
on them instead of on the declared ``[context.NAME]`` distributions. The table has one row per
participant and decision point: ``participant``, ``decision_point`` (1 … the design's decision
points, each once per participant) and one column per declared context variable. Each simulated
participant takes the whole trajectory of one participant of the table, drawn with replacement
from the replicate's own stream, so the joint distribution over time and across variables is the
data's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialkit.errors import DataError
from trialkit.tables import numeric_column, row_number

#: The key columns of a table of context trajectories.
KEY_COLUMNS = ("participant", "decision_point")


@dataclass(frozen=True)
class ContextTrajectories:
    """Context trajectories of ``values.shape[0]`` participants: (participants, points, variables).

    ``names`` are the design's context variables in its order; ``participants`` the table's ids.
    """

    values: np.ndarray
    names: tuple[str, ...]
    participants: tuple[str, ...]

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Trajectories of ``n`` simulated participants, resampled with replacement."""
        return self.values[rng.integers(0, self.values.shape[0], size=n)]

    def means(self) -> np.ndarray:
        """Return the expected context at each decision point under resampling (points × vars)."""
        return self.values.mean(axis=0)

    def summary(self) -> dict:
        """Describe the source for a result."""
        return {"source": "trajectories resampled by participant",
                "participants": len(self.participants),
                "decision_points": int(self.values.shape[1]), "variables": list(self.names)}


def context_trajectories(design, table) -> ContextTrajectories:
    """Check a table of context trajectories against an MRT ``design`` and return them.

    Parameters
    ----------
    design : MrtDesign
        An MRT with ``[context.NAME]`` variables (a design with a ``[policy]``).
    table : pandas.DataFrame
        One row per participant and decision point: ``participant``, ``decision_point`` and one
        column per context variable of the design.

    Raises
    ------
    DataError
        A column missing or not a context variable, a decision point outside 1 … the design's
        decision points, a participant without every decision point or with one twice, a
        non-numeric, missing or infinite value, or a value of a ``bernoulli`` variable other than
        0 or 1 — each named with its column (and row).
    """
    names = tuple(c.name for c in design.context)
    if not names:
        raise DataError("the design declares no [context.NAME] variables — context trajectories "
                        "need a design whose policy reads context", param="contexts")
    _check_columns(table, names)
    n_points = design.schedule.n_decision_points
    person, point, people = _cells(table, n_points)
    values = np.empty((people.size, n_points, len(names)))
    for j, var in enumerate(design.context):
        col = numeric_column(table, var.name, "context table")
        if var.distribution == "bernoulli" and not np.isin(col, (0.0, 1.0)).all():
            i = int(np.argmax(~np.isin(col, (0.0, 1.0))))
            raise DataError(f"context table column {var.name!r} has the value {col[i]:g} at row "
                            f"{row_number(table, i)}, but {var.name} is a bernoulli variable — "
                            "use 0 or 1", param="contexts")
        values[person, point, j] = col
    return ContextTrajectories(values, names, tuple(people.tolist()))


def _check_columns(table, names: tuple[str, ...]) -> None:
    """Refuse a table without the key and context columns, with other columns, or no rows."""
    columns = [str(c) for c in table.columns]
    missing = [c for c in (*KEY_COLUMNS, *names) if c not in columns]
    if missing:
        raise DataError(f"the context table has no column {', '.join(repr(m) for m in missing)} "
                        f"— it needs {', '.join(KEY_COLUMNS + names)}", param="contexts")
    extra = [c for c in columns if c not in (*KEY_COLUMNS, *names)]
    if extra:
        raise DataError(f"the context table has column(s) {', '.join(repr(c) for c in extra)} "
                        f"that are not context variables of the design (declared: "
                        f"{', '.join(names)}) — remove them or declare them as [context.NAME]",
                        param="contexts")
    if len(table) == 0:
        raise DataError("the context table has no rows — give one row per participant and "
                        "decision point", param="contexts")


def _cells(table, n_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's participant (index) and decision point (0-based), and the participants.

    Every participant must have each decision point 1 … ``n_points`` exactly once.
    """
    point = numeric_column(table, "decision_point", "context table")
    bad = (point != np.round(point)) | (point < 1) | (point > n_points)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"context table column 'decision_point' has the value {point[i]:g} at row "
                        f"{row_number(table, i)} — use whole numbers 1 … {n_points} (the "
                        "design's decision points)", param="contexts")
    blank = table["participant"].isna().to_numpy() | (
        table["participant"].astype(str).str.strip() == "").to_numpy()
    if blank.any():
        i = int(np.argmax(blank))
        raise DataError(f"context table column 'participant' is empty at row "
                        f"{row_number(table, i)} — give every row a participant id",
                        param="contexts")
    ids = table["participant"].astype(str).to_numpy()
    people, person = np.unique(ids, return_inverse=True)
    index = point.astype(np.int64) - 1
    counts = np.bincount(person * n_points + index,
                         minlength=people.size * n_points).reshape(people.size, n_points)
    if (counts != 1).any():
        who, where = np.argwhere(counts != 1)[0]
        what = "twice" if counts[who, where] > 1 else "not at all"
        raise DataError(f"participant {people[who]!r} has decision point {where + 1} {what} in "
                        f"the context table — give every participant each of the "
                        f"{n_points} decision points once", param="contexts")
    return person, index, people
