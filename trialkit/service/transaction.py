"""One write to a live trial: its lock, its checked head and sealed state, the rows it appends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from trialkit.errors import Conflict, Tampered
from trialkit.randomise.history import AllocationRule, AllocationState
from trialkit.service.audit import AuditRow, canonical, check_row, receipt, row_mac
from trialkit.service.keys import TrialKey, seal, unseal
from trialkit.service.store import AUDIT_VERSION, Store, TrialRecord, utc_now


def state_context(trial: str, n_audit: int, last_hash: str) -> str:
    """Return what the sealed allocation state is bound to: the trial and its chain head."""
    return f"allocation-state\x1f{trial}\x1f{n_audit}\x1f{last_hash}"


class Transaction:
    """One write to a trial: its lock, its checked head and state, and the rows it appends.

    Obtained from :meth:`Trial.transaction`; :meth:`log` appends an audit row, and the new head
    (and the re-sealed allocation state) is stored when the ``with`` block ends without error.
    """

    def __init__(self, store: Store, rule: AllocationRule | None, key: TrialKey, who: str,
                 record: TrialRecord):
        self.store, self.rule, self.key, self.who = store, rule, key, who
        self.name = record.name
        self.n_enrolled, self.n_audit, self.last_hash = (record.n_enrolled, record.n_audit,
                                                         record.last_hash)
        self._start = record.n_audit
        self._check_head(record)
        self.state = self._open_state(record)

    def _check_head(self, record: TrialRecord) -> None:
        if record.audit_version != AUDIT_VERSION:
            raise Conflict(f"trial {record.name!r} was created by trialkit 0.1 with an unkeyed "
                           "audit chain — upgrade it once with its key before any new action")
        row = self.store.audit_row(record.name, record.n_audit)
        if row is None or row.hash != record.last_hash or not check_row(self.key, row):
            raise Tampered(f"the audit chain head of trial {record.name!r} does not verify with "
                           "its key — the store was edited outside trialkit (or the trial's key "
                           "was swapped); nothing was written — run verify with the key file")

    def _open_state(self, record: TrialRecord) -> AllocationState | None:
        rule = self.rule
        if rule is None:
            return None
        if record.state is None:
            raise Tampered(f"trial {record.name!r} has no sealed allocation state — the store was "
                           "edited outside trialkit; nothing was written — run verify")
        context = state_context(record.name, record.n_audit, record.last_hash)
        try:
            state = AllocationState.unpack(unseal(self.key, context, record.state), rule)
        except ValueError:
            raise Tampered(f"the allocation state of trial {record.name!r} does not fit its "
                           "settings — the store was edited; run verify") from None
        if state.sequence != record.n_enrolled:
            raise Tampered(f"trial {record.name!r} records {record.n_enrolled} enrolments but its "
                           f"sealed state {state.sequence} — the trials table was edited; nothing "
                           "was written — run verify with the key file")
        return state

    def allocation_state(self) -> AllocationState:
        """Return the allocation state (only for a kind that allocates)."""
        if self.state is None:
            raise TypeError("this trial kind keeps no allocation state")
        return self.state

    def log(self, action: str, payload: Mapping[str, Any], at: str | None = None) -> AuditRow:
        """Append one audit row authenticated with the key; return it."""
        seq = self.n_audit + 1
        at = at or utc_now()
        text = canonical(payload)
        mac = row_mac(self.key, seq, at, self.who, action, text, self.last_hash)
        row = AuditRow(seq, at, self.who, action, text, self.last_hash, mac)
        try:
            self.store.append_audit(self.name, row)
        except Conflict:
            raise Tampered(f"trial {self.name!r} already holds an audit row {seq} beyond its "
                           "recorded chain head — the store was edited outside trialkit; nothing "
                           "was written — run verify with the key file") from None
        self.n_audit, self.last_hash = seq, mac
        return row

    @contextlib.contextmanager
    def savepoint(self, who: str) -> Iterator[Transaction]:
        """Run a nested write inside this transaction, acting as ``who``.

        On error its rows and its changes to the head and state are undone, and the error
        propagates.
        """
        saved = (self.n_enrolled, self.n_audit, self.last_hash, self.state, self.who)
        self.who = who
        try:
            with self.store.savepoint():
                yield self
        except BaseException:
            self.n_enrolled, self.n_audit, self.last_hash, self.state, _ = saved
            raise
        finally:
            self.who = saved[4]

    def commit(self) -> None:
        """Store the new head, with the allocation state sealed to it.

        Nothing is stored if no row was appended: a transaction that wrote nothing leaves the
        store byte-identical.
        """
        if self.n_audit == self._start:
            return
        sealed = None
        if self.state is not None:
            context = state_context(self.name, self.n_audit, self.last_hash)
            sealed = seal(self.key, context, self.state.pack())
        self.store.set_head(self.name, self.n_enrolled, self.n_audit, self.last_hash,
                            sealed)

    def receipt(self, row: AuditRow) -> str:
        """Return the receipt of one row this transaction wrote."""
        return receipt(self.key, row.seq, row.hash)


