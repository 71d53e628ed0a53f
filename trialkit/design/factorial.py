"""Design files of kind ``factorial``: a 2^k or 2^(k−p) screening experiment of app components."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trialkit.constants import ADJUSTMENTS, ASSIGNMENTS, MAX_SAMPLE, OUTCOME_TYPES, PRETESTS
from trialkit.design._reader import Section, check_unique, identifier
from trialkit.design.base import DesignHeader, DesignSource, read_header
from trialkit.design.fractions import LETTERS, fraction_matrix
from trialkit.design.priors import Priors, read_priors
from trialkit.design.randomisation import RandomisationSpec, read_randomisation
from trialkit.errors import TrialkitError


@dataclass(frozen=True)
class Factor:
    """One app component switched on (+1) or off (−1)."""

    name: str
    letter: str
    label: str
    cost: float
    description: str = ""


@dataclass(frozen=True)
class FractionSpec:
    """How the conditions are chosen: ``generators`` or a requested ``resolution`` (+ ``runs``)."""

    generators: tuple[str, ...] = ()
    resolution: int | None = None
    runs: int | None = None


@dataclass(frozen=True)
class Outcome:
    """An outcome and the truth assumed for simulation.

    ``effects`` maps a term (``"a"`` or ``"a:b"``) to its classic factorial effect: the difference
    between the mean at +1 and at −1 of the term's contrast, i.e. twice the effect-coded regression
    coefficient. Continuous outcomes are in outcome units; binary ones on the log-odds scale.
    """

    name: str
    type: str
    label: str
    better: str
    sd: float | None = None
    baseline: float | None = None
    mean: float = 0.0
    effects: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """Sample size and structure."""

    n_total: int | None = None
    dropout: float = 0.0
    assignment: str = "independent"
    clusters: int | None = None
    cluster_size: float | None = None
    cluster_size_sd: float = 0.0
    icc: float = 0.0
    pretest: str = "none"
    pre_post_corr: float = 0.0
    change_score_icc: float | None = None
    cluster_column: str = "cluster"


@dataclass(frozen=True)
class Analysis:
    """The planned analysis."""

    model_order: int = 1
    alpha: float = 0.05
    power: float = 0.8
    adjust: str = "none"


@dataclass(frozen=True)
class FactorialDesign:
    """A factorial screening experiment read from a design file."""

    header: DesignHeader
    source: DesignSource
    factors: tuple[Factor, ...]
    fraction: FractionSpec
    outcomes: tuple[Outcome, ...]
    sample: Sample
    analysis: Analysis
    randomisation: RandomisationSpec | None = None
    priors: Priors = field(default_factory=Priors)
    scenarios: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    kind: str = "factorial"

    @property
    def name(self) -> str:
        """The design's name."""
        return self.header.name

    @property
    def k(self) -> int:
        """Number of factors."""
        return len(self.factors)

    @property
    def factor_names(self) -> tuple[str, ...]:
        """Factor names in file order."""
        return tuple(f.name for f in self.factors)

    @property
    def primary_outcome(self) -> Outcome:
        """The first outcome listed."""
        return self.outcomes[0]

    def outcome(self, name: str | None = None) -> Outcome:
        """Return the outcome called ``name`` (the primary outcome when ``None``)."""
        if name is None:
            return self.primary_outcome
        for out in self.outcomes:
            if out.name == name:
                return out
        names = ", ".join(o.name for o in self.outcomes)
        raise TrialkitError(f"outcome {name!r} is not in design {self.name!r} — use one of: "
                            f"{names}")

    def generators(self) -> tuple[str, ...]:
        """Return the fraction's generators (searched for when a resolution was requested)."""
        if self.fraction.resolution is not None and not self.fraction.generators:
            from trialkit.design.fractions import generators_for_resolution

            return generators_for_resolution(self.k, self.fraction.resolution, self.fraction.runs)
        return self.fraction.generators

    def conditions(self) -> np.ndarray:
        """Return the conditions as a (runs × k) matrix of ±1 codes."""
        return fraction_matrix(self.k, self.generators())

    def fraction_summary(self) -> dict[str, Any]:
        """Return generators, defining relation, resolution (brute force) and aliases to 2FIs."""
        from trialkit.design.fractions import (
            alias_structure,
            defining_relation,
            resolution,
            word_length_pattern,
            word_name,
        )

        gens = self.generators()
        words = defining_relation(self.k, gens)
        relation = "I" + "".join(f" = {'-' if sign < 0 else ''}{word_name(m)}"
                                 for sign, m in words)
        aliases = alias_structure(self.k, gens)
        named = alias_structure(self.k, gens, names=self.factor_names)
        return {
            "generators": list(gens),
            "requested_resolution": self.fraction.resolution,
            "defining_relation": relation,
            "resolution": resolution(self.k, gens),
            "word_length_pattern": word_length_pattern(self.k, gens),
            "aliases": [{"term": a["term"], "aliases": a["aliases"], "names": n["term"],
                         "aliased_names": n["aliases"]}
                        for a, n in zip(aliases, named, strict=True) if a["aliases"]],
        }

    def summary(self) -> dict[str, Any]:
        """Describe the design for ``trialkit design show``: factors, coded conditions, effects."""
        codes = self.conditions()
        names = self.factor_names
        return {
            "kind": self.kind,
            "name": self.name,
            "title": self.header.title,
            "sha256": self.source.sha256,
            "n_factors": self.k,
            "n_conditions": int(codes.shape[0]),
            "fraction": self.fraction_summary(),
            "model_order": self.analysis.model_order,
            "sample": {"n_total": self.sample.n_total, "dropout": self.sample.dropout,
                       "assignment": self.sample.assignment},
            "factors": [{"letter": f.letter, "name": f.name, "label": f.label, "cost": f.cost}
                        for f in self.factors],
            "conditions": [{"condition": i + 1, **dict(zip(names, map(int, row), strict=True))}
                           for i, row in enumerate(codes)],
            "outcomes": [{"name": o.name, "type": o.type, "better": o.better, "sd": o.sd,
                          "baseline": o.baseline} for o in self.outcomes],
            "assumed_effects": [{"outcome": o.name, "term": term, "effect": value}
                                for o in self.outcomes for term, value in o.effects.items()],
        }


