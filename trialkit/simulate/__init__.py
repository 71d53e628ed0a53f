"""The simulation engine shared by every kind: seeds per replicate, chunks and worker processes."""

from trialkit.simulate.engine import replicate_rngs, replicate_seeds, run_replicates
from trialkit.simulate.streams import ReplicateStreams

__all__ = ["ReplicateStreams", "replicate_rngs", "replicate_seeds", "run_replicates"]
