"""Names and choices defined once for the whole package (design files, library and CLI).

Every module that accepts one of these choices imports it from here; the design-file reader, the
library functions and the command-line options therefore always agree.
"""

from __future__ import annotations

from typing import Final

#: trialkit's version (also ``trialkit.__version__``).
VERSION: Final = "0.1.0"

# -- factorial designs -------------------------------------------------------------------------
#: How participants are randomised: individuals, individuals within clusters, or whole clusters.
ASSIGNMENTS: Final = ("independent", "within", "between")
#: How a pretest enters the analysis.
PRETESTS: Final = ("none", "covariate", "repeated")
#: Multiplicity adjustments of the planned analysis.
ADJUSTMENTS: Final = ("none", "holm", "bonferroni")
#: Outcome types of factorial and adaptive designs.
OUTCOME_TYPES: Final = ("continuous", "binary")
#: The largest number of participants, clusters or cluster members a calculation accepts.
MAX_SAMPLE: Final = 10**9

# -- simulation ----------------------------------------------------------------------------------
#: The most replicates (simulated trials) one run may have: `--reps` and every library function.
MAX_REPS: Final = 10_000_000

# -- MRT designs ---------------------------------------------------------------------------------
#: Shapes of a trajectory over study days.
TRAJECTORY_SHAPES: Final = ("constant", "linear", "quadratic")

# -- adaptive designs ---------------------------------------------------------------------------
#: How posterior probabilities are computed: from posterior draws or by quadrature.
POSTERIOR_METHODS: Final = ("draws", "exact")
#: Arm selection for trials without a superior arm (plus :data:`LIST_SELECTION`).
SELECTION: Final = ("none", "best", "control", "final control", "control or best")
#: Arm selection by a list of preferred arms.
LIST_SELECTION: Final = ("list", "list or best")
#: Allocation rules of a common control.
CONTROL_ALLOCATION: Final = ("none", "fixed", "sqrt-based", "match")
#: What is rescaled after arms are dropped.
RESCALE: Final = ("none", "fixed", "limits", "both")

# -- output ------------------------------------------------------------------------------------
#: Output formats of every command.
FORMATS: Final = ("table", "json", "csv")
#: Extensions of the data tables trialkit writes (CSV or Parquet).
TABLE_FORMATS: Final = (".csv", ".parquet", ".pq")
