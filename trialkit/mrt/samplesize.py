"""MRT sample size and power by formula.

* Continuous proximal outcomes: Liao, Klasnja, Tewari & Murphy (2016), Stat Med 35:1944 — the
  Hotelling-type test of the ``p`` coefficients of the treatment-effect trajectory, with a
  noncentral F(p, N − p − q) reference, noncentrality ``N d'Σ d`` where
  ``Σ = Σ_t τ_t p_t(1 − p_t) Z_t Z_t'`` and ``d`` is the availability-weighted projection of
  the standardised effect on ``Z_t``.
* Binary proximal outcomes: Cohn, Qian & Murphy (2023), Stat Med — the log relative risk
  ``f_t'β`` with the success curve without treatment ``exp(g_t'α)``; ``M`` and ``Σ`` of the EMEE
  sandwich and noncentrality ``n β'(M⁻¹ Σ M⁻¹)⁻¹β`` with an F(p, n − p − q) reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import optimize, stats

from trialkit.errors import TrialkitError
from trialkit.mrt.checks import check_probabilities, check_sample_size, warn

N_MAX = 1_000_000


def _f_power(ncp: float, df1: int, df2: float, alpha: float) -> float:
    """P(F > F_{1−α}(df1, df2)) under a noncentral F with noncentrality ``ncp``.

    With ``ncp = 0`` this is ``alpha`` (scipy's ``ncf.sf`` returns ``−(1 − alpha)`` there).
    """
    crit = stats.f.ppf(1.0 - alpha, df1, df2)
    if not ncp > 0:
        return float(stats.f.sf(crit, df1, df2))
    return float(stats.ncf.sf(crit, df1, df2, ncp))


def _per_point(value, n_points: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n_points, float(arr))
    if arr.shape != (n_points,):
        raise TrialkitError(f"{name} has {arr.size} values — give one value or one per decision "
                            f"point ({n_points})")
    if not np.all(np.isfinite(arr)):
        raise TrialkitError(f"{name} contains a non-finite value — give finite numbers")
    return arr


def _check_common(probability: np.ndarray, availability: np.ndarray, alpha: float) -> None:
    if np.any((probability <= 0) | (probability >= 1)):
        raise TrialkitError("a randomisation probability is outside (0, 1) — use probabilities "
                            "strictly between 0 and 1")
    if np.any((availability < 0) | (availability > 1)) or availability.max() <= 0:
        raise TrialkitError("expected availability is outside [0, 1] (or zero everywhere) — "
                            "check the availability trajectory")
    if not 0 < alpha < 1:
        raise TrialkitError(f"significance level {alpha!r} is outside (0, 1) — use e.g. 0.05")
    check_probabilities(probability)


# -- continuous outcomes (Liao et al. 2016) ------------------------------------------------------
def continuous_noncentrality(effect, availability, probability, basis) -> float:
    """Noncentrality per participant, ``d'Σd``, of Liao et al. (2016).

    Parameters
    ----------
    effect, availability, probability : array (T,) or float
        Standardised proximal effect, expected availability and randomisation probability at each
        of the T decision points.
    basis : array (T, p)
        ``Z_t``, the basis of the effect trajectory (see
        :func:`~trialkit.mrt.trajectory.day_basis`).
    """
    z = np.asarray(basis, dtype=float)
    n_points = z.shape[0]
    beta = _per_point(effect, n_points, "effect")
    tau = _per_point(availability, n_points, "availability")
    prob = _per_point(probability, n_points, "probability")
    sigma = z.T @ (z * (tau * prob * (1 - prob))[:, None])
    d = np.linalg.solve(z.T @ (z * tau[:, None]), z.T @ (tau * beta))
    return float(d @ sigma @ d)


def continuous_power(n: float, effect, availability, probability, basis, controls: int,
                     alpha: float = 0.05) -> float:
    """Power of the Liao et al. (2016) test with ``n`` participants.

    ``controls`` is q, the number of control terms (including the intercept); the reference
    distribution is F(p, n − p − q) with noncentrality ``n d'Σd``.
    """
    z = np.asarray(basis, dtype=float)
    p = z.shape[1]
    _check_common(_per_point(probability, z.shape[0], "probability"),
                  _per_point(availability, z.shape[0], "availability"), alpha)
    if n <= p + controls:
        raise TrialkitError(f"{n} participants leave no degrees of freedom for p = {p} effect and "
                            f"q = {controls} control terms — use more than {p + controls}")
    ncp = n * continuous_noncentrality(effect, availability, probability, z)
    return _f_power(ncp, p, n - p - controls, alpha)


def _solve_n(power_at: Callable[[float], float], target: float, n_min: float) -> float:
    """Smallest (real) n > n_min with power_at(n) = target."""
    lo = n_min + 1.0  # at least one residual degree of freedom
    if power_at(N_MAX) < target:
        raise TrialkitError(f"power {target} is not reached with {N_MAX} participants — the effect "
                            "is too small (or zero); check the effect trajectory")
    if power_at(lo) >= target:
        return lo
    return float(optimize.brentq(lambda n: power_at(n) - target, lo, N_MAX, xtol=1e-10,
                                 rtol=1e-14, maxiter=500))


def _check_target(power: float, alpha: float) -> None:
    if not 0 < power < 1:
        raise TrialkitError(f"target power {power!r} is outside (0, 1) — use e.g. 0.8")
    if power <= alpha:
        raise TrialkitError(f"target power {power} is not above the significance level {alpha} — "
                            "use a power such as 0.8")


def continuous_sample_size(effect, availability, probability, basis, controls: int,
                           alpha: float = 0.05, power: float = 0.8) -> dict:
    """Return number of participants for the Liao et al. (2016) test to reach ``power``.

    Returns ``{"n_participants": ceil(n_exact), "n_exact": ..., "power": power at n_participants}``.
    """
    _check_target(power, alpha)
    z = np.asarray(basis, dtype=float)
    p = z.shape[1]
    _check_common(_per_point(probability, z.shape[0], "probability"),
                  _per_point(availability, z.shape[0], "availability"), alpha)
    per = continuous_noncentrality(effect, availability, probability, z)
    if not per > 0:
        raise TrialkitError("the proximal effect is zero — no number of participants gives power; "
                            "give a non-zero effect")

    return _sample_size(per, p, controls, alpha, power)

def _sample_size(per: float, p: int, q: int, alpha: float, power: float) -> dict:
    """Solve the noncentral-F power ``power(n)`` (noncentrality ``n · per``) for the target.

    Returns ``{"n_participants": ceil(n_exact), "n_exact": ..., "power": power at
    n_participants}``, warning when ``n_exact`` is outside a sane range.
    """

    def power_at(n: float) -> float:
        return _f_power(n * per, p, n - p - q, alpha)

    n_exact = _solve_n(power_at, power, p + q)
    n_int = max(math.ceil(n_exact - 1e-9), p + q + 1)
    check_sample_size(n_exact, p + q)
    return {"n_participants": n_int, "n_exact": n_exact, "power": power_at(n_int)}


# -- binary outcomes (Cohn, Qian & Murphy 2023) --------------------------------------------------
def binary_m_sigma(effect_basis, log_rr, baseline, availability, probability
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``M`` and ``Σ`` of Cohn, Qian & Murphy (2023) for one participant.

    Parameters
    ----------
    effect_basis : array (T, p)
        ``f_t``.
    log_rr : array (T,)
        The marginal excursion effect ``f_t'β`` (log relative risk) at each decision point.
    baseline : array (T,)
        ``exp(g_t'α)``: success probability without treatment among the available.
    availability, probability : array (T,) or float
    """
    f = np.asarray(effect_basis, dtype=float)
    n_points = f.shape[0]
    mee = _per_point(log_rr, n_points, "log relative risk")
    mu0 = _per_point(baseline, n_points, "baseline success probability")
    tau = _per_point(availability, n_points, "availability")
    prob = _per_point(probability, n_points, "probability")
    if np.any((mu0 <= 0) | (mu0 >= 1)):
        raise TrialkitError("the baseline success probability leaves (0, 1) at some decision "
                            "point — check the baseline trajectory")
    if np.any(mu0 * np.exp(mee) >= 1):
        t = int(np.argmax(mu0 * np.exp(mee) >= 1)) + 1
        raise TrialkitError(f"baseline × exp(effect) reaches 1 at decision point {t}: the success "
                            "probability under treatment must stay below 1 — lower the effect or "
                            "the baseline")
    common = tau * mu0 * prob * (1 - prob)
    wm = common * np.exp(prob * mee)
    ws = common * np.exp(2 * prob * mee) * ((1 - prob) * np.exp(-mee) + prob - mu0)
    m = f.T @ (f * wm[:, None])
    sigma = f.T @ (f * ws[:, None])
    return m, sigma


def binary_noncentrality(beta, m: np.ndarray, sigma: np.ndarray) -> float:
    """Noncentrality per participant, ``β'(M⁻¹ Σ M⁻¹)⁻¹β = β' M Σ⁻¹ M β``."""
    beta = np.asarray(beta, dtype=float)
    mb = m @ beta
    return float(mb @ np.linalg.solve(sigma, mb))


def _binary_parts(effect_basis, beta, control_basis, alpha_coef, availability, probability):
    f = np.atleast_2d(np.asarray(effect_basis, dtype=float))
    g = np.atleast_2d(np.asarray(control_basis, dtype=float))
    beta = np.atleast_1d(np.asarray(beta, dtype=float))
    alpha_coef = np.atleast_1d(np.asarray(alpha_coef, dtype=float))
    if f.shape[1] != beta.size or g.shape[1] != alpha_coef.size or f.shape[0] != g.shape[0]:
        raise TrialkitError("f_t, β, g_t and α have inconsistent dimensions — f_t is T×p with p = "
                            "len(β) and g_t is T×q with q = len(α)")
    if f.shape[1] > g.shape[1]:
        warn("the effect basis f_t has more columns than the control basis g_t: f should lie in "
             "the span of g for the formula to hold — add control terms")
    m, sigma = binary_m_sigma(f, f @ beta, np.exp(g @ alpha_coef), availability, probability)
    return f.shape[1], g.shape[1], binary_noncentrality(beta, m, sigma)


def binary_power(n: float, effect_basis, beta, control_basis, alpha_coef, availability,
                 probability, level: float = 0.05) -> float:
    """Power of the Cohn, Qian & Murphy (2023) test with ``n`` participants.

    ``effect_basis`` is f_t (T×p), ``beta`` the log relative-risk coefficients, ``control_basis``
    g_t (T×q) and ``alpha_coef`` the coefficients of the log success probability without
    treatment; ``level`` is the type I error γ.
    """
    p, q, per = _binary_parts(effect_basis, beta, control_basis, alpha_coef, availability,
                              probability)
    _check_common(np.atleast_1d(np.asarray(probability, float)),
                  np.atleast_1d(np.asarray(availability, float)), level)
    if n <= p + q:
        raise TrialkitError(f"{n} participants leave no degrees of freedom for p = {p} and q = "
                            f"{q} — use more than {p + q}")
    return _f_power(n * per, p, n - p - q, level)


def binary_sample_size(effect_basis, beta, control_basis, alpha_coef, availability, probability,
                       level: float = 0.05, power: float = 0.8) -> dict:
    """Return number of participants for the Cohn, Qian & Murphy (2023) test to reach ``power``.

    Returns ``{"n_participants": ceil(n_exact), "n_exact": ..., "power": power at n_participants}``.
    """
    _check_target(power, level)
    p, q, per = _binary_parts(effect_basis, beta, control_basis, alpha_coef, availability,
                              probability)
    _check_common(np.atleast_1d(np.asarray(probability, float)),
                  np.atleast_1d(np.asarray(availability, float)), level)
    if not per > 0:
        raise TrialkitError("the log relative risk is zero — no number of participants gives "
                            "power; give a non-zero effect")

    return _sample_size(per, p, q, level, power)
