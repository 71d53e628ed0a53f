"""The pymc backend: the only module that imports pymc (and arviz), always inside functions.

It builds the model of :mod:`trialkit.bayes.spec` (non-centred: ``β = m + scale · z``), samples it
with NUTS — or, for fast wiring checks, takes prior draws in place of posterior draws — and
computes convergence diagnostics with arviz.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings

import numpy as np

from trialkit.bayes.spec import ModelSpec

RHAT_MAX = 1.01
ESS_PER_CHAIN = 100


@contextlib.contextmanager
def _quiet():
    """Silence pymc/arviz import notices and INFO logging while the backend runs."""
    loggers = [logging.getLogger(n) for n in ("pymc", "pytensor", "arviz")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*could not link to a BLAS")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _import_pymc():
    """Import pymc (and pytensor) once, without import-time notices, before quieting loggers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import pymc

    return pymc


def import_arviz():
    """Import arviz without its import-time notices."""
    with _quiet():
        import arviz

    return arviz


def _cluster_intercept(spec: ModelSpec, cluster: np.ndarray | None, scale):
    """Return the cluster random intercept of every row: ``scale · κ · z[cluster]`` (or 0).

    κ ~ HalfNormal(``spec.cluster_sd``) and z ~ Normal(0, 1) per cluster (non-centred);
    ``scale`` is σ for the normal family (κ in residual-SD units) and 1 for the logistic one.
    """
    import pymc as pm

    if cluster is None or spec.clusters == 0:
        return 0.0
    kappa = pm.HalfNormal("cluster_sd", sigma=spec.cluster_sd)
    z = pm.Normal("cluster_z", 0.0, 1.0, dims="cluster")
    return (scale * kappa * z)[np.asarray(cluster, dtype=int)]


def build_model(spec: ModelSpec, x: np.ndarray, y: np.ndarray | None,
                cluster: np.ndarray | None = None):
    """Return the pymc model of ``spec`` for model matrix ``x`` and outcome ``y``.

    With ``cluster`` (each row's cluster, 0..clusters − 1) and ``spec.clusters`` > 0 the linear
    predictor has a cluster random intercept.
    """
    with _quiet():
        import pymc as pm
        import pytensor.tensor as pt

    mask = spec.interaction.astype(float)
    hierarchical = spec.interactions == "hierarchical" and spec.interaction.any()
    coords = {"coef": spec.coef_names, "obs": np.arange(x.shape[0]),
              "cluster": np.arange(max(spec.clusters, 1))}
    with pm.Model(coords=coords) as model:
        if hierarchical:
            tau = pm.HalfNormal("tau", sigma=spec.interaction_sd)
            scale = pt.as_tensor(spec.prior_scale * (1 - mask)) + tau * pt.as_tensor(mask)
        else:
            scale = pt.as_tensor(spec.prior_scale)
        z = pm.Normal("z", 0.0, 1.0, dims="coef")
        xs = pt.as_tensor(x)
        if spec.family == "normal":
            sigma2 = pm.InverseGamma("sigma2", alpha=spec.sigma_shape, beta=spec.sigma_rate)
            sigma = pm.Deterministic("sigma", pt.sqrt(sigma2))
            beta = pm.Deterministic("beta", spec.prior_mean + sigma * scale * z, dims="coef")
            mu = pt.dot(xs, beta) + _cluster_intercept(spec, cluster, sigma)
            pm.Normal("y", mu=mu, sigma=sigma, observed=y, dims="obs")
        else:
            beta = pm.Deterministic("beta", spec.prior_mean + scale * z, dims="coef")
            logit_p = pt.dot(xs, beta) + _cluster_intercept(spec, cluster, 1.0)
            pm.Bernoulli("y", logit_p=logit_p, observed=y, dims="obs")
    return model


