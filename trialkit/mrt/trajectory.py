"""Trajectories over study days (constant, linear, quadratic) as used by MRT sample-size formulas.

A trajectory is given by its mean over the study days, its value on day 1 (``initial``) and, for a
quadratic, the day of its extremum. The parameterisation is that of Liao et al. (2016) and the R
package ``MRTSampleSize``: values are constant within a day, the linear trajectory runs from
``initial`` on day 1 to ``2·mean − initial`` on the last day, and the quadratic
``initial + b·s + c·s²`` (``s`` = day − 1) has mean ``mean`` over the days and a stationary point at
``extremum_day``.
"""

from __future__ import annotations

import numpy as np

from trialkit.constants import TRAJECTORY_SHAPES as SHAPES
from trialkit.errors import TrialkitError

DIMENSION = {"constant": 1, "linear": 2, "quadratic": 3}


def trajectory_by_day(shape: str, mean: float, days: int, initial: float | None = None,
                      extremum_day: float | None = None) -> np.ndarray:
    """Return the trajectory's value on each day ``1..days`` (array of length ``days``).

    Parameters
    ----------
    shape : {"constant", "linear", "quadratic"}
        Form of the trajectory.
    mean : float
        Average value over the study days.
    days : int
        Number of study days.
    initial : float, optional
        Value on day 1 (linear and quadratic).
    extremum_day : float, optional
        Day of the maximum or minimum (quadratic).
    """
    if shape not in SHAPES:
        raise TrialkitError(f"trajectory shape {shape!r} is unknown — use one of: "
                            + ", ".join(SHAPES))
    if not isinstance(days, int | np.integer) or days < 1:
        raise TrialkitError(f"days {days!r} is invalid — use a whole number of at least 1")
    if shape == "constant" or days == 1:
        return np.full(days, float(mean))
    if initial is None:
        raise TrialkitError(f"a {shape} trajectory needs its initial value — give 'initial'")
    if shape == "linear":
        return np.linspace(initial, 2.0 * mean - initial, days)
    if extremum_day is None:
        raise TrialkitError("a quadratic trajectory needs the day of its extremum — give "
                            "'extremum_day'")
    if days < 3:
        raise TrialkitError(f"a quadratic trajectory needs at least 3 days, not {days} — use a "
                            "linear or constant shape")
    s = np.arange(days, dtype=float)
    # b + 2c(extremum_day − 1) = 0 (stationary point) and Σ_s (b s + c s²) = days·(mean − initial).
    mat = np.array([[1.0, 2.0 * (extremum_day - 1.0)], [s.sum(), (s ** 2).sum()]])
    b, c = np.linalg.solve(mat, np.array([0.0, (mean - initial) * days]))
    return initial + b * s + c * s ** 2


def expand_days(by_day: np.ndarray, decisions_per_day: int) -> np.ndarray:
    """Repeat day values for every decision point of the day (length days × decisions_per_day)."""
    return np.repeat(np.asarray(by_day, dtype=float), decisions_per_day)


def day_basis(days: int, decisions_per_day: int, dimension: int) -> np.ndarray:
    """Polynomial basis ``(1, s, s², ...)`` in the day index ``s = day − 1``, a row per decision.

    This is the ``Z_t`` of Liao et al. (2016): ``dimension`` columns (1 constant, 2 linear,
    3 quadratic); the treatment-effect trajectory lies in its span.
    """
    s = np.repeat(np.arange(days, dtype=float), decisions_per_day)
    return np.column_stack([s ** j for j in range(dimension)])


def basis_matrix(terms, days: int, decisions_per_day: int) -> np.ndarray:
    """Evaluate basis terms (``"1"``, ``"t"``, ``"t^2"``, ``"day"``, …) at every decision point.

    ``t`` is the decision point 1..T of the whole study and ``day`` the study day 1..D; returns a
    (T × len(terms)) matrix, one row per decision point.
    """
    t = np.arange(1, days * decisions_per_day + 1, dtype=float)
    variables = {"t": t, "day": np.repeat(np.arange(1, days + 1, dtype=float), decisions_per_day)}
    columns = []
    for term in terms:
        if term == "1":
            columns.append(np.ones_like(t))
            continue
        name, _, power = term.partition("^")
        if name not in variables:
            raise TrialkitError(f"basis term {term!r} is unknown — use \"1\", \"t\", \"day\" "
                                "or a power such as \"t^2\"")
        columns.append(variables[name] ** (int(power) if power else 1))
    return np.column_stack(columns)


def trajectory_values(traj, days: int, decisions_per_day: int, log_scale: bool = False
                      ) -> np.ndarray:
    """Return a design trajectory's value at every decision point (length days × per day).

    A basis trajectory is ``basis_matrix @ coefficients``; with ``log_scale`` (the baseline of a
    binary outcome) its exponential.
    """
    if traj.shape == "basis":
        values = basis_matrix(traj.basis, days, decisions_per_day) @ np.asarray(
            traj.coefficients, dtype=float)
        return np.exp(values) if log_scale else values
    return expand_days(trajectory_by_day(traj.shape, traj.mean, days, traj.initial,
                                         traj.extremum_day), decisions_per_day)


def trajectory_basis(traj, days: int, decisions_per_day: int) -> np.ndarray:
    """Return the basis the trajectory lies in, a row per decision point.

    A shape's basis is :func:`day_basis` of its dimension (Liao et al. 2016); a basis
    trajectory's is its own terms.
    """
    if traj.shape == "basis":
        return basis_matrix(traj.basis, days, decisions_per_day)
    return day_basis(days, decisions_per_day, DIMENSION[traj.shape])
