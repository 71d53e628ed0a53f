"""The audit trail: an append-only chain of rows, each authenticated with the trial's key.

Row ``seq`` of a trial holds who, UTC time, action, payload (canonical JSON), the previous row's MAC
and its own MAC: HMAC-SHA256, under a sub-key derived from the trial's secret key, of all of these.
Anyone who can write the database can edit, delete, insert or reorder rows, but without the key
nobody can make a chain that verifies: :func:`check_chain` names the first bad row. The trial's
row records the number of audit rows and the last MAC (the chain head).

A cut tail (the last rows deleted and the head moved back) or an older copy of the whole database
is a valid chain, only a shorter one. :func:`receipt` therefore gives, for any row, a short string
authenticated with the key that attests "row ``seq`` has this MAC"; kept outside the database (by
clients and the sponsor), any later receipt exposes a rollback (:func:`check_receipts`).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trialkit.errors import InvalidInput
from trialkit.service.keys import TrialKey

GENESIS = "0" * 64
RECEIPT_VERSION = "tk1"
_HEAD = 24  # hex digits of the MAC a receipt carries (96 bits)
_RECEIPT = re.compile(r"tk1:([A-Za-z0-9][A-Za-z0-9_.\-]{0,99}):([0-9]{1,12}):([0-9a-f]{24}):"
                      r"([0-9a-f]{24})")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)


def canonical(payload: Any) -> str:
    """Canonical JSON text (sorted keys, no spaces) of ``payload``."""
    return _CANONICAL.encode(payload)


@dataclass(frozen=True)
class AuditRow:
    """One stored audit row."""

    seq: int
    at: str
    who: str
    action: str
    payload: str
    prev_hash: str
    hash: str

    def data(self) -> Any:
        """Return the payload, parsed."""
        return json.loads(self.payload)


def row_mac(key: TrialKey, seq: int, at: str, who: str, action: str, payload: str,
            prev: str) -> str:
    """Return the MAC of one audit row: HMAC-SHA256 of its content and the previous MAC."""
    text = canonical(["audit-v2", key.trial, seq, at, who, action, payload, prev])
    return key.mac(key.audit, text)


def check_row(key: TrialKey, row: AuditRow) -> bool:
    """Whether ``row``'s MAC was made with ``key``."""
    want = row_mac(key, row.seq, row.at, row.who, row.action, row.payload, row.prev_hash)
    return hmac.compare_digest(want, row.hash)


def check_chain(rows: Sequence[AuditRow], n_audit: int, last_hash: str,
                key: TrialKey | None) -> tuple[int | None, str]:
    """Check audit ``rows`` (in stored order) against the head ``(n_audit, last_hash)``.

    Without ``key`` only the structure is checked (numbering and links); with it every MAC.

    Returns
    -------
    first_bad : int or None
        The ``seq`` (1-based row number) of the first bad row, or ``None`` when the chain holds.
    problem : str
        What is wrong with it (``""`` when the chain holds).
    """
    prev = GENESIS
    for i, row in enumerate(rows, start=1):
        if row.seq != i:
            if row.seq > i:
                return i, f"audit row {i} is missing (the next stored row is {row.seq}) — a row " \
                          "was deleted"
            return row.seq, f"audit row {row.seq} is out of order — rows were reordered or inserted"
        if row.prev_hash != prev:
            return row.seq, (f"audit row {row.seq} does not link to row {row.seq - 1} — a row was "
                             "inserted, deleted or reordered before it")
        if key is not None and not check_row(key, row):
            return row.seq, (f"audit row {row.seq} does not match its MAC — the row was edited or "
                             "forged without the key")
        prev = row.hash
    if len(rows) != n_audit:
        bad = min(len(rows), n_audit) + 1
        if len(rows) > n_audit:
            return bad, (f"audit row {bad} is beyond the chain head recorded for the trial "
                         f"({n_audit} rows) — a row was inserted")
        return bad, (f"audit row {bad} is missing: the trial records {n_audit} rows but "
                     f"{len(rows)} are stored — a row was deleted")
    if prev != last_hash:
        return n_audit, (f"audit row {n_audit} does not match the chain head recorded for the "
                         "trial — the row or the head was edited")
    return None, ""


# -- receipts -----------------------------------------------------------------------------------
def receipt(key: TrialKey, seq: int, mac: str) -> str:
    """Return a receipt: a short string, made with the key, saying row ``seq`` has ``mac``."""
    head = mac[:_HEAD]
    tag = key.mac(key.receipt, RECEIPT_VERSION, seq, head)[:_HEAD]
    return f"{RECEIPT_VERSION}:{key.trial}:{seq}:{head}:{tag}"


@dataclass(frozen=True)
class Receipt:
    """A parsed receipt."""

    trial: str
    seq: int
    head: str
    tag: str

    @classmethod
    def parse(cls, text: str, where: str) -> Receipt:
        """Parse one receipt; ``where`` names it in the error message."""
        match = _RECEIPT.fullmatch(text.strip())
        if not match:
            raise InvalidInput(f"{where} is not a trialkit receipt — receipts look like "
                               "tk1:TRIAL:ROW:HEAD:TAG, one per line", param="receipts")
        trial, seq, head, tag = match.groups()
        return cls(trial, int(seq), head, tag)

    def authentic(self, key: TrialKey) -> bool:
        """Whether the receipt was made with ``key`` for this trial."""
        want = key.mac(key.receipt, RECEIPT_VERSION, self.seq, self.head)[:_HEAD]
        return self.trial == key.trial and hmac.compare_digest(want, self.tag)


def check_receipts(key: TrialKey, receipts: Sequence[tuple[str, str]],
                   rows: Sequence[AuditRow]) -> tuple[str | None, str]:
    """Check receipts ``(where, text)`` against the stored audit ``rows`` (a verified chain).

    Returns the first failing receipt's ``where`` and the problem, or ``(None, "")``.
    """
    for where, text in receipts:
        rec = Receipt.parse(text, where)
        if rec.trial != key.trial:
            return where, (f"{where} is for trial {rec.trial!r}, not {key.trial!r} — give this "
                           "trial's receipts")
        if not rec.authentic(key):
            return where, f"{where} was not made with this trial's key — it is forged or altered"
        if rec.seq > len(rows):
            return where, (f"{where} attests audit row {rec.seq}, but the store holds only "
                           f"{len(rows)} rows — rows were cut or an older copy of the database "
                           "was restored")
        if not rows[rec.seq - 1].hash.startswith(rec.head):
            return where, (f"{where} attests a different audit row {rec.seq} than the store "
                           "holds — an older copy of the database was restored or the chain "
                           "was rewritten")
    return None, ""
