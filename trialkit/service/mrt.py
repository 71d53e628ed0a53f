"""Micro-randomised trials in the live service: decisions, reports and replay.

Each available decision point of a participant is a Bernoulli draw with the design's probability
for that point, from a keyed uniform (:func:`trialkit.randomise.mrt_draw`); an unavailable point
gets action 0 and no draw. Every decision is logged and replayed by verification.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trialkit.errors import Conflict, InvalidInput, Tampered
from trialkit.randomise import mrt_draw
from trialkit.service import identity
from trialkit.service.audit import AuditRow, canonical, check_row, receipt
from trialkit.service.keys import TrialKey
from trialkit.service.kinds import TrialKind, compare_table
from trialkit.service.store import DecisionRecord, utc_now

#: The columns of an MRT export: what ``trialkit analyse mrt`` reads.
MRT_COLUMNS = ("id", "decision_point", "availability", "treatment", "probability")


class MrtKind(TrialKind):
    """Decision points decided once each, with the design's probability."""

    actions = frozenset({"decide"})
    replayed_word = "decision"

    def check_decision(self, participant: Any, decision_point: Any, available: Any,
                       reason: Any, context: Any = None) -> tuple[Any, ...]:
        """Validate one decision request (a fixed-probability MRT takes no context)."""
        if context:
            raise InvalidInput(f"trial {self.trial.name!r} randomises with the design's fixed "
                               "probabilities, which use no context — drop the context",
                               param="context")
        return self.check_request(participant, decision_point, available, reason)

    def check_request(self, participant: Any, decision_point: Any, available: Any,
                      reason: Any) -> tuple[str, int, bool, str | None]:
        """Validate the participant, decision point, availability and reason of a decision."""
        pid = identity.participant_id(participant)
        n = int(self.config["n_decision_points"])
        dp = identity.whole_number(decision_point, "decision point", 1, n, "decision_point")
        if not isinstance(available, bool | int) or available not in (0, 1):
            raise InvalidInput(f"availability {identity.shown(available)} of decision point {dp} "
                               "is not true or false — give available or unavailable",
                               param="available")
        why = None
        if reason is not None and str(reason).strip():
            why = identity.reason_text(reason, "reason for unavailability")
        if not available and why is None:
            raise InvalidInput(f"decision point {dp} of participant {identity.shown(pid)} is "
                               "unavailable without a reason — give one", param="reason")
        return pid, dp, bool(available), why

    def decide_many(self, rows: Sequence[Sequence[Any]], user: str | None) -> list[dict]:
        """Decide many decision points in one transaction; one bad row changes nothing."""
        checked = [self.check_decision(*row) for row in rows]
        with self.trial.transaction(user) as tx:
            return [self._decide(tx, *request) for request in checked]

    def _decide(self, tx: Any, pid: str, dp: int, available: bool,
                reason: str | None) -> dict[str, Any]:
        known = self.store.decision(self.trial.name, pid, dp)
        if known is not None:
            return self._repeat(known, available, tx.key)
        p = float(self.config["probabilities"][dp - 1])
        action, draw = mrt_draw(tx.key.secret, self.trial.name, pid, dp, p) if available \
            else (0, None)
        at = utc_now()
        row = tx.log("decide", {"participant": pid, "decision_point": dp, "available": available,
                                "reason": reason, "probability": p, "action": action,
                                "draw": draw}, at)
        record = DecisionRecord(pid, dp, int(available), reason, p, action, draw, at, tx.who,
                                row.seq)
        self.store.insert_decision(self.trial.name, record)
        return self.result(record, True, tx.receipt(row))

    def _repeat(self, known: DecisionRecord, available: bool, key: TrialKey) -> dict[str, Any]:
        if bool(known.available) != available:
            state = "available" if known.available else "unavailable"
            raise Conflict(f"decision point {known.decision_point} of participant "
                           f"{identity.shown(known.participant)} was already logged as {state} — "
                           "a decision point is decided once; repeat it with the same "
                           "availability", param="available")
        row = (self.store.audit_row(self.trial.name, known.audit_seq)
               if known.audit_seq is not None else None)
        if row is None or not check_row(key, row) or self._expected(row) != known:
            raise Tampered(f"decision point {known.decision_point} of participant "
                           f"{identity.shown(known.participant)} does not match its "
                           "authenticated audit row — the store was edited outside trialkit; "
                           "run verify with the key file")
        return self.result(known, False, receipt(key, row.seq, row.hash))

    def result(self, record: DecisionRecord, new: bool, receipt_text: str) -> dict[str, Any]:
        """Return the decision returned to the caller (the ``decide`` JSON contract)."""
        return {"participant": record.participant, "decision_point": record.decision_point,
                "available": bool(record.available), "action": record.action,
                "probability": record.probability, "reason": record.reason, "new": new,
                "receipt": receipt_text}

    # -- reports -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Participants, decision points, availability, treatment rate, unavailability reasons."""
        out = self.base_status()
        records = self.store.decisions(self.trial.name)
        avail = [r for r in records if r.available]
        reasons: dict[str, int] = {}
        for r in records:
            if not r.available:
                reasons[r.reason or ""] = reasons.get(r.reason or "", 0) + 1
        treated = sum(r.action for r in avail)
        out.update({
            "participants": len({r.participant for r in records}),
            "decision_points": len(records),
            "available": len(avail),
            "treated": treated,
            "treated_rate": treated / len(avail) if avail else None,
            "mean_probability": sum(r.probability for r in avail) / len(avail) if avail else None,
            "unavailable": [{"reason": k, "n": v} for k, v in sorted(reasons.items())],
        })
        return out

    def export_columns(self, with_key: bool) -> list[str]:
        """Exactly ``id, decision_point, availability, treatment, probability``."""
        return list(MRT_COLUMNS)

    def export_rows(self, key_file: str | None, reason: str | None,
                    user: str | None) -> list[dict[str, Any]]:
        """One row per decision point, in participant and decision-point order."""
        with self.store.snapshot():
            records = self.store.decisions(self.trial.name)
        return [dict(zip(MRT_COLUMNS, (r.participant, r.decision_point, int(r.available),
                                       int(r.action), r.probability), strict=True))
                for r in records]

    # -- verification --------------------------------------------------------------------------
    def _expected(self, row: AuditRow) -> DecisionRecord:
        data = row.data()
        context = data.get("context")
        return DecisionRecord(data["participant"], data["decision_point"],
                              int(data["available"]), data["reason"], data["probability"],
                              data["action"], data["draw"], row.at, row.who, row.seq,
                              canonical(context) if context is not None else None,
                              data.get("policy_version"))

    def cross_check(self, rows: Sequence[AuditRow]) -> tuple[int | None, str]:
        """Compare the decisions table with the decisions in the log."""
        logged = {}
        for row in rows:
            if row.action == "decide":
                want = self._expected(row)
                logged[(want.participant, want.decision_point)] = (row.seq, want)
        return compare_table(
            self.store.decisions(self.trial.name), logged,
            lambda r: (r.participant, r.decision_point),
            lambda k: f"decision point {k[1]} of participant {identity.shown(k[0])}", "decisions")

    def replay(self, key: TrialKey, rows: Sequence[AuditRow]) -> list[dict[str, Any]]:
        """Recompute every decision from the key and the logged request."""
        out = []
        for row in rows:
            if row.action != "decide":
                continue
            data = row.data()
            dp = data["decision_point"]
            p = float(self.config["probabilities"][dp - 1])
            act, draw = (mrt_draw(key.secret, self.trial.name, data["participant"], dp, p)
                         if data["available"] else (0, None))
            out.append({"row": row.seq, "participant": data["participant"], "decision_point": dp,
                        "expected": {"action": act, "draw": draw, "probability": p},
                        "logged": {k: data[k] for k in ("action", "draw", "probability")}})
        return out
