"""Analytic power, sample size and detectable effect of factorial experiments.

Continuous outcomes follow Dziak, Nahum-Shani & Collins (2012) and the R package MOST
(``FactorialPowerPlan``): effect coding (−1/+1), one 1-df F test per regression coefficient, with
noncentrality ``λ = n·b²/σ_eff²`` adjusted for clusters and pretests and ``df2 = n − p``. In MOST
parity mode (the default) λ is capped at 100, power is rounded to 4 decimals and the searches
follow MOST's bisections exactly; exact mode does neither.

Binary outcomes use the large-sample (Wald, normal approximation) variance of logistic-regression
coefficients, ``Var(β̂) = [Σ_c n_c π_c (1 − π_c) x_c x_cᵀ]⁻¹``, over the design's conditions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from math import comb
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from trialkit.constants import ASSIGNMENTS, MAX_SAMPLE, PRETESTS
from trialkit.errors import TrialkitError
from trialkit.results import Result, omit_none

LAMBDA_CAP = 100.0
_TOP = 10_000_000
_MAX_CELLS = 2**25   # conditions × coefficients of a binary information matrix
_MAX_SIZE = float(MAX_SAMPLE)  # largest number of participants, clusters or members


@dataclass(frozen=True)
class Setting:
    """Everything except sample size and effect that fixes a factorial power calculation."""

    factors: int
    model_order: int = 1
    alpha: float = 0.05
    assignment: str = "independent"
    cluster_size: float | None = None
    cluster_size_sd: float = 0.0
    icc: float | None = None
    pretest: str = "none"
    pre_post_corr: float | None = None
    change_score_icc: float | None = None
    exact: bool = False

    @property
    def n_coefficients(self) -> int:
        """Number of regression coefficients p (intercept, effects up to the order, covariate)."""
        p = 1 + sum(comb(self.factors, j) for j in range(1, self.model_order + 1))
        return p + (1 if self.pretest == "covariate" else 0)

    @property
    def clustered(self) -> bool:
        """Whether sample sizes are counted in clusters."""
        return self.assignment != "independent"


def _fail(message: str, param: str | tuple[str, ...] | None = None) -> TrialkitError:
    return TrialkitError(message, param=param)


def _check_clusters(assignment: str, cluster_size, cluster_size_sd, icc) -> None:
    if assignment == "independent":
        for name, value in (("cluster_size", cluster_size),
                            ("cluster_size_sd", cluster_size_sd), ("icc", icc)):
            if value is not None:
                raise _fail(f"{name} is given with independent assignment — drop it, or use "
                            "assignment within or between", param=name)
        return
    if cluster_size is None or not (math.isfinite(cluster_size) and cluster_size >= 1):
        raise _fail(f"cluster_size = {cluster_size!r} is missing or below 1 with {assignment} "
                    "assignment — give the mean number of members per cluster",
                    param="cluster_size")
    if cluster_size > _MAX_SIZE:
        raise _fail(f"cluster_size = {cluster_size:g} is above {_MAX_SIZE:g} — give a "
                    "realistic number of members per cluster", param="cluster_size")
    if icc is None or not 0 <= icc < 1:
        raise _fail(f"icc = {icc!r} is missing or outside [0, 1) with {assignment} "
                    "assignment — give the intraclass correlation, e.g. 0.05", param="icc")
    if assignment == "within" and cluster_size_sd not in (None, 0, 0.0):
        raise _fail("cluster_size_sd is given with within-cluster assignment — drop it "
                    "(it only matters when whole clusters are randomised)",
                    param="cluster_size_sd")
    if cluster_size_sd is not None and not (math.isfinite(cluster_size_sd)
                                            and cluster_size_sd >= 0):
        raise _fail(f"cluster_size_sd = {cluster_size_sd!r} is negative or not finite — use 0 "
                    "or more", param="cluster_size_sd")


def _check_pretest(pretest: str, assignment: str, pre_post_corr, change_score_icc) -> None:
    if pretest == "none" and pre_post_corr is not None:
        raise _fail("pre_post_corr is given without a pretest — use pretest covariate or "
                    "repeated, or drop it", param="pre_post_corr")
    if pretest != "none" and (pre_post_corr is None or not 0 <= pre_post_corr < 1):
        raise _fail(f"pre_post_corr = {pre_post_corr!r} is missing or outside [0, 1) with "
                    f"pretest {pretest} — give the pretest-posttest correlation",
                    param="pre_post_corr")
    if pretest == "covariate" and assignment == "between":
        raise _fail("pretest covariate with between-cluster assignment has no power formula "
                    "— use pretest repeated, which approximates it", param="pretest")
    needed = pretest == "repeated" and assignment == "between"
    if change_score_icc is None and needed:
        raise _fail("change_score_icc is missing — between-cluster assignment with a repeated "
                    "pretest needs the intraclass correlation of the change scores",
                    param="change_score_icc")
    if change_score_icc is not None and not needed:
        raise _fail("change_score_icc only applies to between-cluster assignment with a "
                    "repeated pretest — drop it", param="change_score_icc")
    if change_score_icc is not None and not 0 <= change_score_icc < 1:
        raise _fail(f"change_score_icc = {change_score_icc!r} is outside [0, 1) — use a value "
                    "such as 0.02", param="change_score_icc")


def make_setting(
    factors: int, *, model_order: int = 1, alpha: float = 0.05,
    assignment: str = "independent", cluster_size: float | None = None,
    cluster_size_sd: float | None = None, icc: float | None = None, pretest: str = "none",
    pre_post_corr: float | None = None, change_score_icc: float | None = None,
    exact: bool = False,
) -> Setting:
    """Validate the arguments of a power calculation and return a :class:`Setting`."""
    if not isinstance(factors, int | np.integer) or not 1 <= factors <= 26:
        raise _fail(f"factors = {factors!r} is invalid — use a whole number from 1 to 26",
                    param="factors")
    if not isinstance(model_order, int | np.integer) or not 1 <= model_order <= factors:
        raise _fail(f"model_order = {model_order!r} is invalid — use a whole number from 1 to "
                    f"the number of factors ({factors})", param="model_order")
    if not 0 < alpha < 1:
        raise _fail(f"alpha = {alpha!r} is outside (0, 1) — use a level such as 0.05",
                    param="alpha")
    if assignment not in ASSIGNMENTS:
        raise _fail(f"assignment {assignment!r} is unknown — use one of: "
                    f"{', '.join(ASSIGNMENTS)}", param="assignment")
    if pretest not in PRETESTS:
        raise _fail(f"pretest {pretest!r} is unknown — use one of: {', '.join(PRETESTS)}",
                    param="pretest")
    _check_clusters(assignment, cluster_size, cluster_size_sd, icc)
    _check_pretest(pretest, assignment, pre_post_corr, change_score_icc)
    return Setting(int(factors), int(model_order), float(alpha), assignment,
                   None if cluster_size is None else float(cluster_size),
                   float(cluster_size_sd or 0.0), None if icc is None else float(icc), pretest,
                   None if pre_post_corr is None else float(pre_post_corr),
                   None if change_score_icc is None else float(change_score_icc), bool(exact))


def effect_coefficient(
    d_main: float | None = None, raw_main: float | None = None, raw_coef: float | None = None,
    f2: float | None = None, sigma: float | None = None,
) -> tuple[float, float]:
    """Turn one of the effect-size forms into (|b|, σ): the effect-coded coefficient and the sd.

    ``d_main`` = 2b/σ, ``raw_main`` = 2b, ``raw_coef`` = b and Cohen's ``f2`` = b²/σ². ``sigma``
    is required with the raw forms and defaults to 1 with the standardised ones.
    """
    given = {k: v for k, v in (("d_main", d_main), ("raw_main", raw_main),
                               ("raw_coef", raw_coef), ("f2", f2)) if v is not None}
    if len(given) > 1:
        raise _fail(f"two effect sizes are given ({', '.join(given)}) — give only one of "
                    "d_main, raw_main, raw_coef, f2", param=tuple(given))
    if sigma is not None and not (math.isfinite(sigma) and sigma > 0):
        raise _fail(f"sigma = {sigma!r} is not positive — give the outcome sd, e.g. 10",
                    param="sigma")
    if raw_main is not None or raw_coef is not None:
        if sigma is None:
            raise _fail("sigma is missing — a raw effect size needs the outcome sd",
                        param="sigma")
    sig = 1.0 if sigma is None else float(sigma)
    if not given:
        return math.nan, sig
    value = float(next(iter(given.values())))
    if not math.isfinite(value):
        raise _fail(f"the effect size {value!r} is not finite — give a number")
    if f2 is not None and f2 < 0:
        raise _fail(f"f2 = {f2!r} is negative — Cohen's f² is 0 or more", param="f2")
    if d_main is not None:
        coef = 0.5 * d_main * sig
    elif raw_main is not None:
        coef = 0.5 * raw_main
    elif raw_coef is not None:
        coef = raw_coef
    else:
        coef = math.sqrt(float(f2 or 0.0)) * sig
    return abs(coef), sig


def _noncentrality(s: Setting, size: float, coef: float, sigma: float) -> tuple[float, float]:
    """Return (λ, df2) for ``size`` participants (independent) or clusters (clustered)."""
    p = s.n_coefficients
    m = 1.0 if s.cluster_size is None else s.cluster_size
    icc = 0.0 if s.icc is None else s.icc
    rho = 0.0 if s.pre_post_corr is None else s.pre_post_corr
    df2: float
    if s.pretest == "repeated":
        if s.assignment == "independent":
            cv, icc, csicc = 0.0, 0.0, 0.0
        else:
            cv = s.cluster_size_sd / m
            csicc = (s.change_score_icc or 0.0) if s.assignment == "between" else 0.0
        deff = 1 + (m * (1 + cv**2) - 1) * csicc
        df2 = math.floor(size * m) - p if s.assignment == "within" else size - p
        df2 = int(df2) if float(df2).is_integer() else df2
        lam = m * size * coef**2 * (1 - csicc) / (
            2 * sigma**2 * (1 - rho) * (1 - icc) * deff)
        return lam, df2
    sig_eff2 = sigma**2 * (1 - rho**2) if s.pretest == "covariate" else sigma**2
    if s.assignment == "independent":
        df2 = size - p
        return size * coef**2 / sig_eff2, int(df2) if float(df2).is_integer() else df2
    if s.assignment == "between":
        nadj = m * (1 + (s.cluster_size_sd / m) ** 2)
        deff = 1 + (nadj - 1) * icc
        df2 = int(size - p) if float(size).is_integer() else size - p
    else:
        deff = 1.0
        df2 = math.floor(size * m) - p
    return m * size * coef**2 / (sig_eff2 * deff), df2


def _power_at(s: Setting, size: float, coef: float, sigma: float) -> tuple[float, float, float]:
    lam, df2 = _noncentrality(s, size, coef, sigma)
    if df2 < 1:
        unit = "clusters" if s.clustered else "participants"
        raise _fail(f"{size:g} {unit} are too few to fit a model of {s.n_coefficients} "
                    f"coefficients — use more {unit}")
    crit = stats.f.ppf(1 - s.alpha, 1, df2)
    if s.exact:
        power = float(stats.ncf.sf(crit, 1, df2, lam)) if lam > 0 else s.alpha
    else:
        lam_c = min(LAMBDA_CAP, lam)
        power = float(stats.ncf.sf(crit, 1, df2, lam_c)) if lam_c > 0 else s.alpha
        power = round(power, 4)
    return power, lam, df2


@dataclass(frozen=True)
class FactorialPower(Result):
    """Power of one effect-coded coefficient at a sample size (and the effect in every form).

    ``n_clusters`` is set for clustered designs; ``raw_main`` for a detectable effect
    (:func:`factorial_mde`); ``target_power`` for searches (sample size, detectable effect).
    """

    power: float
    n_clusters: float | None = omit_none()
    n_total: float = 0.0
    df2: float = 0.0
    noncentrality: float = 0.0
    n_coefficients: int = 0
    raw_coef: float = 0.0
    std_coef: float = 0.0
    d_main: float = 0.0
    f2: float = 0.0
    sigma: float = 1.0
    alpha: float = 0.05
    mode: str = "most"
    raw_main: float | None = omit_none()
    target_power: float | None = omit_none()


@dataclass(frozen=True)
class BinaryPower(Result):
    """Power of a main effect on a binary outcome (Wald test, normal approximation)."""

    power: float
    n_total: float
    se: float
    raw_coef: float
    logodds_main: float
    baseline: float
    alpha: float
    n_coefficients: int
    mode: str = "normal approximation"


def _result(s: Setting, size: float, coef: float, sigma: float, **extra: Any) -> FactorialPower:
    power, lam, df2 = _power_at(s, size, coef, sigma)
    return FactorialPower(
        power=power, n_clusters=size if s.clustered else None,
        n_total=size * (s.cluster_size or 1.0) if s.clustered else size, df2=df2,
        noncentrality=lam, n_coefficients=s.n_coefficients, raw_coef=coef,
        std_coef=coef / sigma, d_main=2 * coef / sigma, f2=(coef / sigma) ** 2, sigma=sigma,
        alpha=s.alpha, mode="exact" if s.exact else "most", **extra)


def _check_size(s: Setting, n_total, clusters) -> float:
    if s.clustered:
        if n_total is not None:
            raise _fail(f"n_total is given with {s.assignment}-cluster assignment — give the "
                        "number of clusters instead", param=("n_total", "clusters"))
        if clusters is None:
            raise _fail("clusters is missing — give the number of clusters", param="clusters")
        size = clusters
    else:
        if clusters is not None:
            raise _fail("clusters is given with independent assignment — give n_total, or "
                        "use assignment within or between", param="clusters")
        if n_total is None:
            raise _fail("n_total is missing — give the total number of participants",
                        param="n_total")
        size = n_total
    if not (math.isfinite(size) and size > 0):
        raise _fail(f"the sample size {size!r} is not positive — give a positive number")
    if size > _MAX_SIZE:
        raise _fail(f"the sample size {size:g} is above {_MAX_SIZE:g} — give a realistic number "
                    f"of {'clusters' if s.clustered else 'participants'}")
    return int(size) if float(size).is_integer() else float(size)


def factorial_power(
    factors: int, n_total: float | None = None, *, clusters: float | None = None,
    d_main: float | None = None, raw_main: float | None = None, raw_coef: float | None = None,
    f2: float | None = None, sigma: float | None = None, model_order: int = 1,
    alpha: float = 0.05, assignment: str = "independent", cluster_size: float | None = None,
    cluster_size_sd: float | None = None, icc: float | None = None, pretest: str = "none",
    pre_post_corr: float | None = None, change_score_icc: float | None = None,
    exact: bool = False,
) -> FactorialPower:
    """Power of the 1-df test of one effect-coded coefficient in a factorial experiment.

    Parameters
    ----------
    factors : int
        Number of two-level factors.
    n_total : float, optional
        Total participants (independent assignment).
    clusters : float, optional
        Number of clusters (within or between assignment).
    d_main, raw_main, raw_coef, f2 : float, optional
        The effect, in exactly one form: standardised main effect 2b/σ, raw main effect 2b, raw
        coefficient b, or Cohen's f² = b²/σ².
    sigma : float, optional
        Outcome sd (required with ``raw_main``/``raw_coef``; 1 otherwise).
    model_order : int
        Highest interaction order in the analysis model (1 = main effects).
    alpha : float
        Two-sided significance level.
    assignment : {"independent", "within", "between"}
        Individuals randomised, individuals randomised inside clusters, or whole clusters.
    cluster_size, cluster_size_sd, icc : float, optional
        Mean and sd of the cluster size and the intraclass correlation (clustered designs).
    pretest : {"none", "covariate", "repeated"}
        No pretest, pretest as ANCOVA covariate, or pretest as a repeated measure.
    pre_post_corr, change_score_icc : float, optional
        Pretest–posttest correlation; ICC of the change scores (between clusters, repeated).
    exact : bool
        Exact mode (no cap on the noncentrality, no rounding) instead of MOST parity.

    Returns
    -------
    FactorialPower
        ``power``, ``n_total`` (and ``n_clusters``), ``df2``, ``noncentrality``,
        ``n_coefficients`` and the effect in all forms.

    Examples
    --------
    >>> factorial_power(5, 300, raw_main=3, sigma=10, model_order=2)["power"]
    0.7354
    """
    s = make_setting(factors, model_order=model_order, alpha=alpha, assignment=assignment,
                     cluster_size=cluster_size, cluster_size_sd=cluster_size_sd, icc=icc,
                     pretest=pretest, pre_post_corr=pre_post_corr,
                     change_score_icc=change_score_icc, exact=exact)
    coef, sig = effect_coefficient(d_main, raw_main, raw_coef, f2, sigma)
    if math.isnan(coef):
        raise _fail("no effect size is given — give one of d_main, raw_main (with sigma), "
                    "raw_coef (with sigma) or f2", param=("d_main", "raw_main", "raw_coef", "f2"))
    size = _check_size(s, n_total, clusters)
    return _result(s, size, coef, sig)


def _bisect_exact(s: Setting, coef: float, sigma: float, target: float, bottom: int) -> int:
    """Smallest size from ``bottom`` up reaching ``target``: doubling, then integer bisection."""
    while _noncentrality(s, bottom, coef, sigma)[1] < 1:
        bottom += 1
    if _power_at(s, bottom, coef, sigma)[0] >= target:
        return bottom
    lo, hi = bottom, bottom + 1
    while _power_at(s, hi, coef, sigma)[0] < target:
        lo, hi = hi, hi * 2
        if hi > _TOP:
            raise _fail(f"power {target} cannot be reached with fewer than {_TOP} — use a "
                        "larger effect or a lower target power", param="power")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _power_at(s, mid, coef, sigma)[0] >= target:
            hi = mid
        else:
            lo = mid
    return hi


def _bisect_size(s: Setting, coef: float, sigma: float, target: float) -> int:
    """Smallest size (participants or clusters) whose power reaches ``target``.

    In MOST parity mode this is MOST's own bisection; in exact mode a plain integer bisection.
    """
    p = s.n_coefficients
    bottom = math.ceil((p + 1) / (s.cluster_size or 1.0)) if s.assignment == "within" else p + 1
    if s.exact:
        return _bisect_exact(s, coef, sigma, target, bottom)
    top = _TOP
    while True:
        middle = math.ceil(bottom + 0.5 * (top - bottom))
        f = _power_at(s, middle, coef, sigma)[0]
        if middle == top:
            break
        if f < target:
            bottom = middle
        elif f == target:
            bottom = top = middle
        else:
            top = middle
    if f < target:
        raise _fail(f"power {target} cannot be reached (at most {f:.4f}) — use a larger effect "
                    f"or a lower target power")
    return middle


def factorial_sample_size(
    factors: int, power: float = 0.8, *, d_main: float | None = None,
    raw_main: float | None = None, raw_coef: float | None = None, f2: float | None = None,
    sigma: float | None = None, model_order: int = 1, alpha: float = 0.05,
    assignment: str = "independent", cluster_size: float | None = None,
    cluster_size_sd: float | None = None, icc: float | None = None, pretest: str = "none",
    pre_post_corr: float | None = None, change_score_icc: float | None = None,
    exact: bool = False,
) -> FactorialPower:
    """Smallest total N (or number of clusters) whose power reaches ``power``.

    Parameters are those of :func:`factorial_power`; ``power`` is the target.

    Returns
    -------
    FactorialPower
        ``n_total`` (and ``n_clusters`` for clustered designs), the ``power`` reached, ``df2``,
        ``noncentrality`` and the effect in all forms.

    Examples
    --------
    >>> factorial_sample_size(5, 0.8, d_main=0.2)["n_total"]
    787
    """
    s = make_setting(factors, model_order=model_order, alpha=alpha, assignment=assignment,
                     cluster_size=cluster_size, cluster_size_sd=cluster_size_sd, icc=icc,
                     pretest=pretest, pre_post_corr=pre_post_corr,
                     change_score_icc=change_score_icc, exact=exact)
    _check_target(power)
    coef, sig = effect_coefficient(d_main, raw_main, raw_coef, f2, sigma)
    if math.isnan(coef) or coef == 0:
        raise _fail("no non-zero effect size is given — give one of d_main, raw_main "
                    "(with sigma), raw_coef (with sigma) or f2",
                    param=("d_main", "raw_main", "raw_coef", "f2"))
    size = _bisect_size(s, coef, sig, power)
    return _result(s, size, coef, sig, target_power=power)


def _check_target(power: float) -> None:
    if power is None or not 0 < power < 1:
        raise _fail(f"power = {power!r} is outside (0, 1) — give a target such as 0.8",
                    param="power")


def factorial_mde(
    factors: int, n_total: float | None = None, power: float = 0.8, *,
    clusters: float | None = None, sigma: float | None = None, model_order: int = 1,
    alpha: float = 0.05, assignment: str = "independent", cluster_size: float | None = None,
    cluster_size_sd: float | None = None, icc: float | None = None, pretest: str = "none",
    pre_post_corr: float | None = None, change_score_icc: float | None = None,
    exact: bool = False,
) -> FactorialPower:
    """Smallest effect detectable with ``power`` at the given sample size.

    Parameters are those of :func:`factorial_power`; ``sigma`` (default 1) scales the raw forms.

    Returns
    -------
    FactorialPower
        ``d_main``, ``raw_coef``, ``raw_main``, ``std_coef``, ``f2``, the ``power`` at that effect,
        ``n_total`` (and ``n_clusters``), ``df2`` and ``noncentrality``.

    Examples
    --------
    >>> round(factorial_mde(5, 512, 0.8)["d_main"], 3)
    0.248
    """
    s = make_setting(factors, model_order=model_order, alpha=alpha, assignment=assignment,
                     cluster_size=cluster_size, cluster_size_sd=cluster_size_sd, icc=icc,
                     pretest=pretest, pre_post_corr=pre_post_corr,
                     change_score_icc=change_score_icc, exact=exact)
    _check_target(power)
    _, sig = effect_coefficient(sigma=sigma)
    size = _check_size(s, n_total, clusters)
    _power_at(s, size, 0.0, sig)  # checks the model can be fitted
    top = 5 * sig
    if s.exact:
        if _power_at(s, size, top, sig)[0] < power:
            raise _fail("no effect up to 5 sd reaches the target power — use a larger sample")
        coef = optimize.brentq(lambda b: _power_at(s, size, b, sig)[0] - power, 0.0, top,
                               xtol=1e-12)
    else:
        bottom = 0.0
        while True:
            middle = bottom + 0.5 * (top - bottom)
            f = _power_at(s, size, middle, sig)[0]
            if abs(middle - top) < 1e-5:
                break
            if f < power:
                bottom = middle
            elif f == power:
                bottom = top = middle
            else:
                top = middle
        if f < power - 0.01:
            raise _fail("no effect up to 5 sd reaches the target power — use a larger sample")
        coef = middle
    return _result(s, size, coef, sig, raw_main=2 * coef, target_power=power)


# -- binary outcomes ------------------------------------------------------------------------------
def logistic_information(codes: np.ndarray, terms, coefs: np.ndarray) -> np.ndarray:
    """Fisher information per participant of a logistic model, equal allocation to the rows.

    ``codes`` are the conditions (±1), ``coefs`` the log-odds coefficients of ``terms``.
    """
    from trialkit.factorial.model import model_matrix

    x = model_matrix(codes, terms)
    prob = special.expit(x @ coefs)
    w = prob * (1 - prob) / x.shape[0]
    return (x * w[:, None]).T @ x


def binary_power(
    codes: np.ndarray, terms, coefs: np.ndarray, n_total: float, *, alpha: float = 0.05,
    design_effect: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Wald-test power of every logistic coefficient (normal approximation).

    Returns (power, standard error) per term, for ``n_total`` participants allocated equally to
    the conditions; ``design_effect`` inflates the variance (cluster randomisation).
    """
    from trialkit.factorial.model import model_matrix

    info = logistic_information(codes, terms, np.asarray(coefs, dtype=float))
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = None
    if cov is None or not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        if np.linalg.matrix_rank(model_matrix(codes, terms)) < len(terms):
            raise _fail("the model's terms are aliased in these conditions — lower the model "
                        "order or use a fraction of higher resolution")
        raise _fail("the assumed effects push some conditions' rates to 0 or 1, so the "
                    "logistic model has no information — assume smaller log-odds effects")
    se = np.sqrt(np.diag(cov) * design_effect / n_total)
    z = stats.norm.ppf(1 - alpha / 2)
    ratio = np.abs(coefs) / se
    return stats.norm.sf(z - ratio) + stats.norm.cdf(-z - ratio), se


