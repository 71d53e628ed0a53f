"""Power, sample size and simulated power of a factorial design file.

These functions read the design's assumed truth (effects, outcome sd or baseline rate, clusters,
pretest, dropout) and its planned analysis (model order, α, multiplicity adjustment).
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from trialkit.errors import TrialkitError
from trialkit.factorial import power as fp
from trialkit.factorial.model import model_matrix, model_terms, outcome_coefficients, term_name
from trialkit.results import Result, omit_none

_MAX_SIMULATED = 1_000_000   # participants in one simulated trial
_CHUNK_VALUES = 2**23        # outcomes drawn per chunk of replicates (64 MB of float64)


@dataclass(frozen=True)
class DesignPower(Result):
    """Analytic power of every effect of a design's planned analysis (one record per term)."""

    primary: ClassVar[str | None] = "effects"
    design: str
    outcome: str
    outcome_type: str
    method: str
    mode: str
    n_total: int
    n_analysed: float
    n_conditions: int
    model_order: int
    alpha: float
    adjust: str
    test_alpha: float
    effects: list[dict[str, Any]]
    n_clusters: int | None = omit_none()


@dataclass(frozen=True)
class DesignSampleSize(DesignPower):
    """The smallest enrolment reaching the target power, with the power of every effect then."""

    target_power: float = 0.8
    limiting_term: str = ""
    power: float = 0.0


@dataclass(frozen=True)
class SimulatedPower(Result):
    """Power of every effect from simulated trials, with Monte Carlo standard errors."""

    primary: ClassVar[str | None] = "effects"
    design: str
    outcome: str
    outcome_type: str
    method: str
    n_total: int
    reps: int
    seed: int
    alpha: float
    adjust: str
    failed: int
    effects: list[dict[str, Any]]
    n_clusters: int | None = omit_none()
    scenario: str | None = omit_none()


def _model(design):
    """Return (codes, model terms) after checking every model term is estimable in the design."""
    from trialkit.design.fractions import defining_relation

    codes = design.conditions()
    terms = model_terms(design.k, design.analysis.model_order)
    x = model_matrix(codes, terms)
    if np.linalg.matrix_rank(x) < len(terms):
        gens = design.generators()
        words = {m for _, m in defining_relation(design.k, gens)}
        masks = {sum(1 << i for i in t): t for t in terms}
        pair = next(((a, b) for a in masks for b in masks if a < b and a ^ b in words), None)
        detail = ""
        if pair is not None:
            detail = (f": {term_name(masks[pair[0]], design.factor_names)} is aliased with "
                      f"{term_name(masks[pair[1]], design.factor_names)}")
        raise TrialkitError(
            f"design {design.name!r}: a model of order {design.analysis.model_order} cannot be "
            f"estimated from its {codes.shape[0]} conditions{detail} — lower analysis.model_order "
            f"or use a fraction of higher resolution"
        )
    return codes, terms


def _truth(design, outcome, terms, effects=None):
    """Return (all truth terms, their coefficients) — model terms first, then any others."""
    coefs = outcome_coefficients(outcome, design.factor_names, effects)
    all_terms = list(terms) + [t for t in coefs if t not in terms]
    return all_terms, np.array([coefs.get(t, 0.0) for t in all_terms])


def design_truth(design, outcome: str | None = None) -> tuple[list, np.ndarray]:
    """Return (terms, true coefficients) of a design's outcome, the model's terms first.

    Continuous outcomes: outcome units, intercept = ``mean``. Binary outcomes: log-odds, with the
    intercept chosen so that the rate with every component off (all factors at −1) is
    ``baseline``. Use with :func:`trialkit.factorial.model.model_matrix` and
    :func:`trialkit.factorial.replicates.generate_factorial_data`.
    """
    out = design.outcome(outcome)
    return _truth(design, out, model_terms(design.k, design.analysis.model_order))


