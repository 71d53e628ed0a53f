"""Full and fractional two-level factorial designs in effect coding (−1/+1).

Factors are lettered A, B, C, … in the order the design file lists them. A fraction 2^(k−p) is
given by p generators such as ``"F = ABCD"``: the first k − p factors form a full factorial and each
generated factor's column is the product of the named columns.
"""

from __future__ import annotations

import functools
import itertools
import string
from collections.abc import Iterable
from typing import Any

import numpy as np

from trialkit.errors import TrialkitError

LETTERS = string.ascii_uppercase


def letters(k: int) -> str:
    """Return the letters naming ``k`` factors (A, B, …)."""
    if not 2 <= k <= len(LETTERS):
        raise TrialkitError(
            f"{k} factors is unsupported — use between 2 and {len(LETTERS)} factors")
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


# -- defining relation, resolution and aliasing ---------------------------------------------------
# A word (or an effect) is a bit mask over the k factors: bit i set when factor i appears.

def _mask(indices: Iterable[int]) -> int:
    out = 0
    for i in indices:
        out |= 1 << i
    return out


def word_name(mask: int, names: str | tuple[str, ...] = LETTERS, sep: str = "") -> str:
    """Return the letters (or ``sep``-joined names) of the factors in ``mask``."""
    return sep.join(names[i] for i in range(mask.bit_length()) if mask >> i & 1)


def generator_words(k: int, generators: tuple[str, ...]) -> list[tuple[int, int]]:
    """Return each generator as a (sign, word mask) pair: ``F = ABCD`` gives the word ABCDF."""
    out = []
    for text, sign in zip(generators, generator_signs(tuple(generators)), strict=True):
        target, word = parse_generator(text, k)
        out.append((sign, _mask(word) | 1 << target))
    return out


def defining_relation(k: int, generators: tuple[str, ...]) -> list[tuple[int, int]]:
    """Return all 2^p − 1 words of the defining relation as (sign, mask), shortest first."""
    words: dict[int, int] = {}
    for sign, mask in generator_words(k, generators):
        new = {mask: sign}
        for m, s in words.items():
            new[m ^ mask] = s * sign
        words.update(new)
    return sorted(((s, m) for m, s in words.items()), key=lambda sm: (sm[1].bit_count(), sm[1]))


def word_length_pattern(k: int, generators: tuple[str, ...]) -> list[int]:
    """Return (A_1, …, A_k): the number of defining words of each length."""
    wlp = [0] * k
    for _, mask in defining_relation(k, generators):
        wlp[mask.bit_count() - 1] += 1
    return wlp


def resolution(k: int, generators: tuple[str, ...]) -> int | None:
    """Return the resolution by brute force: the length of the shortest defining word.

    ``None`` for the full factorial (no defining words).
    """
    words = defining_relation(k, generators)
    return min(m.bit_count() for _, m in words) if words else None


def alias_structure(
    k: int, generators: tuple[str, ...], names: tuple[str, ...] | None = None, max_order: int = 2,
) -> list[dict[str, Any]]:
    """Return, for every main effect and two-factor interaction, its aliases of order ≤ 2.

    Each entry is ``{"term": "A", "aliases": ["-BC", …]}``; with ``names`` the factor names joined
    by ':' are used instead of letters. Terms without such aliases are listed with an empty list.
    """
    words = defining_relation(k, generators)
    sep = ":" if names is not None else ""
    labels = names if names is not None else LETTERS[:k]
    out = []
    for order in range(1, max_order + 1):
        for combo in itertools.combinations(range(k), order):
            effect = _mask(combo)
            aliases = []
            for sign, word in words:
                other = effect ^ word
                if 0 < other.bit_count() <= max_order:
                    aliases.append(("-" if sign < 0 else "") + word_name(other, labels, sep))
                elif other == 0:
                    aliases.append(("-" if sign < 0 else "") + "I")
            out.append({"term": word_name(effect, labels, sep), "aliases": aliases})
    return out


