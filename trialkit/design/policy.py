"""The learning policy of an adaptive MRT: ``[context.NAME]`` tables and the ``[policy]`` table.

An MRT with a ``[policy]`` learns its randomisation probabilities while it runs: Thompson sampling
on a Bayesian linear model of the proximal outcome with an action-centred advantage on declared
context variables, fully pooled over participants, refitted on a schedule, with the probability
kept in ``[p_min, p_max]`` (clipped, or smoothly by a generalised logistic). The numbers are
computed by :mod:`trialkit.mrt.policy`; this module only reads and validates.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from trialkit.design._reader import Section

#: Distributions of a simulated context variable.
CONTEXT_DISTRIBUTIONS = ("normal", "bernoulli")
#: Learning methods of a policy.
POLICY_METHODS = ("thompson",)
#: How the probability is kept inside [p_min, p_max].
POLICY_SMOOTHING = ("none", "logistic")
#: Pooling of the policy's model across participants.
POLICY_POOLING = ("full",)


@dataclass(frozen=True)
class ContextVariable:
    """A context variable observed at each decision point, and how it is simulated.

    ``normal``: mean, sd and an AR(1) coefficient ``ar1`` over a participant's decision points;
    ``bernoulli``: ``probability`` of 1, independent over decision points.
    """

    name: str
    distribution: str
    mean: float = 0.0
    sd: float = 1.0
    ar1: float = 0.0
    probability: float = 0.5
    default_value: float | None = None

    @property
    def expected(self) -> float:
        """The variable's expected value."""
        return self.probability if self.distribution == "bernoulli" else self.mean

    @property
    def default(self) -> float:
        """The value a live trial assumes when none is observed (``default``, else expected)."""
        return self.expected if self.default_value is None else self.default_value


@dataclass(frozen=True)
class PolicySpec:
    """A Thompson-sampling policy (see :mod:`trialkit.mrt.policy` for the model).

    The reward model of outcome ``outcome`` is
    ``R = f'α0 + π f'α1 + (A − π) f'β + ε``, ``ε ~ N(0, noise_sd²)``, with ``f = (1, context)``;
    the prior is normal with independent coordinates, means ``prior_mean`` and standard
    deviations ``prior_sd`` in the order ``(α0, α1, β)``. The posterior is refitted every
    ``update_every`` decision points (before decision points ``1 + k·update_every``).
    """

    method: str
    outcome: str
    context: tuple[str, ...]
    p_min: float
    p_max: float
    smoothing: str
    slope: float
    pooling: str
    noise_sd: float
    update_every: int
    update_every_days: int | None
    prior_mean: tuple[float, ...]
    prior_sd: tuple[float, ...]

    @property
    def n_features(self) -> int:
        """Entries of ``f = (1, context)``."""
        return len(self.context) + 1

    def summary(self) -> dict[str, Any]:
        """Describe the policy for ``trialkit design show``."""
        return {"method": self.method, "outcome": self.outcome, "context": list(self.context),
                "p_min": self.p_min, "p_max": self.p_max, "smoothing": self.smoothing,
                "slope": self.slope if self.smoothing == "logistic" else None,
                "pooling": self.pooling, "noise_sd": self.noise_sd,
                "update_every_decisions": self.update_every,
                "update_every_days": self.update_every_days,
                "prior_mean": list(self.prior_mean), "prior_sd": list(self.prior_sd)}


def read_context(root: Section) -> tuple[ContextVariable, ...]:
    """Read the ``[context.NAME]`` tables."""
    out = []
    for name, sec in root.named_sections("context").items():
        if not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise root.error("context", name, "is not a valid context variable name",
                             "use letters, digits and underscores, starting with a letter")
        dist = sec.string("distribution", "normal", choices=CONTEXT_DISTRIBUTIONS)
        if dist == "normal":
            var = ContextVariable(name, dist, mean=sec.number("mean", 0.0),
                                  sd=sec.positive("sd", 1.0),
                                  ar1=sec.number("ar1", 0.0, minimum=-1, maximum=1,
                                                 exclusive_min=True, exclusive_max=True))
        else:
            var = ContextVariable(name, dist, probability=sec.probability("probability"))
        if sec.has("default"):
            var = replace(var, default_value=sec.number(
                "default", minimum=0 if dist == "bernoulli" else None,
                maximum=1 if dist == "bernoulli" else None))
        sec.done()
        out.append(var)
    return tuple(out)


