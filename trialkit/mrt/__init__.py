"""Micro-randomised trials: sample size, power, data generation and causal excursion effects.

Sample size and power by formula and by simulation; WCLS and EMEE estimators with small-sample
corrections.
"""

from trialkit.mrt.analysis import analyse_mrt, emee, fit_mrt, wcls
from trialkit.mrt.planning import mrt_power, mrt_sample_size, simulate_mrt_power

__all__ = ["analyse_mrt", "emee", "fit_mrt", "mrt_power", "mrt_sample_size",
           "simulate_mrt_power", "wcls"]