def _sizes(design, n_total: int | None):
    """Return (enrolled N, clusters or None, analysed mean cluster size or None)."""
    s = design.sample
    n = n_total if n_total is not None else s.n_total
    if s.assignment == "independent":
        if n is None:
            raise TrialkitError(f"design {design.name!r} has no sample.n_total — give n_total "
                                "or add it to [sample]", param="n_total")
        if n < 2:
            raise TrialkitError(f"n_total = {n} is too small — use at least 2 participants",
                                param="n_total")
        _check_total(n)
        return int(n), None, None
    if n_total is not None or s.clusters is None:
        if n is None:
            raise TrialkitError(f"design {design.name!r} has neither sample.clusters nor "
                                f"sample.n_total — add one of them")
        clusters = max(2, round(n / s.cluster_size))
    else:
        clusters = s.clusters
    _check_total(clusters * s.cluster_size)
    check_between_clusters(design, clusters)
    return int(round(clusters * s.cluster_size)), int(clusters), s.cluster_size


def check_between_clusters(design, clusters: int) -> None:
    """Refuse fewer clusters than conditions when whole clusters are randomised."""
    n_conditions = design.conditions().shape[0]
    if design.sample.assignment == "between" and clusters < n_conditions:
        raise TrialkitError(
            f"{clusters} clusters are fewer than the {n_conditions} conditions of design "
            f"{design.name!r}: whole clusters are randomised, so every condition needs at least "
            f"one — use at least {n_conditions} clusters, i.e. n_total ≥ "
            f"{math.ceil(n_conditions * design.sample.cluster_size)}", param="n_total")


def _check_total(n: float, limit: float = fp._MAX_SIZE, what: str = "") -> None:
    if n > limit:
        raise TrialkitError(f"{n:g} participants{what} are more than {limit:g} — give a "
                            "smaller n_total (or sample size in the design)", param="n_total")


def _setting_args(design, m_eff: float | None, exact: bool, alpha: float) -> dict[str, Any]:
    """Return the design's setting as keyword arguments of ``make_setting``."""
    s = design.sample
    clustered = s.assignment != "independent"
    return dict(
        model_order=design.analysis.model_order, alpha=alpha,
        assignment=s.assignment, cluster_size=m_eff if clustered else None,
        cluster_size_sd=s.cluster_size_sd if s.assignment == "between" else None,
        icc=s.icc if clustered else None, pretest=s.pretest,
        pre_post_corr=s.pre_post_corr if s.pretest != "none" else None,
        change_score_icc=(s.change_score_icc if s.assignment == "between"
                          and s.pretest == "repeated" else None), exact=exact)


def _setting(design, m_eff: float | None, exact: bool, alpha: float) -> fp.Setting:
    return fp.make_setting(design.k, **_setting_args(design, m_eff, exact, alpha))


def _alpha(design, adjust: str | None, n_tests: int) -> tuple[float, str]:
    method = design.analysis.adjust if adjust is None else adjust
    a = design.analysis.alpha
    return (a if method == "none" else a / n_tests), method


def _deff(design, m: float) -> float:
    s = design.sample
    if s.assignment != "between":
        return 1.0
    return 1 + (m * (1 + (s.cluster_size_sd / m) ** 2) - 1) * s.icc


def _analytic(design, outcome, codes, terms, beta, n: int, clusters, m, exact, alpha):
    """Per-term analytic power at enrolled size ``n`` (``clusters`` of size ``m``)."""
    d = design.sample.dropout
    p = len(terms)
    if clusters is not None and outcome.type == "continuous" and m * (1 - d) < 1:
        raise TrialkitError(f"sample.cluster_size × (1 − sample.dropout) = {m * (1 - d):g} "
                            f"analysed members per cluster is below 1 — use larger clusters or "
                            f"less dropout")
    if outcome.type == "binary":
        if design.sample.pretest != "none":
            raise TrialkitError("a pretest is not modelled for binary outcomes — set "
                                "sample.pretest = \"none\" or use a continuous outcome")
        n_an = (n if clusters is None else clusters * m) * (1 - d)
        deff = _deff(design, m * (1 - d)) if clusters is not None else 1.0
        if n_an <= p:
            raise TrialkitError(f"{n_an:g} analysed participants are too few for {p} "
                                f"coefficients — use a larger sample")
        pw, _ = fp.binary_power(codes, terms, beta[:p], n_an, alpha=alpha, design_effect=deff)
        return [float(v) for v in pw[1:]], [None] * (p - 1)
    s = _setting(design, None if m is None else m * (1 - d), exact, alpha)
    size = n * (1 - d) if clusters is None else clusters
    out, lams = [], []
    for b in beta[1:p]:
        res = fp._result(s, size, abs(float(b)), outcome.sd)
        out.append(res["power"])
        lams.append(res["noncentrality"])
    return out, lams


