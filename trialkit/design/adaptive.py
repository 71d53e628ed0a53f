"""Design files of kind ``adaptive``: a Bayesian adaptive multi-arm trial.

The settings follow the reference package adaptr (``setup_trial``): arms, an outcome (binary with
beta priors or continuous with flat priors), named scenarios of true values, an optional common
control, the analysis schedule, allocation rules and stopping rules. They are grouped into small
frozen dataclasses (:class:`Outcome`, :class:`Looks`, :class:`Allocation`, :class:`Stopping`,
:class:`Posterior`, :class:`Scenario`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from trialkit.constants import (
    CONTROL_ALLOCATION,
    LIST_SELECTION,
    RESCALE,
    SELECTION,
)
from trialkit.constants import POSTERIOR_METHODS as METHODS
from trialkit.design._reader import Section, check_unique, identifier
from trialkit.design.base import DesignHeader, DesignSource, read_header
from trialkit.design.randomisation import RandomisationSpec, read_randomisation


@dataclass(frozen=True)
class Arm:
    """One arm of the trial (the live randomisation uses ``start_probability``)."""

    name: str
    label: str
    start_probability: float


@dataclass(frozen=True)
class Outcome:
    """The outcome: ``binary`` (beta prior) or ``continuous`` (flat prior, normal draws)."""

    type: str
    highest_is_best: bool = False
    prior: tuple[float, float] = (1.0, 1.0)


@dataclass(frozen=True)
class Looks:
    """Analysis schedule: patients with outcome data, and randomised, at each look."""

    data: tuple[int, ...]
    randomised: tuple[int, ...]


@dataclass(frozen=True)
class Allocation:
    """Response-adaptive allocation settings (``nan`` = no value for that arm)."""

    fixed_probs: tuple[float, ...]
    min_probs: tuple[float, ...]
    max_probs: tuple[float, ...]
    softening: tuple[float, ...]
    control: str = "none"
    control_probability: float | None = None
    rescale: str = "none"


@dataclass(frozen=True)
class Stopping:
    """Stopping thresholds, one value per look (``None`` when the rule is not used)."""

    superiority: tuple[float, ...]
    inferiority: tuple[float, ...]
    equivalence_prob: tuple[float, ...] | None = None
    equivalence_diff: float | None = None
    equivalence_only_first: bool = False
    futility_prob: tuple[float, ...] | None = None
    futility_diff: float | None = None
    futility_only_first: bool = False


@dataclass(frozen=True)
class Posterior:
    """Posterior draws per analysis and the arm selected when no arm is superior."""

    draws: int = 5000
    selection: str = "none"
    method: str = "exact"
    preferences: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """True values per arm (event rates, or means with SDs) and an optional calendar-time trend."""

    values: tuple[float, ...]
    sds: tuple[float, ...] | None = None
    trend: float = 0.0


@dataclass(frozen=True)
class AdaptiveDesign:
    """A Bayesian adaptive multi-arm trial read from a design file."""

    header: DesignHeader
    source: DesignSource
    arms: tuple[Arm, ...]
    outcome: Outcome
    control: str | None
    looks: Looks
    allocation: Allocation
    stopping: Stopping
    posterior: Posterior
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    randomisation: RandomisationSpec | None = None
    kind: str = "adaptive"

    @property
    def name(self) -> str:
        """The design's name."""
        return self.header.name

    @property
    def arm_names(self) -> tuple[str, ...]:
        """Arm names in file order."""
        return tuple(a.name for a in self.arms)

    @property
    def outcome_type(self) -> str:
        """``"binary"`` or ``"continuous"``."""
        return self.outcome.type

    @property
    def highest_is_best(self) -> bool:
        """Whether higher outcome values are better."""
        return self.outcome.highest_is_best

    @property
    def draws(self) -> int:
        """Posterior draws per analysis."""
        return self.posterior.draws

    @property
    def selection(self) -> str:
        """Arm-selection strategy for trials without a superior arm."""
        return self.posterior.selection

    def summary(self) -> dict[str, Any]:
        """Describe the design for ``trialkit design show``."""
        def opt(x: float) -> float | None:
            return None if math.isnan(x) else x

        al = self.allocation
        st = self.stopping
        return {
            "kind": self.kind,
            "name": self.name,
            "title": self.header.title,
            "sha256": self.source.sha256,
            "outcome_type": self.outcome.type,
            "highest_is_best": self.outcome.highest_is_best,
            "control": self.control,
            "control_allocation": al.control,
            "rescale": al.rescale,
            "n_looks": len(self.looks.data),
            "max_size": max(self.looks.randomised),
            "draws": self.posterior.draws,
            "method": self.posterior.method,
            "selection": self.posterior.selection,
            "equivalence_diff": st.equivalence_diff,
            "futility_diff": st.futility_diff,
            "arms": [{"name": a.name, "label": a.label, "start_probability": a.start_probability,
                      "fixed_probability": opt(fx), "min_probability": opt(lo),
                      "max_probability": opt(hi)}
                     for a, fx, lo, hi in zip(self.arms, al.fixed_probs, al.min_probs,
                                              al.max_probs, strict=True)],
            "looks": [{"look": i + 1, "data": d, "randomised": r,
                       "superiority": st.superiority[i], "inferiority": st.inferiority[i],
                       "equivalence_prob": st.equivalence_prob[i] if st.equivalence_prob else None,
                       "futility_prob": st.futility_prob[i] if st.futility_prob else None,
                       "softening": al.softening[i]}
                      for i, (d, r) in enumerate(zip(self.looks.data, self.looks.randomised,
                                                     strict=True))],
            "scenarios": [{"scenario": name, "trend": sc.trend,
                           **dict(zip(self.arm_names, sc.values, strict=True))}
                          for name, sc in self.scenarios.items()],
        }


