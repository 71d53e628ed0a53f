"""Performance metrics of simulated adaptive trials.

As adaptr's ``extract_results`` and ``check_performance``: sample sizes, events, stopping
probabilities, arm selection, errors and the ideal design percentage, optionally with bootstrap
uncertainty.
"""

from __future__ import annotations

import numpy as np

from trialkit.adaptive.simulator import (
    CONTROL,
    EQUIVALENT,
    FUTILE,
    INFERIOR,
    SUPERIOR,
)
from trialkit.constants import LIST_SELECTION, SELECTION
from trialkit.errors import TrialkitError
from trialkit.results import Report


def ideal_design_percentage(select_probs, true_values, highest_is_best: bool = False) -> float:
    """Ideal design percentage (Viele et al. 2020) from selection probabilities per arm.

    ``100 * (E[true value of the selected arm] - worst) / (best - worst)``, with selection
    probabilities rescaled to the trials that selected an arm; ``nan`` when no arm was selected or
    all arms are equal.

    Examples
    --------
    >>> round(ideal_design_percentage([0.033, 0.967, 0], [0.25, 0.20, 0.30]), 4)
    98.35
    """
    p = np.asarray(select_probs, dtype=float)
    ys = np.asarray(true_values, dtype=float)
    if p.sum() <= 0 or np.ptp(ys) == 0:
        return float("nan")
    expected = float((p / p.sum()) @ ys)
    best, worst = (ys.max(), ys.min()) if highest_is_best else (ys.min(), ys.max())
    return float(100 * (expected - worst) / (best - worst))




def _preferred_arms(spec, selection: str, preferences) -> list[int]:
    """Check ``selection`` (and its preferences) and return the preferred arms' indices."""
    if preferences is None and selection in LIST_SELECTION:
        preferences = spec.preferences  # the design's [posterior] preferences
    if selection not in SELECTION + LIST_SELECTION:
        raise TrialkitError(f"selection {selection!r} is unknown — use one of: "
                            + ", ".join(SELECTION + LIST_SELECTION), param="selection")
    if selection in ("control", "final control", "control or best") and spec.control < 0:
        raise TrialkitError(f"selection {selection!r} needs a common control — use 'best' or "
                            "'none'", param="selection")
    if selection not in LIST_SELECTION:
        if preferences:
            raise TrialkitError(f"preferences are only used with selection 'list' or 'list or "
                                f"best', not {selection!r} — drop them or change the selection",
                                param="preferences")
        return []
    if not preferences:
        raise TrialkitError(f"selection {selection!r} needs preferences — give the arm "
                            "names in order of preference, or use 'best'", param="preferences")
    for name in preferences:
        if name not in spec.arms:
            raise TrialkitError(f"preference {name!r} is not an arm — use arm names: "
                                + ", ".join(spec.arms), param="preferences")
    return [spec.arms.index(name) for name in preferences]


