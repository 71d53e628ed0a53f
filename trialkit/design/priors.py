"""The ``[priors]`` section of factorial design files: priors of the Bayesian component analysis.

Top-level keys of ``[priors]`` apply to every outcome; a sub-table ``[priors.OUTCOME]`` (named after
an outcome) overrides them for that outcome. Any key left out takes the default of
:mod:`trialkit.bayes.spec`, which is scaled to the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from trialkit.design._reader import Section

INTERACTION_PRIORS = ("hierarchical", "fixed")
PRIOR_KEYS = ("intercept_sd", "main_sd", "interaction_sd", "interactions", "residual_sd",
              "covariate_sd", "cluster_sd")


@dataclass(frozen=True)
class PriorSettings:
    """Prior settings for one outcome; ``None`` means "use the default scaled to the outcome".

    Continuous outcomes: ``intercept_sd``, ``main_sd``, ``interaction_sd`` and ``covariate_sd``
    are in units of the residual SD (the coefficient prior is N(0, (σ·scale)²)), and
    ``residual_sd`` is the prior guess of σ in outcome units. Binary outcomes: scales in log-odds.
    ``interactions`` is ``"hierarchical"`` (interaction SD τ ~ HalfNormal(interaction_sd)) or
    ``"fixed"`` (interaction SD = interaction_sd). ``cluster_sd`` is the scale of the
    HalfNormal prior of the SD of the cluster random intercept (clustered designs; residual-SD
    units for continuous outcomes, log-odds for binary ones).
    """

    intercept_sd: float | None = None
    main_sd: float | None = None
    interaction_sd: float | None = None
    interactions: str | None = None
    residual_sd: float | None = None
    covariate_sd: float | None = None
    cluster_sd: float | None = None

    def merged(self, other: PriorSettings) -> PriorSettings:
        """Return these settings with every value given in ``other`` taking precedence."""
        given = {f.name: getattr(other, f.name) for f in fields(other)
                 if getattr(other, f.name) is not None}
        return replace(self, **given)


@dataclass(frozen=True)
class Priors:
    """The ``[priors]`` section: defaults for all outcomes and per-outcome overrides."""

    default: PriorSettings = field(default_factory=PriorSettings)
    by_outcome: dict[str, PriorSettings] = field(default_factory=dict)

    def for_outcome(self, name: str) -> PriorSettings:
        """Return the settings of outcome ``name`` (its overrides on top of the defaults)."""
        return self.default.merged(self.by_outcome.get(name, PriorSettings()))


def _read_settings(sec: Section) -> PriorSettings:
    return PriorSettings(
        intercept_sd=sec.positive("intercept_sd", None),
        main_sd=sec.positive("main_sd", None),
        interaction_sd=sec.positive("interaction_sd", None),
        interactions=sec.string("interactions", None, choices=INTERACTION_PRIORS),
        residual_sd=sec.positive("residual_sd", None),
        covariate_sd=sec.positive("covariate_sd", None),
        cluster_sd=sec.positive("cluster_sd", None),
    )


def read_priors(root: Section, outcome_names: tuple[str, ...] | list[str]) -> Priors:
    """Read the optional ``[priors]`` section of a factorial design file."""
    sec = root.section("priors")
    if sec is None:
        return Priors()
    by_outcome: dict[str, PriorSettings] = {}
    for key in list(sec.data):
        value: Any = sec.data[key]
        if key in PRIOR_KEYS:
            continue
        if isinstance(value, dict) and key in outcome_names:
            sub = sec.section(key, required=True)
            by_outcome[key] = _read_settings(sub)
            sub.done()
        elif isinstance(value, dict):
            raise sec.error(key, value, "is not an outcome of this design",
                            "name a sub-table after an outcome: " + ", ".join(outcome_names))
    default = _read_settings(sec)
    sec.done()
    return Priors(default=default, by_outcome=by_outcome)
