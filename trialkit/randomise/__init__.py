"""Allocation algorithms: pure functions of the trial's secret key and the allocation history.

Nothing here does I/O. Every draw comes from HMAC-SHA256 of the key and a label naming the trial,
stratum, block or decision point (:class:`KeyedStream`), so future allocations exist nowhere until
they are needed, and any past allocation can be recomputed by an auditor holding the key.
"""

from __future__ import annotations

from trialkit.randomise._stream import KeyedStream, keyed_code, keyed_uniform
from trialkit.randomise.blocks import (
    arm_from_uniform,
    block_sequence,
    complete_draw,
    permuted_block,
)
from trialkit.randomise.guessing import convergence_guess_rate, observed_guess_rate
from trialkit.randomise.minimisation import (
    imbalance_scores,
    minimisation_choice,
    simulate_minimisation,
)
from trialkit.randomise.mrt import mrt_draw

__all__ = [
    "KeyedStream", "arm_from_uniform", "block_sequence", "complete_draw",
    "convergence_guess_rate", "imbalance_scores", "keyed_code", "keyed_uniform",
    "minimisation_choice", "mrt_draw", "observed_guess_rate", "permuted_block",
    "simulate_minimisation",
]
