"""Figures for MRT planning: effect and availability trajectories, power against participants.

matplotlib is imported inside the function only.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def power_curve(design, outcome: str | None = None, n_max: int | None = None) -> dict:
    """Return formula power for n = p + q + 2 .. n_max: ``{"n": [...], "power": [...]}``."""
    from trialkit.mrt.planning import _formula_power, design_inputs

    inp = design_inputs(design, outcome)
    lo = inp["p"] + inp["q"] + 2
    hi = n_max or max(lo + 10, 2 * lo, 120)
    ns = np.arange(lo, hi + 1)
    return {"n": ns, "power": np.array([_formula_power(inp, float(n)) for n in ns])}


def plot_design(design, path: str, outcome: str | None = None, n_marked: int | None = None
                ) -> str:
    """Save :func:`design_figure` to ``path`` (format by extension) and return the path."""
    from trialkit.plotting import save_figure

    return save_figure(design_figure(design, outcome, n_marked), path)


def design_figure(design, outcome: str | None = None, n_marked: int | None = None) -> Any:
    """Return a figure of the effect and availability trajectories and of power against N."""
    from trialkit.mrt.planning import design_inputs
    from trialkit.plotting import pyplot

    plt = pyplot()

    inp = design_inputs(design, outcome)
    dpd = inp["decisions_per_day"]
    days = np.arange(1, inp["days"] + 1)
    curve = power_curve(design, outcome, max(120, 2 * (n_marked or 0)))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    label = "log relative risk" if inp["type"] == "binary" else "standardised effect"
    axes[0].plot(days, inp["effect"][::dpd], marker=".")
    axes[0].set(title=f"Proximal effect: {inp['outcome']}", xlabel="day", ylabel=label)
    axes[1].plot(days, inp["availability"][::dpd], marker=".", label="availability")
    if inp["baseline"] is not None:
        axes[1].plot(days, inp["baseline"][::dpd], marker=".", label="baseline success")
    axes[1].set(title="Expected availability", xlabel="day", ylabel="probability", ylim=(0, 1))
    axes[1].legend()
    axes[2].plot(curve["n"], curve["power"])
    axes[2].axhline(design.power, color="grey", linestyle=":")
    if n_marked is not None:
        axes[2].axvline(n_marked, color="grey", linestyle="--")
    axes[2].set(title="Power (formula)", xlabel="participants", ylabel="power", ylim=(0, 1))
    fig.tight_layout()
    return fig
