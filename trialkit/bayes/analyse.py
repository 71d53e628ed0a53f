"""Bayesian component analysis of a factorial experiment: the component report and decisions.

:func:`analyse_factorial` reads the exported trial data, fits the model of every requested
outcome (pymc NUTS, the closed-form fast path, or prior draws for wiring checks), summarises the
components and all 2^k combinations, and takes the PEV decisions (with and without budget, and a
multi-outcome value function) next to the classic screening decision.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy import special

from trialkit.bayes import decide, fast
from trialkit.bayes.spec import ModelSpec, build_spec
from trialkit.errors import DataError, TrialkitError
from trialkit.results import Report, Result
from trialkit.stats import hdi
from trialkit.tables import exclude_marked_errors, factor_codes, numeric_column, read_table

__all__ = ["ComponentAnalysis", "analyse_factorial", "combination_draws", "hdi",
           "prepare_data", "prior_predictive", "screening_fit"]

ENGINES = ("nuts", "fast", "prior")
METHODS = ("bayes", "ols", "both")
SEPARATION_P_BEST = 0.5


# -- data -----------------------------------------------------------------------------------------
def prepare_data(design, table, outcomes: tuple[str, ...], covariates: tuple[str, ...]):
    """Validate a data table against the design → (±1 codes, {outcome: y}, covariates)."""
    cols = list(table.columns)
    codes = factor_codes(design, table)
    ys = {}
    for name in outcomes:
        out = next((o for o in design.outcomes if o.name == name), None)
        if out is None:
            raise DataError(f"outcome {name!r} is not in the design — use one of: "
                            + ", ".join(o.name for o in design.outcomes))
        if name not in cols:
            raise DataError(f"the data have no column {name!r} for the outcome — add it or "
                            "choose another outcome", param="outcomes")
        y = numeric_column(table, name, "outcome")
        if out.type == "binary" and not set(np.unique(y).tolist()) <= {0.0, 1.0}:
            raise DataError(f"binary outcome column '{name}' has values other than 0 and 1 — "
                            "code it as 0/1")
        if out.type == "continuous" and not np.ptp(y) > 0:
            raise DataError(f"outcome column '{name}' has the same value in every row — check "
                            "the data export")
        ys[name] = y
    cov = np.empty((len(table), len(covariates)))
    for j, c in enumerate(covariates):
        if c in design.factor_names or c in outcomes:
            raise DataError(f"covariate {c!r} is a factor or an analysed outcome — give a "
                            "baseline column such as baseline PHQ-9", param="covariates")
        if c not in cols:
            raise DataError(f"the data have no covariate column {c!r} — check the covariates",
                            param="covariates")
        v = numeric_column(table, c, "covariate")
        sd = v.std()
        if not sd > 0:
            raise DataError(f"covariate column '{c}' is constant — drop it")
        cov[:, j] = (v - v.mean()) / sd
    return codes, ys, cov


def cluster_index(design, table) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Each row's cluster (0, 1, …) when the design is clustered and the data name the clusters.

    Returns the index (``None`` when unclustered) and the report's ``clustering``: the column,
    the number of clusters and what the OLS and Bayesian analyses did with them.
    """
    s = design.sample
    if s.assignment == "independent":
        return None, {"assignment": s.assignment, "column": None,
                      "ols": "model-based standard errors", "bayes": "no random effects"}
    col = s.cluster_column
    if col not in table.columns:
        return None, {"assignment": s.assignment, "column": None,
                      "ols": "model-based standard errors", "bayes": "no random effects",
                      "note": f"the design randomises {s.assignment} clusters but the data have "
                              f"no column '{col}' — clustering is ignored; add the column or set "
                              "sample.cluster_column"}
    values = table[col]
    missing = values.isna().to_numpy()
    if missing.any():
        from trialkit.tables import row_number

        raise DataError(f"cluster column '{col}' is missing at row "
                        f"{row_number(table, int(np.argmax(missing)))} — give every participant "
                        "a cluster")
    index = np.unique(values.astype(str).to_numpy(), return_inverse=True)[1].astype(int)
    n = int(index.max()) + 1
    if n < 2:
        raise DataError(f"cluster column '{col}' has a single cluster — clustered designs need "
                        "at least 2 clusters")
    return index, {"assignment": s.assignment, "column": col, "clusters": n,
                   "ols": f"cluster-robust standard errors ({n} clusters)",
                   "bayes": "cluster random intercept"}


