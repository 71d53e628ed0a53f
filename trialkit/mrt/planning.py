"""Planning an MRT from its design file: formula power and sample size, simulation power."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from trialkit.engine import memory_batch, replicate_rngs, run_replicates
from trialkit.errors import TrialkitError
from trialkit.mrt import samplesize as ss
from trialkit.mrt.checks import check_probabilities, check_sample_size, warn
from trialkit.mrt.estimators import emee_batch, wcls_batch
from trialkit.mrt.generate import generate_arrays
from trialkit.mrt.inference import hotelling_pvalue
from trialkit.mrt.trajectory import (
    expand_days,
    trajectory_basis,
    trajectory_by_day,
    trajectory_values,
)
from trialkit.results import Result, omit_none

if TYPE_CHECKING:
    from trialkit.mrt.adaptive import AdaptiveMrtPower

#: Replicates analysed together (at most); the engine cuts batches at multiples of the batch size,
#: so every replicate is computed in the same batch whatever the number of jobs.
BATCH = 25
#: Participant × decision-point cells held per batch (about 200 bytes each while fitting).
BATCH_CELLS = 1_000_000


def batch_size(n_participants: int, n_decision_points: int) -> int:
    """Replicates per batch: ``BATCH``, fewer for large trials so a batch stays near 200 MB.

    It depends only on the trial's size, never on ``--jobs``, so results stay identical.
    """
    return memory_batch(n_participants * n_decision_points, BATCH_CELLS, BATCH)


def _traj(t, days: int, dpd: int) -> np.ndarray:
    return expand_days(trajectory_by_day(t.shape, t.mean, days, t.initial, t.extremum_day), dpd)


def design_outcome(design, outcome: str | None = None):
    """Return the design's outcome called ``outcome`` (the first listed when ``None``)."""
    names = [o.name for o in design.outcomes]
    if outcome is None:
        return design.primary_outcome
    if outcome in names:
        return design.outcomes[names.index(outcome)]
    raise TrialkitError(f"outcome {outcome!r} is not in the design — use one of: "
                        + ", ".join(names), param="outcome")


