"""What the service needs from a design file, frozen as JSON when the trial is created.

Enrolment then needs neither the design file nor numpy: the allocation settings (method, groups,
ratio, block sizes, strata, minimisation, MRT probabilities) are stored with the trial, next to the
design file's exact text and SHA-256.
"""

from __future__ import annotations

from typing import Any

from trialkit.design.randomisation import RandomisationSpec
from trialkit.errors import InvalidInput
from trialkit.service import identity


def _check_strata_names(design: Any, spec: RandomisationSpec) -> None:
    """Stratum names and values follow the service's identifier rules (matched whole, NFC)."""
    for name, values in spec.strata_levels.items():
        for text, what in [(name, "stratum name"), *((v, f"value of stratum {name!r}")
                                                    for v in values)]:
            try:
                clean = identity.clean_text(text, what, identifier=True, max_length=100)
            except InvalidInput as exc:
                raise InvalidInput(f"design {design.name!r}, [randomisation.strata]: {exc}",
                                   param="design") from None
            if clean != text:
                raise InvalidInput(f"design {design.name!r}, [randomisation.strata]: {what} "
                                   f"{identity.shown(text)} is not in Unicode NFC — write it "
                                   "composed (NFC)", param="design")


def _spec_part(spec: RandomisationSpec) -> dict[str, Any]:
    return {
        "method": spec.method,
        "ratio": list(spec.ratio),
        "block_sizes": list(spec.block_sizes),
        "strata": {k: list(v) for k, v in spec.strata_levels.items()},
        "minimisation_factors": list(spec.minimisation_factors),
        "weights": list(spec.weights),
        "imbalance": spec.imbalance,
        "preferred_probability": spec.preferred_probability,
        "blinded": spec.blinded,
    }


def _refuse_ignored_settings(design: Any) -> None:
    """Refuse the MRT ``[randomisation]`` settings that decision points would silently ignore.

    An MRT draws each decision point with the design's probability.
    """
    spec = getattr(design, "randomisation", None)
    if spec is None:
        return
    ignored = [name for name, used in (("method", spec.method != "blocks"),
                                       ("ratio", set(spec.ratio) != {1}),
                                       ("strata", bool(spec.strata_levels)),
                                       ("blinded", spec.blinded)) if used]
    if ignored:
        raise InvalidInput(f"design {design.name!r} is an MRT but its [randomisation] section "
                           f"sets {', '.join(ignored)}, which decision points do not use — "
                           "remove them; each available decision point is drawn with "
                           "[treatment] probability")


#: Columns of an adaptive MRT's export that a context variable or outcome may not be named.
_EXPORT_NAMES = ("id", "decision_point", "availability", "treatment", "probability",
                 "policy_version", "scheduled", "outcome_recorded_at", "marked_error")


def _policy_part(design: Any) -> dict[str, Any]:
    """Return what the live service needs of an MRT's ``[policy]`` (nothing without one).

    The policy itself is read from the stored design text when a decision needs it; the
    config names its context variables and their defaults for offline schedules, the outcome it
    learns from and the schedule.
    """
    spec = getattr(design, "policy", None)
    if spec is None:
        return {}
    clash = [n for n in (*spec.context, spec.outcome) if n in _EXPORT_NAMES]
    if clash:
        raise InvalidInput(f"design {design.name!r}: {clash[0]!r} names a column of the live "
                           "export — rename the context variable or outcome (not one of "
                           f"{', '.join(_EXPORT_NAMES)})", param="design")
    defaults = {c.name: float(c.default) for c in design.context}
    return {"policy": {"context": list(spec.context), "outcome": spec.outcome,
                       "outcome_type": next(o.type for o in design.outcomes
                                            if o.name == spec.outcome),
                       "update_every": spec.update_every, "p_min": spec.p_min,
                       "p_max": spec.p_max,
                       "default_context": {n: defaults[n] for n in spec.context}}}


def build_config(design: Any) -> dict[str, Any]:
    """Return the allocation settings of ``design`` (any kind) as a JSON-able dict."""
    kind = design.kind
    if kind == "mrt":
        _refuse_ignored_settings(design)
        n = design.schedule.n_decision_points
        return {
            "kind": "mrt",
            "design": design.name,
            "treatment": design.treatment,
            "n_decision_points": n,
            "decisions_per_day": design.schedule.decisions_per_day,
            "probabilities": [float(design.probability_at(t)) for t in range(1, n + 1)],
            **_policy_part(design),
        }
    spec = design.randomisation
    if kind == "factorial":
        conditions = design.conditions()
        n_groups = int(conditions.shape[0])
        groups = [str(i) for i in range(1, n_groups + 1)]
        extra = {"factor_names": list(design.factor_names),
                 "conditions": [[int(v) for v in row] for row in conditions.tolist()]}
    elif kind == "adaptive":
        groups = [a.name for a in design.arms]
        n_groups = len(groups)
        extra = {"start_probabilities": [float(a.start_probability) for a in design.arms]}
        if spec is None:
            spec = RandomisationSpec(method="adaptive", ratio=(1,) * n_groups)
    else:  # pragma: no cover - the loader knows only these kinds
        raise InvalidInput(f"design kind {kind!r} cannot be randomised — use a factorial, mrt "
                           "or adaptive design")
    if spec is None:
        spec = RandomisationSpec(ratio=(1,) * n_groups, block_sizes=(n_groups, 2 * n_groups))
    _check_strata_names(design, spec)
    return {"kind": kind, "design": design.name, "groups": groups, **_spec_part(spec), **extra}


def live_notes(config: dict[str, Any]) -> list[str]:
    """Say which parts of the design the live trial does not apply (empty when it applies all).

    An adaptive design whose ``[randomisation]`` section chooses a fixed method (blocks, complete
    or minimisation) is run live with that fixed allocation: its interim looks, response-adaptive
    allocation and stopping rules are then simulated by ``trialkit simulate`` only.
    """
    if config.get("kind") != "adaptive" or config.get("method") == "adaptive":
        return []
    ratio = ":".join(str(r) for r in config.get("ratio", ()))
    return [f"the live trial allocates by fixed {config.get('method')} randomisation "
            f"(ratio {ratio}) as its [randomisation] section asks; the design's [looks], "
            "[allocation] and [stopping] rules are not applied live — remove the "
            "[randomisation] method (or set method = \"adaptive\") to run interims, "
            "response-adaptive allocation and stopping live"]