# -- minimum-aberration search ------------------------------------------------------------------
# Smallest run size of a 2^(k−p) fraction with resolution ≥ R (R = 3, 4, 5, 6), k = 2 … 20: the
# minimum-aberration catalogues (Chen, Sun & Wu 1993; Montgomery, Design and Analysis of
# Experiments, Table 8.14) and the table used by R MOST's RelativeCosts1. A value of 2^k means no
# proper fraction reaches that resolution (only possible when R > k).
_MIN_RUNS = {
    3: [4, 4, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16, 16, 16, 32, 32, 32, 32, 32],
    4: [4, 8, 8, 16, 16, 16, 16, 32, 32, 32, 32, 32, 32, 32, 32, 64, 64, 64, 64],
    5: [4, 8, 16, 16, 32, 64, 64, 128, 128, 128, 256, 256, 256, 256, 256, 256, 512, 512, 512],
    6: [4, 8, 16, 32, 32, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024],
}
_SEARCH_BUDGET = 2_000_000   # defining words examined by the search (about a second)


def min_runs(k: int, resolution: int) -> int:
    """Return the fewest runs of a two-level design in ``k`` factors with at least ``resolution``.

    Resolutions III–VI use the minimum-aberration catalogue for k ≤ 20; otherwise the bound of a
    construction (III: 2^m > k; IV: 2^m ≥ 2k; higher: the half fraction when R ≤ k) is used.
    """
    letters(k)
    if resolution < 3:
        raise TrialkitError(f"resolution {resolution} is too low — use 3 or more")
    if resolution > k:
        raise TrialkitError(
            f"resolution {resolution} is higher than {k} factors allow — a fraction of {k} "
            f"factors has resolution at most {k}; use resolution {k} or less "
            f"(or the full factorial)"
        )
    if resolution in _MIN_RUNS and k <= 20:
        return int(_MIN_RUNS[resolution][k - 2])
    m = 1
    while True:
        n = 2**m
        if (resolution == 3 and n > k) or (resolution == 4 and n >= 2 * k):
            return int(n)
        if resolution > 4 and m == k - 1:
            return int(n)
        m += 1


def max_resolution(k: int, runs: int) -> int | None:
    """Return the highest resolution of a 2^(k−p) fraction in ``runs`` runs.

    ``None`` when ``runs`` is 2^k (the full factorial has no defining words); an error when no
    fraction of resolution III or more fits in ``runs`` runs.
    """
    if runs >= 2**k:
        return None
    for res in range(k, 2, -1):
        if min_runs(k, res) <= runs:
            return res
    raise TrialkitError(f"{runs} runs cannot hold {k} factors at resolution III — use at least "
                        f"{min_runs(k, 3)} runs")


def _candidate_columns(m: int, min_weight: int) -> list[int]:
    cols = [c for c in range(1, 2**m) if c.bit_count() >= max(2, min_weight)]
    # heavier words first: they tend to give designs of lower aberration
    return sorted(cols, key=lambda c: (-c.bit_count(), c))


def _search(k: int, m: int, resolution: int, budget: int) -> tuple[list[int] | None, bool]:
    """Depth-first search over sets of p = k − m generator columns (bit masks over m base factors).

    Returns the columns of the design with the smallest word-length pattern found and whether the
    search was exhaustive. ``budget`` bounds the number of defining words examined.
    """
    p = k - m
    if p == 1:
        # a half fraction has a single defining word: the longest, ABC…, has minimum aberration
        return [2**m - 1], True
    cands = _candidate_columns(m, resolution - 1)
    best: list[int] | None = None
    best_key: tuple[int, ...] | None = None
    work = 0
    exhausted = True

    def rec(start: int, cols: list[int], words: list[int]) -> None:
        # a word over k bits: base bits = the column, generated factor's bit = m + index
        nonlocal best, best_key, work, exhausted
        if len(cols) == p:
            wlp = [0] * (k + 1)
            for w in words:
                wlp[w.bit_count()] += 1
            key = tuple(wlp[resolution:])
            if best_key is None or key < best_key:
                best, best_key = list(cols), key
            return
        j = len(cols)
        for idx in range(start, len(cands)):
            if len(cands) - idx < p - j:
                break
            work += len(words) + 1
            if work > budget:
                exhausted = False
                return
            w = cands[idx] | 1 << (m + j)
            new = [w] + [w ^ x for x in words]
            if min(x.bit_count() for x in new) < resolution:
                continue
            rec(idx + 1, cols + [cands[idx]], words + new)
            if not exhausted:
                return

    rec(0, [], [])
    if best is None:
        best = _greedy(k, m, resolution, cands) or _construction(p, resolution, cands)
    return best, exhausted


