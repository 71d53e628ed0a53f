"""The live randomisation service: concealed, audited, concurrency-safe allocation.

A trial is created from a design file (its text and SHA-256 are stored) in an SQLite file or a
PostgreSQL database, with a secret key kept in a separate file. Allocations are generated from the
key only when needed, every action appends to a hash-chained audit log, and :meth:`Trial.verify`
replays every allocation with the key.

Examples
--------
>>> from trialkit.service import Trial                                        # doctest: +SKIP
>>> Trial.create("designs/three-arm-adaptive.toml", "sqlite:///t.db", key_file="t.key")
>>> Trial.open("sqlite:///t.db").enrol("P001")["allocation"]
"""

from __future__ import annotations

from trialkit.errors import ServiceError
from trialkit.service.store import MIGRATIONS, connect
from trialkit.service.trial import Trial, allocate

__all__ = ["MIGRATIONS", "ServiceError", "Trial", "allocate", "connect"]
