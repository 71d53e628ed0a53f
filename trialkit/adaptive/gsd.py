"""Group-sequential boundaries for a confirmatory two-arm comparison (one-sided).

Efficacy boundaries of O'Brien–Fleming (``OF``) and Pocock (``P``) type, and Lan–DeMets
alpha-spending versions of both (``asOF``, ``asP``), at K looks with given information fractions.
Crossing probabilities are computed by recursive numerical integration of the joint distribution
of the standardised statistics Z_1..Z_K (Armitage, McPherson & Rowe 1969; Jennison & Turnbull
2000, ch. 19), with Simpson's rule on a fine grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trialkit.errors import TrialkitError
from trialkit.results import Result, omit_none

TYPES = ("OF", "P", "asOF", "asP")
_LOWER = -12.0
_POINTS = 601  # odd, for Simpson's rule (critical values accurate to ~1e-8)


def _simpson_weights(n: int, h: float) -> np.ndarray:
    w = np.ones(n)
    w[1:-1:2] = 4
    w[2:-1:2] = 2
    return w * h / 3


def _crossing(bounds: np.ndarray, info: np.ndarray, drift: float = 0.0) -> np.ndarray:
    """P(first crossing of the upper bound at look k) for k = 1..K.

    ``info`` are information fractions; ``drift`` is the mean of Z at full information
    (theta * sqrt(I_max)); the mean of Z_k is ``drift * sqrt(info_k)``.
    """
    from scipy import special  # imported here: it costs start-up time elsewhere
    k_max = bounds.size
    out = np.zeros(k_max)
    sq = np.sqrt(info)
    mu = drift * sq
    out[0] = special.ndtr(mu[0] - bounds[0])
    if k_max == 1:
        return out
    z = np.linspace(min(_LOWER + mu[0], bounds[0] - 1), bounds[0], _POINTS)
    dens = (np.exp(-0.5 * (z - mu[0]) ** 2) / math.sqrt(2 * math.pi)
            * _simpson_weights(_POINTS, z[1] - z[0]))
    for k in range(1, k_max):
        d_info = info[k] - info[k - 1]
        sd = math.sqrt(d_info)
        # Z_k sqrt(I_k) = Z_{k-1} sqrt(I_{k-1}) + N(drift * dI, dI) on the fraction scale
        shift = z * sq[k - 1] + drift * d_info
        out[k] = dens @ special.ndtr(-(bounds[k] * sq[k] - shift) / sd)
        if k == k_max - 1:
            break
        znew = np.linspace(min(_LOWER + mu[k], bounds[k] - 1), bounds[k], _POINTS)
        u = (znew[:, None] * sq[k] - shift[None, :]) / sd
        kern = np.exp(-0.5 * u * u) * (sq[k] / (sd * math.sqrt(2 * math.pi)))
        dens = (kern @ dens) * _simpson_weights(_POINTS, znew[1] - znew[0])
        z = znew
    return out


def spending(kind: str, t: np.ndarray, alpha: float) -> np.ndarray:
    """Cumulative alpha spent at information fractions ``t`` (Lan–DeMets functions)."""
    from scipy import special  # imported here: it costs start-up time elsewhere
    t = np.asarray(t, dtype=float)
    if kind == "asOF":
        return 2 * special.ndtr(special.ndtri(alpha / 2) / np.sqrt(t))
    if kind == "asP":
        return alpha * np.log(1 + (math.e - 1) * t)
    raise TrialkitError(f"spending type {kind!r} is unknown — use asOF or asP")


def _check(looks: int, alpha: float, kind: str, info: np.ndarray) -> None:
    if kind not in TYPES:
        raise TrialkitError(f"type {kind!r} is unknown — use one of: {', '.join(TYPES)}",
                            param="kind")
    if not isinstance(looks, int) or looks < 1 or looks > 20:
        raise TrialkitError(f"looks = {looks!r} is invalid — use a whole number from 1 to 20",
                            param="looks")
    if not 0 < alpha < 0.5:
        raise TrialkitError(f"alpha = {alpha} is invalid — use a one-sided level in (0, 0.5)",
                            param="alpha")
    if not np.all(np.isfinite(info)):
        raise TrialkitError("the information fractions contain a value that is not a finite "
                            "number — give increasing fractions ending at 1, e.g. "
                            "'0.5,0.75,1'", param="info_fractions")
    if info.size != looks:
        raise TrialkitError(f"the information fractions are {info.size} values for {looks} looks "
                            f"— give exactly {looks} values", param="info_fractions")
    if np.any(np.diff(info) <= 0) or info[0] <= 0 or abs(info[-1] - 1) > 1e-12:
        raise TrialkitError("the information fractions are not strictly increasing from above 0 "
                            "to 1 — give increasing fractions ending at 1",
                            param="info_fractions")


def gsd_boundaries(
    looks: int,
    alpha: float = 0.025,
    kind: str = "OF",
    info_fractions=None,
    effect: float | None = None,
    power: float | None = None,
) -> GsdBoundaries:
    """Critical values of a one-sided group-sequential design.

    Parameters
    ----------
    looks : int
        Number of analyses K.
    alpha : float
        One-sided significance level.
    kind : {"OF", "P", "asOF", "asP"}
        O'Brien–Fleming, Pocock, or Lan–DeMets spending of OF or Pocock type.
    info_fractions : sequence of float, optional
        Information fractions (default equally spaced ``k / K``).
    effect, power : float, optional
        Standardised effect (difference in means over the SD, two arms 1:1) and power; with both,
        the maximum sample size is computed from the inflation factor.

    Returns
    -------
    GsdBoundaries
        ``critical_values``, ``alpha_spent`` (cumulative), ``nominal_p`` (one-sided),
        ``info_fractions``, ``inflation`` (maximum-information inflation factor, with power) and
        ``n`` (total maximum sample size, with effect and power), ``n_fixed``, ``n_per_look``.

    Examples
    --------
    >>> [round(c, 4) for c in gsd_boundaries(3, 0.025, "OF")["critical_values"]]
    [3.4711, 2.4544, 2.004]
    """
    from scipy import special  # imported here: it costs start-up time elsewhere
    info = (np.arange(1, looks + 1) / looks if info_fractions is None
            else np.asarray(info_fractions, dtype=float))
    _check(looks, alpha, kind, info)
    bounds = _boundaries(kind, info, alpha)
    extra: dict = {}
    if power is not None:
        extra = _power(bounds, info, alpha, power, effect)
    elif effect is not None:
        raise TrialkitError("an effect needs a power — give both to compute the sample size",
                            param=("effect", "power"))
    return GsdBoundaries(
        type=kind, looks=looks, alpha=alpha, info_fractions=info.tolist(),
        critical_values=bounds.tolist(), nominal_p=special.ndtr(-bounds).tolist(),
        alpha_spent=np.cumsum(_crossing(bounds, info)).tolist(), **extra)


@dataclass(frozen=True)
class GsdBoundaries(Result):
    """Critical values of a one-sided group-sequential design, with power and sample size."""

    type: str
    looks: int
    alpha: float
    info_fractions: list[float]
    critical_values: list[float]
    nominal_p: list[float]
    alpha_spent: list[float]
    inflation: float | None = None
    n: int | None = None
    drift: float | None = omit_none()
    power_by_look: list[float] | None = omit_none()
    n_fixed: int | None = omit_none()
    n_per_look: list[int] | None = omit_none()


def _boundaries(kind: str, info: np.ndarray, alpha: float) -> np.ndarray:
    """Critical values of the ``kind`` design at information fractions ``info``."""
    from scipy import optimize  # imported here: it costs start-up time elsewhere

    looks = info.size
    if kind in ("OF", "P"):
        shape = 1 / np.sqrt(info) if kind == "OF" else np.ones(looks)

        def excess(c: float) -> float:
            return _crossing(c * shape, info).sum() - alpha

        return optimize.brentq(excess, 0.5, 20, xtol=1e-12) * shape
    target = np.diff(np.concatenate([[0.0], spending(kind, info, alpha)]))
    bounds = np.zeros(looks)
    for k in range(looks):
        def excess_k(b: float, k: int = k) -> float:
            trial = bounds.copy()
            trial[k] = b
            return _crossing(trial[:k + 1], info[:k + 1])[k] - target[k]

        bounds[k] = optimize.brentq(excess_k, -2, 40, xtol=1e-12) if target[k] > 1e-300 \
            else 40.0
    return bounds


def _power(bounds: np.ndarray, info: np.ndarray, alpha: float, power: float,
           effect: float | None) -> dict:
    """Drift, inflation factor and power by look; with ``effect`` also the sample sizes."""
    from scipy import optimize, special
    if not (0 < power < 1) or power <= alpha:
        raise TrialkitError(f"power = {power} is invalid — use a number between alpha and 1",
                            param="power")
    z_sum = -special.ndtri(alpha) - special.ndtri(1 - power)

    def short(drift: float) -> float:
        return _crossing(bounds, info, drift).sum() - power

    drift = optimize.brentq(short, 0.0, 20.0, xtol=1e-12)
    out = {"drift": drift, "inflation": (drift / z_sum) ** 2,
           "power_by_look": np.cumsum(_crossing(bounds, info, drift)).tolist()}
    if effect is None:
        return out
    if not (math.isfinite(effect) and effect > 0):
        raise TrialkitError(f"effect = {effect} is invalid — use a finite standardised "
                            "effect above 0", param="effect")
    n_fixed = 4 * z_sum**2 / effect**2 if effect > 1e-100 else math.inf
    if not math.isfinite(n_fixed * out["inflation"]) or n_fixed > 1e15:
        raise TrialkitError(f"effect = {effect} is too small for a sample size — give a "
                            "standardised effect such as 0.2", param="effect")
    n_max = out["inflation"] * n_fixed
    out["n_fixed"] = math.ceil(n_fixed - 1e-9)
    out["n"] = math.ceil(n_max - 1e-9)
    out["n_per_look"] = [math.ceil(n_max * f - 1e-9) for f in info]
    return out
