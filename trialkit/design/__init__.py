"""Design files: TOML loaded into frozen, typed design objects.

One loader, :func:`load_design`, reads any kind; each kind has its own module
(:mod:`~trialkit.design.factorial`, :mod:`~trialkit.design.mrt`, :mod:`~trialkit.design.adaptive`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from trialkit.design._reader import Section, parse_toml, read_text
from trialkit.design.adaptive import AdaptiveDesign, read_adaptive
from trialkit.design.base import DesignSource
from trialkit.design.factorial import FactorialDesign, read_factorial
from trialkit.design.mrt import MrtDesign, read_mrt

Design = FactorialDesign | MrtDesign | AdaptiveDesign

KINDS: dict[str, Callable[[Section, DesignSource], Design]] = {
    "factorial": read_factorial,
    "mrt": read_mrt,
    "adaptive": read_adaptive,
}

__all__ = ["AdaptiveDesign", "Design", "FactorialDesign", "KINDS", "MrtDesign", "load_design",
           "loads_design"]


def loads_design(text: str, path: str = "<string>") -> Design:
    """Parse and validate a design from TOML ``text`` (``path`` is used in messages)."""
    root = parse_toml(text, path)
    kind = root.string("kind", choices=tuple(KINDS))
    source = DesignSource(path=path, text=text,
                          sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
    return KINDS[kind](root, source)


def load_design(path: str | os.PathLike[str]) -> Design:
    """Load and validate the design file at ``path``.

    Raises
    ------
    DesignError
        When the file is missing, is not valid TOML, or any key is unknown or out of range; the
        message names the file, the key, the bad value and what is allowed.
    """
    path = os.fspath(path)
    return loads_design(read_text(path, "design file"), path)
