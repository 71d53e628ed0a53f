"""Pocock–Simon minimisation (Pocock & Simon 1975, Biometrics 31:103).

For each candidate arm the participant is tentatively added; the imbalance of each factor is the
range (or variance) over arms of the counts at the participant's level divided by the arm's ratio;
the total is the weighted sum over factors. The arm with the smallest total is preferred and given
with probability ``p``; otherwise one of the other arms is chosen in proportion to the ratio. Ties
for the smallest total are broken at random in proportion to the ratio; when every arm ties, the
allocation is a complete-randomisation draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trialkit.randomise.blocks import arm_from_uniform


def imbalance_scores(level_counts: Sequence[Sequence[int]], weights: Sequence[float],
                     ratio: Sequence[int], imbalance: str = "range") -> list[float]:
    """Total imbalance if the participant joined each arm.

    Parameters
    ----------
    level_counts : sequence of sequences
        For each minimisation factor, the count per arm of earlier participants at this
        participant's level of that factor.
    weights : sequence of float
        Factor weights.
    ratio : sequence of int
        Allocation ratio per arm (counts are divided by it before measuring imbalance).
    imbalance : {"range", "variance"}
        The imbalance measure.
    """
    n_arms = len(ratio)
    scores = []
    for j in range(n_arms):
        total = 0.0
        for counts, w in zip(level_counts, weights, strict=True):
            adj = [(counts[k] + (k == j)) / ratio[k] for k in range(n_arms)]
            if imbalance == "range":
                total += w * (max(adj) - min(adj))
            elif imbalance == "variance":
                mean = sum(adj) / n_arms
                total += w * sum((a - mean) ** 2 for a in adj) / n_arms
            else:
                raise ValueError(f"imbalance {imbalance!r} must be 'range' or 'variance'")
        scores.append(round(total, 12))
    return scores


def minimisation_choice(level_counts: Sequence[Sequence[int]], weights: Sequence[float],
                        ratio: Sequence[int], imbalance: str, preferred_probability: float,
                        u_tie: float, u_choice: float) -> tuple[int, dict[str, Any]]:
    """Choose an arm by minimisation from two uniform draws.

    Returns
    -------
    arm : int
        The chosen arm (0-based).
    state : dict
        ``scores`` (total imbalance per arm), ``preferred`` (the arm minimising it, or ``None`` when
        all arms tie) — what an auditor needs to see why the arm was chosen.
    """
    scores = imbalance_scores(level_counts, weights, ratio, imbalance)
    best = min(scores)
    tied = [j for j, s in enumerate(scores) if s == best]
    if len(tied) == len(ratio):
        return arm_from_uniform(u_choice, ratio), {"scores": scores, "preferred": None}
    preferred = tied[arm_from_uniform(u_tie, [ratio[j] for j in tied])]
    if u_choice < preferred_probability:
        arm = preferred
    else:
        others = [j for j in range(len(ratio)) if j != preferred]
        u = (u_choice - preferred_probability) / (1.0 - preferred_probability)
        arm = others[arm_from_uniform(u, [ratio[j] for j in others])]
    return arm, {"scores": scores, "preferred": preferred}


def simulate_minimisation(levels: Sequence[Sequence[int]], n_levels: Sequence[int],
                          weights: Sequence[float], ratio: Sequence[int], imbalance: str,
                          preferred_probability: float, uniforms: Sequence[tuple[float, float]]
                          ) -> list[int]:
    """Allocate participants in order by minimisation.

    ``levels[i][f]`` is participant i's level of factor f (0-based, below ``n_levels[f]``);
    ``uniforms[i]`` the two draws ``(u_tie, u_choice)``. Returns the arms.
    """
    n_arms = len(ratio)
    counts = [[[0] * n_arms for _ in range(nl)] for nl in n_levels]
    arms = []
    for lv, (u_tie, u_choice) in zip(levels, uniforms, strict=True):
        lc = [counts[f][lv[f]] for f in range(len(n_levels))]
        arm, _ = minimisation_choice(lc, weights, ratio, imbalance, preferred_probability,
                                     u_tie, u_choice)
        for f in range(len(n_levels)):
            counts[f][lv[f]][arm] += 1
        arms.append(arm)
    return arms