def _binary_coefficient(baseline: float, logodds_main: float | None,
                        risk_diff: float | None) -> float:
    """Return the effect-coded log-odds coefficient of a binary main effect (either form)."""
    if not 0 < baseline < 1:
        raise _fail(f"baseline = {baseline!r} is outside (0, 1) — give the outcome rate, e.g. "
                    "0.45", param="baseline")
    if (logodds_main is None) == (risk_diff is None):
        raise _fail("give exactly one binary effect: logodds_main or risk_diff",
                    param=("logodds_main", "risk_diff"))
    if risk_diff is None:
        assert logodds_main is not None
        if not math.isfinite(logodds_main):
            raise _fail(f"logodds_main = {logodds_main!r} is not finite — give a log-odds "
                        "difference such as 0.4", param="logodds_main")
        return logodds_main / 2
    hi = baseline + risk_diff
    if not 0 < hi < 1:
        raise _fail(f"risk_diff = {risk_diff} from baseline {baseline} leaves (0, 1) — use "
                    "a smaller risk difference", param="risk_diff")
    return float(special.logit(hi) - special.logit(baseline)) / 2


def factorial_binary_power(
    factors: int, n_total: float, baseline: float, *, logodds_main: float | None = None,
    risk_diff: float | None = None, alpha: float = 0.05, model_order: int = 1,
) -> BinaryPower:
    """Power for one main effect on a binary outcome in a full 2^k factorial.

    Parameters
    ----------
    factors : int
        Number of factors.
    n_total : float
        Total participants (equal allocation to the 2^k conditions).
    baseline : float
        Outcome probability with every component off (all factors at −1), as in design files.
    logodds_main : float, optional
        Main effect on the log-odds scale: log-odds at +1 minus at −1 (= 2b).
    risk_diff : float, optional
        Main effect as a risk difference P(+1) − P(−1) with the other components off:
        P(−1) = baseline, P(+1) = baseline + risk_diff.
    alpha : float
        Two-sided level.
    model_order : int
        Highest interaction order in the analysis model.

    Returns
    -------
    BinaryPower
        ``power``, ``se`` of the coefficient, ``raw_coef`` (log-odds), ``n_total``.
    """
    from trialkit.design.fractions import full_factorial
    from trialkit.factorial.model import model_terms

    coef = _binary_coefficient(baseline, logodds_main, risk_diff)
    s = make_setting(factors, model_order=model_order, alpha=alpha)
    if 2**factors * s.n_coefficients > _MAX_CELLS:
        raise _fail(f"binary power is computed over all {2**factors} conditions with "
                    f"{s.n_coefficients} coefficients, which is too large — use fewer factors "
                    "or a lower model order", param=("factors", "model_order"))
    if not math.isfinite(n_total):
        raise _fail(f"n_total = {n_total!r} is not finite — give the total number of "
                    "participants", param="n_total")
    if n_total <= s.n_coefficients:
        raise _fail(f"n_total = {n_total:g} is not above the {s.n_coefficients} coefficients — "
                    "use more participants", param="n_total")
    terms = model_terms(factors, model_order)
    coefs = np.zeros(len(terms))
    coefs[0] = special.logit(baseline) + coef   # P(all factors at -1) = baseline
    coefs[1] = coef
    power, se = binary_power(full_factorial(factors), terms, coefs, n_total, alpha=alpha)
    return BinaryPower(power=float(power[1]), n_total=n_total, se=float(se[1]),
                       raw_coef=float(coef), logodds_main=float(2 * coef), baseline=baseline,
                       alpha=alpha, n_coefficients=s.n_coefficients)


