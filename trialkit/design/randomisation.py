"""The ``[randomisation]`` section: how the live service allocates participants.

Shared by every design kind. The allocation algorithms themselves live in
:mod:`trialkit.randomise`; this module only reads and checks the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trialkit.design._reader import Section, check_unique

METHODS = ("complete", "blocks", "minimisation")


@dataclass(frozen=True)
class RandomisationSpec:
    """Settings of the live randomisation for one trial.

    Attributes
    ----------
    method : str
        ``"complete"``, ``"blocks"`` (permuted blocks, stratified when ``strata`` is given) or
        ``"minimisation"`` (Pocock–Simon). MRT designs use Bernoulli draws at decision points and
        ignore this key.
    block_sizes : tuple of int
        Block sizes drawn at random for each new block (each a multiple of the ratio total).
    ratio : tuple of int
        Allocation ratio per arm or condition (default all 1).
    strata : tuple of str
        Stratification factors whose values are given at enrolment (e.g. ``site``).
    strata_levels : dict
        Allowed values for each stratum.
    minimisation_factors : tuple of str
        Factors balanced by minimisation (each must be a stratum).
    weights : tuple of float
        Minimisation weight per factor.
    imbalance : str
        ``"range"`` or ``"variance"``.
    preferred_probability : float
        Probability of the arm minimising imbalance.
    blinded : bool
        Enrolment returns a code instead of the arm.
    """

    method: str = "blocks"
    block_sizes: tuple[int, ...] = ()
    ratio: tuple[int, ...] = ()
    strata: tuple[str, ...] = ()
    strata_levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    minimisation_factors: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    imbalance: str = "range"
    preferred_probability: float = 0.8
    blinded: bool = False


#: Settings of a fixed allocation, meaningless for response-adaptive allocation.
_FIXED_ONLY = ("ratio", "block_sizes", "minimisation_factors", "weights", "imbalance",
               "preferred_probability")


def read_randomisation(root: Section, n_groups: int, group_word: str,
                       adaptive: bool = False) -> RandomisationSpec | None:
    """Read ``[randomisation]`` for a design with ``n_groups`` arms or conditions.

    An adaptive design (``adaptive``) may also use ``method = "adaptive"``: response-adaptive
    allocation from the probabilities its interim analyses set. That is what an adaptive design
    without a ``[randomisation]`` section gets; the section's ``method`` defaults to ``blocks``.
    """
    sec = root.section("randomisation")
    if sec is None:
        return None
    methods = (*METHODS, "adaptive") if adaptive else METHODS
    method = sec.string("method", "blocks", choices=methods)
    if method == "adaptive":
        return _read_adaptive(sec, n_groups)
    ratio = sec.number_list("ratio", (1,) * n_groups, minimum=1, integer=True, length=n_groups)
    unit = sum(ratio)
    sizes = sec.number_list("block_sizes", (unit, 2 * unit), minimum=1, integer=True)
    for size in sizes:
        if size % unit:
            raise sec.error("block_sizes", size, f"is not a multiple of the ratio total {unit}",
                            f"use multiples of {unit} (the sum of the ratio over {group_word})")
    check_unique(sec, "block_sizes", [str(s) for s in sizes])
    levels = _read_strata(sec)
    strata = tuple(levels)
    factors = sec.string_list("minimisation_factors", strata if method == "minimisation" else (),
                              choices=strata)
    if method == "minimisation" and not factors:
        raise sec.error("minimisation_factors", list(factors), "is empty",
                        "name at least one stratum (define it under [randomisation.strata])")
    weights = sec.number_list("weights", (1.0,) * len(factors), minimum=0, exclusive_min=True,
                              length=len(factors)) if factors else ()
    spec = RandomisationSpec(
        method=method,
        block_sizes=tuple(sorted(sizes)),
        ratio=tuple(ratio),
        strata=strata,
        strata_levels=levels,
        minimisation_factors=tuple(factors),
        weights=tuple(weights),
        imbalance=sec.string("imbalance", "range", choices=("range", "variance")),
        preferred_probability=sec.number("preferred_probability", 0.8, 0.5, 1),
        blinded=sec.boolean("blinded", False),
    )
    sec.done()
    return spec


def _read_adaptive(sec: Section, n_groups: int) -> RandomisationSpec:
    for key in _FIXED_ONLY:
        if sec.has(key):
            raise sec.error(key, sec.data[key], "is not used by response-adaptive allocation",
                            "remove it (the probabilities start from [[arms]] start_probability "
                            "and change at every interim), or set method = \"blocks\", "
                            "\"complete\" or \"minimisation\" for a fixed allocation")
    levels = _read_strata(sec)
    spec = RandomisationSpec(method="adaptive", ratio=(1,) * n_groups, strata=tuple(levels),
                             strata_levels=levels, blinded=sec.boolean("blinded", False))
    sec.done()
    return spec


def _read_strata(sec: Section) -> dict[str, tuple[str, ...]]:
    """Read ``[randomisation.strata]``: each stratification factor and its allowed values."""
    levels_sec = sec.section("strata")
    levels: dict[str, tuple[str, ...]] = {}
    if levels_sec is not None:
        for name in list(levels_sec.data):
            levels[name] = levels_sec.string_list(name)
        levels_sec.done()
    return levels
