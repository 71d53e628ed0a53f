"""Effect-coded factorial models: terms, model matrices and the assumed truth as coefficients.

A term is a tuple of factor indices: ``()`` is the intercept, ``(0,)`` the first main effect,
``(0, 1)`` the interaction of the first two factors. Its column in the model matrix is the
product of the factors' ±1 codes. A *classic factorial effect* (mean at +1 minus mean at −1 of
the term's contrast) is twice the effect-coded coefficient.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

Term = tuple[int, ...]


def model_terms(k: int, order: int) -> list[Term]:
    """Return the terms of a model of ``order`` in ``k`` factors, intercept first.

    Terms are ordered by interaction order, then lexicographically: (), (0,), …, (0, 1), ….
    """
    if order < 1 or order > k:
        raise ValueError(f"model order {order} is outside 1..{k}")
    terms: list[Term] = [()]
    for size in range(1, order + 1):
        terms += list(itertools.combinations(range(k), size))
    return terms


def model_matrix(codes: np.ndarray, terms: Sequence[Term]) -> np.ndarray:
    """Return the model matrix (rows of ``codes`` × terms) as float64."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.ones((codes.shape[0], len(terms)))
    for j, term in enumerate(terms):
        for i in term:
            out[:, j] *= codes[:, i]
    return out


def term_name(term: Term, names: Sequence[str]) -> str:
    """Return ``"a:b"`` for a term (``"intercept"`` for the empty term)."""
    return ":".join(names[i] for i in term) if term else "intercept"


def parse_term(text: str, names: Sequence[str]) -> Term:
    """Return the term named ``"a:b"`` (factor names joined by ':')."""
    return tuple(sorted(names.index(part) for part in text.split(":")))


def truth_coefficients(
    effects: Mapping[str, float], names: Sequence[str], intercept: float = 0.0,
) -> dict[Term, float]:
    """Turn a design file's classic factorial effects into effect-coded coefficients (÷ 2)."""
    coefs: dict[Term, float] = {(): float(intercept)}
    for text, effect in effects.items():
        coefs[parse_term(text, names)] = float(effect) / 2.0
    return coefs


def outcome_coefficients(
    outcome, names: Sequence[str], effects: Mapping[str, float] | None = None,
) -> dict[Term, float]:
    """Return true effect-coded coefficients of a design outcome.

    Parameters
    ----------
    outcome : trialkit.design.factorial.Outcome
        The outcome; its assumed ``effects`` are used unless ``effects`` is given.
    names : sequence of str
        Factor names in design order.
    effects : mapping, optional
        Classic factorial effects (term → effect) replacing the outcome's own.

    Notes
    -----
    Continuous outcomes: outcome units, intercept = the outcome's ``mean``. Binary outcomes:
    log-odds, with the intercept chosen so that the success probability with every component off
    (all factors at −1) equals the outcome's ``baseline``.
    """
    effects = outcome.effects if effects is None else effects
    if outcome.type == "continuous":
        return truth_coefficients(effects, names, outcome.mean)
    coefs = truth_coefficients(effects, names)
    logit = math.log(outcome.baseline / (1 - outcome.baseline))
    coefs[()] = logit - sum(b * (-1) ** len(t) for t, b in coefs.items() if t)
    return coefs
