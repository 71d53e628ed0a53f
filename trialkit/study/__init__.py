"""Studies of designs: grids of designs × settings (with assurance) and the design report.

This layer sits above the numeric core: it runs the kinds' replicate generators over many
cells on an engine backend (:mod:`trialkit.engine.backends`) and gathers what a funder or an
ethics committee reads about a design.
"""

from trialkit.study.grid import GridResult, GridStore, run_grid

__all__ = ["GridResult", "GridStore", "run_grid"]