def _per_look(sec: Section, key: str, n_looks: int, default: float | None = None,
              lo: float = 0.0, hi: float = 1.0, order: str | None = None) -> Any:
    """Read a scalar or one value per look; ``order`` is "up"/"down" for monotone thresholds."""
    value = sec.number_list(key, default, minimum=lo, maximum=hi, scalar_ok=True)
    if value is None:
        return None
    if isinstance(value, float | int):
        return (float(value),) * n_looks
    if len(value) != n_looks:
        raise sec.error(key, list(value), f"has {len(value)} values for {n_looks} looks",
                        f"give one number or exactly {n_looks} numbers")
    pairs = list(zip(value, value[1:], strict=False))
    if order == "down" and any(b > a for a, b in pairs):
        raise sec.error(key, list(value), "increases between looks",
                        "give thresholds that stay equal or decrease from look to look")
    if order == "up" and any(b < a for a, b in pairs):
        raise sec.error(key, list(value), "decreases between looks",
                        "give thresholds that stay equal or increase from look to look")
    return tuple(float(v) for v in value)


def _per_arm(sec: Section, key: str, names: list[str], empty: float) -> tuple[float, ...]:
    """Read a list with one probability per arm, or a table ``{arm = probability}``."""
    if not sec.has(key):
        sec.raw(key, None)
        return (empty,) * len(names)
    if isinstance(sec.data[key], dict):
        mapping = sec.number_mapping(key, allowed_keys=names, minimum=0, maximum=1)
        return tuple(mapping.get(n, empty) for n in names)
    return tuple(sec.number_list(key, minimum=0, maximum=1, length=len(names)))


def _read_arms(root: Section) -> tuple[Arm, ...]:
    arm_secs = root.sections("arms", required=True)
    if len(arm_secs) < 2:
        raise root.error("arms", len(arm_secs), "lists fewer than 2 arms", "add [[arms]] blocks")
    arms = []
    for sec in arm_secs:
        name = identifier(sec, "name")
        arms.append(Arm(name, sec.string("label", name),
                        sec.probability("start_probability", 1 / len(arm_secs))))
        sec.done()
    check_unique(root, "arms", [a.name for a in arms])
    starts = [a.start_probability for a in arms]
    if abs(sum(starts) - 1) > 1e-9:
        raise root.error("arms.start_probability", starts, "do not sum to 1",
                         "make the arms' start probabilities sum to 1")
    return tuple(arms)


def _read_outcome(root: Section) -> Outcome:
    out = root.section("outcome", required=True)
    assert out is not None
    outcome_type = out.string("type", choices=("binary", "continuous"))
    highest_is_best = out.boolean("highest_is_best", False)
    prior: tuple[float, ...] = (1.0, 1.0)
    if outcome_type == "binary":
        prior = out.number_list("prior", (1.0, 1.0), minimum=0, exclusive_min=True, length=2)
    out.done()
    return Outcome(outcome_type, highest_is_best, (float(prior[0]), float(prior[1])))


def _read_looks(root: Section) -> Looks:
    lk = root.section("looks", required=True)
    assert lk is not None
    data = lk.number_list("data", minimum=1, integer=True)
    randomised = lk.number_list("randomised", data, minimum=1, integer=True, length=len(data))
    if any(b <= a for a, b in zip(data, data[1:], strict=False)):
        raise lk.error("data", list(data), "is not strictly increasing",
                       "list the looks in increasing order of patients with outcome data")
    if any(b < a for a, b in zip(randomised, randomised[1:], strict=False)):
        raise lk.error("randomised", list(randomised), "decreases between looks",
                       "list randomised counts in non-decreasing order")
    if any(r < d for r, d in zip(randomised, data, strict=True)):
        raise lk.error("randomised", list(randomised), "is below data at some look",
                       "randomised counts must be at least the data counts at each look")
    lk.done()
    return Looks(data=tuple(data), randomised=tuple(randomised))


