"""Selection-bias metrics: correct guesses under the convergence strategy (Blackwell–Hodges).

An observer who knows the block boundaries guesses, for each next allocation, the arm with
fewer allocations so far in the current block (a fair coin when tied). With two arms and permuted
blocks of fixed size ``b`` the expected proportion of correct guesses is 0.750 (b=2), 0.708 (b=4),
0.683 (b=6), 0.666 (b=8); complete randomisation gives 0.5 (Rosenberger & Lachin,
*Randomization in Clinical Trials*, 2nd ed., §8.4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from functools import lru_cache
from itertools import combinations
from typing import Any


def convergence_guess_credit(sequence: Sequence[int]) -> Fraction:
    """Return the expected correct guesses (exact) for one two-arm block ``sequence`` of 0/1."""
    counts = [0, 0]
    credit = Fraction(0)
    for arm in sequence:
        if counts[0] == counts[1]:
            credit += Fraction(1, 2)
        elif counts[arm] < counts[1 - arm]:
            credit += 1
        counts[arm] += 1
    return credit


def convergence_guess_rate(block_size: int) -> Fraction:
    """Exact expected proportion of correct guesses for two-arm permuted blocks of ``block_size``.

    Enumerates all ``C(b, b/2)`` equally likely blocks.
    """
    if block_size < 2 or block_size % 2:
        raise ValueError("block_size must be an even number ≥ 2")
    total = Fraction(0)
    n = 0
    for ones in combinations(range(block_size), block_size // 2):
        seq = [1 if i in ones else 0 for i in range(block_size)]
        total += convergence_guess_credit(seq)
        n += 1
    return total / (n * block_size)


def observed_guess_rate(arms: Sequence[int], block_starts: Sequence[int]) -> float:
    """Return the expected proportion of correct convergence guesses over a two-arm sequence.

    ``block_starts`` are the indices where blocks begin (the observer's knowledge).
    """
    starts = sorted(set(block_starts) | {0})
    bounds = [*starts, len(arms)]
    credit = Fraction(0)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        credit += convergence_guess_credit(arms[a:b])
    return float(credit / len(arms))


@lru_cache(maxsize=4096)
def _remaining_credit(remaining: tuple[int, ...]) -> Fraction:
    total = sum(remaining)
    if total == 0:
        return Fraction(0)
    credit = Fraction(max(remaining), total)
    for j, r in enumerate(remaining):
        if r and (j == 0 or remaining[j - 1] != r):  # equal counts lead to the same state
            ties = remaining.count(r)
            after = tuple(sorted(remaining[:j] + (r - 1,) + remaining[j + 1:], reverse=True))
            credit += Fraction(r * ties, total) * _remaining_credit(after)
    return credit


def block_guess_credit(counts: Sequence[int]) -> Fraction:
    """Return the expected correct guesses over one block of ``counts[j]`` slots of arm ``j``.

    The observer knows the block's boundaries and composition and every earlier allocation, and
    guesses an arm with the most slots left (the convergence strategy; for equal counts, the arm
    with the fewest allocations so far). Exact, by recursion over the slots left (any number of
    arms and any ratio).
    """
    return _remaining_credit(tuple(sorted((int(c) for c in counts), reverse=True)))


def blocks_guess_rate(ratio: Sequence[int], block_sizes: Sequence[int]) -> Fraction:
    """Exact proportion of correct convergence guesses for permuted blocks of random size.

    Each block's size is drawn uniformly from ``block_sizes``; the observer knows where blocks
    begin (the worst case for concealment), so the rate is the expected correct guesses per block
    over the expected block size.
    """
    unit = sum(ratio)
    credit = sum((block_guess_credit([r * s // unit for r in ratio]) for s in block_sizes),
                 Fraction(0))
    return credit / sum(block_sizes)


def complete_guess_rate(ratio: Sequence[int]) -> Fraction:
    """Correct guesses under complete randomisation: always guess the most likely arm."""
    return Fraction(max(ratio), sum(ratio))


def allocation_guess_rate(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """How predictable a trial's allocations are to an observer who sees every allocation.

    Parameters
    ----------
    cfg : dict
        The trial's allocation settings (``method``, ``ratio``, ``block_sizes``,
        ``preferred_probability``).

    Returns
    -------
    dict
        ``rate`` (expected proportion of correct guesses by the convergence strategy),
        ``chance`` (the rate of always guessing the most likely arm: no selection bias possible)
        and ``basis`` (how the rate was obtained).
    """
    ratio = cfg["ratio"]
    chance = complete_guess_rate(ratio)
    method = cfg["method"]
    if method == "blocks":
        rate = blocks_guess_rate(ratio, cfg["block_sizes"])
        sizes = ", ".join(str(s) for s in cfg["block_sizes"])
        basis = (f"exact: permuted blocks of size {sizes} (drawn uniformly), observer knows "
                 "every past allocation and where blocks begin")
    elif method == "minimisation":
        rate = max(Fraction(cfg["preferred_probability"]).limit_denominator(10**6), chance)
        basis = ("upper bound: an observer who knows every past allocation and the new "
                 "participant's factor levels guesses the arm minimising imbalance, given with "
                 "preferred_probability when it is unique")
    elif method == "adaptive":
        probs = cfg.get("probabilities") or cfg["start_probabilities"]
        chance = rate = Fraction(max(probs)).limit_denominator(10**6)
        basis = ("exact for the probabilities in force: response-adaptive allocation draws "
                 "every allocation independently with them, so guessing the most probable arm "
                 "is the best strategy; the rate changes at every interim")
    else:
        rate = chance
        basis = "exact: complete randomisation, every allocation independent of the past"
    return {"rate": float(rate), "chance": float(chance), "basis": basis}
