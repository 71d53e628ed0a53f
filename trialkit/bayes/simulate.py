"""Deprecated: this module is now :mod:`trialkit.bayes.decision_study` (until 0.3)."""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    value = getattr(importlib.import_module("trialkit.bayes.decision_study"), name)
    warnings.warn("trialkit.bayes.simulate is deprecated — import trialkit.bayes.decision_study",
                  DeprecationWarning, stacklevel=2)
    return value