def _read_factors(root: Section) -> tuple[Factor, ...]:
    secs = root.sections("factors", required=True)
    if len(secs) < 2:
        raise root.error("factors", [s.data.get("name") for s in secs],
                         f"lists {len(secs)} factor(s)",
                         "a factorial needs at least 2 factors: add [[factors]] blocks")
    if len(secs) > len(LETTERS):
        raise root.error("factors", len(secs), "lists too many factors",
                         f"use at most {len(LETTERS)} factors")
    factors = []
    for i, sec in enumerate(secs):
        name = identifier(sec, "name")
        factors.append(Factor(
            name=name,
            letter=LETTERS[i],
            label=sec.string("label", name.replace("_", " ")),
            cost=sec.number("cost", 0.0, minimum=0),
            description=sec.string("description", ""),
        ))
        sec.done()
    check_unique(root, "factors", [f.name for f in factors])
    return tuple(factors)


def _read_fraction(root: Section, k: int) -> FractionSpec:
    sec = root.section("fraction")
    if sec is None:
        return FractionSpec()
    generators = sec.string_list("generators", ())
    resolution = sec.integer("resolution", None, minimum=3, maximum=k)
    runs = sec.integer("runs", None, minimum=4, maximum=2**k)
    if generators and resolution is not None:
        raise sec.error("resolution", resolution, "is given together with generators",
                        "give either generators or resolution (with optional runs), not both")
    if not generators and resolution is None:
        raise sec.error("generators", None, "is missing and so is resolution",
                        "give generators such as [\"F = ABCD\"] or a resolution such as 4")
    if runs is not None and runs & (runs - 1):
        raise sec.error("runs", runs, "is not a power of two", "use 8, 16, 32, 64, …")
    if generators:
        try:
            fraction_matrix(k, tuple(generators))
        except TrialkitError as exc:
            problem, _, fix = str(exc).partition(" — ")
            raise sec.error("generators", list(generators), problem, fix) from None
    else:
        from trialkit.design.fractions import generators_for_resolution

        try:
            generators_for_resolution(k, resolution, runs)
        except TrialkitError as exc:
            problem, _, fix = str(exc).partition(" — ")
            raise sec.error("resolution", resolution, problem, fix) from None
    sec.done()
    return FractionSpec(generators=tuple(generators), resolution=resolution, runs=runs)


