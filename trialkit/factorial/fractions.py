"""Deprecated: fractional factorial designs live in :mod:`trialkit.design.fractions`."""

import warnings

from trialkit.design.fractions import *  # noqa: F403 - the old import path
from trialkit.design.fractions import (  # noqa: F401 - names used by earlier versions
    LETTERS,
    alias_structure,
    defining_relation,
    fraction_matrix,
    full_factorial,
    generator_signs,
    generator_words,
    generators_for_resolution,
    letters,
    max_resolution,
    min_runs,
    parse_generator,
    resolution,
    word_length_pattern,
    word_name,
)

warnings.warn("trialkit.factorial.fractions is deprecated — import trialkit.design.fractions",
              DeprecationWarning, stacklevel=2)
