"""Design files of kind ``adaptive``: a Bayesian adaptive multi-arm trial."""

from __future__ import annotations

from dataclasses import dataclass, field

from trialkit.design._reader import Section, check_unique, identifier
from trialkit.design.base import DesignHeader, DesignSource, read_header
from trialkit.design.randomisation import RandomisationSpec, read_randomisation


@dataclass(frozen=True)
class Arm:
    """One arm of the trial."""

    name: str
    label: str
    start_probability: float


@dataclass(frozen=True)
class Looks:
    """Analysis schedule: patients with outcome data, and randomised, at each look."""

    data: tuple[int, ...]
    randomised: tuple[int, ...]


@dataclass(frozen=True)
class Stopping:
    """Stopping thresholds (one value per look)."""

    superiority: tuple[float, ...]
    inferiority: tuple[float, ...]
    equivalence_prob: tuple[float, ...] | None = None
    equivalence_diff: float | None = None
    futility_prob: tuple[float, ...] | None = None
    futility_diff: float | None = None


@dataclass(frozen=True)
class Allocation:
    """Response-adaptive allocation settings."""

    min_probs: tuple[float | None, ...]
    max_probs: tuple[float | None, ...]
    softening: tuple[float, ...]
    control: str = "none"


@dataclass(frozen=True)
class AdaptiveDesign:
    """A Bayesian adaptive multi-arm trial read from a design file."""

    header: DesignHeader
    source: DesignSource
    arms: tuple[Arm, ...]
    outcome_type: str
    highest_is_best: bool
    control: str | None
    looks: Looks
    allocation: Allocation
    stopping: Stopping
    draws: int
    selection: str
    scenarios: dict[str, tuple[float, ...]] = field(default_factory=dict)
    prior: tuple[float, float] = (1.0, 1.0)
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

    def summary(self) -> dict:
        """Describe the design for ``trialkit design show``."""
        return {
            "kind": self.kind,
            "name": self.name,
            "title": self.header.title,
            "sha256": self.source.sha256,
            "outcome_type": self.outcome_type,
            "highest_is_best": self.highest_is_best,
            "control": self.control,
            "n_looks": len(self.looks.data),
            "max_size": max(self.looks.randomised),
            "draws": self.draws,
            "arms": [{"name": a.name, "label": a.label, "start_probability": a.start_probability,
                      "min_probability": lo, "max_probability": hi}
                     for a, lo, hi in zip(self.arms, self.allocation.min_probs,
                                          self.allocation.max_probs, strict=True)],
            "looks": [{"look": i + 1, "data": d, "randomised": r,
                       "superiority": s, "inferiority": f}
                      for i, (d, r, s, f) in enumerate(zip(
                          self.looks.data, self.looks.randomised, self.stopping.superiority,
                          self.stopping.inferiority, strict=True))],
            "scenarios": [{"scenario": name, **dict(zip(self.arm_names, values, strict=True))}
                          for name, values in self.scenarios.items()],
        }


def _per_look(sec: Section, key: str, n_looks: int, default=None, lo=0.0, hi=1.0):
    value = sec.number_list(key, default, minimum=lo, maximum=hi, scalar_ok=True)
    if value is None:
        return None
    if isinstance(value, float):
        return (value,) * n_looks
    if len(value) != n_looks:
        raise sec.error(key, list(value), f"has {len(value)} values for {n_looks} looks",
                        f"give one number or exactly {n_looks} numbers")
    return tuple(value)


def read_adaptive(root: Section, source: DesignSource) -> AdaptiveDesign:
    """Build an :class:`AdaptiveDesign` from the top-level section of a design file."""
    header = read_header(root)
    arm_secs = root.sections("arms", required=True)
    if len(arm_secs) < 2:
        raise root.error("arms", len(arm_secs), "lists fewer than 2 arms", "add [[arms]] blocks")
    names = []
    labels = []
    starts = []
    for sec in arm_secs:
        names.append(identifier(sec, "name"))
        labels.append(sec.string("label", names[-1]))
        starts.append(sec.probability("start_probability", 1 / len(arm_secs)))
        sec.done()
    check_unique(root, "arms", names)
    if abs(sum(starts) - 1) > 1e-9:
        raise root.error("arms.start_probability", starts, "do not sum to 1",
                         "make the arms' start probabilities sum to 1")
    arms = tuple(Arm(n, lab, p) for n, lab, p in zip(names, labels, starts, strict=True))

    out = root.section("outcome", required=True)
    outcome_type = out.string("type", choices=("binary", "continuous"))
    highest_is_best = out.boolean("highest_is_best", False)
    prior = out.number_list("prior", (1.0, 1.0), minimum=0, exclusive_min=True, length=2)
    out.done()
    control = root.string("control", None, choices=names)

    lk = root.section("looks", required=True)
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
    n_looks = len(data)

    al = root.section("allocation") or Section({}, root.file, "allocation")
    min_probs = al.number_list("min_probs", (0.0,) * len(arms), minimum=0, maximum=1,
                               length=len(arms))
    max_probs = al.number_list("max_probs", (1.0,) * len(arms), minimum=0, maximum=1,
                               length=len(arms))
    if sum(min_probs) > 1:
        raise al.error("min_probs", list(min_probs), "sum to more than 1",
                       "lower the minimum probabilities so they sum to at most 1")
    allocation = Allocation(
        min_probs=tuple(min_probs),
        max_probs=tuple(max_probs),
        softening=_per_look(al, "softening", n_looks, 1.0, 0.0, 1.0),
        control=al.string("control", "none", choices=("none", "fixed", "sqrt", "match")),
    )
    al.done()

    st = root.section("stopping") or Section({}, root.file, "stopping")
    sup = _per_look(st, "superiority", n_looks, 1.0)
    inf = _per_look(st, "inferiority", n_looks, 0.0)
    stopping = Stopping(
        superiority=sup,
        inferiority=inf,
        equivalence_prob=_per_look(st, "equivalence_prob", n_looks),
        equivalence_diff=st.positive("equivalence_diff", None),
        futility_prob=_per_look(st, "futility_prob", n_looks),
        futility_diff=st.positive("futility_diff", None),
    )
    if stopping.futility_prob is not None and control is None:
        raise st.error("futility_prob", list(stopping.futility_prob), "needs a common control",
                       "set control = \"ARM\" at the top level or remove the futility rule")
    st.done()

    po = root.section("posterior") or Section({}, root.file, "posterior")
    draws = po.integer("draws", 5000, minimum=100)
    selection = po.string("selection", "none")
    po.done()

    scenarios: dict[str, tuple[float, ...]] = {}
    for name, sec in root.named_sections("scenarios").items():
        lo, hi, excl = (0, 1, True) if outcome_type == "binary" else (None, None, False)
        scenarios[name] = sec.number_list("values", minimum=lo, maximum=hi, exclusive_min=excl,
                                          exclusive_max=excl, length=len(arms))
        sec.done()

    design = AdaptiveDesign(
        header=header,
        source=source,
        arms=arms,
        outcome_type=outcome_type,
        highest_is_best=highest_is_best,
        control=control,
        looks=Looks(data=tuple(data), randomised=tuple(randomised)),
        allocation=allocation,
        stopping=stopping,
        draws=draws,
        selection=selection,
        scenarios=scenarios,
        prior=tuple(prior),
        randomisation=read_randomisation(root, len(arms), "arms"),
    )
    root.done(extra_allowed=("kind",))
    return design
