"""Figures of the component analysis: component effects and combinations (matplotlib)."""

from __future__ import annotations

from typing import Any

import numpy as np

from trialkit.bayes.spec import ModelSpec
from trialkit.plotting import pyplot
from trialkit.stats import hdi


def forest_figure(spec: ModelSpec, b: np.ndarray) -> Any:
    """Forest plot of the components' classic effects: posterior mean and 95% HDI."""
    plt = pyplot()
    effects = 2.0 * b[:, spec.main_index]
    lo, hi = hdi(effects)
    mean = effects.mean(0)
    k = len(spec.factor_names)
    fig, ax = plt.subplots(figsize=(6, 0.5 * k + 1.2))
    ypos = np.arange(k)[::-1]
    ax.hlines(ypos, lo, hi, color="tab:blue")
    ax.plot(mean, ypos, "o", color="tab:blue")
    ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(ypos, spec.factor_names)
    ax.set_xlabel(f"effect on {spec.outcome} (posterior mean, 95% HDI)")
    ax.set_title(f"component effects ({spec.better} is better)", fontsize=10)
    fig.tight_layout()
    return fig


def combinations_figure(spec: ModelSpec, v: np.ndarray, chosen: int, costs: np.ndarray) -> Any:
    """Posterior expected outcome (95% HDI) of every combination, the chosen one marked."""
    plt = pyplot()
    lo, hi = hdi(v)
    mean = v.mean(0)
    order = np.argsort(mean)
    c = len(mean)
    fig, ax = plt.subplots(figsize=(7, 0.22 * c + 1.5))
    ypos = np.arange(c)
    colors = ["tab:red" if i == chosen else "tab:blue" for i in order]
    ax.hlines(ypos, lo[order], hi[order], colors=colors)
    ax.scatter(mean[order], ypos, c=colors, zorder=3, s=14)
    combos = spec.combinations()
    labels = ["+".join(spec.factor_names[j][:8] for j in range(combos.shape[1])
                       if combos[i, j] > 0) or "(none)" for i in order]
    ax.set_yticks(ypos, [f"{lab} [{costs[i]:g}]" for lab, i in zip(labels, order, strict=True)],
                  fontsize=6)
    ax.set_xlabel(f"expected {spec.outcome} (chosen by PEV in red; [cost])")
    fig.tight_layout()
    return fig
