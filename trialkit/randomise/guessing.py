"""Selection-bias metrics: correct guesses under the convergence strategy (Blackwell–Hodges).

An observer who knows the block boundaries guesses, for each next allocation, the arm with
fewer allocations so far in the current block (a fair coin when tied). With two arms and permuted
blocks of fixed size ``b`` the expected proportion of correct guesses is 0.750 (b=2), 0.708 (b=4),
0.683 (b=6), 0.666 (b=8); complete randomisation gives 0.5 (Rosenberger & Lachin,
*Randomization in Clinical Trials*, 2nd ed., §8.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from itertools import combinations


def convergence_guess_credit(sequence: Sequence[int]) -> Fraction:
    """Expected correct guesses (exact) for one two-arm block ``sequence`` of 0/1 arms."""
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
    """Expected proportion of correct convergence guesses over an allocated two-arm sequence.

    ``block_starts`` are the indices where blocks begin (the observer's knowledge).
    """
    starts = sorted(set(block_starts) | {0})
    bounds = [*starts, len(arms)]
    credit = Fraction(0)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        credit += convergence_guess_credit(arms[a:b])
    return float(credit / len(arms))