def _read_effects(sec: Section, names: list[str]) -> dict[str, float]:
    """Read a table of classic factorial effects: ``term = effect`` (terms as ``a:b``)."""
    effects: dict[str, float] = {}
    for term in list(sec.data):
        parts = term.split(":")
        bad = [p for p in parts if p not in names]
        if bad or len(set(parts)) != len(parts):
            raise sec.error(term, sec.data[term], "names an unknown or repeated factor",
                            "use factor names joined by ':' from: " + ", ".join(names))
        effects[":".join(sorted(parts, key=names.index))] = sec.number(term)
    sec.done()
    return effects


def _read_scenarios(root: Section, factors: tuple[Factor, ...], outcomes: tuple[Outcome, ...]
                    ) -> dict[str, dict[str, dict[str, float]]]:
    """Read ``[scenarios.NAME.OUTCOME]`` tables of effects (the truth of a named scenario)."""
    names = [f.name for f in factors]
    known = [o.name for o in outcomes]
    scenarios: dict[str, dict[str, dict[str, float]]] = {}
    for name, sec in root.named_sections("scenarios").items():
        scenarios[name] = {}
        for outcome in list(sec.data):
            if outcome not in known:
                raise sec.error(outcome, sec.data[outcome], "is not an outcome of the design",
                                "name a sub-table after an outcome: " + ", ".join(known))
            scenarios[name][outcome] = _read_effects(sec.section(outcome, required=True), names)
        sec.done()
    return scenarios


def _read_outcomes(root: Section, factors: tuple[Factor, ...]) -> tuple[Outcome, ...]:
    named = root.named_sections("outcomes", required=True)
    if not named:
        raise root.error("outcomes", {}, "defines no outcome", "add an [outcomes.NAME] table")
    names = [f.name for f in factors]
    outcomes = []
    for name, sec in named.items():
        if not name.replace("_", "a").isalnum():
            raise root.error(f"outcomes.{name}", name, "is not a valid outcome name",
                             "use letters, digits and underscores")
        kind = sec.string("type", choices=OUTCOME_TYPES)
        sd = sec.positive("sd") if kind == "continuous" else None
        baseline = sec.probability("baseline") if kind == "binary" else None
        effects_sec = sec.section("effects")
        effects = {} if effects_sec is None else _read_effects(effects_sec, names)
        outcomes.append(Outcome(
            name=name,
            type=kind,
            label=sec.string("label", name.replace("_", " ")),
            better=sec.string("better", "higher", choices=("higher", "lower")),
            sd=sd,
            baseline=baseline,
            mean=sec.number("mean", 0.0) if kind == "continuous" else 0.0,
            effects=effects,
        ))
        sec.done()
    return tuple(outcomes)


def _read_sample(root: Section, n_conditions: int) -> Sample:
    sec = root.section("sample")
    if sec is None:
        return Sample()
    assignment = sec.string("assignment", "independent", choices=ASSIGNMENTS)
    pretest = sec.string("pretest", "none", choices=PRETESTS)
    sample = Sample(
        n_total=sec.integer("n_total", None, minimum=1, maximum=MAX_SAMPLE),
        dropout=sec.number("dropout", 0.0, 0, 1, exclusive_max=True),
        assignment=assignment,
        clusters=sec.integer("clusters", None, minimum=2, maximum=MAX_SAMPLE),
        cluster_size=sec.number("cluster_size", None, minimum=1, maximum=MAX_SAMPLE),
        cluster_size_sd=sec.number("cluster_size_sd", 0.0, minimum=0),
        icc=sec.number("icc", 0.0, 0, 1, exclusive_max=True),
        pretest=pretest,
        pre_post_corr=sec.number("pre_post_corr", 0.0, -1, 1, exclusive_min=True,
                                 exclusive_max=True),
        change_score_icc=sec.number("change_score_icc", None, 0, 1, exclusive_max=True),
        cluster_column=identifier(sec, "cluster_column", "cluster"),
    )
    _check_clusters(sec, sample, n_conditions)
    sec.done()
    return sample


