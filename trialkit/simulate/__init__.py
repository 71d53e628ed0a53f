"""Deprecated: the simulation engine is :mod:`trialkit.engine` (this alias goes in 0.3)."""

import sys
import warnings

from trialkit.engine import (
    ReplicateStreams,
    replicate_rngs,
    replicate_seeds,
    run_replicates,
)
from trialkit.engine import runner as _runner
from trialkit.engine import streams as _streams

__all__ = ["ReplicateStreams", "replicate_rngs", "replicate_seeds", "run_replicates"]

warnings.warn("trialkit.simulate is deprecated — import trialkit.engine instead",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__ + ".engine"] = _runner
sys.modules[__name__ + ".streams"] = _streams
