"""Simulation of an adaptive MRT: the policy run online, every replicate analysed validly.

A replicate draws, from its own stream and in a fixed order, everything that does not depend on
the policy — the context trajectories (``[context.NAME]``), availability, one uniform per decision
for the action and the outcome noise — and then runs the policy version by version exactly as the
live service would: probabilities from :func:`trialkit.mrt.policy.policy_probabilities`, actions
``1{u < π}``, and at every update the posterior of the whole history so far
(:func:`trialkit.mrt.policy.policy_update`, its sufficient statistics summed period by
period). All replicates of a batch go through each step together.

Outcome model. Continuous: ``Y = Σ_v γ_v s_v + A·(β_t + Σ_v δ_v s_v) + b_i + e_it`` with the
effect trajectory ``β_t``, ``γ`` = ``context_baseline``, ``δ`` = ``context_effect`` (over all
declared context variables ``s``), ``Var(b_i) = icc``, ``Var(e) = 1 − icc`` (AR(1) with ``ar1``).
Binary: ``P(Y = 1) = μ0_t·exp(A·β_t)``. Contexts and availability do not depend on earlier
actions, so the marginal excursion effect is known:
``Σ_t τ_t (β_t + δ'E[s]) / Σ_t τ_t`` (continuous; binary: ``β`` when it is constant).

Analysis. WCLS (continuous) or EMEE (binary) of the outcome on controls ``(1, s_policy)`` and the
centred treatment ``A − p̃`` (one effect: the marginal excursion effect), weighted with the logged
probabilities, p̃ = the design's planning probability; its variance by the standard sandwich and
by the adaptive sandwich (:mod:`trialkit.mrt.adaptive_variance`), both without the leverage
adjustment, with t intervals and tests on n − 1 − q degrees of freedom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal, stats

from trialkit.engine import memory_batch, replicate_rngs, run_replicates
from trialkit.errors import TrialkitError
from trialkit.mrt.adaptive_variance import fit_marginal
from trialkit.mrt.contexts import ContextTrajectories
from trialkit.mrt.policy import (
    PolicyParams,
    policy_actions,
    policy_probabilities,
    policy_statistics,
    posterior,
    prior_params,
)
from trialkit.results import Result, omit_none

#: Participant × decision-point cells held per batch of replicates.
BATCH_CELLS = 250_000
#: The most replicates per batch.
BATCH = 25


@dataclass(frozen=True)
class AdaptiveMrtPower(Result):
    """Operating characteristics of an adaptive-policy MRT, by simulation.

    ``power`` and ``type_i_error`` test the marginal excursion effect with the adaptive
    sandwich (``*_standard``: with the standard sandwich); ``coverage`` holds the 95% (1 − α)
    interval coverage of the true marginal effect under the assumed effects and under the null,
    for both variances; ``probability`` summarises the probabilities used (available decision
    points, averaged over replicates); ``regret`` is the mean outcome lost per available decision
    point against the best fixed probability in [p_min, p_max].
    """

    power: float
    mc_se: float
    power_standard: float
    type_i_error: float | None = omit_none()
    type_i_error_standard: float | None = omit_none()
    type_i_mc_se: float | None = omit_none()
    effect: float | None = omit_none()
    mean_estimate: float | None = omit_none()
    coverage: dict[str, Any] | None = omit_none()
    probability: dict[str, Any] | None = omit_none()
    regret: dict[str, Any] | None = omit_none()
    design: str | None = omit_none()
    outcome: str | None = omit_none()
    outcome_type: str | None = omit_none()
    method: str | None = omit_none()
    n_participants: int | None = omit_none()
    decision_points: int | None = omit_none()
    alpha: float | None = omit_none()
    numerator_prob: float | None = omit_none()
    policy: dict[str, Any] | None = omit_none()
    contexts: dict[str, Any] | None = omit_none()
    df: int | None = omit_none()
    reps: int | None = omit_none()
    seed: int | None = omit_none()


# -- inputs -------------------------------------------------------------------------------------
def adaptive_inputs(design, inp: dict, null: bool = False,
                    contexts: ContextTrajectories | None = None) -> dict:
    """Per-decision-point inputs of the simulation of ``design`` (its policy's outcome).

    ``inp`` are the outcome's inputs (:func:`trialkit.mrt.planning.design_inputs`). With
    ``null`` every effect (trajectory and context moderation) is zero. ``contexts``: context
    trajectories to resample participants from instead of the declared distributions.
    """
    spec = design.policy
    out = next(o for o in design.outcomes if o.name == spec.outcome)
    names = [c.name for c in design.context]
    gamma = np.zeros(len(names))
    delta = np.zeros(len(names))
    for name, value in out.context_baseline:
        gamma[names.index(name)] = value
    for name, value in out.context_effect:
        delta[names.index(name)] = value
    effect = inp["effect"]
    if null:
        effect, delta = np.zeros_like(effect), np.zeros_like(delta)
    return {"type": inp["type"], "availability": inp["availability"], "effect": effect,
            "baseline": inp["baseline"], "context": design.context, "gamma": gamma,
            "delta": delta, "policy_columns": [names.index(c) for c in spec.context],
            "numerator_prob": float(design.probability[0]), "alpha": design.alpha,
            "days": inp["days"], "decisions_per_day": inp["decisions_per_day"],
            "trajectories": contexts}


def true_effect(inputs: dict) -> float | None:
    """Return the marginal excursion effect the analysis targets (``None``: no closed form)."""
    tau, beta = inputs["availability"], inputs["effect"]
    if inputs["type"] == "binary":
        return float(beta[0]) if np.ptp(beta) == 0 else None
    shift: float | np.ndarray = 0.0
    if inputs.get("trajectories") is not None:   # E[s_t] of the resampled trajectories
        shift = inputs["trajectories"].means() @ inputs["delta"]
    elif inputs["context"]:
        shift = float(inputs["delta"] @ np.array([c.expected for c in inputs["context"]]))
    return float(np.sum(tau * (beta + shift)) / np.sum(tau))


# -- drawing -------------------------------------------------------------------------------------
def _context_draws(rng: np.random.Generator, context, shape: tuple[int, int]) -> np.ndarray:
    out = np.empty((*shape, len(context)))
    for j, var in enumerate(context):
        if var.distribution == "bernoulli":
            out[..., j] = rng.random(shape) < var.probability
            continue
        z = rng.standard_normal(shape)
        if var.ar1:
            z[:, 0] /= math.sqrt(1.0 - var.ar1 ** 2)
            z = signal.lfilter([math.sqrt(1.0 - var.ar1 ** 2)], [1.0, -var.ar1], z, axis=1)
        out[..., j] = var.mean + var.sd * z
    return out


def draw_exogenous(rngs, n: int, inputs: dict, icc: float = 0.0, ar1: float = 0.0) -> dict:
    """Draw, per replicate: contexts, availability, action uniforms and outcome noise.

    Contexts come from the declared distributions, or (``inputs["trajectories"]``) are the
    trajectories of participants of a table drawn with replacement.
    """
    n_points = inputs["availability"].size
    shape = (n, n_points)
    keys: dict[str, list] = {"context": [], "avail": [], "u_action": [], "noise": []}
    trajectories = inputs.get("trajectories")
    for rng in rngs:
        keys["context"].append(_context_draws(rng, inputs["context"], shape)
                               if trajectories is None else trajectories.draw(rng, n))
        keys["avail"].append((rng.random(shape) < inputs["availability"]).astype(float))
        keys["u_action"].append(rng.random(shape))
        if inputs["type"] == "binary":
            keys["noise"].append(rng.random(shape))
            continue
        between = rng.standard_normal(n)[:, None] * math.sqrt(icc)
        within = rng.standard_normal(shape)
        if ar1:
            within[:, 0] /= math.sqrt(1.0 - ar1 ** 2)
            within = signal.lfilter([math.sqrt(1.0 - ar1 ** 2)], [1.0, -ar1], within, axis=1)
        keys["noise"].append(between + within * math.sqrt(1.0 - icc))
    return {k: np.stack(v) for k, v in keys.items()}


def _outcome(inputs: dict, ex: dict, a: np.ndarray, sl: slice) -> np.ndarray:
    """Outcomes at the decision points ``sl`` given the actions there."""
    beta = inputs["effect"][sl]
    if inputs["type"] == "binary":
        mu0 = inputs["baseline"][sl]
        return (ex["noise"][:, :, sl] < mu0 * np.exp(a * beta)).astype(float)
    ctx = ex["context"][:, :, sl]
    base = ctx @ inputs["gamma"] if ctx.shape[-1] else 0.0
    delta = beta + (ctx @ inputs["delta"] if ctx.shape[-1] else 0.0)
    return base + a * delta + ex["noise"][:, :, sl]


def versions(n_points: int, update_every: int) -> np.ndarray:
    """Return the policy version in force at each decision point (0 before the first update)."""
    return np.arange(n_points) // update_every


def run_policy(spec, inputs: dict, ex: dict) -> dict:
    """Run the policy online over a batch of replicates; returns the logged history and params.

    History arrays are (R, n, T): ``probability``, ``action``, ``reward`` (0 where unavailable),
    ``used`` (= availability), ``context`` (R, n, T, c) the policy's context variables; ``version``
    (T,) and ``params`` (:class:`PolicyParams` with leading shape (R, V)).
    """
    r, n, n_points = ex["avail"].shape
    ctx = ex["context"][..., inputs["policy_columns"]]
    ver = versions(n_points, spec.update_every)
    prob, act, rew = (np.zeros((r, n, n_points)) for _ in range(3))
    means, covs = [], []
    params = prior_params(spec, (r,))
    d = 3 * spec.n_features
    gram, score = np.zeros((r, d, d)), np.zeros((r, d))
    for v in range(int(ver[-1]) + 1):
        lo, hi = v * spec.update_every, min((v + 1) * spec.update_every, n_points)
        if v > 0:   # the statistics of the history so far: those of the last period added
            last = slice(lo - spec.update_every, lo)
            g_v, s_v = policy_statistics(
                spec, ctx[:, :, last].reshape(r, -1, ctx.shape[-1]),
                act[:, :, last].reshape(r, -1), prob[:, :, last].reshape(r, -1),
                rew[:, :, last].reshape(r, -1), ex["avail"][:, :, last].reshape(r, -1))
            gram, score = gram + g_v, score + s_v
            params = posterior(spec, gram, score)
        means.append(params.mean)
        covs.append(params.covariance)
        sl = slice(lo, hi)
        pi = policy_probabilities(spec, params, ctx[:, :, sl].reshape(r, -1, ctx.shape[-1]))
        prob[:, :, sl] = pi.reshape(r, n, hi - lo)
        act[:, :, sl] = policy_actions(prob[:, :, sl], ex["u_action"][:, :, sl]) * \
            ex["avail"][:, :, sl]
        rew[:, :, sl] = _outcome(inputs, ex, act[:, :, sl], sl) * ex["avail"][:, :, sl]
    return {"context": ctx, "probability": prob, "action": act, "reward": rew,
            "used": ex["avail"], "version": ver,
            "params": PolicyParams(np.stack(means, axis=1), np.stack(covs, axis=1))}


# -- one batch -----------------------------------------------------------------------------------
def _probability_summary(prob: np.ndarray, avail: np.ndarray, spec) -> dict[str, np.ndarray]:
    """Per replicate: mean, SD, 5% and 95% quantiles and share at a bound, at available rows."""
    flat = prob.reshape(prob.shape[0], -1)
    live = avail.reshape(avail.shape[0], -1) > 0
    vals = np.where(live, flat, np.nan)
    eps = 1e-9
    at = np.where(live, (flat <= spec.p_min + eps) | (flat >= spec.p_max - eps), np.nan)
    return {"prob_mean": np.nanmean(vals, axis=1), "prob_sd": np.nanstd(vals, axis=1),
            "prob_q05": np.nanquantile(vals, 0.05, axis=1),
            "prob_q95": np.nanquantile(vals, 0.95, axis=1),
            "prob_at_bound": np.nanmean(at, axis=1)}


def _regret(inputs: dict, ex: dict, hist: dict, spec) -> np.ndarray:
    """Mean outcome lost per available decision point against the best fixed probability."""
    beta = inputs["effect"]
    if inputs["type"] == "binary":
        gain = np.broadcast_to(inputs["baseline"] * (np.exp(beta) - 1.0), ex["avail"].shape)
    else:
        ctx = ex["context"]
        gain = beta + (ctx @ inputs["delta"] if ctx.shape[-1] else 0.0)
    avail = ex["avail"]
    mean_gain = np.sum(inputs["availability"] * np.mean(gain, axis=(0, 1))) / np.sum(
        inputs["availability"])
    best = spec.p_max if mean_gain > 0 else spec.p_min
    lost = (best - hist["probability"]) * gain * avail
    return lost.sum(axis=(1, 2)) / np.maximum(avail.sum(axis=(1, 2)), 1.0)


def adaptive_replicates(reps: range, *, seed: int, n_participants: int, spec, inputs: dict,
                        icc: float = 0.0, ar1: float = 0.0) -> dict:
    """Replicate generator: simulate and analyse replicates ``reps`` of an adaptive MRT."""
    ex = draw_exogenous(replicate_rngs(seed, reps.start, reps.stop), n_participants, inputs,
                        icc, ar1)
    hist = run_policy(spec, inputs, ex)
    shape = ex["avail"].shape
    version = np.broadcast_to(hist["version"], shape)
    res = fit_marginal(spec, hist, version, hist["params"], hist["reward"], ex["avail"],
                       inputs["numerator_prob"], inputs["type"] == "binary")
    return {**res, **_probability_summary(hist["probability"], ex["avail"], spec),
            "regret": _regret(inputs, ex, hist, spec)}


# -- the study -----------------------------------------------------------------------------------
def _rates(out: dict, truth: float | None, alpha: float) -> dict[str, Any]:
    """Rejection rates and interval coverage of both variances for one scenario."""
    ok = out["converged"] & np.isfinite(out["se_adaptive"]) & (out["df"] > 0)
    crit = stats.t.ppf(1.0 - alpha / 2.0, np.where(ok, out["df"], 1.0))
    res: dict[str, Any] = {}
    for name, key in (("adaptive", "se_adaptive"), ("standard", "se_standard")):
        z = np.abs(out["estimate"]) / out[key]
        res[f"reject_{name}"] = float(np.mean(ok & (z > crit)))
        if truth is not None:
            inside = np.abs(out["estimate"] - truth) <= crit * out[key]
            res[f"cover_{name}"] = float(np.mean(ok & inside))
    res["failed"] = int((~ok).sum())
    return res


def _probability_report(out: dict) -> dict[str, float]:
    return {"mean": float(np.mean(out["prob_mean"])), "sd": float(np.mean(out["prob_sd"])),
            "q05": float(np.mean(out["prob_q05"])), "q95": float(np.mean(out["prob_q95"])),
            "at_bound": float(np.mean(out["prob_at_bound"]))}


def _run(design, inp: dict, n: int, reps: int, seed: int, jobs: int, icc: float, ar1: float,
         null: bool, contexts: ContextTrajectories | None) -> tuple[dict, float | None]:
    inputs = adaptive_inputs(design, inp, null=null, contexts=contexts)
    n_points = inputs["availability"].size
    batch = memory_batch(n * n_points, BATCH_CELLS, BATCH)
    label = "simulating trials (null)" if null else "simulating trials"
    out = run_replicates(adaptive_replicates, reps, jobs=jobs, batch=batch, seed=seed,
                         n_participants=n, spec=design.policy, inputs=inputs, icc=icc, ar1=ar1,
                         progress=label)
    return out, true_effect(inputs)


def simulate_adaptive_mrt(design, inputs: dict, n_participants: int, reps: int = 1000,
                          seed: int = 0, jobs: int = 1, icc: float = 0.0, ar1: float = 0.0,
                          null: bool = True,
                          contexts: ContextTrajectories | None = None) -> AdaptiveMrtPower:
    """Power, type I error, coverage, probabilities and regret of an adaptive-policy MRT.

    Called by :func:`trialkit.mrt.planning.simulate_mrt_power` for a design with a ``[policy]``
    (``inputs``: :func:`~trialkit.mrt.planning.design_inputs` of the policy's outcome).

    Every replicate runs the design's ``[policy]`` online (see the module docstring) and is
    analysed for the marginal excursion effect of the policy's outcome with the standard and the
    adaptive sandwich. With ``null`` the same replicates (same seeds) are also simulated with
    every effect zero, for the type I error. Replicate ``i`` is seeded from ``(seed, i)``, so the
    result does not depend on ``jobs``. ``contexts`` (:func:`trialkit.mrt.contexts.
    context_trajectories`): simulated participants take the context trajectories of
    participants of that table, drawn with replacement, instead of the declared distributions.
    """
    if design.policy is None:
        raise TrialkitError(f"{design.source.path}: the design has no [policy] — use "
                            "simulate_mrt_power for a fixed-probability MRT")
    q = 1 + len(design.policy.context)
    if not isinstance(n_participants, int) or n_participants <= q + 2:
        raise TrialkitError(f"n_participants = {n_participants!r} is too small for the marginal "
                            f"effect and {q} control terms — use more than {q + 2}",
                            param="n_participants")
    if not 0 <= icc < 1 or not -1 < ar1 < 1:
        raise TrialkitError(f"icc = {icc!r} must be in [0, 1) and ar1 = {ar1!r} in (−1, 1)",
                            param="icc" if not 0 <= icc < 1 else "ar1")
    out, truth = _run(design, inputs, n_participants, reps, seed, jobs, icc, ar1, False, contexts)
    main = _rates(out, truth, design.alpha)
    coverage: dict[str, Any] = {"level": 1 - design.alpha,
                                "adaptive": main.get("cover_adaptive"),
                                "standard": main.get("cover_standard")}
    extra: dict[str, Any] = {}
    if null:
        out0, _ = _run(design, inputs, n_participants, reps, seed, jobs, icc, ar1, True, contexts)
        zero = _rates(out0, 0.0, design.alpha)
        coverage.update(null_adaptive=zero["cover_adaptive"], null_standard=zero["cover_standard"])
        extra = {"type_i_error": zero["reject_adaptive"],
                 "type_i_error_standard": zero["reject_standard"],
                 "type_i_mc_se": math.sqrt(design.alpha * (1 - design.alpha) / reps)}
    power = main["reject_adaptive"]
    spec = design.policy
    out_type = next(o.type for o in design.outcomes if o.name == spec.outcome)
    return AdaptiveMrtPower(
        power=power, mc_se=math.sqrt(power * (1 - power) / reps),
        power_standard=main["reject_standard"], **extra, effect=truth,
        mean_estimate=float(np.nanmean(out["estimate"])), coverage=coverage,
        probability=_probability_report(out),
        regret={"per_decision": float(np.mean(out["regret"])),
                "against": "best fixed probability in [p_min, p_max]"},
        design=design.name, outcome=spec.outcome, outcome_type=out_type,
        method=("simulation: adaptive policy, "
                + ("EMEE" if out_type == "binary" else "WCLS")
                + ", adaptive sandwich (Zhang, Janson & Murphy 2023)"),
        n_participants=n_participants, decision_points=design.schedule.n_decision_points,
        alpha=design.alpha, numerator_prob=float(design.probability[0]),
        policy=spec.summary(), df=n_participants - 1 - q, reps=reps, seed=seed,
        contexts=None if contexts is None else contexts.summary())