# -- summaries ------------------------------------------------------------------------------------
def _component_rows(spec: ModelSpec, b: np.ndarray, mcid: float | None) -> list[dict]:
    effects = 2.0 * b[:, spec.main_index]
    lo, hi = hdi(effects)
    sign = -1.0 if spec.better == "lower" else 1.0
    rows = []
    for i, name in enumerate(spec.factor_names):
        e = effects[:, i]
        rows.append({
            "name": name, "effect_mean": float(e.mean()), "hdi_low": float(lo[i]),
            "hdi_high": float(hi[i]), "p_positive": float((e > 0).mean()),
            "p_beneficial": float((sign * e > 0).mean()),
            "p_above_mcid": None if mcid is None else float((sign * e > mcid).mean()),
        })
    return rows


def _term_rows(spec: ModelSpec, b: np.ndarray) -> list[dict]:
    lo, hi = hdi(b)
    return [{"term": n, "coef_mean": float(b[:, j].mean()), "coef_sd": float(b[:, j].std()),
             "hdi_low": float(lo[j]), "hdi_high": float(hi[j])}
            for j, n in enumerate(spec.coef_names)]


def combination_draws(spec: ModelSpec, b: np.ndarray) -> np.ndarray:
    """Return expected outcome of every combination for every draw, (draws, 2^k)."""
    v = b @ spec.combination_matrix().T
    return special.expit(v) if spec.family == "logistic" else v


def _labels(spec: ModelSpec, combos: np.ndarray, c: int) -> list[str]:
    return [spec.factor_names[i] for i in range(combos.shape[1]) if combos[c, i] > 0]


