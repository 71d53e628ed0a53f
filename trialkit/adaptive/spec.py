"""A trial specification: one design file plus one scenario, as numpy arrays ready to simulate."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from trialkit.adaptive.allocation import sqrt_control_probability
from trialkit.constants import POSTERIOR_METHODS
from trialkit.errors import TrialkitError


@dataclass(frozen=True)
class TrialSpec:
    """Everything the simulator needs, with per-look thresholds expanded.

    Build it with :func:`setup_trial`; ``with_thresholds`` gives a copy with other superiority and
    inferiority thresholds (used by calibration).
    """

    design_name: str
    design_sha256: str
    design_text: str
    scenario: str
    arms: tuple[str, ...]
    binary: bool
    true_values: tuple[float, ...]
    sds: tuple[float, ...]
    trend: float
    prior: tuple[float, float]
    highest_is_best: bool
    control: int  # -1 = no common control
    data_looks: tuple[int, ...]
    randomised_at_looks: tuple[int, ...]
    superiority: tuple[float, ...]
    inferiority: tuple[float, ...]
    equivalence_prob: tuple[float, ...] | None
    equivalence_diff: float | None
    equivalence_only_first: bool
    futility_prob: tuple[float, ...] | None
    futility_diff: float | None
    futility_only_first: bool
    start_probs: tuple[float, ...]
    fixed_probs: tuple[float, ...]
    min_probs: tuple[float, ...]
    max_probs: tuple[float, ...]
    softening: tuple[float, ...]
    control_allocation: str
    control_probability: float | None
    rescale: str
    draws: int
    selection: str
    method: str = "exact"
    preferences: tuple[str, ...] = ()

    @property
    def n_arms(self) -> int:
        """Number of arms."""
        return len(self.arms)

    @property
    def n_looks(self) -> int:
        """Number of planned adaptive analyses."""
        return len(self.data_looks)

    @property
    def max_n(self) -> int:
        """Patients randomised at the last possible look."""
        return self.randomised_at_looks[-1]

    def with_thresholds(self, superiority: float, inferiority: float) -> TrialSpec:
        """Copy with constant superiority/inferiority thresholds at every look."""
        if not 0 <= inferiority < superiority <= 1:
            raise TrialkitError(f"thresholds superiority {superiority} / inferiority "
                                f"{inferiority} are invalid — use 0 <= inferiority < "
                                "superiority <= 1")
        return replace(self, superiority=(float(superiority),) * self.n_looks,
                       inferiority=(float(inferiority),) * self.n_looks)

    def describe(self) -> dict:
        """Return the specification as plain values (stored with results; no design text)."""
        d = asdict(self)
        d.pop("design_text")
        return {k: ([None if isinstance(v, float) and math.isnan(v) else v for v in val]
                    if isinstance(val, tuple) else val) for k, val in d.items()}

    def control_fixed_for(self, n_active: int) -> float | None:
        """Return the control arm's fixed allocation probability with ``n_active`` arms left."""
        if self.control_allocation == "fixed":
            return self.control_probability
        if self.control_allocation == "sqrt-based":
            return sqrt_control_probability(n_active)
        return None


def _adaptive_scenario(design, scenario: str | None):
    """Return the adaptive design (loaded from a path if need be) and the scenario's name."""
    from trialkit.design import load_design

    if not hasattr(design, "kind"):
        design = load_design(design)
    if design.kind != "adaptive":
        raise TrialkitError(f"design '{design.name}' is of kind {design.kind!r} — give a design "
                            "of kind 'adaptive'", param="design")
    if not design.scenarios:
        raise TrialkitError(f"{design.source.path}: no [scenarios.NAME] table — add one with the "
                            "true values per arm")
    if scenario is None:
        scenario = next(iter(design.scenarios))
    if scenario not in design.scenarios:
        raise TrialkitError(f"scenario {scenario!r} is not in {design.source.path} — use one "
                            f"of: {', '.join(design.scenarios)}", param="scenario")
    return design, scenario


def setup_trial(design, scenario: str | None = None, method: str | None = None) -> TrialSpec:
    """Combine an adaptive design with one of its scenarios.

    Parameters
    ----------
    design : AdaptiveDesign or path
        The design (or the path of its file).
    scenario : str, optional
        Name of a ``[scenarios.NAME]`` table; default the first one in the file.
    method : {"draws", "exact"}, optional
        How posterior probabilities are computed (default: the design's ``posterior.method``).
    """
    design, scenario = _adaptive_scenario(design, scenario)
    if method is not None and method not in POSTERIOR_METHODS:
        raise TrialkitError(f"method {method!r} is unknown — use 'draws' or 'exact'",
                            param="method")
    sc = design.scenarios[scenario]
    names = design.arm_names
    control = names.index(design.control) if design.control else -1
    al, st, n_arms = design.allocation, design.stopping, len(names)
    bad = [(i, v) for i, v in enumerate(st.inferiority) if v >= 1 / n_arms and control < 0]
    if bad:
        raise TrialkitError(f"{design.source.path}: key 'stopping.inferiority' = {bad[0][1]} at "
                            f"look {bad[0][0] + 1} is not below 1/{n_arms} arms — lower it")
    return TrialSpec(
        design_name=design.name,
        design_sha256=design.source.sha256,
        design_text=design.source.text,
        scenario=scenario,
        arms=names,
        binary=design.outcome.type == "binary",
        true_values=sc.values,
        sds=sc.sds if sc.sds is not None else (0.0,) * n_arms,
        trend=sc.trend,
        prior=design.outcome.prior,
        highest_is_best=design.outcome.highest_is_best,
        control=control,
        data_looks=design.looks.data,
        randomised_at_looks=design.looks.randomised,
        superiority=st.superiority,
        inferiority=st.inferiority,
        equivalence_prob=st.equivalence_prob,
        equivalence_diff=st.equivalence_diff,
        equivalence_only_first=st.equivalence_only_first,
        futility_prob=st.futility_prob,
        futility_diff=st.futility_diff,
        futility_only_first=st.futility_only_first,
        start_probs=tuple(a.start_probability for a in design.arms),
        fixed_probs=al.fixed_probs,
        min_probs=al.min_probs,
        max_probs=al.max_probs,
        softening=al.softening,
        control_allocation=al.control,
        control_probability=al.control_probability,
        rescale=al.rescale,
        draws=design.posterior.draws,
        selection=design.posterior.selection,
        method=method or design.posterior.method,
        preferences=design.posterior.preferences,
    )
