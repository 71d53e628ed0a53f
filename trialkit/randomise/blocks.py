"""Permuted blocks with randomly chosen block sizes and arm ratios, and complete randomisation."""

from __future__ import annotations

from collections.abc import Sequence

from trialkit.randomise._stream import KeyedStream


def check_ratio(ratio: Sequence[int], block_sizes: Sequence[int] = ()) -> int:
    """Check an allocation ratio (and block sizes) and return the ratio total."""
    if not ratio or any(int(r) != r or r < 1 for r in ratio):
        raise ValueError(f"ratio {list(ratio)} must be positive whole numbers")
    unit = int(sum(ratio))
    for size in block_sizes:
        if size < 1 or size % unit:
            raise ValueError(f"block size {size} is not a positive multiple of the ratio "
                             f"total {unit}")
    return unit


def block_from_stream(stream: KeyedStream, block_sizes: Sequence[int],
                      ratio: Sequence[int]) -> tuple[int, ...]:
    """Draw one permuted block (arm indices) from ``stream``.

    The size is drawn uniformly from ``block_sizes``; the block holds
    ``ratio[j] * size / sum(ratio)`` copies of arm ``j`` in a uniformly random order
    (Fisher–Yates shuffle).
    """
    unit = check_ratio(ratio, block_sizes)
    size = block_sizes[stream.below(len(block_sizes))] if len(block_sizes) > 1 else block_sizes[0]
    items = [arm for arm, r in enumerate(ratio) for _ in range(r * size // unit)]
    for i in range(len(items) - 1, 0, -1):
        j = stream.below(i + 1)
        items[i], items[j] = items[j], items[i]
    return tuple(items)


def permuted_block(key: bytes, trial: str, stratum: str, block_no: int,
                   block_sizes: Sequence[int], ratio: Sequence[int]) -> tuple[int, ...]:
    """Block number ``block_no`` of ``stratum`` in ``trial``: a pure function of the key.

    Parameters
    ----------
    key : bytes
        The trial's secret key.
    trial, stratum : str
        Names the stream (each stratum has its own sequence of blocks).
    block_no : int
        0-based block number within the stratum.
    block_sizes : sequence of int
        Sizes to choose from (each a multiple of ``sum(ratio)``).
    ratio : sequence of int
        Allocation ratio per arm.

    Returns
    -------
    tuple of int
        Arm indices (0-based) in allocation order.
    """
    stream = KeyedStream(key, "block", trial, stratum, block_no)
    return block_from_stream(stream, block_sizes, ratio)


def block_sequence(key: bytes, trial: str, stratum: str, n: int, block_sizes: Sequence[int],
                   ratio: Sequence[int]) -> list[tuple[int, int, int]]:
    """Return the first ``n`` allocations of a stratum as ``(arm, block_no, position)`` triples."""
    out: list[tuple[int, int, int]] = []
    block_no = 0
    while len(out) < n:
        block = permuted_block(key, trial, stratum, block_no, block_sizes, ratio)
        out += [(arm, block_no, pos) for pos, arm in enumerate(block)]
        block_no += 1
    return out[:n]


def arm_from_uniform(u: float, weights: Sequence[float]) -> int:
    """Index chosen by the uniform draw ``u`` with probabilities proportional to ``weights``."""
    total = float(sum(weights))
    acc = 0.0
    for j, w in enumerate(weights):
        acc += w / total
        if u < acc:
            return j
    return len(weights) - 1


def complete_draw(key: bytes, trial: str, sequence: int, ratio: Sequence[int]) -> tuple[int, float]:
    """Complete randomisation of enrolment ``sequence``: ``(arm, u)`` with P(arm j) ∝ ratio[j]."""
    u = KeyedStream(key, "complete", trial, sequence).uniform()
    return arm_from_uniform(u, ratio), u