# -- screening ------------------------------------------------------------------------------------
def screening_fit(spec: ModelSpec, x: np.ndarray, y: np.ndarray, alpha: float,
                  groups: np.ndarray | None = None) -> dict:
    """Effect-coded OLS (logistic GLM for binary) with statsmodels, and the screening decision.

    With ``groups`` (each row's cluster) the standard errors are cluster-robust (statsmodels'
    ``cov_type="cluster"``: the sandwich over clusters with its small-sample factor, t tests
    with clusters − 1 degrees of freedom for OLS).
    """
    import warnings

    import statsmodels.api as sm

    robust = {} if groups is None else {"cov_type": "cluster", "cov_kwds": {"groups": groups}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.family == "normal":
            res = sm.OLS(y, x).fit(**robust)
        else:
            res = sm.GLM(y, x, family=sm.families.Binomial()).fit(**robust)
    est, pval, se = np.asarray(res.params), np.asarray(res.pvalues), np.asarray(res.bse)
    if not np.all(np.isfinite(pval)):
        raise DataError("the classic screening model cannot be estimated from these data (too "
                        "few participants per term) — lower the model order or use method "
                        "bayes", param="method")
    chosen = decide.screening_rule(est[None], pval[None], spec.terms, len(spec.factor_names),
                                   alpha, spec.better)[0]
    # classic factorial effects (2 × coefficient) for the contrasts; the intercept and the
    # covariates are reported as coefficients only
    contrast = [j < len(spec.terms) and len(spec.terms[j]) > 0 for j in range(len(est))]
    terms = [{"term": n, "coef": float(est[j]), "coef_se": float(se[j]),
              "effect": 2 * float(est[j]) if contrast[j] else None,
              "effect_se": 2 * float(se[j]) if contrast[j] else None,
              "p_value": float(pval[j])} for j, n in enumerate(spec.coef_names)]
    return {"chosen": chosen, "terms": terms}


# -- analysis -------------------------------------------------------------------------------------
def _fit(spec, x, y, engine, draws, tune, chains, seed, cores, progress, cluster=None):
    """Posterior coefficient draws, diagnostics and (pymc engines) the InferenceData."""
    if engine == "fast":
        if cluster is not None and spec.family == "normal":
            post = fast.clustered_normal_posterior(spec, x, y, cluster)
        elif cluster is not None:
            raise DataError("the fast engine has no cluster random intercept for a binary "
                            "outcome — use engine nuts", param="engine")
        elif spec.family == "normal":
            post = fast.normal_posterior(spec, *fast.normal_stats(x, y))
        else:
            post = fast.logistic_posterior(spec, x, np.ones((1, len(y))), y[None])
        b = post.draws([np.random.default_rng(seed)], draws * chains)[0]
        diag: dict[str, Any] = {"rhat_max": None, "ess_bulk_min": None, "ess_tail_min": None,
                "divergences": 0, "ok": True,
                "problems": [], "note": "closed-form fast path: independent draws, no MCMC"}
        return b, diag, None
    from trialkit.bayes import backend_pymc

    idata = backend_pymc.sample(spec, x, y, draws=draws, tune=tune, chains=chains, cores=cores,
                                random_seed=seed, method="nuts" if engine == "nuts" else "prior",
                                progress=progress, cluster=cluster)
    return backend_pymc.beta_draws(idata), backend_pymc.diagnostics(idata), idata


@dataclass(frozen=True)
class OutcomeFit:
    """The posterior of one outcome's model, kept for figures and the InferenceData file."""

    spec: ModelSpec
    b: np.ndarray
    values: np.ndarray
    pev: int
    costs: np.ndarray
    idata: Any = None


@dataclass(frozen=True)
class ComponentAnalysis(Result):
    """The component report of a factorial experiment (:func:`analyse_factorial`).

    ``to_dict()`` is the JSON report; :meth:`save` writes it with the InferenceData (netCDF) and
    the figures; :meth:`plot_effects` and :meth:`plot_combinations` draw the figures.
    """

    primary: ClassVar[str | None] = "components"
    report: dict[str, Any] = field(default_factory=dict)
    fits: tuple[OutcomeFit, ...] = ()

    def as_mapping(self) -> dict[str, Any]:
        """Return the report."""
        return self.report

    def _fit(self, outcome: str | None) -> OutcomeFit:
        if not self.fits:
            raise TrialkitError("the analysis has no posterior (method 'ols') — analyse with "
                                "method 'bayes' or 'both' to draw it", param="method")
        name = outcome or self.fits[0].spec.outcome
        return next(f for f in self.fits if f.spec.outcome == name)

    def plot_effects(self, outcome: str | None = None) -> Any:
        """Forest plot of the components' effects on ``outcome`` (default: the first)."""
        from trialkit.bayes.plots import forest_figure

        fit = self._fit(outcome)
        return forest_figure(fit.spec, fit.b)

    def plot_combinations(self, outcome: str | None = None) -> Any:
        """Return expected outcome of every combination, the PEV choice marked."""
        from trialkit.bayes.plots import combinations_figure

        fit = self._fit(outcome)
        return combinations_figure(fit.spec, fit.values, fit.pev, fit.costs)

    def save(self, path: str | os.PathLike[str], plots: bool = True) -> str:
        """Write the InferenceData (netCDF), the figures and ``report.json`` into folder ``path``.

        Returns the report's path; ``files`` in the report lists everything written.
        """
        from trialkit.plotting import save_figure

        folder = os.fspath(path)
        os.makedirs(folder, exist_ok=True)
        files = []
        for fit in self.fits:
            if fit.idata is not None:
                from trialkit.bayes import backend_pymc

                files.append(os.path.join(folder, f"posterior_{fit.spec.outcome}.nc"))
                backend_pymc.save_netcdf(fit.idata, files[-1])
        for fit in self.fits if plots else ():
            name = fit.spec.outcome
            files.append(save_figure(self.plot_effects(name),
                                     os.path.join(folder, f"forest_{name}.png"), dpi=120))
            files.append(save_figure(self.plot_combinations(name),
                                     os.path.join(folder, f"combinations_{name}.png"), dpi=120))
        report = os.path.join(folder, "report.json")
        files.append(report)
        self.report["files"] = files
        with open(report, "w") as fh:
            json.dump(self.to_dict(), fh, indent=2)
        return report


def _check_arguments(design, method, engine, mcid, outcomes, weights) -> tuple[str, ...]:
    if design.kind != "factorial":
        raise TrialkitError(f"{design.source.path} is a {design.kind} design — factorial "
                            "analysis needs a design of kind 'factorial'", param="design")
    if method not in METHODS:
        raise TrialkitError(f"method {method!r} is unknown — use one of: {', '.join(METHODS)}",
                            param="method")
    if engine not in ENGINES:
        raise TrialkitError(f"engine {engine!r} is unknown — use one of: {', '.join(ENGINES)}",
                            param="engine")
    if mcid is not None and np.isnan(mcid):
        raise TrialkitError("mcid = nan is not a number — give the MCID as a positive size",
                            param="mcid")
    if mcid is not None and mcid < 0:
        raise TrialkitError(f"mcid = {mcid:g} is negative — give the MCID as a positive size",
                            param="mcid")
    outcomes = tuple(outcomes) or (design.primary_outcome.name,)
    if len(set(outcomes)) != len(outcomes):
        raise TrialkitError("an outcome is given twice — name each outcome once",
                            param="outcomes")
    for name, w in weights.items():
        if name not in outcomes:
            raise TrialkitError(f"weight given for {name!r}, which is not an analysed outcome — "
                                "use one of: " + ", ".join(outcomes), param="weights")
        if not w >= 0:
            raise TrialkitError(f"weight {w} of {name!r} is negative or not a number — use "
                                "weights ≥ 0", param="weights")
    return outcomes


def _bayes_summary(spec, combos, costs, b, mcid, budget) -> tuple[dict, np.ndarray, int]:
    """Components, terms, combinations and PEV choices from coefficient draws ``b``."""
    v = combination_draws(spec, b)
    vo = decide.orient(v, spec.better)
    p_best = np.bincount(vo.argmax(1), minlength=v.shape[1]) / v.shape[0]
    lo, hi = hdi(v)
    mean = v.mean(0)
    oriented = decide.orient(mean, spec.better)[None]
    pev = int(decide.pev_choice(oriented, costs)[0])
    pevb = int(decide.pev_choice(oriented, costs, budget)[0])
    res = {"components": _component_rows(spec, b, mcid), "terms": _term_rows(spec, b),
           "combinations": [
               {"components_on": _labels(spec, combos, c), "expected_outcome": float(mean[c]),
                "hdi_low": float(lo[c]), "hdi_high": float(hi[c]), "p_best": float(p_best[c]),
                "cost": float(costs[c])} for c in range(len(mean))],
           "pev": _labels(spec, combos, pev), "pev_within_budget": _labels(spec, combos, pevb),
           "p_best_max": float(p_best.max())}
    return res, v, pev


def _analyse_outcome(design, name, codes, y, cov, covariates, opts) -> tuple[dict, Any]:
    """One outcome's report (and its posterior fit, for Bayesian methods)."""
    cluster = opts["cluster"]
    spec = build_spec(design, name, tuple(covariates), y=y,
                      clusters=0 if cluster is None else int(cluster.max()) + 1)
    x = spec.design_matrix(codes, cov)
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise DataError(f"the data cannot estimate the model of order "
                        f"{design.analysis.model_order} (some terms are confounded or "
                        "conditions are empty) — lower [analysis] model_order or check "
                        "the data")
    combos = spec.combinations()
    costs = decide.combination_costs(combos, [f.cost for f in design.factors])
    decide.check_budget(opts["budget"], costs)
    res: dict = {"outcome": name, "family": spec.family, "better": spec.better,
                 "n": int(len(y))}
    fit = None
    if opts["method"] in ("bayes", "both"):
        b, diag, idata = _fit(spec, x, y, opts["engine"], opts["draws"], opts["tune"],
                              opts["chains"], opts["seed"], opts["cores"], opts["progress"],
                              cluster)
        summary, v, pev = _bayes_summary(spec, combos, costs, b, opts["mcid"], opts["budget"])
        res.update(summary, diagnostics=diag)
        fit = OutcomeFit(spec, b, v, pev, costs, idata)
    if opts["method"] in ("ols", "both"):
        scr = screening_fit(spec, x, y, design.analysis.alpha, cluster)
        res["screening"] = _labels(spec, scr["chosen"][None].astype(float) * 2 - 1, 0)
        res["ols"] = scr["terms"]
    return res, fit


def _decision(design, outcomes, per_outcome, fits, weights, budget) -> dict:
    """Return the PEV and screening decisions, the separation note and the multi-outcome value."""
    first = per_outcome[outcomes[0]]
    decision: dict = {"pev": first.get("pev"), "pev_within_budget": first.get("pev_within_budget"),
                      "screening": first.get("screening"), "budget": budget}
    if not fits:
        return decision
    if "screening" in first:
        decision["disagreements"] = [
            {"component": f, "pev": f in first["pev"], "screening": f in first["screening"]}
            for f in design.factor_names if (f in first["pev"]) != (f in first["screening"])]
    c_count = len(first["combinations"])
    separated = first["p_best_max"] >= SEPARATION_P_BEST
    p_sorted = np.sort([c["p_best"] for c in first["combinations"]])[::-1]
    credible = min(int(np.searchsorted(np.cumsum(p_sorted), 0.95 - 1e-12) + 1), c_count)
    decision.update(separated=separated, p_best_max=first["p_best_max"],
                    best_credible_set_size=credible, note=(
                        f"the data favour one combination (P(best) = {first['p_best_max']:.2f})"
                        if separated else
                        f"the data cannot separate the options: the most probable best "
                        f"combination has P(best) = {first['p_best_max']:.2f} (uniform would be "
                        f"{1 / c_count:.3f}) and {credible} of {c_count} combinations make up "
                        "95% of P(best)"))
    if len(outcomes) > 1:
        decision["value_function"] = _value_function(outcomes, fits, weights, budget)
    return decision


def _value_function(outcomes, fits, weights, budget) -> dict:
    w = [weights.get(n, 1.0) for n in outcomes]
    if sum(w) <= 0:
        raise TrialkitError("all outcome weights are zero — give at least one positive weight",
                            param="weights")
    values = [decide.orient(f.values.mean(0), f.spec.better) for f in fits]
    total = decide.daive_value([v[None] for v in values], w)
    spec, costs = fits[0].spec, fits[0].costs
    combos = spec.combinations()
    best = int(decide.pev_choice(total, costs)[0])
    best_b = int(decide.pev_choice(total, costs, budget)[0])
    return {"weights": dict(zip(outcomes, (x / sum(w) for x in w), strict=True)),
            "choice": _labels(spec, combos, best),
            "choice_within_budget": _labels(spec, combos, best_b),
            "value": float(total[0, best])}


def _diagnostics(outcomes, per_outcome, engine) -> dict:
    diags = [per_outcome[n]["diagnostics"] for n in outcomes]
    return {"rhat_max": _worst(diags, "rhat_max", max),
            "ess_bulk_min": _worst(diags, "ess_bulk_min", min),
            "ess_tail_min": _worst(diags, "ess_tail_min", min),
            "divergences": sum(d["divergences"] for d in diags),
            "ok": all(d["ok"] for d in diags),
            "problems": [f"{n}: {p}" for n, d in zip(outcomes, diags, strict=True)
                         for p in d["problems"]],
            "engine": engine}


def analyse_factorial(
    design, data, *, outcomes: tuple[str, ...] = (), covariates: tuple[str, ...] = (),
    method: str = "both", engine: str = "nuts", draws: int = 1000, tune: int = 1000,
    chains: int = 4, seed: int = 0, cores: int | None = None, mcid: float | None = None,
    budget: float | None = None, weights: dict[str, float] | None = None,
    out_dir: str | None = None, progress: bool = False, plots: bool = True,
    include_marked_errors: bool = False,
) -> ComponentAnalysis:
    """Analyse a factorial experiment: component report, combinations and decisions.

    Parameters
    ----------
    design : FactorialDesign
        The design.
    data : pandas.DataFrame
        The trial data: ±1 factor columns named as the design's factors, outcome columns named
        as its outcomes, optional covariate columns and (clustered designs) the cluster column.
        Rows marked in error (``marked_error`` = 1) are left out unless
        ``include_marked_errors``; the report's ``data`` and ``clustering`` say what was used.
    outcomes : tuple of str
        Outcomes to analyse (default: the primary outcome). The first is reported at the top
        level; with several, ``decision.value_function`` combines them (DAIVE scaling).
    covariates : tuple of str
        Baseline covariate columns (centred and scaled).
    method : {"bayes", "ols", "both"}
        Bayesian PEV analysis, classic screening, or both.
    engine : {"nuts", "fast", "prior"}
        pymc NUTS; the closed-form/Laplace fast path; or prior draws (a wiring check).
    draws, tune, chains, seed, cores : int
        Sampler settings (as :func:`pymc.sample`); ``progress`` shows progress on stderr.
    mcid : float, optional
        Minimal clinically important difference (a positive magnitude, in the classic-effect
        units of the outcome): ``p_above_mcid`` is P(effect beneficial by more than ``mcid``).
    budget : float, optional
        Largest total component cost of the intervention (``pev_within_budget``).
    weights : dict, optional
        Outcome → weight of the multi-outcome value function (default equal).
    out_dir : str, optional
        Deprecated: call ``result.save(folder)`` instead (``plots``: with the figures).

    Returns
    -------
    ComponentAnalysis
        The report (``to_dict()``), the posteriors for figures and ``save(folder)``.
    """
    weights = dict(weights or {})
    outcomes = _check_arguments(design, method, engine, mcid, outcomes, weights)
    codes, ys, cov, cluster, about = _analysis_data(design, _table(data), outcomes,
                                                     tuple(covariates), include_marked_errors)
    opts = dict(method=method, engine=engine, draws=draws, tune=tune, chains=chains, seed=seed,
                cores=cores, progress=progress, mcid=mcid, budget=budget, cluster=cluster)
    per_outcome, fits = {}, []
    for name in outcomes:
        per_outcome[name], fit = _analyse_outcome(design, name, codes, ys[name], cov,
                                                  covariates, opts)
        fits += [fit] if fit is not None else []
    report = {**about, **_report(design, outcomes, per_outcome, fits, weights, opts)}
    return _saved(ComponentAnalysis(report, tuple(fits)), out_dir, plots)


def _saved(result: ComponentAnalysis, out_dir: str | None, plots: bool) -> ComponentAnalysis:
    """Save the result into ``out_dir`` (the deprecated ``analyse_factorial(out_dir=...)``)."""
    if out_dir is not None:
        warnings.warn("analyse_factorial(out_dir=...) is deprecated — call "
                      "result.save(folder)", DeprecationWarning, stacklevel=3)
        result.save(out_dir, plots=plots)
    return result


def _analysis_data(design, table, outcomes, covariates, include_marked_errors: bool):
    """Return codes, outcomes, covariates, clusters and the report's ``data``/``clustering``."""
    table, summary = exclude_marked_errors(table, include_marked_errors)
    if summary["rows"] and not summary["analysed"]:
        raise DataError(f"all {summary['rows']} rows are marked in error — nothing is left to "
                        "analyse; check the export (or include them on purpose)",
                        param="include_marked_errors")
    codes, ys, cov = prepare_data(design, table, outcomes, covariates)
    cluster, clustering = cluster_index(design, table)
    return codes, ys, cov, cluster, {"data": summary, "clustering": clustering}


def _report(design, outcomes, per_outcome, fits, weights, opts) -> dict:
    """Return the JSON report: the first outcome at the top level, all under ``outcomes``."""
    first = per_outcome[outcomes[0]]
    report = {
        "design": design.name, "outcome": outcomes[0], "method": opts["method"],
        "engine": opts["engine"],
        "components": first.get("components", []),
        "combinations": first.get("combinations", []),
        "decision": _decision(design, outcomes, per_outcome, fits, weights, opts["budget"]),
        "diagnostics": _diagnostics(outcomes, per_outcome, opts["engine"]) if fits else None,
        "terms": first.get("terms", []), "ols": first.get("ols", []), "mcid": opts["mcid"],
    }
    if len(outcomes) > 1:
        report["outcomes"] = {n: {k: r.get(k) for k in ("components", "combinations", "pev",
                                                          "pev_within_budget", "screening")}
                              for n, r in per_outcome.items()}
    return report


def _table(data):
    """Return the data table; a path is read (deprecated: reading files belongs to the caller)."""
    if isinstance(data, str | os.PathLike):
        warnings.warn("analyse_factorial(data=PATH) is deprecated — pass a table read with "
                      "trialkit.tables.read_table", DeprecationWarning, stacklevel=3)
        return read_table(data)
    return data


def _worst(diags: list[dict], key: str, pick) -> float | None:
    vals = [d[key] for d in diags if d.get(key) is not None]
    return pick(vals) if vals else None


# -- prior predictive ------------------------------------------------------------------------------
def _prior_coefficients(spec: ModelSpec, rng: np.random.Generator, draws: int):
    """Coefficient draws (draws, p) from the prior, and the residual SDs (normal family)."""
    tau, _ = spec.tau_grid()
    p = spec.n_coef
    scale = np.broadcast_to(spec.prior_scale, (draws, p)).copy()
    if spec.interactions == "hierarchical" and spec.interaction.any():
        t = np.abs(rng.normal(0.0, spec.interaction_sd, draws))
    else:
        t = np.full(draws, tau[0])
    scale[:, spec.interaction] = t[:, None]
    z = rng.standard_normal((draws, p))
    if spec.family == "normal":
        sigma = np.sqrt(spec.sigma_rate / rng.gamma(spec.sigma_shape, size=draws))
        return spec.prior_mean + sigma[:, None] * scale * z, sigma
    return spec.prior_mean + scale * z, None


def prior_predictive(design, *, outcome: str | None = None, draws: int = 1000, seed: int = 0,
                     n_total: int | None = None) -> PriorPredictive:
    """Draw data from the prior at the design's conditions and summarise what it implies.

    Returns quantiles (5%, 50%, 95%) of each term's classic effect, of the expected outcome of
    the all-off and all-on combinations, of the simulated trial's mean outcome and (continuous)
    its SD, and of the spread between the best and worst combination.
    """
    if design.kind != "factorial":
        raise TrialkitError(f"{design.source.path} is a {design.kind} design — the prior "
                            "predictive check needs a factorial design")
    name = design.outcome(outcome).name
    if draws < 10:
        raise TrialkitError(f"draws = {draws} is too few — use at least 10", param="draws")
    spec = build_spec(design, name)
    rng = np.random.default_rng(seed)
    b, sigma = _prior_coefficients(spec, rng, draws)
    n = n_total or design.sample.n_total or 32 * design.conditions().shape[0]
    codes = design.conditions()
    cells = np.arange(n) % codes.shape[0]
    x = spec.design_matrix(codes[cells])
    eta = b @ x.T  # (draws, n)
    if spec.family == "normal":
        y = eta + sigma[:, None] * rng.standard_normal(eta.shape)
    else:
        y = rng.binomial(1, special.expit(eta)).astype(float)
    v = combination_draws(spec, b)
    q = (0.05, 0.5, 0.95)

    def quant(a):
        return dict(zip(("q05", "q50", "q95"), map(float, np.quantile(a, q)), strict=True))

    effects = [{"term": n_, **quant(2 * b[:, j])} for j, n_ in enumerate(spec.coef_names) if j]
    out = {"design": design.name, "outcome": name, "family": spec.family, "draws": draws,
           "seed": seed, "n_total": int(n),
           "prior": {"intercept_mean": float(spec.prior_mean[0]),
                     "intercept_sd": float(spec.prior_scale[0]),
                     "main_sd": float(spec.prior_scale[spec.main_index[0]]),
                     "interaction_sd": spec.interaction_sd, "interactions": spec.interactions,
                     "residual_sd": (float(np.sqrt(spec.sigma_rate / (spec.sigma_shape - 1)))
                                     if spec.family == "normal" else None)},
           "effects": effects,
           "all_off": quant(v[:, 0]), "all_on": quant(v[:, -1]),
           "best_minus_worst": quant(v.max(1) - v.min(1)),
           "trial_mean": quant(y.mean(1))}
    if spec.family == "normal":
        out["trial_sd"] = quant(y.std(1))
    return PriorPredictive(out)


class PriorPredictive(Report):
    """What the priors imply about effects and outcomes (:func:`prior_predictive`)."""

    primary: ClassVar[str | None] = "effects"