def _check_probabilities(al: Section, names: list[str], fixed: tuple[float, ...],
                         min_probs: tuple[float, ...], max_probs: tuple[float, ...]) -> None:
    """Reject fixed probabilities and limits that no allocation can meet."""
    for key, vals in (("min_probs", min_probs), ("max_probs", max_probs)):
        both = [names[i] for i, v in enumerate(vals) if not math.isnan(v)
                and not math.isnan(fixed[i])]
        if both:
            raise al.error(key, both[0], "is set for an arm with a fixed probability",
                           "give an arm either a fixed probability or limits, not both")
    fixed_sum = sum(v for v in fixed if not math.isnan(v))
    if fixed_sum > 1 + 1e-9:
        raise al.error("fixed_probs", list(fixed), "sum to more than 1",
                       "lower the fixed probabilities so they sum to at most 1")
    if all(not math.isnan(v) for v in fixed) and abs(fixed_sum - 1) > 1e-6:
        raise al.error("fixed_probs", list(fixed), "do not sum to 1 although every arm has one",
                       "make the fixed probabilities sum to 1, or leave some arms adaptive")
    if all(not (math.isnan(f) and math.isnan(h)) for f, h in zip(fixed, max_probs, strict=True)) \
            and fixed_sum + sum(v for v in max_probs if not math.isnan(v)) < 1 - 1e-9:
        raise al.error("max_probs", [None if math.isnan(v) else v for v in max_probs],
                       "sum (with the fixed probabilities) to less than 1 although every arm is "
                       "capped", "raise the maximum probabilities so they sum to at least 1")
    if fixed_sum + sum(v for v in min_probs if not math.isnan(v)) > 1 + 1e-9:
        raise al.error("min_probs", [None if math.isnan(v) else v for v in min_probs],
                       "sum (with any fixed probabilities) to more than 1",
                       "lower the minimum probabilities so they sum to at most 1")
    for i, (lo, hi) in enumerate(zip(min_probs, max_probs, strict=True)):
        if not math.isnan(lo) and not math.isnan(hi) and hi < lo:
            raise al.error("max_probs", hi, f"is below the minimum for arm '{names[i]}'",
                           "make every maximum at least the arm's minimum")


def _read_control_allocation(al: Section, names: list[str], control: str | None,
                             fixed: tuple[float, ...], min_probs: tuple[float, ...],
                             max_probs: tuple[float, ...]) -> tuple[str, float | None]:
    control_alloc = al.string("control", "none", choices=CONTROL_ALLOCATION)
    control_prob = al.probability("control_probability", None)
    if control_alloc != "none" and control is None:
        raise al.error("control", control_alloc, "needs a common control",
                       'set control = "ARM" at the top level or use control = "none"')
    if control_alloc == "fixed" and control_prob is None:
        raise al.error("control_probability", None, "is required for control = \"fixed\"",
                       "give the control arm's fixed allocation probability, e.g. 0.4")
    if control_prob is not None and control_alloc != "fixed":
        raise al.error("control_probability", control_prob, "is only used with control = "
                       '"fixed"', 'set control = "fixed" or remove control_probability')
    if control is not None and control_alloc != "none":
        ci = names.index(control)
        if not (math.isnan(fixed[ci]) and math.isnan(min_probs[ci])
                and math.isnan(max_probs[ci])):
            raise al.error("control", control_alloc, "conflicts with a fixed probability or "
                           "limits of the control arm", "remove them for the control arm")
    return control_alloc, control_prob


def _read_allocation(root: Section, names: list[str], control: str | None,
                     n_looks: int) -> Allocation:
    al = root.section("allocation") or Section({}, root.file, "allocation")
    nan = float("nan")
    fixed = _per_arm(al, "fixed_probs", names, nan)
    # 0 as a minimum and 1 as a maximum are no limits.
    min_probs = tuple(nan if v == 0 else v for v in _per_arm(al, "min_probs", names, nan))
    max_probs = tuple(nan if v == 1 else v for v in _per_arm(al, "max_probs", names, nan))
    _check_probabilities(al, names, fixed, min_probs, max_probs)
    control_alloc, control_prob = _read_control_allocation(al, names, control, fixed,
                                                           min_probs, max_probs)
    allocation = Allocation(
        fixed_probs=fixed,
        min_probs=min_probs,
        max_probs=max_probs,
        softening=_per_look(al, "softening", n_looks, 1.0, 0.0, 1.0),
        control=control_alloc,
        control_probability=control_prob,
        rescale=al.string("rescale", "none", choices=RESCALE),
    )
    al.done()
    return allocation