def _check_curves(design, out, tau, effect, baseline, basis, dpd) -> None:
    """Refuse availability outside [0, 1], success probabilities outside (0, 1), a bad basis."""
    where = design.source.path
    if np.any(tau < 0) or np.any(tau > 1):
        day = int(np.argmax((tau < 0) | (tau > 1)) // dpd) + 1
        raise TrialkitError(f"{where}: the availability trajectory leaves [0, 1] on "
                            f"day {day} — change its initial value or extremum day")
    if np.linalg.matrix_rank(basis) < basis.shape[1]:
        raise TrialkitError(f"{where}: the effect basis of outcome {out.name!r} has linearly "
                            "dependent terms over the schedule — drop a term")
    if baseline is None:
        return
    if np.any(baseline <= 0) or np.any(baseline >= 1):
        raise TrialkitError(f"{where}: the baseline success curve of outcome "
                            f"{out.name!r} leaves (0, 1) — change its initial value or extremum "
                            "day (or its coefficients)")
    if np.any(baseline * np.exp(effect) >= 1):
        day = int(np.argmax(baseline * np.exp(effect) >= 1) // dpd) + 1
        raise TrialkitError(f"{where}: baseline × exp(effect) of outcome "
                            f"{out.name!r} reaches 1 on day {day} — the success probability "
                            "under treatment must stay below 1; lower the effect or the baseline")


def design_inputs(design, outcome: str | None = None) -> dict:
    """Per-decision-point inputs of the formulas for one outcome of an ``mrt`` design.

    ``basis`` is the effect's basis (Z_t, f_t) with p columns; ``control_basis`` the baseline's
    basis g_t when the baseline is given over a basis (else ``None``), and q its number of
    columns unless ``analysis.controls`` says otherwise.
    """
    out = design_outcome(design, outcome)
    days, dpd = design.schedule.days, design.schedule.decisions_per_day
    n_points = days * dpd
    prob = np.array([design.probability_at(t) for t in range(1, n_points + 1)])
    tau = _traj(design.availability, days, dpd)
    effect = trajectory_values(out.effect, days, dpd)
    basis = trajectory_basis(out.effect, days, dpd)
    baseline = control_basis = None
    if out.baseline is not None:
        baseline = trajectory_values(out.baseline, days, dpd, log_scale=True)
        if out.baseline.shape == "basis":
            control_basis = trajectory_basis(out.baseline, days, dpd)
    _check_curves(design, out, tau, effect, baseline, basis, dpd)
    p = basis.shape[1]
    q = design.controls if design.controls is not None else (
        control_basis.shape[1] if control_basis is not None else p)
    return {"outcome": out.name, "type": out.type, "days": days, "decisions_per_day": dpd,
            "probability": prob, "availability": tau, "effect": effect, "baseline": baseline,
            "basis": basis, "control_basis": control_basis,
            "effect_by_basis": out.effect.shape == "basis", "p": p, "q": q,
            "alpha": design.alpha, "power": design.power}


def _formula_power(inp: dict, n: float) -> float:
    if inp["type"] == "continuous":
        return ss.continuous_power(n, inp["effect"], inp["availability"], inp["probability"],
                                   inp["basis"], inp["q"], inp["alpha"])
    return _binary(inp, lambda *args: ss._f_power(n * args[0], inp["p"], n - inp["p"] - inp["q"],
                                                  inp["alpha"]), n=n)


def _binary(inp: dict, then, n: float | None = None):
    p, q = inp["p"], inp["q"]
    if p > q:
        warn(f"the effect trajectory has {p} terms but only {q} control terms: the log relative "
             "risk should lie in the span of the controls — set analysis.controls ≥ " + str(p))
    ss._check_common(inp["probability"], inp["availability"], inp["alpha"])
    if n is not None and n <= p + q:
        raise TrialkitError(f"{n} participants leave no degrees of freedom for p = {p} and q = "
                            f"{q} — use more than {p + q}")
    m, sigma = ss.binary_m_sigma(inp["basis"], inp["effect"], inp["baseline"],
                                 inp["availability"], inp["probability"])
    beta = np.linalg.lstsq(inp["basis"], inp["effect"], rcond=None)[0]
    return then(ss.binary_noncentrality(beta, m, sigma))


@dataclass(frozen=True)
class MrtPower(Result):
    """Power of an MRT design; ``mc_se`` (its Monte Carlo SE) when simulated.

    The settings it was computed with follow: design and outcome, method, number of
    participants, α, the randomisation probability, availability and effect (summaries over the
    decision points), p effect and q control terms with df = n − p − q, and for a simulation the
    replicates and seed.
    """

    power: float
    mc_se: float | None = omit_none()
    design: str | None = omit_none()
    outcome: str | None = omit_none()
    outcome_type: str | None = omit_none()
    method: str | None = omit_none()
    n_participants: int | None = omit_none()
    alpha: float | None = omit_none()
    decision_points: int | None = omit_none()
    probability: Any = omit_none()
    availability: dict[str, Any] | None = omit_none()
    effect: dict[str, Any] | None = omit_none()
    baseline: dict[str, Any] | None = omit_none()
    p: int | None = omit_none()
    q: int | None = omit_none()
    df: int | None = omit_none()
    reps: int | None = omit_none()
    seed: int | None = omit_none()


def _summary(values: np.ndarray, **extra: Any) -> dict[str, Any]:
    """Mean, smallest and largest value over the decision points (and ``extra`` first)."""
    return {**extra, "mean": float(np.mean(values)), "min": float(np.min(values)),
            "max": float(np.max(values))}


def _trajectory_label(traj) -> str:
    return f"basis ({', '.join(traj.basis)})" if traj.shape == "basis" else traj.shape


def power_settings(design, inputs: dict, n_participants: int) -> dict[str, Any]:
    """Return what a power calculation of ``design`` used, as :class:`MrtPower` fields."""
    out = design_outcome(design, inputs["outcome"])
    p, q = inputs["p"], inputs["q"]
    prob = design.probability[0] if design.probability_by == "constant" else _summary(
        inputs["probability"], by=design.probability_by)
    scale = "log relative risk" if out.type == "binary" else "standardised"
    return dict(
        design=design.name, outcome=out.name, outcome_type=out.type,
        n_participants=int(n_participants), alpha=inputs["alpha"],
        decision_points=int(inputs["probability"].size), probability=prob,
        availability=_summary(inputs["availability"], shape=design.availability.shape),
        effect=_summary(inputs["effect"], shape=_trajectory_label(out.effect), scale=scale),
        baseline=None if out.baseline is None else _summary(
            inputs["baseline"], shape=_trajectory_label(out.baseline)),
        p=p, q=q, df=int(n_participants) - p - q)


@dataclass(frozen=True)
class MrtSampleSize(Result):
    """Participants needed: ``n_exact`` solves power(n) = target, ``n_participants`` rounds up."""

    n_participants: int
    n_exact: float
    power: float


def mrt_power(design, n_participants: int, outcome: str | None = None) -> MrtPower:
    """Return formula power of an ``mrt`` design with ``n_participants``.

    Continuous outcomes use Liao et al. (2016), binary outcomes Cohn, Qian & Murphy (2023).
    """
    inp = design_inputs(design, outcome)
    check_sample_size(n_participants, inp["p"] + inp["q"])
    if getattr(design, "policy", None) is not None:
        warn(f"the design's policy learns its probabilities; the formula assumes the planning "
             f"probability {design.probability[0]:g} throughout — simulate the policy for its "
             "power and coverage")
    method = ("formula: Cohn, Qian & Murphy (2023)" if inp["type"] == "binary"
              else "formula: Liao et al. (2016)")
    return MrtPower(_formula_power(inp, n_participants), method=method,
                    **power_settings(design, inp, n_participants))


def mrt_sample_size(design, power: float | None = None,
                    outcome: str | None = None) -> MrtSampleSize:
    """Participants needed (``n_participants``, ``n_exact``, ``power``).

    ``n_exact`` is the real-valued solution of power(n) = target; ``n_participants`` rounds it up
    and ``power`` is the power attained with that many participants.
    """
    inp = design_inputs(design, outcome)
    target = inp["power"] if power is None else power
    if inp["type"] == "continuous":
        return MrtSampleSize(**ss.continuous_sample_size(
            inp["effect"], inp["availability"], inp["probability"], inp["basis"], inp["q"],
            inp["alpha"], target))
    ss._check_target(target, inp["alpha"])
    p, q, alpha = inp["p"], inp["q"], inp["alpha"]

    def solve(per: float) -> dict:
        if not per > 0:
            raise TrialkitError("the log relative risk is zero — no number of participants gives "
                                "power; give a non-zero effect")

        def power_at(n: float) -> float:
            return ss._f_power(n * per, p, n - p - q, alpha)

        n_exact = ss._solve_n(power_at, target, p + q)
        n_int = max(math.ceil(n_exact - 1e-9), p + q + 1)
        check_sample_size(n_exact, p + q)
        return {"n_participants": n_int, "n_exact": n_exact, "power": power_at(n_int)}

    return MrtSampleSize(**_binary(inp, solve))


# -- simulation power with the real estimator ------------------------------------------------------
def _scaled(basis: np.ndarray) -> np.ndarray:
    """Columns divided by their largest absolute value (same span, better conditioned)."""
    return basis / np.abs(basis).max(axis=0)


def _analysis_bases(inputs: dict) -> tuple[np.ndarray, np.ndarray]:
    """Return the controls and moderators of the simulated analysis, a row per decision point.

    Polynomials ``1, s, s², …`` in the scaled day s (q controls, p moderators), or — when the
    design gives the effect or the baseline over a basis — that basis (columns scaled).
    """
    days, dpd, p, q = inputs["days"], inputs["decisions_per_day"], inputs["p"], inputs["q"]
    s = np.repeat(np.arange(days, dtype=float), dpd) / max(days - 1, 1)
    controls = np.column_stack([s ** j for j in range(q)])
    moderators = np.column_stack([s ** j for j in range(p)])
    if inputs.get("effect_by_basis"):
        moderators = _scaled(inputs["basis"])
    if inputs.get("control_basis") is not None and inputs["control_basis"].shape[1] == q:
        controls = _scaled(inputs["control_basis"])
    return controls, moderators


def power_replicates(reps: range, *, seed: int, n_participants: int, inputs: dict, ar1: float,
                     icc: float, small, lag_control: bool = False) -> dict:
    """Replicate generator: simulate and analyse replicates ``reps`` (one batch).

    Returns p-values, estimates and convergence, one row per replicate.
    """
    controls, moderators = _analysis_bases(inputs)
    fit = emee_batch if inputs["type"] == "binary" else wcls_batch
    prob = inputs["probability"]
    data = generate_arrays(replicate_rngs(seed, reps.start, reps.stop), n_participants, prob,
                           inputs["availability"], inputs["effect"], inputs["type"],
                           inputs["baseline"], icc, ar1)
    ctl = controls
    if lag_control:  # the previous decision point's outcome as an extra control
        lag = np.concatenate([np.zeros_like(data["y"][..., :1]), data["y"][..., :-1]], axis=-1)
        ctl = np.concatenate([np.broadcast_to(controls, (*lag.shape, controls.shape[1])),
                              lag[..., None]], axis=-1)
    res = fit(data["y"], data["a"], prob, data["avail"], prob, ctl, moderators, small)
    return {"p_value": hotelling_pvalue(res.effect, res.effect_cov, res.df), "coef": res.coef,
            "converged": res.converged}


def simulate_power_arrays(inputs: dict, n_participants: int, reps: int, seed: int, jobs: int = 1,
                          ar1: float = 0.0, icc: float = 0.0, small="auto",
                          lag_control: bool = False) -> dict:
    """Return simulation power from per-decision-point inputs (see :func:`design_inputs`).

    Returns ``{"power", "mc_se", "p_value", "coef", "converged"}``: every replicate is generated
    from its own seed ``(seed, i)``, analysed with WCLS (continuous) or EMEE (binary) and tested
    with the Hotelling test of all effect coefficients at level ``alpha``. ``lag_control`` adds
    the previous decision point's outcome to the controls (continuous outcomes).
    """
    p, q = inputs["p"], inputs["q"] + int(lag_control)
    if lag_control and inputs["type"] != "continuous":
        raise TrialkitError("controlling for the previous outcome is available for continuous "
                            "outcomes only — drop it for a binary outcome")
    if not isinstance(n_participants, int) or n_participants <= p + q + 1:
        raise TrialkitError(f"n_participants = {n_participants!r} is too small for p = {p} "
                            f"effect and q = {q} control terms — use more than {p + q + 1}",
                            param="n_participants")
    check_probabilities(inputs["probability"])
    if not isinstance(jobs, int) or jobs < 1:
        raise TrialkitError(f"jobs = {jobs!r} is invalid — use a whole number of at least 1",
                            param="jobs")
    batch = batch_size(n_participants, inputs["days"] * inputs["decisions_per_day"])
    out = run_replicates(power_replicates, reps, jobs=jobs, batch=batch, seed=seed,
                         n_participants=n_participants, inputs=inputs, ar1=ar1, icc=icc,
                         small=small, lag_control=lag_control, progress="simulating trials")
    failed = int((~(out["converged"] & np.isfinite(out["p_value"]))).sum())
    if failed:
        warn(f"the estimator did not converge (or its variance could not be computed) in "
             f"{failed} of {reps} replicates; they count as non-rejections — use more "
             "participants or a less extreme baseline")
    reject = np.where(np.isfinite(out["p_value"]), out["p_value"] < inputs["alpha"], False)
    power = float(reject.mean())
    return {"power": power, "mc_se": math.sqrt(power * (1 - power) / reps), **out}


def _simulate_adaptive(design, n_participants, reps, seed, jobs, outcome, ar1, icc, small,
                       lag_control, contexts):
    from trialkit.mrt.adaptive import simulate_adaptive_mrt
    from trialkit.mrt.contexts import ContextTrajectories, context_trajectories

    spec = design.policy
    if outcome is not None and outcome != spec.outcome:
        raise TrialkitError(f"outcome {outcome!r} is not the one the policy learns from — an "
                            f"adaptive MRT is simulated for the policy's outcome "
                            f"{spec.outcome!r}", param="outcome")
    if lag_control or small not in ("auto", False):
        raise TrialkitError("an adaptive MRT is analysed with controls (1, context) and no "
                            "leverage adjustment — leave the previous-outcome control and the "
                            "small-sample setting at their defaults")
    if contexts is not None and not isinstance(contexts, ContextTrajectories):
        contexts = context_trajectories(design, contexts)
    return simulate_adaptive_mrt(design, design_inputs(design, spec.outcome), n_participants,
                                 reps=reps, seed=seed, jobs=jobs, icc=icc, ar1=ar1,
                                 contexts=contexts)


def simulate_mrt_power(design, n_participants: int, reps: int = 1000, seed: int = 0,
                       jobs: int = 1, outcome: str | None = None, ar1: float = 0.0,
                       icc: float = 0.0, small="auto",
                       lag_control: bool = False, contexts=None) -> MrtPower | AdaptiveMrtPower:
    """Power of an ``mrt`` design by simulation with the real estimator: ``{"power", "mc_se"}``.

    Data follow :func:`trialkit.mrt.generate.generate_arrays` (availability, effect and baseline
    from the design's trajectories; optional between-person share ``icc`` and AR(1) coefficient
    ``ar1`` of the residuals); each replicate is analysed with WCLS (continuous outcome) or EMEE
    (binary outcome) with the numerator probability equal to the design's probability, controls
    ``1, s, …, s^(q−1)`` and moderators ``1, …, s^(p−1)`` in the scaled day ``s``, and the p effect
    coefficients are tested jointly (Hotelling, df n − p − q). ``lag_control`` adds the previous
    decision point's outcome to the controls. Replicate ``i`` is seeded from
    ``(seed, i)``, so the result does not depend on ``jobs``.

    A design with a ``[policy]`` (an adaptive MRT) is simulated by
    :func:`trialkit.mrt.adaptive.simulate_adaptive_mrt` — the policy run online; power, type I
    error, coverage, probabilities and regret — and returns its
    :class:`~trialkit.mrt.adaptive.AdaptiveMrtPower`. Its simulated participants may take
    ``contexts``, a table of context trajectories (a DataFrame checked by
    :func:`trialkit.mrt.contexts.context_trajectories`), instead of the declared distributions.
    """
    if getattr(design, "policy", None) is not None:
        return _simulate_adaptive(design, n_participants, reps, seed, jobs, outcome, ar1, icc,
                                  small, lag_control, contexts)
    if contexts is not None:
        raise TrialkitError("context trajectories are read by a learning policy, and this MRT "
                            "has fixed probabilities — leave them out, or add a [policy]",
                            param="contexts")
    inputs = design_inputs(design, outcome)
    res = simulate_power_arrays(inputs, n_participants, reps, seed, jobs, ar1, icc, small,
                                lag_control)
    method = f"simulation: {'EMEE' if inputs['type'] == 'binary' else 'WCLS'}"
    method += (f", AR(1) {ar1:g}" if ar1 else "") + (f", ICC {icc:g}" if icc else "")
    method += ", previous outcome as control" if lag_control else ""
    settings = power_settings(design, inputs, n_participants)
    settings["q"] += int(lag_control)
    settings["df"] -= int(lag_control)
    return MrtPower(res["power"], res["mc_se"], method=method, reps=reps, seed=seed, **settings)
