"""The next allocation from the allocation history: one pure function for enrolment and replay.

A multi-arm trial's history is folded into an :class:`AllocationState` (enrolments so far, the
position in each stratum's block sequence, and the per-arm counts at every level of every
minimisation factor). :func:`next_allocation` turns the state, the key and the participant's strata
into the next :class:`Allocation`; :func:`advance` folds that allocation into the state. The live
service calls both for every enrolment; verification folds the whole logged history through the
same two functions, so the service and the auditor cannot disagree about the rule.

The state is secret in a blinded trial (block positions and counts per arm reveal arms), so it is
packed into a fixed number of bytes (:meth:`AllocationState.pack`) that the service stores
encrypted: its length never changes as participants are enrolled.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any

from trialkit.randomise._stream import KeyedStream
from trialkit.randomise.blocks import complete_draw, permuted_block
from trialkit.randomise.minimisation import minimisation_choice

METHODS = ("blocks", "complete", "minimisation", "adaptive")


@dataclass(frozen=True)
class AllocationRule:
    """The frozen allocation settings of a multi-arm trial.

    Attributes
    ----------
    method : {"blocks", "complete", "minimisation", "adaptive"}
        The allocation method (``adaptive``: a keyed uniform against the allocation
        probabilities in force, which interim analyses change).
    ratio : tuple of int
        Allocation ratio per arm.
    block_sizes : tuple of int
        Block sizes to draw from (``blocks``).
    strata : dict
        Stratification factor → allowed values, in the design's order.
    minimisation_factors : tuple of str
        Factors balanced by minimisation (each a stratum).
    weights : tuple of float
        Minimisation weight per factor.
    imbalance : {"range", "variance"}
        Minimisation's imbalance measure.
    preferred_probability : float
        Probability of the arm that minimises imbalance.
    start_probs : tuple of float
        ``adaptive`` only: the allocation probabilities before the first interim.
    """

    method: str
    ratio: tuple[int, ...]
    block_sizes: tuple[int, ...] = ()
    strata: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    minimisation_factors: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    imbalance: str = "range"
    preferred_probability: float = 0.8
    start_probs: tuple[float, ...] = ()

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> AllocationRule:
        """Build the rule from a trial's stored allocation settings (a JSON object)."""
        if cfg["method"] not in METHODS:
            raise ValueError(f"randomisation method {cfg['method']!r} is unknown")
        return cls(method=cfg["method"], ratio=tuple(int(r) for r in cfg["ratio"]),
                   block_sizes=tuple(int(s) for s in cfg.get("block_sizes", ())),
                   strata={k: tuple(v) for k, v in cfg.get("strata", {}).items()},
                   minimisation_factors=tuple(cfg.get("minimisation_factors", ())),
                   weights=tuple(float(w) for w in cfg.get("weights", ())),
                   imbalance=cfg.get("imbalance", "range"),
                   preferred_probability=float(cfg.get("preferred_probability", 0.8)),
                   start_probs=tuple(float(p) for p in cfg.get("start_probabilities", ()))
                   if cfg["method"] == "adaptive" else ())

    @property
    def n_arms(self) -> int:
        """Number of arms (or factorial conditions)."""
        return len(self.ratio)

    @property
    def n_strata(self) -> int:
        """Number of strata: every combination of the stratification factors' values."""
        n = 1
        for values in self.strata.values():
            n *= len(values)
        return n

    def stratum_index(self, strata: Mapping[str, str]) -> int:
        """Index of the participant's stratum (mixed radix over the factors' values)."""
        index = 0
        for name, values in self.strata.items():
            index = index * len(values) + values.index(strata[name])
        return index

    def stratum_label(self, strata: Mapping[str, str]) -> str:
        """Return the stratum's canonical label ``"site=a;sex=f"`` (``""`` when unstratified)."""
        return ";".join(f"{name}={strata[name]}" for name in self.strata)

    def stratum_labels(self) -> list[str]:
        """Labels of every stratum, in index order."""
        names = list(self.strata)
        return [self.stratum_label(dict(zip(names, combo, strict=True)))
                for combo in product(*(self.strata[n] for n in names))]


