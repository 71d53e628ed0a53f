"""Design files of kind ``mrt``: a micro-randomised trial of a prompt at decision points."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trialkit.constants import TRAJECTORY_SHAPES as SHAPES
from trialkit.design._reader import Section, identifier
from trialkit.design.base import DesignHeader, DesignSource, read_header
from trialkit.design.policy import (
    ContextVariable,
    PolicySpec,
    read_context,
    read_context_coefficients,
    read_policy,
)
from trialkit.design.randomisation import RandomisationSpec, read_randomisation
from trialkit.errors import MISSING

PROBABILITY_BY = ("constant", "decision_point", "day")


#: Variables a basis term may use: the decision point t = 1..T and the study day 1..D.
BASIS_VARIABLES = ("t", "day")
#: Highest power of a basis variable (``t^3``).
BASIS_MAX_POWER = 3


@dataclass(frozen=True)
class Trajectory:
    """A quantity over the decision points: a shape over days, or coefficients over a basis.

    With a ``shape`` (constant, linear or quadratic) ``mean`` is the average over the study
    days, ``initial`` the value on day 1 and ``extremum_day`` the day of the quadratic's maximum
    or minimum. With shape ``"basis"`` the quantity is ``Σ_j coefficients[j] · basis[j](t)``
    (for a binary outcome's baseline: the log of the success probability), each basis term
    ``"1"``, ``"t"``, ``"t^2"``, ``"day"``, … a function of the decision point t = 1..T or the
    study day — the parameterisation of R ``MRTSampleSizeBinary``.
    """

    shape: str
    mean: float = 0.0
    initial: float | None = None
    extremum_day: float | None = None
    basis: tuple[str, ...] = ()
    coefficients: tuple[float, ...] = ()


@dataclass(frozen=True)
class Schedule:
    """Days and decision points per day."""

    days: int
    decisions_per_day: int

    @property
    def n_decision_points(self) -> int:
        """Total decision points per participant."""
        return self.days * self.decisions_per_day


@dataclass(frozen=True)
class MrtOutcome:
    """A proximal outcome and its assumed treatment effect.

    Continuous outcomes take a standardised effect trajectory; binary outcomes a log relative-risk
    effect trajectory and a baseline success-probability trajectory.
    """

    name: str
    type: str
    label: str
    effect: Trajectory
    baseline: Trajectory | None = None
    context_baseline: tuple[tuple[str, float], ...] = ()
    context_effect: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class MrtDesign:
    """A micro-randomised trial read from a design file."""

    header: DesignHeader
    source: DesignSource
    schedule: Schedule
    treatment: str
    probability: tuple[float, ...]
    probability_by: str
    availability: Trajectory
    outcomes: tuple[MrtOutcome, ...]
    controls: int | None
    alpha: float
    power: float
    n_participants: int | None
    randomisation: RandomisationSpec | None = None
    kind: str = "mrt"
    context: tuple[ContextVariable, ...] = ()
    policy: PolicySpec | None = None

    @property
    def name(self) -> str:
        """The design's name."""
        return self.header.name

    def probability_at(self, decision_point: int) -> float:
        """Randomisation probability at ``decision_point`` (1 .. days × decisions_per_day)."""
        if not 1 <= decision_point <= self.schedule.n_decision_points:
            raise ValueError(f"decision point {decision_point} is outside "
                             f"1..{self.schedule.n_decision_points}")
        if self.probability_by == "decision_point":
            if len(self.probability) == self.schedule.n_decision_points:
                return self.probability[decision_point - 1]
            return self.probability[(decision_point - 1) % self.schedule.decisions_per_day]
        if self.probability_by == "day":
            return self.probability[(decision_point - 1) // self.schedule.decisions_per_day]
        return self.probability[0]

    @property
    def primary_outcome(self) -> MrtOutcome:
        """The first outcome listed."""
        return self.outcomes[0]

    def summary(self) -> dict[str, Any]:
        """Describe the design for ``trialkit design show``."""
        def traj(t: Trajectory) -> dict[str, Any]:
            if t.shape == "basis":
                return {"shape": t.shape, "basis": list(t.basis),
                        "coefficients": list(t.coefficients)}
            return {"shape": t.shape, "mean": t.mean, "initial": t.initial,
                    "extremum_day": t.extremum_day}

        return {
            "kind": self.kind,
            "name": self.name,
            "title": self.header.title,
            "sha256": self.source.sha256,
            "days": self.schedule.days,
            "decisions_per_day": self.schedule.decisions_per_day,
            "n_decision_points": self.schedule.n_decision_points,
            "treatment": self.treatment,
            "probability": list(self.probability),
            "probability_by": self.probability_by,
            "availability": traj(self.availability),
            "controls": self.controls,
            "alpha": self.alpha,
            "power": self.power,
            "outcomes": [{"name": o.name, "type": o.type, "label": o.label,
                          "effect": traj(o.effect),
                          "baseline": traj(o.baseline) if o.baseline else None,
                          **({"context_baseline": dict(o.context_baseline),
                              "context_effect": dict(o.context_effect)} if self.policy else {})}
                         for o in self.outcomes],
            **({"context": [vars(c) for c in self.context],
                "policy": self.policy.summary()} if self.policy else {}),
        }


def read_trajectory(sec: Section, lo: float | None, hi: float | None, exclusive: bool,
                    days: int) -> Trajectory:
    """Read a trajectory table; values are checked against ``(lo, hi)``."""
    shape = sec.string("shape", "constant", choices=SHAPES)
    mean = sec.number("mean", minimum=lo, maximum=hi, exclusive_min=exclusive,
                      exclusive_max=exclusive)
    initial = extremum = None
    if shape != "constant":
        initial = sec.number("initial", minimum=lo, maximum=hi, exclusive_min=exclusive,
                             exclusive_max=exclusive)
    if shape == "quadratic":
        extremum = sec.number("extremum_day", minimum=1, maximum=days)
    sec.done()
    return Trajectory(shape=shape, mean=mean, initial=initial, extremum_day=extremum)


def _basis_term(sec: Section, term: Any) -> str:
    """Check one basis term: ``"1"``, a variable (``"t"``, ``"day"``) or its power (``"t^2"``)."""
    text = term.replace(" ", "") if isinstance(term, str) else term
    name, _, power = text.partition("^") if isinstance(text, str) else ("", "", "")
    ok = text == "1" or (name in BASIS_VARIABLES and (
        not power or (power.isdigit() and 2 <= int(power) <= BASIS_MAX_POWER)))
    if not ok:
        raise sec.error("basis", term, "is not a basis term",
                        f'use "1", "t", "day" or a power up to {BASIS_MAX_POWER} such as "t^2" '
                        "(t = decision point 1..T, day = study day)")
    return text


def read_basis_trajectory(sec: Section) -> Trajectory:
    """Read ``basis`` and ``coefficients``: a quantity linear in functions of the decision point."""
    raw = sec.raw("basis")
    if not isinstance(raw, list) or not raw:
        raise sec.error("basis", raw, "is not a non-empty list of terms", 'write ["1", "t"]')
    basis = tuple(_basis_term(sec, term) for term in raw)
    if len(set(basis)) != len(basis):
        raise sec.error("basis", list(raw), "repeats a term", "list every term once")
    coefficients = sec.number_list("coefficients", length=len(basis))
    for key in ("shape", "mean", "initial", "extremum_day"):
        if sec.has(key):
            raise sec.error(key, sec.data[key], "is given together with basis",
                            "give either shape/mean/initial/extremum_day or basis and "
                            "coefficients")
    sec.done()
    return Trajectory(shape="basis", basis=basis, coefficients=tuple(coefficients))


def _read_treatment(root: Section, schedule: Schedule,
                    adaptive: bool) -> tuple[str, str, tuple[float, ...]]:
    """Return the treatment's name, how its probability varies, and the probabilities.

    With a ``[policy]`` the probability is optional (default 0.5): it is then the planning
    probability of the formulas and the numerator probability of the analysis.
    """
    trt = root.section("treatment", required=True)
    treatment = identifier(trt, "name", "prompt")
    by = trt.string("probability_by", "constant", choices=PROBABILITY_BY)
    if adaptive and by != "constant":
        raise trt.error("probability_by", by, "is not constant in an MRT with a [policy]",
                        "the policy sets the probabilities; give one planning probability")
    if by == "constant":
        probability = (trt.probability("probability", 0.5 if adaptive else MISSING),)
    else:
        probability = trt.number_list("probability", minimum=0, maximum=1, exclusive_min=True,
                                      exclusive_max=True,
                                      length=schedule.days if by == "day" else None)
        lengths = {schedule.decisions_per_day, schedule.n_decision_points}
        if by == "decision_point" and len(probability) not in lengths:
            raise trt.error("probability", list(probability),
                            f"has {len(probability)} entries",
                            f"give {schedule.decisions_per_day} (one per decision point of a "
                            f"day) or {schedule.n_decision_points} (one per decision point of "
                            "the study)")
    trt.done()
    return treatment, by, tuple(probability)



def _read_outcomes(root: Section, schedule: Schedule,
                   context: tuple[ContextVariable, ...]) -> list[MrtOutcome]:
    outcomes = []
    for name, sec in root.named_sections("outcomes", required=True).items():
        kind = sec.string("type", choices=("continuous", "binary"))
        effect_sec = sec.section("effect", required=True)
        effect = read_basis_trajectory(effect_sec) if effect_sec.has("basis") else \
            read_trajectory(effect_sec, None, None, False, schedule.days)
        baseline = None
        if kind == "binary":
            base_sec = sec.section("baseline", required=True)
            baseline = read_basis_trajectory(base_sec) if base_sec.has("basis") else \
                read_trajectory(base_sec, 0, 1, True, schedule.days)
        ctx_base = read_context_coefficients(sec, "context_baseline", context)
        ctx_effect = read_context_coefficients(sec, "context_effect", context)
        if kind == "binary" and (ctx_base or ctx_effect):
            key = "context_baseline" if ctx_base else "context_effect"
            raise sec.error(key, ctx_base or ctx_effect, "is given for a binary outcome",
                            "context coefficients apply to continuous outcomes; remove the table")
        outcomes.append(MrtOutcome(name=name, type=kind, label=sec.string("label", name),
                                   effect=effect, baseline=baseline,
                                   context_baseline=tuple(ctx_base.items()),
                                   context_effect=tuple(ctx_effect.items())))
        sec.done()
    if not outcomes:
        raise root.error("outcomes", {}, "defines no outcome", "add an [outcomes.NAME] table")
    return outcomes



def read_mrt(root: Section, source: DesignSource) -> MrtDesign:
    """Build an :class:`MrtDesign` from the top-level section of a design file."""
    header = read_header(root)
    sch = root.section("schedule", required=True)
    schedule = Schedule(days=sch.integer("days", minimum=1),
                        decisions_per_day=sch.integer("decisions_per_day", minimum=1))
    sch.done()

    treatment, by, probability = _read_treatment(root, schedule, root.has("policy"))
    avail = read_trajectory(root.section("availability", required=True), 0, 1, False,
                            schedule.days)
    if avail.mean <= 0:
        raise root.error("availability.mean", avail.mean, "is zero",
                         "expected availability must be in (0, 1]")

    context = read_context(root)
    if context and not root.has("policy"):
        raise root.error("context", sorted(c.name for c in context), "is given without a "
                         "[policy]", "context variables are read by a learning policy; add a "
                         "[policy] table or remove the [context] tables")
    outcomes = _read_outcomes(root, schedule, context)
    policy = read_policy(root, tuple(o.name for o in outcomes), context, schedule.days,
                         schedule.decisions_per_day)
    ana = root.section("analysis") or Section({}, root.file, "analysis")
    design = MrtDesign(
        header=header,
        source=source,
        schedule=schedule,
        treatment=treatment,
        probability=probability,
        probability_by=by,
        availability=avail,
        outcomes=tuple(outcomes),
        controls=ana.integer("controls", None, minimum=1),
        alpha=ana.probability("alpha", 0.05),
        power=ana.probability("power", 0.8),
        n_participants=ana.integer("n_participants", None, minimum=1),
        randomisation=read_randomisation(root, 2, "arms"),
        context=context,
        policy=policy,
    )
    ana.done()
    root.done(extra_allowed=("kind",))
    return design
