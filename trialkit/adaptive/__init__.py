"""Bayesian adaptive multi-arm trials and group-sequential boundaries.

The workflow reads as verbs: :func:`setup_trial` (design + scenario) → :func:`run_trials`
(vectorised simulation) → :func:`check_performance` (operating characteristics) →
:func:`calibrate_trial` (thresholds for a target type I error). :func:`adaptive_look` is one
interim analysis — the pure decision function the simulator and a live trial share.
:func:`gsd_boundaries` gives frequentist group-sequential boundaries for the confirmatory
evaluation.
"""

from trialkit.adaptive.allocation import reallocate_probs, sqrt_control_probability
from trialkit.adaptive.calibration import calibrate_trial
from trialkit.adaptive.gsd import gsd_boundaries
from trialkit.adaptive.look import ArmData, ArmState, LookResult, adaptive_look
from trialkit.adaptive.performance import check_performance, ideal_design_percentage
from trialkit.adaptive.results import TrialResults, load_results, run_trials
from trialkit.adaptive.spec import TrialSpec, setup_trial

__all__ = ["ArmData", "ArmState", "LookResult", "TrialResults", "TrialSpec", "adaptive_look",
           "calibrate_trial", "check_performance", "gsd_boundaries", "ideal_design_percentage",
           "load_results", "reallocate_probs", "run_trials", "setup_trial",
           "sqrt_control_probability"]