class _Progress:
    """The sampler's callback: the engine's progress bar (:mod:`trialkit.engine.progress`).

    Sampling reports its draws on stderr whether or not stderr is a terminal (the CLI's
    ``--quiet`` turns it off).
    """

    def __init__(self, total: int, stream=None):
        from trialkit.engine.progress import Progress

        self.bar = Progress(total, "sampling", "draws", stream=stream, terminal_only=False,
                            delay=0.0)

    def __call__(self, trace=None, draw=None) -> None:
        self.bar.advance()

    def close(self) -> None:
        """End the line."""
        self.bar.close()


def sample(
    spec: ModelSpec, x: np.ndarray, y: np.ndarray, *, draws: int = 1000, tune: int = 1000,
    chains: int = 4, cores: int | None = None, random_seed: int | None = None,
    method: str = "nuts", progress: bool = False, target_accept: float = 0.9,
    cluster: np.ndarray | None = None,
):
    """Fit the model and return ArviZ InferenceData with ``beta`` in the posterior group.

    ``method="prior"`` returns prior draws (reshaped to ``chains × draws``) in place of the
    posterior: the wiring of the analysis runs in milliseconds without NUTS. ``cluster`` gives
    each row's cluster for the random intercept (``spec.clusters`` > 0).
    """
    _import_pymc()
    with _quiet():
        import pymc as pm

        model = build_model(spec, x, y, cluster)
        if method == "prior":
            az = import_arviz()
            with model:
                prior = pm.sample_prior_predictive(draws=draws * chains, random_seed=random_seed)
            post = {}
            for name in prior.prior.data_vars:
                arr = prior.prior[name].values[0]
                post[name] = arr.reshape((chains, draws, *arr.shape[1:]))
            dims = {"beta": ["coef"], "z": ["coef"]}
            return az.from_dict(posterior=post, dims=dims,
                                coords={"coef": spec.coef_names},
                                sample_stats={"diverging": np.zeros((chains, draws), bool)})
        callback = _Progress((draws + tune) * chains) if progress else None
        if progress:
            sys.stderr.write("compiling and sampling the model…\n")
            sys.stderr.flush()
        try:
            with model:
                idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores,
                                  random_seed=random_seed, progressbar=False, callback=callback,
                                  target_accept=target_accept, compute_convergence_checks=False)
        finally:
            if callback is not None:
                callback.close()
    return idata


def diagnostics(idata) -> dict:
    """R-hat, bulk/tail ESS of the coefficients and the number of divergent transitions."""
    az = import_arviz()
    with _quiet(), np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant chains: R-hat is inf
        rhat = az.rhat(idata, var_names=["beta"])["beta"].values
        bulk = az.ess(idata, var_names=["beta"], method="bulk")["beta"].values
        tail = az.ess(idata, var_names=["beta"], method="tail")["beta"].values
    chains = idata.posterior.sizes["chain"]
    div = int(np.asarray(idata.sample_stats["diverging"]).sum()) if "sample_stats" in idata else 0
    rhat_max = float(np.max(np.where(np.isnan(rhat), np.inf, rhat)))
    problems = []
    if not np.isfinite(rhat_max) or rhat_max > RHAT_MAX:
        problems.append(f"R-hat {rhat_max:.3f} above {RHAT_MAX}")
    if float(bulk.min()) < ESS_PER_CHAIN * chains:
        problems.append(f"bulk ESS {bulk.min():.0f} below {ESS_PER_CHAIN * chains}")
    if float(tail.min()) < ESS_PER_CHAIN * chains:
        problems.append(f"tail ESS {tail.min():.0f} below {ESS_PER_CHAIN * chains}")
    if div:
        problems.append(f"{div} divergent transitions")
    return {"rhat_max": rhat_max, "ess_bulk_min": float(bulk.min()),
            "ess_tail_min": float(tail.min()), "divergences": div,
            "ok": not problems, "problems": problems}


def beta_draws(idata) -> np.ndarray:
    """Coefficient draws stacked over chains, (draws, p)."""
    b = np.asarray(idata.posterior["beta"].values)
    return b.reshape(-1, b.shape[-1])


def save_netcdf(idata, path: str) -> None:
    """Save the InferenceData as netCDF (h5netcdf engine)."""
    with _quiet():
        idata.to_netcdf(path, engine="h5netcdf")
