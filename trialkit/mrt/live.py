"""The learning policy of a live adaptive MRT: one decision or one update at a time.

The live service calls these functions with a batch of one: :func:`live_probability` gives the
probability of one decision point from the posterior in force and the point's context, and
:func:`live_update` refits the posterior on the history so far. Both call the simulator's own
functions (:func:`trialkit.mrt.policy.policy_probabilities`,
:func:`trialkit.mrt.policy.policy_update`); the posterior travels as JSON (``mean`` and
``covariance`` as lists of floats, which JSON keeps exactly), so a probability recomputed from the
logged posterior is the logged probability bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trialkit.mrt.policy import (
    PolicyParams,
    policy_probabilities,
    policy_update,
    prior_params,
)


def params_to_json(params: PolicyParams) -> dict[str, Any]:
    """Return a posterior as ``{"mean": [...], "covariance": [[...], ...]}`` (plain floats)."""
    return {"mean": [float(v) for v in params.mean],
            "covariance": [[float(v) for v in row] for row in params.covariance]}


def params_from_json(spec, params: Mapping[str, Any] | None) -> PolicyParams:
    """Return the posterior of :func:`params_to_json` (``None``: the design's prior)."""
    if params is None:
        return prior_params(spec)
    return PolicyParams(np.asarray(params["mean"], dtype=float),
                        np.asarray(params["covariance"], dtype=float))


def live_probability(spec, params: Mapping[str, Any] | None, context: Sequence[float]) -> float:
    """Return the probability of a prompt at one decision point, within ``[p_min, p_max]``.

    Parameters
    ----------
    spec : PolicySpec
        The design's ``[policy]``.
    params : dict or None
        The posterior in force (:func:`params_to_json`), ``None`` for the prior (version 0).
    context : sequence of float
        The policy's context variables at the decision point, in the order of ``spec.context``.
    """
    ctx = np.asarray(context, dtype=float).reshape(1, len(spec.context))
    return float(policy_probabilities(spec, params_from_json(spec, params), ctx)[0])


def live_update(spec, context: Sequence[Sequence[float]], action: Sequence[float],
                probability: Sequence[float], reward: Sequence[float]) -> dict[str, Any]:
    """Refit the posterior on the rows used (available, outcome recorded), in the order given.

    Returns the posterior as JSON (:func:`params_to_json`); with no rows, the prior.
    """
    n = len(action)
    ctx = np.asarray(context, dtype=float).reshape(n, len(spec.context))
    params = policy_update(spec, ctx, np.asarray(action, dtype=float),
                           np.asarray(probability, dtype=float), np.asarray(reward, dtype=float),
                           np.ones(n))
    return params_to_json(params)


def update_stage(spec, decision_point: int) -> int:
    """Return the schedule stage of a decision point: updates due before it (``(t − 1) // N``)."""
    return (int(decision_point) - 1) // int(spec.update_every)
