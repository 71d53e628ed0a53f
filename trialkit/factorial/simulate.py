"""Deprecated: this module is now :mod:`trialkit.factorial.replicates` (until 0.3)."""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    value = getattr(importlib.import_module("trialkit.factorial.replicates"), name)
    warnings.warn("trialkit.factorial.simulate is deprecated — import "
                  "trialkit.factorial.replicates", DeprecationWarning, stacklevel=2)
    return value
