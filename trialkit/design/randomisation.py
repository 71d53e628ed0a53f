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


def read_randomisation(root: Section, n_groups: int, group_word: str) -> RandomisationSpec | None:
    """Read ``[randomisation]`` for a design with ``n_groups`` arms or conditions."""
    sec = root.section("randomisation")
    if sec is None:
        return None
    method = sec.string("method", "blocks", choices=METHODS)
    ratio = sec.number_list("ratio", (1,) * n_groups, minimum=1, integer=True, length=n_groups)
    unit = sum(ratio)
    sizes = sec.number_list("block_sizes", (unit, 2 * unit), minimum=1, integer=True)
    for size in sizes:
        if size % unit:
            raise sec.error("block_sizes", size, f"is not a multiple of the ratio total {unit}",
                            f"use multiples of {unit} (the sum of the ratio over {group_word})")
    check_unique(sec, "block_sizes", [str(s) for s in sizes])
    levels_sec = sec.section("strata")
    levels: dict[str, tuple[str, ...]] = {}
    if levels_sec is not None:
        for name in list(levels_sec.data):
            levels[name] = levels_sec.string_list(name)
        levels_sec.done()
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
