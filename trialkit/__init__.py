"""trialkit: design, randomise and analyse optimisation trials of digital mental-health apps.

``import trialkit`` is cheap: the public functions are imported from their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name → module that defines it (imported lazily on first attribute access).
_API = {
    "load_design": "trialkit.design",
    "loads_design": "trialkit.design",
    "TrialkitError": "trialkit.errors",
    "DesignError": "trialkit.errors",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'trialkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