def _read_stopping(root: Section, control: str | None, n_looks: int) -> Stopping:
    st = root.section("stopping") or Section({}, root.file, "stopping")
    sup = _per_look(st, "superiority", n_looks, 1.0, 0.0, 1.0, order="down")
    inf = _per_look(st, "inferiority", n_looks, 0.0, 0.0, 1.0, order="up")
    for i, (s, f) in enumerate(zip(sup, inf, strict=True)):
        if f >= s:
            raise st.error("inferiority", f, f"is not below the superiority threshold at look "
                           f"{i + 1} ({s:g})", "use inferiority < superiority at every look")
    eq_prob = _per_look(st, "equivalence_prob", n_looks, None, 0.0, 1.0, order="down")
    eq_diff = st.positive("equivalence_diff", None)
    fut_prob = _per_look(st, "futility_prob", n_looks, None, 0.0, 1.0, order="down")
    fut_diff = st.positive("futility_diff", None)
    if (eq_prob is None) != (eq_diff is None):
        key = "equivalence_diff" if eq_diff is None else "equivalence_prob"
        raise st.error(key, None, "is missing while the other equivalence key is set",
                       "give both equivalence_prob and equivalence_diff, or neither")
    if fut_prob is not None and control is None:
        raise st.error("futility_prob", list(fut_prob), "needs a common control",
                       "set control = \"ARM\" at the top level or remove the futility rule")
    if (fut_prob is None) != (fut_diff is None):
        key = "futility_diff" if fut_diff is None else "futility_prob"
        raise st.error(key, None, "is missing while the other futility key is set",
                       "give both futility_prob and futility_diff, or neither")
    stopping = Stopping(
        superiority=sup, inferiority=inf, equivalence_prob=eq_prob, equivalence_diff=eq_diff,
        equivalence_only_first=st.boolean("equivalence_only_first", False),
        futility_prob=fut_prob, futility_diff=fut_diff,
        futility_only_first=st.boolean("futility_only_first", False),
    )
    st.done()
    return stopping


def _read_posterior(root: Section, arms: tuple[Arm, ...], control: str | None) -> Posterior:
    po = root.section("posterior") or Section({}, root.file, "posterior")
    draws = po.integer("draws", 5000, minimum=100)
    selection = po.string("selection", "none", choices=SELECTION + LIST_SELECTION)
    if selection in ("control", "final control", "control or best") and control is None:
        raise po.error("selection", selection, "needs a common control",
                       'use "none" or "best", or set control = "ARM"')
    preferences = po.string_list("preferences", (), choices=tuple(a.name for a in arms))
    if selection in LIST_SELECTION and not preferences:
        raise po.error("preferences", list(preferences), f"is needed by selection {selection!r}",
                       "list arm names in order of preference, e.g. preferences = "
                       f'["{arms[-1].name}", "{arms[0].name}"]')
    if preferences and selection not in LIST_SELECTION:
        raise po.error("preferences", list(preferences), f"is unused with selection {selection!r}",
                       'drop it, or use selection = "list" or "list or best"')
    method = po.string("method", "exact", choices=METHODS)
    po.done()
    return Posterior(draws=draws, selection=selection, method=method,
                     preferences=tuple(preferences))


def _read_scenarios(root: Section, outcome_type: str, n_arms: int) -> dict[str, Scenario]:
    scenarios: dict[str, Scenario] = {}
    for name, sec in root.named_sections("scenarios").items():
        if outcome_type == "binary":
            values = sec.number_list("values", minimum=0, maximum=1, exclusive_min=True,
                                     exclusive_max=True, length=n_arms)
            sds = None
        else:
            values = sec.number_list("values", length=n_arms)
            sds = sec.number_list("sds", minimum=0, exclusive_min=True, length=n_arms)
        trend = sec.number("trend", 0.0)
        sec.done()
        scenarios[name] = Scenario(tuple(values), None if sds is None else tuple(sds),
                                   float(trend))
    return scenarios


def read_adaptive(root: Section, source: DesignSource) -> AdaptiveDesign:
    """Build an :class:`AdaptiveDesign` from the top-level section of a design file."""
    header = read_header(root)
    arms = _read_arms(root)
    names = [a.name for a in arms]
    outcome = _read_outcome(root)
    control = root.string("control", None, choices=names)
    looks = _read_looks(root)
    design = AdaptiveDesign(
        header=header,
        source=source,
        arms=arms,
        outcome=outcome,
        control=control,
        looks=looks,
        allocation=_read_allocation(root, names, control, len(looks.data)),
        stopping=_read_stopping(root, control, len(looks.data)),
        posterior=_read_posterior(root, arms, control),
        scenarios=_read_scenarios(root, outcome.type, len(arms)),
        randomisation=read_randomisation(root, len(arms), "arms", adaptive=True),
    )
    root.done(extra_allowed=("kind",))
    return design
