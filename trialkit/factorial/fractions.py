"""Deprecated: fractional factorial designs live in :mod:`trialkit.design.fractions`."""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    from trialkit.design import fractions

    value = getattr(fractions, name)
    warnings.warn("trialkit.factorial.fractions is deprecated — import trialkit.design.fractions",
                  DeprecationWarning, stacklevel=2)
    return value
