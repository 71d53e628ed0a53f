"""Deprecated: this module is now :mod:`trialkit.factorial.planning` (the old name goes in 0.3)."""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    value = getattr(importlib.import_module("trialkit.factorial.planning"), name)
    warnings.warn("trialkit.factorial.plan is deprecated — import trialkit.factorial.planning",
                  DeprecationWarning, stacklevel=2)
    return value