def _construction(p: int, resolution: int, cands: list[int]) -> list[int] | None:
    """Distinct columns give resolution III; odd-weight columns (a foldover) give IV."""
    if resolution > 4:
        return None
    pool = [c for c in cands if resolution == 3 or c.bit_count() % 2 == 1]  # heaviest first
    return pool[:p] if len(pool) >= p else None


def _greedy(k: int, m: int, resolution: int, cands: list[int], tries: int = 200,
            seed: int = 0) -> list[int] | None:
    """Randomised greedy search: add columns in a shuffled order while the resolution holds.

    Used when the depth-first search runs out of budget without meeting any design; the fixed
    ``seed`` keeps the result reproducible.
    """
    import random

    p = k - m
    rng = random.Random(seed)
    for _ in range(tries):
        order = list(cands)
        rng.shuffle(order)
        cols: list[int] = []
        words: list[int] = []
        for c in order:
            w = c | 1 << (m + len(cols))
            new = [w] + [w ^ x for x in words]
            if min(x.bit_count() for x in new) >= resolution:
                cols.append(c)
                words += new
                if len(cols) == p:
                    return cols
    return None


@functools.lru_cache(maxsize=64)
def generators_for_resolution(
    k: int, resolution: int, runs: int | None = None, budget: int = _SEARCH_BUDGET,
) -> tuple[str, ...]:
    """Return generators of a minimum-aberration 2^(k−p) fraction with at least ``resolution``.

    Parameters
    ----------
    k : int
        Number of factors.
    resolution : int
        Required resolution (3 … k).
    runs : int, optional
        Number of runs (a power of two). By default the fewest runs that reach ``resolution``.
    budget : int
        Maximum number of defining words the depth-first search examines. A search that finishes
        inside it is exhaustive, so the design returned has minimum aberration among all fractions
        of that size. Otherwise the best design met is returned or, when none was met, the
        first design of a seeded randomised greedy search or a construction (distinct columns
        for resolution III, odd-weight columns for IV). A half fraction uses the single longest
        word.

    Returns
    -------
    tuple of str
        Generators such as ``("F = ABCD", "G = ABDE")`` (empty for the full factorial).

    Raises
    ------
    TrialkitError
        When no fraction of ``runs`` runs has the requested resolution.
    """
    fewest = min_runs(k, resolution)
    if runs is None:
        runs = fewest
    if runs < 4 or runs & (runs - 1):
        raise TrialkitError(f"runs = {runs} is not a power of two of at least 4 — use 8, 16, 32, …")
    if runs > 2**k:
        raise TrialkitError(f"runs = {runs} exceeds the {2**k} conditions of the full factorial "
                            f"— use at most {2**k} runs")
    if runs < fewest:
        raise TrialkitError(
            f"no 2^({k}-p) fraction of {k} factors in {runs} runs has resolution {resolution} — "
            f"use at least {fewest} runs or a lower resolution"
        )
    m = runs.bit_length() - 1
    if m == k:
        return ()
    cols, _ = _search(k, m, resolution, budget)
    if cols is None:
        raise TrialkitError(
            f"no 2^({k}-{k - m}) fraction with resolution {resolution} was found in {runs} runs — "
            f"use more runs or a lower resolution"
        )
    return tuple(f"{LETTERS[m + j]} = {word_name(c)}" for j, c in enumerate(cols))