def _prior(policy: Section, m: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Prior means and SDs of (α0, α1, β), each block given as one number or m numbers."""
    defaults = {"baseline_mean": 0.0, "baseline_sd": 1.0, "advantage_mean": 0.0,
                "advantage_sd": 1.0}
    sec = policy.section("prior") or Section({}, policy.file, "policy.prior")
    blocks = {}
    for key, default in defaults.items():
        positive = key.endswith("_sd")
        value = sec.number_list(key, default, minimum=0 if positive else None,
                                exclusive_min=positive, scalar_ok=True)
        if isinstance(value, tuple) and len(value) != m:
            raise sec.error(key, list(value), f"has {len(value)} entries",
                            f"give one number or {m} (the intercept and one per context "
                            "variable)")
        blocks[key] = value if isinstance(value, tuple) else (float(value),) * m
    sec.done()
    mean = blocks["baseline_mean"] + blocks["advantage_mean"] * 2
    sd = blocks["baseline_sd"] + blocks["advantage_sd"] * 2
    return mean, sd


def _update_every(sec: Section, days: int, dpd: int) -> tuple[int, int | None]:
    """Decision points between updates, from ``update_every_days`` or ``update_every_decisions``."""
    if sec.has("update_every_days") and sec.has("update_every_decisions"):
        raise sec.error("update_every_decisions", sec.data["update_every_decisions"],
                        "is given together with update_every_days", "give one of the two")
    if sec.has("update_every_decisions"):
        n_points = days * dpd
        step = sec.integer("update_every_decisions", minimum=1)
        if step >= n_points:
            raise sec.error("update_every_decisions", step, "is not shorter than the trial",
                            f"use fewer than the trial's {n_points} decision points so the "
                            "policy is updated at least once")
        return step, None
    every = sec.integer("update_every_days", 7, minimum=1)
    if every >= days:
        raise sec.error("update_every_days", every, "is not shorter than the trial",
                        f"use fewer than the trial's {days} days so the policy is updated at "
                        "least once")
    return every * dpd, every


def read_policy(root: Section, outcomes: tuple[str, ...], context: tuple[ContextVariable, ...],
                days: int, dpd: int) -> PolicySpec | None:
    """Read the ``[policy]`` table (``None`` when absent)."""
    sec = root.section("policy")
    if sec is None:
        return None
    method = sec.string("method", "thompson", choices=POLICY_METHODS)
    outcome = sec.string("outcome", outcomes[0], choices=outcomes)
    declared = tuple(c.name for c in context)
    names = sec.string_list("context", ())
    for name in names:
        if name not in declared:
            raise sec.error("context", name, "is not a declared context variable",
                            "declare it in a [context." + name + "] table, or use one of: "
                            + (", ".join(declared) or "none declared"))
    p_min = sec.probability("p_min", 0.2)
    p_max = sec.probability("p_max", 0.8)
    if p_min >= p_max:
        raise sec.error("p_min", p_min, f"is not below p_max = {p_max:g}",
                        "use 0 < p_min < p_max < 1, e.g. p_min = 0.2 and p_max = 0.8")
    smoothing = sec.string("smoothing", "none", choices=POLICY_SMOOTHING)
    slope = sec.positive("slope", 5.0) if smoothing == "logistic" else 5.0
    pooling = sec.string("pooling", "full", choices=POLICY_POOLING)
    noise_sd = sec.positive("noise_sd", 1.0)
    every, every_days = _update_every(sec, days, dpd)
    mean, sd = _prior(sec, len(names) + 1)
    sec.done()
    return PolicySpec(method=method, outcome=outcome, context=tuple(names), p_min=p_min,
                      p_max=p_max, smoothing=smoothing, slope=slope, pooling=pooling,
                      noise_sd=noise_sd, update_every=every, update_every_days=every_days,
                      prior_mean=mean, prior_sd=sd)


def read_context_coefficients(sec: Section, key: str,
                              context: tuple[ContextVariable, ...]) -> dict[str, float]:
    """Read ``[outcomes.NAME.context_baseline]`` or ``…context_effect]``: variable = number."""
    declared = [c.name for c in context]
    sub = sec.section(key)
    if sub is None:
        return {}
    for name in sub.data:
        if name not in declared:
            raise sub.error(name, sub.data[name], "is not a declared context variable",
                            "declare it in a [context." + name + "] table, or use one of: "
                            + (", ".join(declared) or "none declared"))
    out = {name: sub.number(name) for name in list(sub.data)}
    sub.done()
    return out