def _check_clusters(sec: Section, sample: Sample, n_conditions: int) -> None:
    """Refuse cluster settings that contradict each other or the number of conditions."""
    assignment = sample.assignment
    if assignment == "independent":
        if sample.clusters is not None:
            raise sec.error("clusters", sample.clusters, "is given with assignment = "
                            "'independent'", "drop it, or set assignment = \"within\" or "
                            "\"between\"")
        return
    size = sample.cluster_size
    if size is None:
        raise sec.error("cluster_size", None, f"is required with assignment = {assignment!r}",
                        "give the mean number of participants per cluster")
    clusters = sample.clusters
    if clusters is None and sample.n_total is not None:
        clusters = max(2, round(sample.n_total / size))
    if clusters is not None and sample.n_total is not None and sample.clusters is not None \
            and round(clusters * size) != sample.n_total:
        raise sec.error("n_total", sample.n_total,
                        f"disagrees with clusters × cluster_size = {clusters} × {size:g} = "
                        f"{clusters * size:g}",
                        f"give n_total = {round(clusters * size)}, or drop n_total (it "
                        "follows from clusters × cluster_size)")
    if clusters is not None and clusters * size > MAX_SAMPLE:
        raise sec.error("clusters" if sample.clusters is not None else "n_total",
                        sample.clusters if sample.clusters is not None else sample.n_total,
                        f"gives {clusters:g} × {size:g} = {clusters * size:g} participants",
                        f"use at most {MAX_SAMPLE:g} participants in all")
    if assignment == "between" and clusters is not None and clusters < n_conditions:
        key, value = ("clusters", sample.clusters) if sample.clusters is not None \
            else ("n_total", sample.n_total)
        raise sec.error(key, value, f"gives {clusters} clusters for {n_conditions} conditions, "
                        "but with assignment = 'between' whole clusters are randomised, so "
                        "every condition needs at least one cluster",
                        f"use at least {n_conditions} clusters (better a multiple of "
                        f"{n_conditions}), or assignment = \"within\"")


def _read_analysis(root: Section, k: int) -> Analysis:
    sec = root.section("analysis")
    if sec is None:
        return Analysis()
    analysis = Analysis(
        model_order=sec.integer("model_order", 1, minimum=1, maximum=k),
        alpha=sec.probability("alpha", 0.05),
        power=sec.probability("power", 0.8),
        adjust=sec.string("adjust", "none", choices=ADJUSTMENTS),
    )
    sec.done()
    return analysis


def read_factorial(root: Section, source: DesignSource) -> FactorialDesign:
    """Build a :class:`FactorialDesign` from the top-level section of a design file."""
    header = read_header(root)
    factors = _read_factors(root)
    fraction = _read_fraction(root, len(factors))
    n_conditions = 2 ** (len(factors) - len(fraction.generators))
    if fraction.runs is not None:
        n_conditions = fraction.runs
    elif fraction.resolution is not None:
        from trialkit.design.fractions import min_runs

        n_conditions = min_runs(len(factors), fraction.resolution)
    outcomes = _read_outcomes(root, factors)
    design = FactorialDesign(
        header=header,
        source=source,
        factors=factors,
        fraction=fraction,
        outcomes=outcomes,
        sample=_read_sample(root, n_conditions),
        analysis=_read_analysis(root, len(factors)),
        randomisation=read_randomisation(root, n_conditions, "conditions"),
        priors=read_priors(root, tuple(root.data.get("outcomes", {}))),
        scenarios=_read_scenarios(root, factors, outcomes),
    )
    root.done(extra_allowed=("kind",))
    return design


def __getattr__(name: str) -> Any:
    """Forward the old name ``Fraction`` (it shadowed :class:`fractions.Fraction`)."""
    if name == "Fraction":
        import warnings

        warnings.warn("trialkit.design.factorial.Fraction is deprecated — use FractionSpec",
                      DeprecationWarning, stacklevel=2)
        return FractionSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