def factorial_design_power(
    design, n_total: int | None = None, *, outcome: str | None = None, exact: bool = False,
    adjust: str | None = None,
) -> DesignPower:
    """Analytic power of every effect in a factorial design's planned analysis.

    Parameters
    ----------
    design : FactorialDesign
        A loaded design (``trialkit.load_design``).
    n_total : int, optional
        Participants enrolled (default: the design's ``sample.n_total``); dropout is removed.
    outcome : str, optional
        Outcome name (default: the first listed).
    exact : bool
        Exact mode instead of MOST parity (continuous outcomes).
    adjust : {"none", "holm", "bonferroni"}, optional
        Override the design's adjustment; analytically both use the Bonferroni level α/m.

    Returns
    -------
    DesignPower
        ``effects``: one record per model term (``term``, assumed ``effect``, ``coef``,
        ``power``), plus ``n_total``, ``n_analysed``, ``alpha`` and the method.
    """
    out = design.outcome(outcome)
    codes, terms = _model(design)
    _, beta = _truth(design, out, terms)
    n, clusters, m = _sizes(design, n_total)
    alpha, method = _alpha(design, adjust, len(terms) - 1)
    powers, lams = _analytic(design, out, codes, terms, beta, n, clusters, m, exact, alpha)
    names = design.factor_names
    effects = [{"term": term_name(t, names), "effect": 2 * float(b), "coef": float(b),
                "power": pw, "noncentrality": lam}
               for t, b, pw, lam in zip(terms[1:], beta[1:len(terms)], powers, lams, strict=True)]
    return DesignPower(
        design=design.name, outcome=out.name, outcome_type=out.type, method="analytic",
        mode="exact" if exact else "most", n_total=n,
        n_analysed=(n if clusters is None else clusters * m) * (1 - design.sample.dropout),
        n_conditions=int(codes.shape[0]), model_order=design.analysis.model_order,
        alpha=design.analysis.alpha, adjust=method, test_alpha=alpha, effects=effects,
        n_clusters=clusters)


@dataclass(frozen=True)
class DesignMde(Result):
    """The smallest main effect a design detects with the target power.

    Continuous outcomes: ``raw_main`` (classic effect, outcome units), ``d_main`` (÷ sd) and
    ``raw_coef``; binary outcomes: ``logodds_main``, ``odds_ratio`` and ``risk_diff`` (from the
    baseline rate, the other components off).
    """

    design: str
    outcome: str
    outcome_type: str
    method: str
    mode: str
    n_total: int
    n_analysed: float
    model_order: int
    alpha: float
    adjust: str
    test_alpha: float
    target_power: float
    power: float
    n_clusters: int | None = omit_none()
    raw_main: float | None = omit_none()
    d_main: float | None = omit_none()
    raw_coef: float | None = omit_none()
    logodds_main: float | None = omit_none()
    odds_ratio: float | None = omit_none()
    risk_diff: float | None = omit_none()


def _binary_mde(design, out, codes, terms, n_an: float, deff: float, alpha: float,
                target: float) -> tuple[float, float]:
    """Return (log-odds coefficient, power) of the smallest detectable binary main effect."""
    from scipy import optimize, special

    def power_at(b: float) -> float:
        coefs = np.zeros(len(terms))
        coefs[0] = special.logit(out.baseline) + b   # the rate with every component off
        coefs[1] = b
        return float(fp.binary_power(codes, terms, coefs, n_an, alpha=alpha,
                                     design_effect=deff)[0][1])

    lo, hi = 0.0, 0.01
    while power_at(hi) < target:   # double the effect until the target is passed
        lo, hi = hi, 2 * hi
        if hi > 5:
            raise TrialkitError(f"no log-odds main effect up to 10 reaches power {target} — "
                                "use a larger sample", param="n_total")
    b = float(optimize.brentq(lambda v: power_at(v) - target, lo or 1e-9, hi, xtol=1e-10))
    return b, power_at(b)


