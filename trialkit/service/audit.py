"""The audit trail: an append-only hash chain, one row per action.

Row ``seq`` of a trial holds who, UTC time, action, payload (canonical JSON), the previous row's
hash and its own hash, SHA-256 of all of these. The trial's row records the number of audit rows
and the last hash (the chain head), so editing, deleting, inserting or reordering any row — the
last one included — breaks the chain at a row :func:`check_chain` names.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS = "0" * 64


def canonical(payload: Any) -> str:
    """Canonical JSON text (sorted keys, no spaces) of ``payload``."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(trial: str, seq: int, at: str, who: str, action: str, payload: str,
             prev_hash: str) -> str:
    """SHA-256 of one audit row's content and the previous hash."""
    text = canonical([trial, seq, at, who, action, payload, prev_hash])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_chain(trial: str, rows: list[tuple], n_audit: int,
                last_hash: str) -> tuple[int | None, str]:
    """Check audit ``rows`` ``(seq, at, who, action, payload, prev_hash, hash)`` in stored order.

    Returns
    -------
    first_bad : int or None
        The ``seq`` (1-based row number) of the first bad row, or ``None`` when the chain holds.
    problem : str
        What is wrong with it ("" when the chain holds).
    """
    prev = GENESIS
    for i, (seq, at, who, action, payload, prev_hash, stored) in enumerate(rows, start=1):
        if seq != i:
            if seq > i:
                return i, (f"audit row {i} is missing (the next stored row is {seq}) — "
                           "a row was deleted")
            return seq, f"audit row {seq} is out of order — rows were reordered or inserted"
        if prev_hash != prev:
            return seq, (f"audit row {seq} does not link to row {seq - 1} — a row was "
                         "inserted, deleted or reordered before it")
        if row_hash(trial, seq, at, who, action, payload, prev_hash) != stored:
            return seq, f"audit row {seq} does not match its hash — the row was edited"
        prev = stored
    if len(rows) == n_audit and prev != last_hash:
        return n_audit, (f"audit row {n_audit} does not match the chain head recorded for the "
                         "trial — the row was edited")
    if len(rows) != n_audit:
        bad = min(len(rows), n_audit) + 1
        if len(rows) > n_audit:
            return bad, (f"audit row {bad} is beyond the chain head recorded for the trial "
                         f"({n_audit} rows) — a row was inserted")
        return bad, (f"audit row {bad} is missing: the trial records {n_audit} rows but "
                     f"{len(rows)} are stored — a row was deleted")
    return None, ""