@dataclass(frozen=True)
class Allocation:
    """One allocation: the arm and what determined it.

    Attributes
    ----------
    arm : int
        The arm (0-based).
    sequence : int
        Enrolment number in the trial (1-based).
    stratum : str
        The stratum's canonical label (``""`` when unstratified).
    stratum_seq : int
        Enrolment number within the stratum (1-based).
    detail : dict
        What decided the arm: ``block`` (block number and position) for permuted blocks, ``u``
        (the uniform draw) for complete randomisation, ``u`` (two draws), ``scores`` and
        ``preferred`` for minimisation. Secret in a blinded trial.
    """

    arm: int
    sequence: int
    stratum: str
    stratum_seq: int
    detail: dict[str, Any]


@dataclass(frozen=True)
class AllocationState:
    """Everything about the allocation history that the next allocation depends on.

    Attributes
    ----------
    sequence : int
        Enrolments so far.
    strata : tuple of (int, int, int)
        Per stratum index: enrolments so far, and block number and position of the last one.
    counts : tuple
        ``counts[f][level][arm]``: earlier participants at each level of minimisation factor ``f``.
    probs : tuple of float
        ``adaptive`` only: the allocation probabilities in force (all zero once stopped).
    looks : int
        ``adaptive`` only: interim analyses done.
    stopped : int
        ``adaptive`` only: 0 while the trial runs, else the code of why it stopped (1
        superiority, 2 equivalence, 3 futility, 4 the last look was done).
    """

    sequence: int
    strata: tuple[tuple[int, int, int], ...]
    counts: tuple[tuple[tuple[int, ...], ...], ...]
    probs: tuple[float, ...] = ()
    looks: int = 0
    stopped: int = 0

    @classmethod
    def initial(cls, rule: AllocationRule) -> AllocationState:
        """Return the state before the first enrolment (``adaptive``: the start probabilities)."""
        zero_arms = (0,) * rule.n_arms
        counts = tuple(tuple(zero_arms for _ in rule.strata[f]) for f in rule.minimisation_factors)
        return cls(0, ((0, 0, 0),) * rule.n_strata, counts, rule.start_probs)

    def pack(self) -> bytes:
        """Fixed-length bytes (the length depends on the rule only, never on the history)."""
        values = [self.sequence]
        for s in self.strata:
            values += s
        for factor in self.counts:
            for level in factor:
                values += level
        data = struct.pack(f">{len(values)}Q", *values)
        if self.probs:
            data += struct.pack(f">2Q{len(self.probs)}d", self.looks, self.stopped, *self.probs)
        return data

    @classmethod
    def unpack(cls, data: bytes, rule: AllocationRule) -> AllocationState:
        """Inverse of :meth:`pack` for the trial's ``rule``."""
        if len(data) != len(cls.initial(rule).pack()):
            raise ValueError("allocation state does not fit the trial's allocation settings")
        values = struct.unpack(f">{len(data) // 8}Q", data)
        pos = 1
        strata = []
        for _ in range(rule.n_strata):
            strata.append(tuple(values[pos:pos + 3]))
            pos += 3
        counts = []
        for f in rule.minimisation_factors:
            levels = []
            for _ in rule.strata[f]:
                levels.append(tuple(values[pos:pos + rule.n_arms]))
                pos += rule.n_arms
            counts.append(tuple(levels))
        if rule.method != "adaptive":
            return cls(values[0], tuple(strata), tuple(counts))
        looks, stopped, *probs = struct.unpack(f">2Q{rule.n_arms}d", data[8 * pos:])
        return cls(values[0], tuple(strata), tuple(counts), tuple(probs), looks, stopped)