def factorial_design_mde(
    design, n_total: int | None = None, *, power: float | None = None,
    outcome: str | None = None, exact: bool = False, adjust: str | None = None,
) -> DesignMde:
    """Minimum detectable main effect of a factorial design at its sample size.

    Parameters
    ----------
    design : FactorialDesign
        A loaded design: its sample (clusters, pretest, dropout), model order, α and adjustment.
    n_total : int, optional
        Participants enrolled (default: the design's ``sample.n_total``).
    power : float, optional
        Target power (default: the design's ``analysis.power``).
    outcome : str, optional
        Outcome name (default: the first listed).
    exact : bool
        Exact mode instead of MOST parity (continuous outcomes).
    adjust : {"none", "holm", "bonferroni"}, optional
        Override the design's adjustment (the test level is α/m with one).

    Returns
    -------
    DesignMde
        The smallest effect of one main effect (the others at zero) whose test reaches the
        target power, with the sample it assumes.
    """
    target = design.analysis.power if power is None else power
    fp._check_target(target)
    out = design.outcome(outcome)
    codes, terms = _model(design)
    n, clusters, m = _sizes(design, n_total)
    alpha, method = _alpha(design, adjust, len(terms) - 1)
    d = design.sample.dropout
    n_an = (n if clusters is None else clusters * m) * (1 - d)
    common = dict(design=design.name, outcome=out.name, outcome_type=out.type,
                  method="analytic detectable effect", mode="exact" if exact else "most",
                  n_total=n, n_analysed=n_an, model_order=design.analysis.model_order,
                  alpha=design.analysis.alpha, adjust=method, test_alpha=alpha,
                  target_power=target, n_clusters=clusters)
    if out.type == "binary":
        deff = _deff(design, m * (1 - d)) if clusters is not None else 1.0
        b, reached = _binary_mde(design, out, codes, terms, n_an, deff, alpha, target)
        from scipy import special

        return DesignMde(**common, power=reached, logodds_main=2 * b,
                         odds_ratio=float(np.exp(2 * b)),
                         risk_diff=float(special.expit(special.logit(out.baseline) + 2 * b)
                                         - out.baseline))
    _analytic(design, out, codes, terms, np.zeros(len(terms)), n, clusters, m, exact, alpha)
    size = n * (1 - d) if clusters is None else clusters
    args = _setting_args(design, None if m is None else m * (1 - d), exact, alpha)
    res = fp.factorial_mde(design.k, None if clusters else size, target,
                           clusters=size if clusters else None, sigma=out.sd, **args)
    return DesignMde(**common, power=res["power"], raw_main=res["raw_main"],
                     d_main=res["d_main"], raw_coef=res["raw_coef"])