def design_matrix_power(
    codes: np.ndarray, terms, coefs, *, sigma: float = 1.0, alpha: float = 0.05,
    replicates: int = 1,
) -> np.ndarray:
    """Power of the 1-df F test of every coefficient for a given design matrix (exact mode).

    The noncentrality of coefficient j is ``b_j² / (σ² [(XᵀX)⁻¹]_jj)`` and ``df2 = n − p``, with
    the conditions in ``codes`` each run ``replicates`` times — the calculation of design-of-
    experiments software (e.g. dexpy's ``f_power``), valid for any estimable design.

    Parameters
    ----------
    codes : ndarray, shape (runs, k)
        Conditions in ±1 coding.
    terms : list of tuple
        Model terms (intercept first), see :func:`trialkit.factorial.model.model_terms`.
    coefs : array_like, shape (p,)
        Assumed coefficients (the change from −1 to +1 is twice the coefficient).
    sigma : float
        Residual sd.
    alpha : float
        Significance level.
    replicates : int
        Times each run is repeated.

    Returns
    -------
    ndarray
        Power per term (the intercept's first).
    """
    from trialkit.factorial.model import model_matrix

    x = np.tile(model_matrix(codes, terms), (int(replicates), 1))
    n, p = x.shape
    if n <= p:
        raise _fail(f"{n} runs are too few for {p} coefficients — add runs or replicates")
    try:
        diag = np.diag(np.linalg.inv(x.T @ x))
    except np.linalg.LinAlgError:
        raise _fail("the model's terms are aliased in this design — lower the model "
                    "order") from None
    lam = np.asarray(coefs, dtype=float) ** 2 / (sigma**2 * diag)
    crit = stats.f.ppf(1 - alpha, 1, n - p)
    safe = np.where(lam > 0, lam, 1.0)
    return np.where(lam > 0, stats.ncf.sf(crit, 1, n - p, safe), alpha)