def select_arms(results, selection: str | None = None, preferences=None) -> np.ndarray:
    """Return selected arm per trial (``-1`` = none), following adaptr's selection strategies.

    Trials stopped for superiority select the superior arm. Otherwise ``selection`` decides:
    ``none``; ``best`` (the remaining arm with the highest P(best) at the last analysis);
    ``control`` (the first control, if still remaining); ``final control``; ``control or best``;
    and, with ``preferences`` (arm names in order of preference), ``list`` (the first remaining
    arm of the list, else none) and ``list or best`` (else the best remaining arm).
    """
    spec = results.spec
    selection = selection or spec.selection
    pref_idx = _preferred_arms(spec, selection, preferences)
    arr = results.arrays
    status = arr["arm_status"]
    final = arr["final_status"]
    t = status.shape[0]
    sel = np.full(t, -1, dtype=np.int64)
    sup = final == 1
    sel[sup] = np.argmax(status[sup] == SUPERIOR, axis=1)
    rest = ~sup
    candidates = (status != INFERIOR) & (status != FUTILE)
    last = arr["status_look"] == arr["followed_n"][:, None]
    eq_trials = (final == 2)[:, None]
    candidates &= np.where(eq_trials, ((status == EQUIVALENT) | (status == CONTROL)) & last
                           | (status == CONTROL), status != EQUIVALENT)
    pb = np.where(candidates, np.nan_to_num(arr["probs_best_last"], nan=-1.0), -2.0)
    best = np.where(candidates.any(axis=1), pb.argmax(axis=1), -1)
    first_control = spec.control
    if selection == "best":
        sel[rest] = best[rest]
    elif selection == "control":
        ok = candidates[:, first_control] if first_control >= 0 else np.zeros(t, bool)
        sel[rest & ok] = first_control
    elif selection == "final control":
        fc = arr["final_control"]
        ok = status[np.arange(t), fc] == CONTROL
        sel[rest & ok] = fc[rest & ok]
    elif selection == "control or best":
        ok = candidates[:, first_control]
        sel[rest] = np.where(ok[rest], first_control, best[rest])
    elif selection in LIST_SELECTION:
        chosen = np.full(t, -1, dtype=np.int64)
        for k in reversed(pref_idx):  # the first listed remaining arm wins
            chosen = np.where(candidates[:, k], k, chosen)
        if selection == "list or best":
            chosen = np.where(chosen >= 0, chosen, best)
        sel[rest] = chosen[rest]
    return sel


def _metrics(arr: dict, sel: np.ndarray, spec, idx: np.ndarray) -> dict:
    n = arr["final_n"][idx].astype(float)
    ys = arr["sum_ys_all"][idx].sum(axis=1)
    fs = arr["final_status"][idx]
    s = sel[idx]
    true = np.asarray(spec.true_values, dtype=float)
    has = s >= 0
    est = np.take_along_axis(arr["post_all"][idx], np.maximum(s, 0)[:, None], axis=1)[:, 0]
    err = np.where(has, est - true[np.maximum(s, 0)], np.nan)
    out = {
        "n_summarised": int(idx.size),
        "size_mean": float(n.mean()),
        "size_sd": float(n.std(ddof=1)) if n.size > 1 else float("nan"),
        "size_median": float(np.median(n)),
        "size_p25": float(np.quantile(n, 0.25)),
        "size_p75": float(np.quantile(n, 0.75)),
        "size_min": float(n.min()),
        "size_max": float(n.max()),
        "sum_ys_mean": float(ys.mean()),
        "sum_ys_sd": float(ys.std(ddof=1)) if ys.size > 1 else float("nan"),
        "sum_ys_median": float(np.median(ys)),
        "ratio_ys_mean": float((ys / n).mean()),
        "prob_conclusive": float((fs != 0).mean()),
        "prob_superior": float((fs == 1).mean()),
        "prob_equivalence": float((fs == 2).mean()),
        "prob_futility": float((fs == 3).mean()),
        "prob_max": float((fs == 0).mean()),
        "prob_select": {**{f"arm_{a}": float((s == i).mean()) for i, a in enumerate(spec.arms)},
                        "none": float((~has).mean())},
        "rmse": float(np.sqrt(np.mean(err[has] ** 2))) if has.any() else float("nan"),
        "mae": float(np.median(np.abs(err[has]))) if has.any() else float("nan"),
    }
    if spec.control >= 0:
        c = spec.control
        te_ok = has & (s != c)
        est_c = arr["post_all"][idx][:, c]
        err_te = (est - est_c) - (true[np.maximum(s, 0)] - true[c])
        out["rmse_te"] = float(np.sqrt(np.mean(err_te[te_ok] ** 2))) if te_ok.any() else None
        out["mae_te"] = float(np.median(np.abs(err_te[te_ok]))) if te_ok.any() else None
    else:
        out["rmse_te"] = None
        out["mae_te"] = None
    counts = np.array([(s == i).sum() for i in range(spec.n_arms)], dtype=float)
    out["idp"] = float(ideal_design_percentage(counts, true, spec.highest_is_best))
    return out


