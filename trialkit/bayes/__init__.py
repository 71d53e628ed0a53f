"""Bayesian component analysis of factorial experiments and MOST decisions.

Specification (:mod:`~trialkit.bayes.spec`) lives apart from the pymc backend
(:mod:`~trialkit.bayes.backend_pymc`, the only module importing pymc); the closed-form fast paths
(:mod:`~trialkit.bayes.fast`) power the decision simulation (:mod:`~trialkit.bayes.decision_study`).
"""

from trialkit.bayes.analyse import analyse_factorial, prior_predictive
from trialkit.bayes.decision_study import simulate_decision

__all__ = ["analyse_factorial", "prior_predictive", "simulate_decision"]
