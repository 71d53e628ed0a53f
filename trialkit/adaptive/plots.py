"""Figures of simulated adaptive trials (matplotlib is imported only when a figure is made)."""

from __future__ import annotations

from typing import Any

import numpy as np

from trialkit.adaptive.performance import select_arms
from trialkit.adaptive.simulator import FINAL_STATUS


def plot_results(results, path: str, selection: str | None = None,
                 preferences=None) -> str:
    """Write :func:`results_figure` to ``path`` (format by extension) and return the path."""
    from trialkit.plotting import save_figure

    return save_figure(results_figure(results, selection, preferences), path, dpi=110)


def results_figure(results, selection: str | None = None, preferences=None) -> Any:
    """Return one figure with three panels of simulated trials.

    Panels: mean allocation probability per arm over looks (trials still running), the share of
    trials stopped by each look per final status, and selection probabilities per arm.
    """
    from trialkit.plotting import pyplot

    plt = pyplot()
    spec = results.spec
    arr = results.arrays
    hist = arr["alloc_history"].astype(float)
    looks = np.asarray(spec.data_looks)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    running = ~np.isnan(hist[:, :, 0])
    counts = running.sum(axis=0)
    with np.errstate(invalid="ignore"):
        mean_alloc = np.where(counts[:, None] > 0,
                              np.nansum(hist, axis=0) / np.maximum(counts, 1)[:, None], np.nan)
    for k, arm in enumerate(spec.arms):
        axes[0].plot(looks, mean_alloc[:, k], marker="o", ms=3, label=arm)
    axes[0].set(xlabel="patients with outcome data", ylabel="mean allocation probability",
                title="Allocation over looks", ylim=(0, 1))
    axes[0].legend(fontsize=8)
    stop_look = arr["looks"]
    for code, name in enumerate(FINAL_STATUS):
        share = [(np.asarray(arr["final_status"]) == code)[stop_look <= i + 1].sum()
                 / results.n_rep for i in range(looks.size)]
        axes[1].plot(looks, share, marker="o", ms=3, label=name)
    axes[1].set(xlabel="patients with outcome data", ylabel="share of trials stopped",
                title="Stopping times", ylim=(0, 1))
    axes[1].legend(fontsize=8)
    sel = select_arms(results, selection, preferences)
    labels = [*spec.arms, "none"]
    probs = [float(np.mean(sel == i)) for i in range(spec.n_arms)] + [float(np.mean(sel < 0))]
    axes[2].bar(labels, probs, color="tab:blue")
    axes[2].set(ylabel="probability", title="Arm selection", ylim=(0, 1))
    axes[2].tick_params(axis="x", rotation=20)
    fig.suptitle(f"{spec.design_name} — scenario {spec.scenario} ({results.n_rep} trials)")
    fig.tight_layout()
    return fig


def looks_figure(looks: list[dict[str, Any]], arms: list[str],
                 start_probs: list[float]) -> Any:
    """Return a figure of a live trial's interim analyses: probabilities and P(best) per look.

    Parameters
    ----------
    looks : list of dict
        The interim results in order (``Trial.looks()``): ``look``,
        ``participants_with_outcomes``, ``arms`` (with ``p_best``) and ``probabilities``.
    arms : list of str
        The arm names.
    start_probs : list of float
        The allocation probabilities before the first look.
    """
    from trialkit.plotting import pyplot

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = list(range(len(looks) + 1))
    for j, arm in enumerate(arms):
        probs = [start_probs[j]] + [lk["probabilities"][j] if lk["probabilities"] else np.nan
                                    for lk in looks]
        left.plot(xs, probs, marker="o", label=arm)
        best = [np.nan if lk["arms"][j]["p_best"] is None else lk["arms"][j]["p_best"]
                for lk in looks]
        right.plot(xs[1:], best, marker="o", label=arm)
    left.set(title="Allocation probabilities after each look (0: start)", xlabel="look",
             ylabel="probability", ylim=(0, 1))
    right.set(title="P(best) at each look", xlabel="look", ylabel="P(best)", ylim=(0, 1))
    for ax in (left, right):
        ax.set_xticks(xs)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
