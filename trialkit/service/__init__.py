"""The live randomisation service: concealed, audited, concurrency-safe allocation.

A trial is created from a design file (its text and SHA-256 are stored) in an SQLite file or a
PostgreSQL database, with a secret key kept in a separate file. Allocations are computed from the
key only when needed (:mod:`trialkit.randomise`), every action appends a row authenticated with
the key to the audit chain, and :meth:`Trial.verify` checks every stored value and replays every
allocation with the key. Each response carries a receipt that exposes a later rollback.

Examples
--------
>>> from trialkit.service import Trial                                        # doctest: +SKIP
>>> Trial.create("designs/three-arm-adaptive.toml", "sqlite:///t.db", key_file="t.key")
>>> Trial.open("sqlite:///t.db").enrol("P001")["allocation"]
"""

from __future__ import annotations

from trialkit.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    Tampered,
    Unavailable,
)
from trialkit.service.store import MIGRATIONS, connect
from trialkit.service.trial import Trial

__all__ = ["MIGRATIONS", "Conflict", "Forbidden", "InvalidInput", "NotFound", "ServiceError",
           "Tampered", "Trial", "Unavailable", "connect"]
