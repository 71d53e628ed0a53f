"""The replicate streams of :func:`trialkit.engine.replicate_rngs`, re-seeded in place.

Creating one ``SeedSequence`` and one ``Generator`` per replicate costs more than drawing a
replicate's outcomes. :class:`ReplicateStreams` yields, for replicates ``start … stop−1``, one
shared PCG64 generator re-seeded to exactly the state ``default_rng(SeedSequence(seed,
spawn_key=(i,)))`` has: the SeedSequence hashing (O'Neill's ``seed_seq_fe`` as implemented by
numpy) is computed for all replicates at once with vectorised 32-bit arithmetic and the PCG64
seeding step with Python integers. The draws are bit-for-bit those of ``replicate_rngs``
(tested), so results stay independent of chunking and ``--jobs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

_M32 = 0xFFFFFFFF
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_XSHIFT = 16
_POOL = 4
_PCG_MULT = 0x2360ED051FC65DA44385DF649FCCF645
_M128 = (1 << 128) - 1


def _words(value: int) -> list[int]:
    if value == 0:
        return [0]
    out = []
    while value:
        out.append(value & _M32)
        value >>= 32
    return out


def _seed_states(seed: int, start: int, stop: int) -> list[np.ndarray]:
    """``SeedSequence(seed, spawn_key=(i,)).generate_state(4, uint64)`` for i in [start, stop)."""
    if stop > 2**32:
        raise ValueError("replicate indices must be below 2**32")
    h = [_INIT_A]

    def hashmix(v: int) -> int:
        v ^= h[0]
        h[0] = (h[0] * _MULT_A) & _M32
        v = (v * h[0]) & _M32
        return v ^ (v >> _XSHIFT)

    def mix(x: int, y: int) -> int:
        r = (_MIX_L * x - _MIX_R * y) & _M32
        return r ^ (r >> _XSHIFT)

    run = _words(int(seed))
    if len(run) < _POOL:
        run += [0] * (_POOL - len(run))
    mixer = [hashmix(run[i]) for i in range(_POOL)]
    for src in range(_POOL):
        for dst in range(_POOL):
            if src != dst:
                mixer[dst] = mix(mixer[dst], hashmix(mixer[src]))
    for word in run[_POOL:]:
        for dst in range(_POOL):
            mixer[dst] = mix(mixer[dst], hashmix(word))
    # the spawn key (i,) is the last entropy word: the only part that differs by replicate
    u = np.uint64
    mask, shift = u(_M32), u(_XSHIFT)
    idx = np.arange(start, stop, dtype=np.uint64)
    pool = []
    for dst in range(_POOL):
        hc = h[0]
        h[0] = (h[0] * _MULT_A) & _M32
        v = ((idx ^ u(hc)) * u(h[0])) & mask
        v ^= v >> shift
        r = (u(_MIX_L) * u(mixer[dst]) - u(_MIX_R) * v) & mask
        pool.append(r ^ (r >> shift))
    hb = _INIT_B
    out32 = []
    for j in range(2 * _POOL):
        v = pool[j % _POOL] ^ u(hb)
        hb = (hb * _MULT_B) & _M32
        v = (v * u(hb)) & mask
        out32.append(v ^ (v >> shift))
    return [out32[2 * j] | (out32[2 * j + 1] << u(32)) for j in range(_POOL)]


class Streams(Protocol):
    """Generators of consecutive replicates: a list of them, or :class:`ReplicateStreams`.

    Use each generator before taking the next: :class:`ReplicateStreams` re-seeds one generator.
    """

    def __len__(self) -> int:
        """Return the number of replicates."""

    def __iter__(self) -> Iterator[np.random.Generator]:
        """Yield each replicate's generator in turn."""


class ReplicateStreams:
    """Iterate over replicates ``start … stop−1`` of a run seeded with ``seed``.

    Each step yields the same :class:`numpy.random.Generator`, re-seeded to replicate i's stream;
    use it before advancing the iterator.
    """

    def __init__(self, seed: int, start: int, stop: int):
        if not isinstance(seed, int | np.integer) or seed < 0:
            from trialkit.errors import TrialkitError

            raise TrialkitError(f"seed = {seed!r} is invalid — use a non-negative whole number",
                                param="seed")
        self.seed, self.start, self.stop = int(seed), int(start), int(stop)

    def __len__(self) -> int:
        """Return the number of replicates."""
        return self.stop - self.start

    def __iter__(self) -> Iterator[np.random.Generator]:
        """Yield the generator, re-seeded for each replicate in turn."""
        if len(self) <= 0:
            return
        with np.errstate(over="ignore"):
            w0, w1, w2, w3 = (w.tolist() for w in _seed_states(self.seed, self.start, self.stop))
        bitgen = np.random.PCG64(0)
        gen = np.random.Generator(bitgen)
        inner: dict[str, int] = {"state": 0, "inc": 0}
        state: Any = {"bit_generator": "PCG64", "state": inner, "has_uint32": 0,
                      "uinteger": 0}
        for a, b, c, d in zip(w0, w1, w2, w3, strict=True):
            inc = ((((c << 64) | d) << 1) | 1) & _M128
            # PCG64 seeding: state 0, one step (state = inc), add the seed, one more step
            s = (((inc + ((a << 64) | b)) & _M128) * _PCG_MULT + inc) & _M128
            inner["state"], inner["inc"] = s, inc
            bitgen.state = state
            yield gen