def _smallest_reaching(power_at, target: float) -> int:
    """Return the smallest whole size whose ``power_at(size)`` reaches ``target``."""
    lo, hi = 1, 2
    while power_at(hi) < target:
        lo, hi = hi, hi * 2
        if hi > 10**7:
            raise TrialkitError(f"power {target} is not reached below 10 million — assume larger "
                                "effects or lower the target power", param="power")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if power_at(mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def _min_power(design, out, codes, terms, beta, mains, exact, alpha):
    """Return ``min_power(size, strict=False)``: the least power of the ``mains`` at a size.

    The size counts participants (independent) or clusters; a size too small for the model (or,
    with whole clusters randomised, with fewer clusters than conditions) has power −1 unless
    ``strict``.
    """
    s = design.sample

    def min_power(size: int, strict: bool = False) -> float:
        if s.assignment == "independent":
            n, clusters, m = size, None, None
        elif s.assignment == "between" and size < codes.shape[0]:
            return -1.0   # fewer clusters than conditions
        else:
            n, clusters, m = int(round(size * s.cluster_size)), size, s.cluster_size
        try:
            pw, _ = _analytic(design, out, codes, terms, beta, n, clusters, m, exact, alpha)
        except TrialkitError:
            if strict:
                raise
            return -1.0   # too small to fit the model
        return min(pw[j - 1] for j in mains)

    return min_power


def factorial_design_sample_size(
    design, power: float | None = None, *, outcome: str | None = None, exact: bool = False,
    adjust: str | None = None,
) -> DesignSampleSize:
    """Smallest enrolment at which every main effect with a non-zero assumed effect reaches power.

    Parameters
    ----------
    design : FactorialDesign
        A loaded design (``trialkit.load_design``).
    power : float, optional
        Target power (default: the design's ``analysis.power``).
    outcome : str, optional
        Outcome name (default: the first listed).
    exact : bool
        Exact mode instead of MOST parity (continuous outcomes).
    adjust : {"none", "holm", "bonferroni"}, optional
        Override the design's adjustment; analytically both use the Bonferroni level α/m.

    Returns
    -------
    DesignSampleSize
        ``n_total`` (enrolled, allowing for dropout), ``n_analysed``, ``n_clusters`` (clustered
        designs), the limiting term and the power each effect then has.
    """
    target = design.analysis.power if power is None else power
    fp._check_target(target)
    out = design.outcome(outcome)
    codes, terms = _model(design)
    _, beta = _truth(design, out, terms)
    mains = [j for j, t in enumerate(terms) if len(t) == 1 and beta[j] != 0]
    if not mains:
        raise TrialkitError(f"outcome {out.name!r} assumes no non-zero main effect — add effects "
                            f"to [outcomes.{out.name}.effects]")
    alpha, _ = _alpha(design, adjust, len(terms) - 1)
    s, names = design.sample, design.factor_names
    min_power = _min_power(design, out, codes, terms, beta, mains, exact, alpha)
    min_power(10**6, strict=True)   # problems that no sample size cures surface here
    hi = _smallest_reaching(min_power, target)
    limiting = min(mains, key=lambda j: abs(beta[j]))
    n_total = hi if s.assignment == "independent" else int(round(hi * s.cluster_size))
    res = factorial_design_power(design, n_total, outcome=out.name, exact=exact, adjust=adjust)
    fields = {f.name: getattr(res, f.name) for f in dataclasses.fields(res)}
    return DesignSampleSize(**{**fields, "method": "analytic sample size"}, target_power=target,
                            limiting_term=term_name(terms[limiting], names),
                            power=min(e["power"] for e in res.effects if e["term"] in
                                      {term_name(terms[j], names) for j in mains}))


def _sim_spec(design, out, codes, terms, n, clusters, adjust, effects=None):
    from trialkit.factorial.replicates import SimSpec, trial_layout

    s = design.sample
    lay = trial_layout(codes.shape[0], n, assignment=s.assignment, clusters=clusters,
                       cluster_size=s.cluster_size, cluster_size_sd=s.cluster_size_sd)
    all_terms, beta = _truth(design, out, terms, effects)
    alpha = design.analysis.alpha
    method = design.analysis.adjust if adjust is None else adjust
    if s.pretest != "none" and s.assignment == "between" and s.pretest == "covariate":
        raise TrialkitError("simulation of a covariate pretest with between-cluster assignment is "
                            "not supported — use pretest \"repeated\"")
    if out.type == "binary" and s.pretest != "none":
        raise TrialkitError("a pretest is not modelled for binary outcomes — set "
                            "sample.pretest = \"none\"")
    return SimSpec(
        x=model_matrix(codes[lay.condition], all_terms), xc=model_matrix(codes, terms),
        layout=lay, beta=beta, tested=tuple(range(1, len(terms))), outcome=out.type,
        sd=out.sd if out.sd is not None else 1.0, icc=s.icc if clusters is not None else 0.0,
        dropout=s.dropout, pretest=s.pretest,
        pre_post_corr=s.pre_post_corr if s.pretest != "none" else None, alpha=alpha,
        adjust=method)


def simulate_factorial_power(
    design, reps: int = 1000, seed: int = 1, *, jobs: int = 1, n_total: int | None = None,
    outcome: str | None = None, adjust: str | None = None, chunk_size: int | None = None,
    scenario: str | None = None,
) -> SimulatedPower:
    """Power of every effect by simulating the trial ``reps`` times and fitting the analysis.

    Replicate ``i`` is drawn from ``SeedSequence(seed, spawn_key=(i,))``, so results are identical
    for any ``jobs`` or ``chunk_size``.

    Parameters
    ----------
    design : FactorialDesign
        A loaded design.
    reps, seed, jobs : int
        Number of simulated trials, seed of the run, worker processes.
    n_total : int, optional
        Participants enrolled (default: ``sample.n_total``).
    outcome : str, optional
        Outcome name (default: the first).
    adjust : {"none", "holm", "bonferroni"}, optional
        Override the design's multiplicity adjustment.
    chunk_size : int, optional
        Replicates per batch.
    scenario : str, optional
        The truth to simulate: a ``[scenarios.NAME]`` of the design or a built-in one (see
        :func:`trialkit.factorial.scenarios.scenario_effects`); default the assumed effects.

    Returns
    -------
    SimulatedPower
        ``effects``: ``term``, ``effect``, ``power``, ``mc_se`` (Monte Carlo standard error),
        ``mean_coef`` (mean estimated effect-coded coefficient, i.e. effect ÷ 2) and the
        exact-mode ``analytic_power``; plus ``n_total``, ``reps``, ``seed`` and ``failed`` (fits
        that did not converge, counted as non-rejections).
    """
    from trialkit.engine import memory_batch, run_replicates
    from trialkit.factorial.replicates import simulate_chunk
    from trialkit.factorial.scenarios import scenario_effects

    out = design.outcome(outcome)
    codes, terms = _model(design)
    n, clusters, _ = _sizes(design, n_total)
    effects = None if scenario is None else scenario_effects(design, out, scenario)
    spec = _checked_sim_spec(design, out, codes, terms, n, clusters, adjust, effects)
    # bound the (replicates × participants) arrays of a call; results do not depend on it
    res = run_replicates(simulate_chunk, reps, jobs=jobs, batch=chunk_size,
                         max_batch=memory_batch(spec.x.shape[0], _CHUNK_VALUES), seed=seed,
                         spec=spec, progress="simulating trials")
    return SimulatedPower(
        design=design.name, outcome=out.name, outcome_type=out.type, method="simulation",
        n_total=int(spec.layout.condition.shape[0]), reps=reps, seed=seed,
        alpha=design.analysis.alpha, adjust=spec.adjust, failed=int(res["failed"].sum()),
        effects=_simulated_effects(design, out, terms, spec, res, n_total, adjust,
                                   analytic=scenario is None),
        n_clusters=clusters, scenario=scenario)


def factorial_simulation(design, outcome: str | None = None, scenario: str | None = None):
    """Return what simulating ``design`` needs: the replicate spec, term names and a batch size.

    The spec is the one :func:`simulate_factorial_power` runs with
    :func:`trialkit.factorial.replicates.simulate_chunk` (the design's ``n_total``, the outcome
    ``outcome`` and the truth ``scenario``, default the assumed effects); the batch bounds the
    replicates × participants arrays of a call.
    """
    from trialkit.engine import memory_batch
    from trialkit.factorial.scenarios import scenario_effects

    out = design.outcome(outcome)
    codes, terms = _model(design)
    n, clusters, _ = _sizes(design, None)
    effects = None if scenario is None else scenario_effects(design, out, scenario)
    spec = _checked_sim_spec(design, out, codes, terms, n, clusters, None, effects)
    names = [term_name(t, design.factor_names) for t in terms[1:]]
    return spec, names, memory_batch(spec.x.shape[0], _CHUNK_VALUES)


def _checked_sim_spec(design, out, codes, terms, n, clusters, adjust, effects):
    """Return the simulation spec, after checking the planned model fits such trials."""
    from trialkit.constants import ADJUSTMENTS

    if adjust is not None and adjust not in ADJUSTMENTS:
        raise TrialkitError(f"adjust {adjust!r} is unknown — use one of: "
                            f"{', '.join(ADJUSTMENTS)}", param="adjust")
    _check_total(n, _MAX_SIMULATED, " in a simulated trial")
    spec = _sim_spec(design, out, codes, terms, n, clusters, adjust, effects)
    n_coefs = len(terms) + (1 if design.sample.pretest == "covariate" else 0)
    if spec.layout.between:
        units, unit = spec.layout.n_clusters, "clusters"
    else:
        units, unit = spec.layout.condition.shape[0] * (1 - spec.dropout), "participants"
    if units - n_coefs < 1:
        raise TrialkitError(f"{units:g} analysed {unit} are too few to fit the planned model of "
                            f"{n_coefs} coefficients — use more {unit}", param="n_total")
    return spec


def _simulated_effects(design, out, terms, spec, res, n_total, adjust,
                       analytic: bool = True) -> list[dict]:
    """Per-term simulated power with its Monte Carlo SE, mean estimate and analytic power.

    The analytic (exact-mode) power is that of the assumed effects; under another scenario it is
    left out (``None``).
    """
    power = res["reject"].mean(axis=0)
    mc_se = np.sqrt(power * (1 - power) / res["reject"].shape[0])
    exact = [{"power": None}] * (len(terms) - 1)
    if analytic:
        try:
            exact = factorial_design_power(design, n_total, outcome=out.name, exact=True,
                                           adjust=adjust)["effects"]
        except TrialkitError:
            pass
    names = design.factor_names
    return [{"term": term_name(t, names), "effect": 2 * float(spec.beta[j + 1]),
             "power": float(power[j]), "mc_se": float(mc_se[j]),
             # rounded: batched BLAS kernels may differ in the last bit between batch sizes
             "mean_coef": float(f"{np.mean(res['estimate'][:, j]):.10g}"),
             "analytic_power": exact[j]["power"]}
            for j, t in enumerate(terms[1:])]


@dataclass(frozen=True)
class PowerCurve(Result):
    """Analytic power against enrolled N for every model term with a non-zero effect.

    ``plot()`` draws it (a horizontal line marks the design's target power); ``out`` is the
    figure file once saved.
    """

    primary: ClassVar[str | None] = "curves"
    design: str
    out: str | None
    n: list[int]
    curves: list[dict]
    target_power: float = field(default=0.8, metadata={"hidden": True})

    def plot(self) -> Any:
        """Return the figure: power of every term against N."""
        from trialkit.plotting import pyplot

        fig, ax = pyplot().subplots(figsize=(7, 4.5))
        for c in self.curves:
            ax.plot(self.n, c["power"], label=c["term"])
        ax.axhline(self.target_power, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("participants enrolled (N)")
        ax.set_ylabel("power")
        ax.set_ylim(0, 1)
        ax.set_title(f"{self.design}: power by effect")
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        return fig

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the figure (a figure extension) or the curves (``.json``/``.csv``)."""
        from trialkit.plotting import is_figure_path, save_figure

        if is_figure_path(path):
            return save_figure(self.plot(), path, param="out")
        return super().save(path)


def factorial_power_curve(
    design, n_from: int, n_to: int, out: str | None = None, *, points: int = 25,
    exact: bool = False, outcome: str | None = None,
) -> PowerCurve:
    """Analytic power against enrolled N for every model term with a non-zero effect.

    Parameters
    ----------
    design : FactorialDesign
        A loaded design.
    n_from, n_to : int
        Smallest and largest enrolment of the grid (2 <= n_from < n_to).
    out : str, optional
        Deprecated: call ``curve.save(path)`` (the format follows the extension).
    points : int
        Number of grid points (rounded to whole participants, duplicates dropped).
    exact : bool
        Exact mode instead of MOST parity (continuous outcomes).
    outcome : str, optional
        Outcome name (default: the first listed).

    Returns
    -------
    PowerCurve
        ``n`` (the grid) and ``curves`` (``term`` and ``power`` at each N); ``plot()`` and
        ``save(path)`` draw it.
    """
    if not (isinstance(n_from, int) and isinstance(n_to, int) and 2 <= n_from < n_to):
        raise TrialkitError(f"n_from = {n_from!r} and n_to = {n_to!r} do not make a range — "
                            "use 2 <= n_from < n_to", param=("n_from", "n_to"))
    from trialkit.engine import progress_bar

    grid = np.unique(np.linspace(n_from, n_to, points).round().astype(int))
    rows = []
    with progress_bar(len(grid), "power curve", "sample sizes") as bar:
        for n in grid:
            rows.append(factorial_design_power(design, int(n), outcome=outcome,
                                               exact=exact)["effects"])
            if bar is not None:
                bar.advance()
    curves = [{"term": e["term"], "power": [r[j]["power"] for r in rows]}
              for j, e in enumerate(rows[0]) if e["effect"] != 0]
    curve = PowerCurve(design.name, None, [int(v) for v in grid], curves,
                       design.analysis.power)
    if out is not None:
        warnings.warn("factorial_power_curve(out=...) is deprecated — call curve.save(path)",
                      DeprecationWarning, stacklevel=2)
        curve = replace(curve, out=curve.save(out))
    return curve
