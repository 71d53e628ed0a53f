"""Model specification of the Bayesian factorial analysis: terms, families and resolved priors.

The model of one outcome is a regression on the effect-coded (±1) factorial terms up to the
design's model order, plus optional baseline covariates (centred and scaled to SD 1):

* continuous: ``y ~ Normal(X β, σ²)``, ``σ² ~ InvGamma(2, residual_sd²)`` (prior mean of σ² is
  ``residual_sd²``), and every coefficient ``β_j | σ ~ Normal(m_j, (σ s_j)²)``;
* binary: ``y ~ Bernoulli(logistic(X β))``, ``β_j ~ Normal(m_j, s_j²)``.

Interaction coefficients have scale ``s_j = τ``: with ``interactions = "hierarchical"`` (the
default) ``τ ~ HalfNormal(interaction_sd)`` is shared by all interactions, so a saturated model
shrinks them together; with ``"fixed"``, ``τ = interaction_sd``. This is the one specification
both the pymc backend and the closed-form fast paths implement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from trialkit.design.priors import PriorSettings
from trialkit.errors import TrialkitError
from trialkit.factorial.model import Term, model_matrix, model_terms, term_name

FAMILIES = {"continuous": "normal", "binary": "logistic"}

DEFAULTS = {
    "normal": {"intercept_sd": 2.5, "main_sd": 0.5, "interaction_sd": 0.25,
               "covariate_sd": 1.0, "interactions": "hierarchical", "cluster_sd": 0.5},
    "logistic": {"intercept_sd": 2.5, "main_sd": 1.0, "interaction_sd": 0.5,
                 "covariate_sd": 1.0, "interactions": "hierarchical", "cluster_sd": 1.0},
}
#: Points of the quadrature over the cluster random intercept's SD κ (fast path, normal family).
CLUSTER_GRID_POINTS = 16

#: Points of the quadrature over the hierarchical interaction scale τ (fast paths).
TAU_GRID_POINTS = 32
SIGMA_SHAPE = 2.0
#: Largest number of factors (2^k candidate combinations are evaluated per posterior draw).
MAX_FACTORS = 12


@dataclass(frozen=True)
class ModelSpec:
    """One outcome's model: its terms, covariates and fully resolved prior.

    Attributes
    ----------
    family : {"normal", "logistic"}
    factor_names : tuple of str
    terms : list of Term
        Factorial terms (intercept first) as tuples of factor indices.
    covariates : tuple of str
        Covariate names (columns after the factorial terms).
    prior_mean : ndarray (p,)
        Prior means of the coefficients (only the intercept's is non-zero).
    prior_scale : ndarray (p,)
        Prior scales (σ units for normal); interaction entries hold ``interaction_sd``.
    interaction : ndarray of bool (p,)
        Which coefficients are interactions (scale τ).
    interactions : {"hierarchical", "fixed"}
    interaction_sd : float
    sigma_shape, sigma_rate : float
        InvGamma prior of σ² (normal family).
    better : {"higher", "lower"}
    clusters : int
        Number of clusters of the data's cluster random intercept (0: no random intercept).
    cluster_sd : float
        Scale of the HalfNormal prior of its SD κ (σ units for normal, log-odds for logistic).
    """

    family: str
    outcome: str
    factor_names: tuple[str, ...]
    terms: list[Term]
    covariates: tuple[str, ...]
    prior_mean: np.ndarray
    prior_scale: np.ndarray
    interaction: np.ndarray
    interactions: str
    interaction_sd: float
    sigma_shape: float
    sigma_rate: float
    better: str
    clusters: int = 0
    cluster_sd: float = 0.5

    @property
    def n_coef(self) -> int:
        """Number of coefficients (terms + covariates)."""
        return len(self.terms) + len(self.covariates)

    @property
    def coef_names(self) -> list[str]:
        """Coefficient names: ``intercept``, ``a``, ``a:b``, …, then covariates."""
        return [term_name(t, self.factor_names) for t in self.terms] + list(self.covariates)

    @property
    def main_index(self) -> np.ndarray:
        """Column index of each factor's main effect."""
        return np.array([self.terms.index((i,)) for i in range(len(self.factor_names))])

    def tau_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature over τ: points and log prior weights (one point for fixed interactions)."""
        if self.interactions == "fixed" or not self.interaction.any():
            return np.array([self.interaction_sd]), np.zeros(1)
        g = TAU_GRID_POINTS
        q = (np.arange(g) + 0.5) / g
        return self.interaction_sd * stats.halfnorm.ppf(q), np.full(g, -np.log(g))

    def cluster_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature over the random intercept's SD κ: points and log prior weights."""
        g = CLUSTER_GRID_POINTS
        q = (np.arange(g) + 0.5) / g
        return self.cluster_sd * stats.halfnorm.ppf(q), np.full(g, -np.log(g))

    def design_matrix(self, codes: np.ndarray, covariates: np.ndarray | None = None) -> np.ndarray:
        """Return the model matrix for ±1 ``codes`` (rows × k) and standardised covariates."""
        x = model_matrix(codes, self.terms)
        if self.covariates:
            cov = np.zeros((x.shape[0], len(self.covariates))) if covariates is None else covariates
            x = np.hstack([x, cov])
        return x

    def combinations(self) -> np.ndarray:
        """All 2^k on/off combinations as a (2^k × k) ±1 matrix, all-off first."""
        k = len(self.factor_names)
        idx = np.arange(2**k)[:, None]
        return np.where((idx >> np.arange(k)) & 1, 1.0, -1.0)

    def combination_matrix(self) -> np.ndarray:
        """Model matrix of every combination (covariates at their mean, i.e. 0)."""
        return self.design_matrix(self.combinations())


def build_spec(
    design, outcome: str, covariates: tuple[str, ...] = (), y: np.ndarray | None = None,
    order: int | None = None, clusters: int = 0,
) -> ModelSpec:
    """Resolve the model of ``outcome`` from a factorial design, its priors and (optionally) data.

    The intercept's prior is centred on the data (mean of ``y``, or its log-odds for a binary
    outcome) when ``y`` is given, else on the design's assumed mean / baseline. The residual-SD
    guess is the ``[priors] residual_sd``, else the outcome's ``sd`` in the design, else the SD of
    ``y``. ``clusters`` > 0 adds a cluster random intercept whose SD has a HalfNormal prior of
    scale ``[priors] cluster_sd``.
    """
    if design.k > MAX_FACTORS:
        raise TrialkitError(f"the design has {design.k} factors, i.e. {2 ** design.k} candidate "
                            f"combinations — the component analysis handles at most "
                            f"{MAX_FACTORS} factors; screen fewer components")
    out = next(o for o in design.outcomes if o.name == outcome)
    family = FAMILIES[out.type]
    settings: PriorSettings = design.priors.for_outcome(outcome)
    d = DEFAULTS[family]

    def get(key: str):
        value = getattr(settings, key)
        return d[key] if value is None else value

    k = design.k
    order = design.analysis.model_order if order is None else order
    terms = model_terms(k, min(order, k))
    p = len(terms) + len(covariates)
    interaction = np.array([len(t) > 1 for t in terms] + [False] * len(covariates))
    scale = np.empty(p)
    scale[0] = get("intercept_sd")
    for j, t in enumerate(terms[1:], start=1):
        scale[j] = get("main_sd") if len(t) == 1 else get("interaction_sd")
    scale[len(terms):] = get("covariate_sd")
    mean = np.zeros(p)
    if family == "normal":
        mean[0] = float(np.mean(y)) if y is not None and len(y) else out.mean
        resid = settings.residual_sd or out.sd
        if resid is None:
            resid = float(np.std(y, ddof=1)) if y is not None and len(y) > 1 else 1.0
        rate = (SIGMA_SHAPE - 1.0) * float(resid) ** 2
    else:
        if y is not None and len(y):
            rate_obs = float(np.clip(np.mean(y), 0.01, 0.99))
        else:
            rate_obs = out.baseline if out.baseline is not None else 0.5
        mean[0] = float(np.log(rate_obs / (1 - rate_obs)))
        rate = 1.0
    return ModelSpec(
        family=family, outcome=outcome, factor_names=design.factor_names, terms=terms,
        covariates=tuple(covariates), prior_mean=mean, prior_scale=scale,
        interaction=interaction, interactions=get("interactions"),
        interaction_sd=float(get("interaction_sd")), sigma_shape=SIGMA_SHAPE,
        sigma_rate=rate, better=out.better, clusters=int(clusters),
        cluster_sd=float(get("cluster_sd")),
    )
