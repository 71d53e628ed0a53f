"""One adapter per design kind: what enrolment, decisions, reports and replay mean for it.

:class:`~trialkit.service.trial.Trial` holds what every trial shares (the store, the key, the
write transaction, the audit chain); the adapter of its kind holds the rest, so no code outside
the adapters branches on the kind. Multi-arm trials (adaptive designs, factorial designs whose
conditions are the arms) enrol participants (:mod:`trialkit.service.multiarm`); micro-randomised
trials decide decision points (:mod:`trialkit.service.mrt`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from trialkit.errors import InvalidInput
from trialkit.service.audit import AuditRow
from trialkit.service.identity import shown

if TYPE_CHECKING:
    from trialkit.randomise.history import AllocationRule, AllocationState
    from trialkit.service.keys import TrialKey
    from trialkit.service.trial import Trial

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

    def __init__(self, trial: Trial):
        self.trial = trial
        self.config = trial.config
        self.store = trial.store

    def refuse(self, action: str) -> InvalidInput:
        """The error for an action this kind does not take."""
        other = next((a for a in sorted(self.actions) if a in _INSTEAD.values()), None)
        hint = f" — use '{other}'" if other else ""
        return InvalidInput(f"trial {self.trial.name!r} is of kind {self.trial.kind!r}, which "
                            f"does not take '{action.replace('_', '-')}'{hint}")

    # -- actions (refused unless a subclass takes them) ----------------------------------------
    def enrol(self, participant: Any, strata: Any, user: str | None) -> dict[str, Any]:
        """Enrol one participant."""
        raise self.refuse("enrol")

    def lookup(self, participant: Any) -> dict[str, Any]:
        """An existing enrolment."""
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
        """A REDCap allocation table."""
        raise self.refuse("allocation_table")

    # -- reports -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The trial's status (called inside a read snapshot)."""
        raise NotImplementedError

    def export_rows(self, key_file: str | None, reason: str | None,
                    user: str | None) -> list[dict[str, Any]]:
        """Analysis-ready rows."""
        raise NotImplementedError

    def export_columns(self, with_key: bool) -> list[str]:
        """The export's columns."""
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
        """The allocation state after every logged allocation (``None`` without a rule)."""
        return None

    def base_status(self) -> dict[str, Any]:
        """The fields every status starts with."""
        record = self.trial.record
        return {"trial": self.trial.name, "kind": self.trial.kind, "design": self.config["design"],
                "design_sha256": record.design_sha256}


def adapter_for(trial: Trial) -> TrialKind:
    """The adapter of ``trial``'s kind."""
    from trialkit.service.mrt import MrtKind
    from trialkit.service.multiarm import FactorialKind, MultiArmKind

    kinds: dict[str, type[TrialKind]] = {"factorial": FactorialKind, "adaptive": MultiArmKind,
                                         "mrt": MrtKind}
    if trial.kind not in kinds:
        raise InvalidInput(f"trial {trial.name!r} is of kind {trial.kind!r}, which this trialkit "
                           "does not know — upgrade trialkit")
    return kinds[trial.kind](trial)
