"""Resource comparison of experimental approaches (Collins, Dziak & Li 2009; MOST RelativeCosts1).

For k factors and a target standardised effect d (two-sided α = 0.05, power 0.8), a two-group
comparison needs ``n* = ceil(2 (z_0.8 + z_0.975)² / d²)`` participants per group. Then:

- separate experiments: k two-arm trials, ``2k·n*`` participants in ``2k`` conditions;
- single factor: k arms plus a control, ``(k + 1)·n*`` participants in ``k + 1`` conditions;
- complete factorial: ``2^k`` conditions, ``2n*`` participants rounded up to a multiple of 2^k;
- fractional factorial: the smallest fraction of the requested resolution, ``2n*`` rounded up to a
  multiple of its run count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from trialkit.errors import TrialkitError
from trialkit.results import Result

# The normal quantiles as printed in MOST's RelativeCosts1 (power 0.8, two-sided alpha 0.05).
_Z_POWER = 0.841621
_Z_ALPHA = 1.959964


@dataclass(frozen=True)
class CostComparison(Result):
    """Participants, conditions and cost of each approach (:func:`factorial_costs`)."""

    primary: ClassVar[str | None] = "approaches"
    factors: int
    resolution: int
    d_main: float
    n_per_group: int
    cost_per_subject: float
    cost_per_condition: float
    approaches: list[dict[str, Any]]


def _check_costs(factors, d_main, cost_per_subject, cost_per_condition) -> None:
    from trialkit.design.fractions import letters

    if not isinstance(factors, int) or factors < 2:
        raise TrialkitError(f"factors = {factors!r} is invalid — use a whole number of at least "
                            "2", param="factors")
    letters(factors)
    if not (math.isfinite(d_main) and d_main >= 0.01):
        raise TrialkitError(f"d_main = {d_main!r} is too small — use a standardised effect of "
                            "at least 0.01, e.g. 0.2", param="d_main")
    for name, value in (("cost_per_subject", cost_per_subject),
                        ("cost_per_condition", cost_per_condition)):
        if not (math.isfinite(value) and value >= 0):
            raise TrialkitError(f"{name} = {value!r} is negative — use a cost of 0 or more",
                                param=name)


def factorial_costs(
    factors: int, resolution: int = 4, d_main: float = 0.2, *, cost_per_subject: float = 1.0,
    cost_per_condition: float = 0.0,
) -> CostComparison:
    """Participants, conditions and total cost of four ways to screen ``factors`` components.

    Parameters
    ----------
    factors : int
        Number of components (2 … 26).
    resolution : int
        Resolution of the fractional factorial compared (3 … factors).
    d_main : float
        Smallest standardised main effect to detect with power 0.8 at two-sided α 0.05.
    cost_per_subject, cost_per_condition : float
        Cost of one participant and overhead of running one condition; total cost is
        ``subjects·cost_per_subject + conditions·cost_per_condition``.

    Returns
    -------
    CostComparison
        ``n_per_group`` and ``approaches``: one record per approach with ``subjects``,
        ``conditions``, ``subjects_per_condition`` and ``total_cost``; the fraction record also
        names its ``generators``.

    Examples
    --------
    >>> [a["subjects"] for a in factorial_costs(9, 4, 0.2)["approaches"]]
    [7074, 3930, 1024, 800]
    """
    from trialkit.design.fractions import generators_for_resolution, min_runs

    _check_costs(factors, d_main, cost_per_subject, cost_per_condition)
    runs = min_runs(factors, resolution)
    generators = generators_for_resolution(factors, resolution, runs) if runs < 2**factors else ()
    n_star = math.ceil(2 * (_Z_POWER + _Z_ALPHA) ** 2 / d_main**2)
    complete = 2**factors
    rows = [
        ("separate_experiments", f"{factors} separate two-arm experiments",
         2 * factors * n_star, 2 * factors),
        ("single_factor", f"single factor: {factors} arms plus control",
         (factors + 1) * n_star, factors + 1),
        ("complete_factorial", f"complete 2^{factors} factorial",
         math.ceil(2 * n_star / complete) * complete, complete),
        ("fractional_factorial", f"resolution {resolution} fraction in {runs} conditions",
         math.ceil(2 * n_star / runs) * runs, runs),
    ]
    approaches = [{"approach": key, "label": label, "subjects": subjects,
                   "conditions": conditions, "subjects_per_condition": subjects / conditions,
                   "total_cost": subjects * cost_per_subject + conditions * cost_per_condition}
                  for key, label, subjects, conditions in rows]
    approaches[-1]["generators"] = list(generators)
    return CostComparison(factors, resolution, d_main, n_star, cost_per_subject,
                          cost_per_condition, approaches)