def next_allocation(rule: AllocationRule, key: bytes, trial: str, state: AllocationState,
                    strata: Mapping[str, str]) -> Allocation:
    """Return the allocation of the next participant, whose stratification values are ``strata``.

    A pure function of the key and the history (through ``state``): the same inputs always give
    the same allocation.
    """
    sequence = state.sequence + 1
    index = rule.stratum_index(strata)
    label = rule.stratum_label(strata)
    n_in_stratum, last_block, last_pos = state.strata[index]
    detail: dict[str, Any]
    if rule.method == "blocks":
        block_no, pos = (0, 0) if n_in_stratum == 0 else (last_block, last_pos + 1)
        block = _block(key, trial, label, block_no, rule.block_sizes, rule.ratio)
        if pos >= len(block):
            block_no, pos = block_no + 1, 0
            block = _block(key, trial, label, block_no, rule.block_sizes, rule.ratio)
        arm, detail = block[pos], {"block": [block_no, pos]}
    elif rule.method == "complete":
        arm, u = complete_draw(key, trial, sequence, rule.ratio)
        detail = {"u": u}
    elif rule.method == "adaptive":
        arm, detail = _adaptive_draw(key, trial, sequence, state)
    else:
        arm, detail = _minimise(rule, key, trial, sequence, state, strata)
    return Allocation(arm, sequence, label, n_in_stratum + 1, detail)


@functools.lru_cache(maxsize=512)
def _block(key: bytes, trial: str, stratum: str, block_no: int, sizes: tuple[int, ...],
           ratio: tuple[int, ...]) -> tuple[int, ...]:
    """Return a permuted block, remembered.

    Successive enrolments of a stratum use the same block.
    """
    return permuted_block(key, trial, stratum, block_no, sizes, ratio)


def _adaptive_draw(key: bytes, trial: str, sequence: int,
                   state: AllocationState) -> tuple[int, dict[str, Any]]:
    """Draw an arm with the probabilities in force (the simulator's rule, a keyed uniform)."""
    import numpy as np

    from trialkit.stats import arms_from_uniforms

    if state.stopped or not any(state.probs):
        raise ValueError("the trial has stopped: nothing is allocated any more")
    u = KeyedStream(key, "adaptive", trial, sequence).uniform()
    arm = int(arms_from_uniforms(u, np.asarray(state.probs))[0])
    return arm, {"u": u, "probabilities": list(state.probs), "look": state.looks}


def _minimise(rule: AllocationRule, key: bytes, trial: str, sequence: int,
              state: AllocationState, strata: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    stream = KeyedStream(key, "minimisation", trial, sequence)
    u_tie, u_choice = stream.uniform(), stream.uniform()
    level_counts = [state.counts[f][rule.strata[name].index(strata[name])]
                    for f, name in enumerate(rule.minimisation_factors)]
    arm, info = minimisation_choice(level_counts, rule.weights, rule.ratio, rule.imbalance,
                                    rule.preferred_probability, u_tie, u_choice)
    return arm, {"u": [u_tie, u_choice], **info}


def advance(rule: AllocationRule, state: AllocationState, strata: Mapping[str, str],
            allocation: Allocation) -> AllocationState:
    """Return the state after ``allocation`` (of a participant with ``strata``) was made."""
    index = rule.stratum_index(strata)
    n_in_stratum, block_no, pos = state.strata[index]
    if rule.method == "blocks":
        block_no, pos = allocation.detail["block"]
    stratum_row = (n_in_stratum + 1, block_no, pos)
    counts = list(state.counts)
    for f, name in enumerate(rule.minimisation_factors):
        level = rule.strata[name].index(strata[name])
        per_level = list(counts[f])
        arms = list(per_level[level])
        arms[allocation.arm] += 1
        per_level[level] = tuple(arms)
        counts[f] = tuple(per_level)
    rows = state.strata[:index] + (stratum_row,) + state.strata[index + 1:]
    return replace(state, sequence=allocation.sequence, strata=rows, counts=tuple(counts))


def allocate_all(rule: AllocationRule, key: bytes, trial: str,
                 participants: Iterable[Mapping[str, str]]
                 ) -> tuple[list[Allocation], AllocationState]:
    """Allocate participants (given by their strata, in enrolment order) from the start.

    Returns every allocation and the final state: what the live service must hold after the same
    enrolments.
    """
    state = AllocationState.initial(rule)
    out = []
    for strata in participants:
        allocation = next_allocation(rule, key, trial, state, strata)
        state = advance(rule, state, strata, allocation)
        out.append(allocation)
    return out, state
