"""Keyed pseudo-random streams: every draw is HMAC-SHA256(key, label, counter).

A stream is named by a label (trial, purpose, stratum, block number, ...). Without the key nothing
about its values can be computed, and with the key any draw can be recomputed at any time, so the
service stores no future allocation and an auditor can replay every past one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

_TWO64 = 1 << 64


def _label(parts: Sequence[object]) -> bytes:
    return "\x1f".join(str(p) for p in parts).encode("utf-8")


class KeyedStream:
    """A deterministic stream of 64-bit integers derived from ``key`` and a label.

    Parameters
    ----------
    key : bytes
        The trial's secret key.
    *label : object
        Parts naming the stream (joined with a unit separator), e.g.
        ``("block", trial, stratum, 3)``.
    """

    def __init__(self, key: bytes, *label: object):
        self._key = key
        self._label = _label(label)
        self._counter = 0
        self._buffer: list[int] = []

    def _refill(self) -> None:
        msg = self._label + b"\x1e" + str(self._counter).encode()
        digest = hmac.new(self._key, msg, hashlib.sha256).digest()
        self._counter += 1
        self._buffer = [int.from_bytes(digest[i:i + 8], "big") for i in (24, 16, 8, 0)]

    def bits64(self) -> int:
        """Return the next 64-bit unsigned integer."""
        if not self._buffer:
            self._refill()
        return self._buffer.pop()

    def uniform(self) -> float:
        """Return the next uniform draw in [0, 1) with 53 random bits."""
        return (self.bits64() >> 11) / float(1 << 53)

    def below(self, n: int) -> int:
        """Return an unbiased integer in ``0 .. n-1`` (rejection sampling)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        limit = _TWO64 - (_TWO64 % n)
        while True:
            value = self.bits64()
            if value < limit:
                return value % n


def keyed_uniform(key: bytes, *label: object) -> float:
    """Return the first uniform draw of the stream named ``label``."""
    return KeyedStream(key, *label).uniform()


def keyed_code(key: bytes, *label: object, length: int = 8) -> str:
    """Return a short base-32 code derived from ``key`` and ``label`` (for blinded allocations)."""
    import base64

    digest = hmac.new(key, b"code\x1f" + _label(label), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii")[:length]
