"""Named scenarios of a factorial design: the truth a simulated trial is drawn from.

A design file may name its own scenarios (``[scenarios.NAME.OUTCOME]`` tables of classic
factorial effects); four built-in ones are always there unless the file redefines them.
"""

from __future__ import annotations

from trialkit.errors import TrialkitError

#: The built-in scenarios.
SCENARIOS = ("null", "sparse", "antagonistic", "assumed")


def scenario_names(design) -> list[str]:
    """Return the scenarios a factorial design offers: its own, then the built-in ones."""
    return [*design.scenarios, *(s for s in SCENARIOS if s not in design.scenarios)]


def scenario_effects(design, outcome, scenario: str) -> dict[str, float]:
    """Classic factorial effects of a named scenario for ``outcome`` (term name → effect).

    A scenario of the design file (``[scenarios.NAME.OUTCOME]``) comes first; an outcome it does
    not list has no effects in it. Otherwise the built-in scenarios:

    * ``null``: no effects.
    * ``sparse``: the first two factors have beneficial main effects of 0.3 SD (binary: 0.4
      log-odds), the others none.
    * ``antagonistic``: the first two factors are beneficial (0.4 and 0.3 SD) but their
      interaction (0.4 SD against) makes the first alone better than both together.
    * ``assumed``: the effects in the design file.
    """
    if scenario in design.scenarios:
        return dict(design.scenarios[scenario].get(outcome.name, {}))
    if scenario not in SCENARIOS:
        raise TrialkitError(f"scenario {scenario!r} is unknown — use one of: "
                            + ", ".join(scenario_names(design)), param="scenario")
    names = design.factor_names
    unit = outcome.sd if outcome.type == "continuous" else 1.0
    good = -1.0 if outcome.better == "lower" else 1.0
    if scenario == "null":
        return {}
    if scenario == "sparse":
        size = 0.3 if outcome.type == "continuous" else 0.4
        return {names[0]: good * size * unit, names[1]: good * size * unit}
    if scenario == "antagonistic":
        return {names[0]: good * 0.4 * unit, names[1]: good * 0.3 * unit,
                f"{names[0]}:{names[1]}": -good * 0.4 * unit}
    if not outcome.effects:
        raise TrialkitError(f"outcome {outcome.name!r} has no assumed effects — add "
                            f"[outcomes.{outcome.name}.effects] or choose another scenario")
    return dict(outcome.effects)
