"""Full and fractional two-level factorial designs in effect coding (−1/+1).

Factors are lettered A, B, C, … in the order the design file lists them. A fraction 2^(k−p) is
given by p generators such as ``"F = ABCD"``: the first k − p factors form a full factorial and each
generated factor's column is the product of the named columns.
"""

from __future__ import annotations

import itertools
import string

import numpy as np

from trialkit.errors import TrialkitError

LETTERS = string.ascii_uppercase


def letters(k: int) -> str:
    """Return the letters naming ``k`` factors (A, B, …)."""
    if not 2 <= k <= len(LETTERS):
        raise TrialkitError(f"{k} factors is unsupported — use between 2 and {len(LETTERS)} factors")
    return LETTERS[:k]


def full_factorial(k: int) -> np.ndarray:
    """Return the 2^k × k matrix of ±1 codes in standard (Yates) order, first factor fastest."""
    letters(k)
    rows = np.array(list(itertools.product((-1, 1), repeat=k)), dtype=np.int8)
    return rows[:, ::-1].copy()


def parse_generator(text: str, k: int) -> tuple[int, tuple[int, ...]]:
    """Parse ``"F = ABCD"`` (or ``"F=-ABCD"``) into (generated index, base indices).

    A leading minus on the word is accepted and ignored here; see :func:`generator_signs`.
    """
    names = letters(k)
    if "=" not in text:
        raise TrialkitError(f"generator {text!r} has no '=' — write it like 'F = ABCD'")
    left, right = (part.strip().upper() for part in text.split("=", 1))
    right = right.lstrip("+-").replace("*", "")
    if len(left) != 1 or left not in names:
        raise TrialkitError(
            f"generator {text!r} defines {left!r}, which is not a factor letter — "
            f"use one of {', '.join(names)}"
        )
    if not right or any(ch not in names for ch in right):
        raise TrialkitError(
            f"generator {text!r} uses letters outside the design's factors — use only {names}"
        )
    if len(set(right)) != len(right) or left in right:
        raise TrialkitError(f"generator {text!r} repeats a letter — name each factor once")
    return names.index(left), tuple(names.index(ch) for ch in right)


def generator_signs(generators: tuple[str, ...]) -> tuple[int, ...]:
    """Return +1 or −1 for each generator (−1 when its word starts with a minus)."""
    return tuple(-1 if g.split("=", 1)[1].strip().startswith("-") else 1 for g in generators)


def fraction_matrix(k: int, generators: tuple[str, ...]) -> np.ndarray:
    """Return the 2^(k−p) × k matrix of a fraction defined by ``generators``.

    The generated factors must be the last p letters; each base factor is a letter among the
    first k − p.
    """
    p = len(generators)
    if p == 0:
        return full_factorial(k)
    parsed = [parse_generator(g, k) for g in generators]
    generated = sorted(i for i, _ in parsed)
    if generated != list(range(k - p, k)):
        want = ", ".join(LETTERS[k - p:k])
        raise TrialkitError(
            f"generators define {', '.join(LETTERS[i] for i in generated)} — with {k} factors and "
            f"{p} generators they must define the last factors: {want}"
        )
    base = full_factorial(k - p)
    out = np.empty((base.shape[0], k), dtype=np.int8)
    out[:, : k - p] = base
    for (target, word), sign in zip(parsed, generator_signs(generators), strict=True):
        if any(i >= k - p for i in word):
            raise TrialkitError(
                f"generator for {LETTERS[target]} uses a generated factor — "
                f"build each generator from the first {k - p} letters only"
            )
        out[:, target] = sign * np.prod(base[:, list(word)], axis=1)
    return out
