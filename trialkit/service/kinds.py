"""One adapter per design kind: what enrolment, decisions, reports and replay mean for it.

:class:`~trialkit.service.trial.Trial` holds what every trial shares (the store, the key, the
write transaction, the audit chain); the adapter of its kind holds the rest, so no code outside
the adapters branches on the kind. Multi-arm trials (adaptive designs, factorial designs whose
conditions are the arms) enrol participants (:mod:`trialkit.service.multiarm`); micro-randomised
trials decide decision points (:mod:`trialkit.service.mrt`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from trialkit.errors import InvalidInput
from trialkit.randomise.history import AllocationRule, AllocationState
from trialkit.service.audit import AuditRow
from trialkit.service.identity import shown
from trialkit.service.keys import TrialKey
from trialkit.service.store import Store, TrialRecord
from trialkit.service.transaction import Transaction


class TrialHandle(Protocol):
    """What adapters and verification use of an open :class:`~trialkit.service.trial.Trial`."""

    name: str
    kind: str
    config: dict[str, Any]
    store: Store
    record: TrialRecord
    adapter: TrialKind
    design_sha256: str

    @property
    def notes(self) -> list[str]:
        """Return what the live trial does not apply of its design."""

    def key(self, key_file: str | None = None) -> TrialKey:
        """Return the trial's key."""

    def use_key(self, key_file: str | None) -> TrialKey:
        """Use the key in ``key_file`` for the actions that follow."""

    def who(self, user: str | None = None) -> str:
        """Return who acts."""

    def transaction(self, user: str | None = None) -> contextlib.AbstractContextManager[
            Transaction]:
        """Return a write transaction."""

#: The action each kind takes instead of another, for the "use … instead" hint.
_INSTEAD = {"enrol": "decide", "decide": "enrol"}


class TrialKind:
    """The behaviour of one design kind inside a live trial.

    Subclasses set :attr:`actions` and override the methods of the actions they take; every other
    action is refused with a message naming the one to use.
    """

    actions: frozenset[str] = frozenset()
    #: The allocation rule whose state is sealed with the trial (``None``: no allocation state).
    rule: AllocationRule | None = None

    def __init__(self, trial: TrialHandle):
        self.trial = trial
        self.config = trial.config
        self.store = trial.store

    def refuse(self, action: str) -> InvalidInput:
        """Return the error for an action this kind does not take."""
        other = next((a for a in sorted(self.actions) if a in _INSTEAD.values()), None)
        hint = f" — use '{other}'" if other else ""
        return InvalidInput(f"trial {self.trial.name!r} is of kind {self.trial.kind!r}, which "
                            f"does not take '{action.replace('_', '-')}'{hint}")

    # -- actions (refused unless a subclass takes them) ----------------------------------------
    def enrol(self, participant: Any, strata: Any, user: str | None) -> dict[str, Any]:
        """Enrol one participant."""
        raise self.refuse("enrol")

    def lookup(self, participant: Any) -> dict[str, Any]:
        """Return an existing enrolment."""
        raise self.refuse("lookup")

    def decide_many(self, rows: Sequence[Sequence[Any]], user: str | None) -> list[dict]:
        """Decide decision points."""
        raise self.refuse("decide")

    def mark_error(self, participant: Any, reason: Any, user: str | None) -> dict[str, Any]:
        """Flag an enrolment as made in error."""
        raise self.refuse("mark_error")

    def unblind(self, participant: Any, reason: Any, user: str | None) -> dict[str, Any]:
        """Reveal one participant's allocation."""
        raise self.refuse("unblind")

    def allocation_table(self, n_per_stratum: int, user: str | None) -> list[dict[str, Any]]:
        """Return a REDCap allocation table."""
        raise self.refuse("allocation_table")

    def record_outcomes(self, items: Sequence[Mapping[str, Any]],
                        user: str | None) -> list[dict[str, Any]]:
        """Record outcomes."""
        raise self.refuse("outcome")

    def interim(self, user: str | None) -> dict[str, Any]:
        """Run the next interim analysis."""
        raise self.refuse("interim")

    def looks(self, key: TrialKey | None) -> list[dict[str, Any]]:
        """Return the interim analyses so far."""
        raise self.refuse("looks")

    def policy_update(self, user: str | None) -> dict[str, Any]:
        """Refit an adaptive MRT's policy."""
        raise self.refuse("policy_update")

    def policy(self) -> dict[str, Any]:
        """Return an adaptive MRT's policy in force."""
        raise self.refuse("policy")

    def schedule(self, participant: Any, decision_points: Any, context: Any,
                 user: str | None) -> dict[str, Any]:
        """Decide a range of decision points ahead for an offline participant."""
        raise self.refuse("schedule")

    # -- reports -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Return the trial's status (called inside a read snapshot)."""
        raise NotImplementedError

    def export_rows(self, key_file: str | None, reason: str | None,
                    user: str | None) -> list[dict[str, Any]]:
        """Analysis-ready rows."""
        raise NotImplementedError

    def export_columns(self, with_key: bool) -> list[str]:
        """Return the export's columns."""
        raise NotImplementedError

    # -- verification --------------------------------------------------------------------------
    def cross_check(self, rows: Sequence[AuditRow]) -> tuple[int | None, str]:
        """Compare the kind's tables with the audit log (no key needed)."""
        raise NotImplementedError

    def replay(self, key: TrialKey, rows: Sequence[AuditRow]) -> list[dict[str, Any]]:
        """Recompute every allocation or decision from the key and the logged requests."""
        raise NotImplementedError

    #: What a replayed entry is called in messages.
    replayed_word = "allocation"

    def check_replay(self, key: TrialKey, rows: Sequence[AuditRow]
                     ) -> tuple[int | None, str, int]:
        """Replay and compare with the log: ``(first_bad_row, problem, n_replayed)``."""
        results = self.replay(key, rows)
        for r in results:
            if r["expected"] != r["logged"]:
                return r["row"], (f"audit row {r['row']} (participant "
                                  f"{shown(r['participant'])}) does not replay: the key gives a "
                                  f"different {self.replayed_word}"), len(results)
        return None, "", len(results)

    def final_state(self, key: TrialKey, rows: Sequence[AuditRow]) -> AllocationState | None:
        """Return the allocation state after every logged allocation (``None`` without a rule)."""
        return None

    def base_status(self) -> dict[str, Any]:
        """Return the fields every status starts with."""
        record = self.trial.record
        return {"trial": self.trial.name, "kind": self.trial.kind, "design": self.config["design"],
                "design_sha256": record.design_sha256}


def compare_table(stored: Iterable[Any], logged: Mapping[Any, tuple[int, Any]],
                  ident: Callable[[Any], Any], describe: Callable[[Any], str],
                  table: str) -> tuple[int | None, str]:
    """Compare a table's rows with those its audit log implies: ``(first_bad_row, problem)``.

    ``logged`` maps each row's identity (``ident(row)``) to ``(audit row, expected row)``;
    ``describe(identity)`` names a row in messages. A row without a log entry was inserted, a
    row unlike its entry was edited, and an entry without a row was deleted.
    """
    left = dict(logged)
    for record in stored:
        key = ident(record)
        if key not in left:
            return None, (f"{describe(key)} is in the {table} table but has no row in the audit "
                          "log — a row was inserted")
        seq, want = left.pop(key)
        if record != want:
            return seq, (f"{describe(key)} differs from audit row {seq} — the {table} table was "
                         "edited")
    if left:
        key, (seq, _) = next(iter(left.items()))
        return seq, (f"{describe(key)} (audit row {seq}) is missing from the {table} table — a "
                     "row was deleted")
    return None, ""