def _flat(m: dict) -> dict:
    out = {}
    for k, v in m.items():
        if isinstance(v, dict):
            out.update({f"prob_select_{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def check_performance(
    results,
    selection: str | None = None,
    preferences=None,
    restrict: str | None = None,
    uncertainty: bool = False,
    n_boot: int = 1000,
    boot_seed: int = 0,
    ci_width: float = 0.95,
) -> Performance:
    """Operating characteristics of simulated trials.

    Parameters
    ----------
    results : TrialResults
        From :func:`~trialkit.adaptive.results.run_trials`.
    selection : str, optional
        Arm-selection strategy for trials without a superior arm (default: the design's):
        ``none``, ``best``, ``control``, ``final control``, ``control or best``, ``list`` or
        ``list or best`` (see :func:`select_arms`).
    preferences : sequence of str, optional
        Arm names in order of preference, for ``list`` and ``list or best``.
    restrict : {None, "superior", "selected"}
        Summarise only trials with a superior arm, or with a selected arm.
    uncertainty : bool
        Add bootstrap standard errors and percentile intervals (``n_boot`` resamples of trials,
        seeded by ``boot_seed``).

    Returns
    -------
    Performance
        ``size_mean``, ``size_sd``, ..., ``prob_superior``, ``prob_equivalence``,
        ``prob_futility``, ``prob_conclusive``, ``prob_max``, ``prob_select`` (per arm and
        ``none``), ``rmse``, ``mae``, ``rmse_te``, ``mae_te``, ``idp``; with uncertainty also
        ``uncertainty`` (metric → ``{"se", "lo", "hi"}``).
    """
    arr = results.arrays
    sel = select_arms(results, selection, preferences)
    idx = np.arange(results.n_rep)
    if restrict == "superior":
        idx = idx[arr["final_status"] == 1]
    elif restrict == "selected":
        idx = idx[sel >= 0]
    elif restrict is not None:
        raise TrialkitError(f"restrict {restrict!r} is unknown — use 'superior' or 'selected'")
    if idx.size == 0:
        raise TrialkitError("no simulated trial is left to summarise — drop the restriction or "
                            "simulate more trials")
    out = _metrics(arr, sel, results.spec, idx)
    if uncertainty:
        out["uncertainty"] = _bootstrap(out, arr, sel, results.spec, idx, n_boot, boot_seed,
                                        ci_width)
    return Performance(out)


class Performance(Report):
    """Operating characteristics of simulated trials (:func:`check_performance`)."""


def _bootstrap(out: dict, arr: dict, sel: np.ndarray, spec, idx: np.ndarray, n_boot: int,
               boot_seed: int, ci_width: float) -> dict:
    """Bootstrap SE and percentile interval of every metric (trials resampled)."""
    from trialkit.engine import progress_bar

    rng = np.random.default_rng(boot_seed)
    base = _flat(out)
    boots: dict[str, list[float]] = {k: [] for k, v in base.items() if isinstance(v, float)}
    with progress_bar(n_boot, "bootstrap", "resamples") as bar:
        for _ in range(n_boot):
            m = _flat(_metrics(arr, sel, spec, rng.choice(idx, idx.size)))
            for k in boots:
                v = m.get(k)
                boots[k].append(np.nan if v is None else v)
            if bar is not None:
                bar.advance()
    q = (1 - ci_width) / 2
    unc = {}
    for k, vals in boots.items():
        v = np.asarray(vals, dtype=float)
        v = v[np.isfinite(v)]
        if v.size:
            unc[k] = {"se": float(v.std(ddof=1)), "lo": float(np.quantile(v, q)),
                      "hi": float(np.quantile(v, 1 - q))}
    return unc
