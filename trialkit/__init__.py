"""trialkit: design, randomise and analyse optimisation trials of digital mental-health apps.

``import trialkit`` is cheap: the public functions are imported from their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from trialkit.constants import VERSION

__version__ = VERSION

# Public name → module that defines it (imported lazily on first attribute access).
_API = {
    "load_design": "trialkit.design",
    "setup_trial": "trialkit.adaptive",
    "run_trials": "trialkit.adaptive",
    "check_performance": "trialkit.adaptive",
    "calibrate_trial": "trialkit.adaptive",
    "gsd_boundaries": "trialkit.adaptive",
    "load_results": "trialkit.adaptive",
    "loads_design": "trialkit.design",
    "TrialkitError": "trialkit.errors",
    "Trial": "trialkit.service",
    "ServiceError": "trialkit.errors",
    "DesignError": "trialkit.errors",
    "analyse_factorial": "trialkit.bayes.analyse",
    "prior_predictive": "trialkit.bayes.analyse",
    "simulate_decision": "trialkit.bayes.decision_study",
    "factorial_power": "trialkit.factorial.power",
    "factorial_sample_size": "trialkit.factorial.power",
    "factorial_mde": "trialkit.factorial.power",
    "factorial_binary_power": "trialkit.factorial.power",
    "factorial_costs": "trialkit.factorial.costs",
    "factorial_design_power": "trialkit.factorial.planning",
    "factorial_design_sample_size": "trialkit.factorial.planning",
    "simulate_factorial_power": "trialkit.factorial.planning",
    "factorial_power_curve": "trialkit.factorial.planning",
    "generate_factorial_data": "trialkit.factorial.replicates",
    "generators_for_resolution": "trialkit.design.fractions",
    "mrt_sample_size": "trialkit.mrt.planning",
    "mrt_power": "trialkit.mrt.planning",
    "simulate_mrt_power": "trialkit.mrt.planning",
    "wcls": "trialkit.mrt.analysis",
    "emee": "trialkit.mrt.analysis",
    "analyse_mrt": "trialkit.mrt.analysis",
    "generate_mrt_data": "trialkit.mrt.generate",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'trialkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
