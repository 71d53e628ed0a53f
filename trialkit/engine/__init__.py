"""The simulation engine shared by every kind: seeded streams per replicate, batches, workers.

It knows no design kind: each kind hands it a *replicate generator* (a function of a range of
replicate indices) and gets the replicates back in order.
"""

from trialkit.engine.progress import Progress, progress_bar, show_progress
from trialkit.engine.runner import (
    check_reps,
    memory_batch,
    replicate_batches,
    replicate_rngs,
    replicate_seeds,
    run_replicates,
)
from trialkit.engine.streams import ReplicateStreams

__all__ = ["Progress", "ReplicateStreams", "check_reps", "memory_batch", "progress_bar",
           "replicate_batches", "replicate_rngs", "replicate_seeds", "run_replicates",
           "show_progress"]
