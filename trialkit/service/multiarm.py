"""Multi-arm trials in the live service: enrolment, corrections, unblinding, reports and replay.

Adaptive designs allocate participants to arms; factorial designs allocate them to conditions
(each condition is an "arm" here, reported with its factor levels). Allocation is the pure rule of
:mod:`trialkit.randomise.history`; its state is sealed under the key with every write.

In a blinded trial nothing stored without the key reveals an arm: the participants table and the
audit log hold a code (an HMAC of the participant and the arm under the key), never the arm, a
uniform draw, a score or a block position.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from trialkit.errors import Conflict, InvalidInput, NotFound, Tampered
from trialkit.randomise import KeyedStream, arm_from_uniform, block_sequence, keyed_code
from trialkit.randomise.guessing import allocation_guess_rate
from trialkit.randomise.history import (
    Allocation,
    AllocationRule,
    AllocationState,
    advance,
    allocate_all,
    next_allocation,
)
from trialkit.service import identity
from trialkit.service.audit import AuditRow, canonical, check_row, receipt
from trialkit.service.keys import TrialKey
from trialkit.service.kinds import TrialKind, compare_table
from trialkit.service.store import ParticipantRecord, utc_now


class MultiArmKind(TrialKind):
    """Participants enrolled once each, allocated to one of several arms."""

    actions = frozenset({"enrol", "mark_error", "unblind", "allocation_table", "lookup"})
    word = "arm"
    rule: AllocationRule

    def __init__(self, trial: Any):
        super().__init__(trial)
        self.rule = AllocationRule.from_config(self.config)
        self.groups = [str(g) for g in self.config["groups"]]
        self.blinded = bool(self.config["blinded"])

    # -- presentation ------------------------------------------------------------------------
    def label(self, arm: int) -> Any:
        """Return the arm's name as reported."""
        return self.groups[arm]

    def describe(self, arm: int) -> dict[str, Any]:
        """Extra result fields for an arm (a factorial condition's factor levels)."""
        return {}

    def allocation_text(self, key: TrialKey, participant: str, arm: int) -> str:
        """Return what is stored and returned: the arm's name, or its code in a blinded trial."""
        if self.blinded:
            return keyed_code(key.secret, self.trial.name, participant, arm)
        return self.groups[arm]

    def decode(self, key: TrialKey, record: ParticipantRecord) -> int:
        """Return the arm of an enrolment (its code is decoded with the key in a blinded trial)."""
        if record.arm is not None:
            return record.arm
        for arm in range(len(self.groups)):
            if keyed_code(key.secret, self.trial.name, record.participant, arm) == \
                    record.allocation:
                return arm
        raise Tampered(f"the code of participant {identity.shown(record.participant)} matches no "
                       "arm with the key — the participants table was edited; run verify")

    def check_strata(self, strata: Mapping[str, Any] | None) -> tuple[dict[str, str], str]:
        """Validate ``strata`` against the design; return them in order and the stratum label."""
        given: dict[str, str] = {}
        for k, v in (strata or {}).items():
            name = identity.clean_text(k, "stratum name", identifier=True, max_length=100,
                                       param="strata")
            given[name] = identity.clean_text(v, f"value of stratum {name!r}", identifier=True,
                                              max_length=100, param="strata")
        levels = self.rule.strata
        for name in given:
            if name not in levels:
                allowed = ", ".join(levels) if levels else "none (this trial is not stratified)"
                raise InvalidInput(f"stratum {identity.shown(name)} is unknown — strata of trial "
                                   f"{self.trial.name!r}: {allowed}", param="strata")
        for name, values in levels.items():
            if name not in given:
                raise InvalidInput(f"stratum {name!r} is missing — give {name}=VALUE (one of: "
                                   f"{', '.join(values)})", param="strata")
            if given[name] not in values:
                raise InvalidInput(f"stratum {name}={identity.shown(given[name])} is not an "
                                   f"allowed value — use one of: {', '.join(values)}",
                                   param="strata")
        ordered = {name: given[name] for name in levels}
        return ordered, self.rule.stratum_label(ordered)

    def result(self, record: ParticipantRecord, new: bool, receipt_text: str,
               logged: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Return the enrolment result returned to the caller (the ``enrol`` JSON contract).

        ``logged`` is the enrolment's audit payload (a kind may report more of it).
        """
        out: dict[str, Any] = {
            "trial": self.trial.name,
            "participant": record.participant,
            "allocation": record.allocation if record.arm is None else self.label(record.arm),
            "sequence": record.sequence,
            "new": new,
            "stratum": stored_strata(record),
            "blinded": self.blinded,
            "enrolled_at": record.enrolled_at,
        }
        if record.arm is not None:
            out.update(self.describe(record.arm))
        if record.error:
            out["marked_error"] = True
        out.update(self.result_extra(record, logged or {}))
        out["receipt"] = receipt_text
        return out

    def result_extra(self, record: ParticipantRecord,
                     logged: Mapping[str, Any]) -> dict[str, Any]:
        """Return more enrolment result fields from the audit payload (none here)."""
        return {}

    def allocation_extra(self, alloc: Allocation) -> dict[str, Any]:
        """Return more fields for an enrolment's audit payload (none here)."""
        return {}

    def check_open(self, state: AllocationState) -> None:
        """Refuse a new enrolment the trial's state does not allow (every one is allowed here)."""

    # -- enrolment ---------------------------------------------------------------------------
    def enrol(self, participant: Any, strata: Any, user: str | None) -> dict[str, Any]:
        """Enrol ``participant`` once (see :meth:`Trial.enrol`)."""
        pid = identity.participant_id(participant)
        strata, label = self.check_strata(strata)
        known = self.store.participant(self.trial.name, pid)
        if known is not None:
            return self._repeat(known, strata, self.trial.key())
        with self.trial.transaction(user) as tx:
            known = self.store.participant(self.trial.name, pid)
            if known is not None:
                return self._repeat(known, strata, tx.key)
            state = tx.allocation_state()
            self.check_open(state)
            alloc = next_allocation(self.rule, tx.key.secret, self.trial.name, state, strata)
            tx.state = advance(self.rule, state, strata, alloc)
            record, row, payload = self._store_allocation(tx, pid, strata, label, alloc)
            tx.n_enrolled = alloc.sequence
            return self.result(record, True, tx.receipt(row), payload)

    def _store_allocation(self, tx: Any, pid: str, strata: dict[str, str], label: str,
                          alloc: Allocation
                          ) -> tuple[ParticipantRecord, AuditRow, dict[str, Any]]:
        text = self.allocation_text(tx.key, pid, alloc.arm)
        at = utc_now()
        payload = {"participant": pid, "sequence": alloc.sequence, "strata": strata,
                   "allocation": text, **self.allocation_extra(alloc)}
        row = tx.log("enrol", payload, at)
        record = ParticipantRecord(pid, alloc.sequence, label, canonical(strata),
                                   alloc.stratum_seq, None if self.blinded else alloc.arm, text,
                                   at, tx.who, 0, None, row.seq)
        self.store.insert_participant(self.trial.name, record)
        return record, row, payload

    def _checked_row(self, record: ParticipantRecord, key: TrialKey) -> AuditRow:
        """Return the audit row of an enrolment, checked with the key against the stored record."""
        row = (self.store.audit_row(self.trial.name, record.audit_seq)
               if record.audit_seq is not None else None)
        ok = row is not None and row.action == "enrol" and check_row(key, row)
        if ok and row is not None:
            data = row.data()
            ok = (data["participant"] == record.participant and data["sequence"] ==
                  record.sequence and data["allocation"] == record.allocation and
                  (record.arm is None) == self.blinded and
                  (record.arm is None or self.groups[record.arm] == record.allocation))
        if not ok or row is None:
            raise Tampered(f"the enrolment of participant {identity.shown(record.participant)} "
                           "does not match its authenticated audit row — the store was edited "
                           "outside trialkit; run verify with the key file")
        return row

    def _repeat(self, known: ParticipantRecord, strata: dict[str, str],
                key: TrialKey) -> dict[str, Any]:
        if known.strata != canonical(strata):
            given = self.rule.stratum_label(strata)
            raise Conflict(f"participant {identity.shown(known.participant)} is already enrolled "
                           f"in stratum {known.stratum or '(none)'}, not {given} — a participant "
                           "is enrolled once; give the original stratum", param="strata")
        row = self._checked_row(known, key)
        return self.result(known, False, receipt(key, row.seq, row.hash), row.data())

    def lookup(self, participant: Any) -> dict[str, Any]:
        """Return an enrolment as ``enrol`` returned it (``"new": false``); enrol nobody."""
        record = self._enrolled(identity.participant_id(participant))
        return self._repeat(record, stored_strata(record), self.trial.key())

    def _enrolled(self, pid: str) -> ParticipantRecord:
        record = self.store.participant(self.trial.name, pid)
        if record is None:
            raise NotFound(f"participant {identity.shown(pid)} is not enrolled in trial "
                           f"{self.trial.name!r} — check the id", param="participant")
        return record

    # -- corrections and unblinding ------------------------------------------------------------
    def mark_error(self, participant: Any, reason: Any, user: str | None) -> dict[str, Any]:
        """Flag an enrolment as made in error; nothing is deleted."""
        pid = identity.participant_id(participant)
        why = identity.reason_text(reason, "reason for the correction")
        with self.trial.transaction(user) as tx:
            record = self._enrolled(pid)
            if record.error:
                raise Conflict(f"participant {identity.shown(pid)} is already marked in error "
                               f"({identity.shown(record.error_reason)}) — nothing to do")
            self.store.set_error(self.trial.name, pid, why)
            row = tx.log("mark_error", {"participant": pid, "reason": why})
            return {"trial": self.trial.name, "participant": pid, "marked_error": True,
                    "reason": why, "receipt": tx.receipt(row)}

    def unblind(self, participant: Any, reason: Any, user: str | None) -> dict[str, Any]:
        """Reveal one participant's allocation; the log records who, when and why."""
        if not self.blinded:
            raise InvalidInput(f"trial {self.trial.name!r} is open-label: its allocations are "
                               "not concealed — nothing to unblind")
        pid = identity.participant_id(participant)
        why = identity.reason_text(reason, "reason for unblinding")
        with self.trial.transaction(user) as tx:
            record = self._enrolled(pid)
            self._checked_row(record, tx.key)
            arm = self.decode(tx.key, record)
            before = unblinded_participants(self.store.audit_rows(self.trial.name, "unblind"),
                                            [], [])
            row = tx.log("unblind", {"participant": pid, "reason": why})
            out = {"trial": self.trial.name, "participant": pid, "allocation": self.label(arm),
                   "reason": why, "first_time": pid not in before, **self.describe(arm),
                   "receipt": tx.receipt(row)}
        return out

    def allocation_table(self, n_per_stratum: int, user: str | None) -> list[dict[str, Any]]:
        """Return a REDCap-compatible allocation table from a stream separate from live allocations.

        Values are REDCap raw codes: the 1-based group (arm or condition) number and the 1-based
        level number of each stratum. The export is logged.
        """
        if self.rule.method == "minimisation":
            raise InvalidInput("minimisation depends on earlier participants and cannot be "
                               "tabulated in advance — use the live service, or permuted blocks")
        n = identity.whole_number(n_per_stratum, "rows per stratum", 1, 1_000_000, "rows")
        key = self.trial.key()
        out = allocation_table_rows(self.rule, key.secret, self.trial.name, n)
        with self.trial.transaction(user) as tx:
            tx.log("allocation_table", {"rows_per_stratum": n, "rows": len(out)})
        return out

    # -- reports -----------------------------------------------------------------------------
    def group_key(self, group: str) -> str:
        """Return the status column of a group."""
        return group

    def status(self) -> dict[str, Any]:
        """Return counts per arm and stratum (not when blinded), CONSORT counts, predictability."""
        out = self.base_status()
        records = self.store.participants(self.trial.name)
        out.update({"method": self.rule.method, "blinded": self.blinded,
                    "enrolled": len(records)})
        counts = {label: [0] * len(self.groups) for label in
                  sorted({r.stratum for r in records})}
        for r in records:
            if r.arm is not None:
                counts[r.stratum][r.arm] += 1
        out["strata"] = [self._stratum_status(label, c, records) for label, c in counts.items()]
        if not self.blinded:
            total = [sum(c[j] for c in counts.values()) for j in range(len(self.groups))]
            out["imbalance"] = _imbalance(total, self.rule.ratio) if records else 0.0
            out["groups"] = [{self.word: self.label(j), "ratio": r, "enrolled": n}
                             for j, (r, n) in enumerate(zip(self.rule.ratio, total, strict=True))]
        n_error = sum(1 for r in records if r.error)
        revealed = unblinded_participants(self.store.audit_rows(self.trial.name, "unblind"),
                                          self.store.audit_rows(self.trial.name, "unblind_export"),
                                          records)
        out["consort"] = {"randomised": len(records), "marked_error": n_error,
                          "included": len(records) - n_error, "unblinded": len(revealed)}
        out["predictability"] = allocation_guess_rate(self.config)
        return out

    def _stratum_status(self, label: str, counts: list[int],
                        records: Sequence[ParticipantRecord]) -> dict[str, Any]:
        rec: dict[str, Any] = {"stratum": label or "(all)",
                               "enrolled": sum(1 for r in records if r.stratum == label)}
        if not self.blinded:
            rec["imbalance"] = _imbalance(counts, self.rule.ratio)
            rec.update({self.group_key(g): c for g, c in zip(self.groups, counts, strict=True)})
        return rec

    def export_columns(self, with_key: bool) -> list[str]:
        """Return the export's columns, also when there are no rows yet."""
        cols = ["participant", "sequence"]
        if self.blinded:
            cols.append("code")
        if not self.blinded or with_key:
            cols += self.arm_columns()
        return [*cols, *self.rule.strata, "enrolled_at", "marked_error", "error_reason"]

    def arm_columns(self) -> list[str]:
        """Return the columns that show an arm."""
        return ["arm"]

    def arm_values(self, arm: int) -> dict[str, Any]:
        """Return the export values of an arm."""
        return {"arm": self.groups[arm]}

    def export_rows(self, key_file: str | None, reason: str | None,
                    user: str | None) -> list[dict[str, Any]]:
        """Analysis-ready rows; a blinded trial's arms need the key and a reason (logged)."""
        if not (self.blinded and key_file):
            with self.store.snapshot():
                ctx = self.export_context(None)
                return [self._export_row(r, None, ctx) for r in
                        self.store.participants(self.trial.name)]
        why = identity.reason_text(reason, "reason for an unblinded export")
        self.trial.use_key(key_file)
        with self.trial.transaction(user) as tx:
            records = self.store.participants(self.trial.name)
            ctx = self.export_context(tx.key)
            rows = [self._export_row(r, tx.key, ctx) for r in records]
            tx.log("unblind_export", {"reason": why, "participants": len(records),
                                      "through_sequence": records[-1].sequence if records else 0})
        return rows

    def export_context(self, key: TrialKey | None) -> dict[str, Any]:
        """Read what every export row needs besides its participant (nothing here)."""
        return {}

    def export_extra(self, record: ParticipantRecord, arm: int | None,
                     ctx: Mapping[str, Any]) -> dict[str, Any]:
        """Return a kind's further columns of one export row (none here)."""
        return {}

    def _export_row(self, record: ParticipantRecord, key: TrialKey | None,
                    ctx: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"participant": record.participant, "sequence": record.sequence}
        if self.blinded:
            out["code"] = record.allocation
        arm = record.arm if key is None else self.decode(key, record)
        if arm is not None:
            out.update(self.arm_values(arm))
        out.update(stored_strata(record))
        out.update({"enrolled_at": record.enrolled_at, "marked_error": int(record.error),
                    "error_reason": record.error_reason})
        out.update(self.export_extra(record, arm, ctx))
        return out

    # -- verification --------------------------------------------------------------------------
    def cross_check(self, rows: Sequence[AuditRow]) -> tuple[int | None, str]:
        """Compare the participants table with the enrolments and corrections in the log."""
        return compare_table(self.store.participants(self.trial.name),
                             self._expected_records(rows), lambda r: r.participant,
                             lambda pid: f"participant {identity.shown(pid)}", "participants")

    def _expected_records(self, rows: Sequence[AuditRow]
                          ) -> dict[str, tuple[int, ParticipantRecord]]:
        errors = {r.data()["participant"]: r.data()["reason"] for r in rows
                  if r.action == "mark_error"}
        per_stratum: dict[str, int] = {}
        out: dict[str, tuple[int, ParticipantRecord]] = {}
        for row in rows:
            if row.action != "enrol":
                continue
            data = row.data()
            pid, strata = data["participant"], data["strata"]
            label = self.rule.stratum_label(strata) if set(strata) == set(self.rule.strata) \
                else "?"
            per_stratum[label] = per_stratum.get(label, 0) + 1
            arm = None if self.blinded else _index(self.groups, data["allocation"])
            out[pid] = (row.seq, ParticipantRecord(
                pid, data["sequence"], label, canonical(strata), per_stratum[label], arm,
                data["allocation"], row.at, row.who, int(pid in errors), errors.get(pid),
                row.seq))
        return out

    def replay(self, key: TrialKey, rows: Sequence[AuditRow]) -> list[dict[str, Any]]:
        """Recompute every enrolment's allocation from the key and the logged strata."""
        enrolments = [(row, row.data()) for row in rows if row.action == "enrol"]
        allocations, _ = allocate_all(self.rule, key.secret, self.trial.name,
                                      [data["strata"] for _, data in enrolments])
        out = []
        for (row, data), alloc in zip(enrolments, allocations, strict=True):
            out.append({"row": row.seq, "participant": data["participant"],
                        "sequence": alloc.sequence, "arm": alloc.arm,
                        "label": self.groups[alloc.arm], "detail": alloc.detail,
                        "expected": {"allocation": self.allocation_text(
                            key, data["participant"], alloc.arm), "sequence": alloc.sequence},
                        "logged": {"allocation": data["allocation"],
                                   "sequence": data["sequence"]}})
        return out

    def final_state(self, key: TrialKey, rows: Sequence[AuditRow]) -> AllocationState:
        """Return the allocation state after every logged enrolment."""
        strata = [row.data()["strata"] for row in rows if row.action == "enrol"]
        return allocate_all(self.rule, key.secret, self.trial.name, strata)[1]


class FactorialKind(MultiArmKind):
    """A factorial design: each condition is an arm, reported with its factor levels."""

    word = "condition"

    def label(self, arm: int) -> Any:  # noqa: D102
        return int(self.groups[arm])

    def describe(self, arm: int) -> dict[str, Any]:  # noqa: D102
        return {"condition": dict(zip(self.config["factor_names"], self.config["conditions"][arm],
                                      strict=True))}

    def group_key(self, group: str) -> str:  # noqa: D102
        return f"condition_{group}"

    def arm_columns(self) -> list[str]:  # noqa: D102
        return ["condition", *self.config["factor_names"]]

    def arm_values(self, arm: int) -> dict[str, Any]:  # noqa: D102
        return {"condition": arm + 1, **self.describe(arm)["condition"]}


def stored_strata(record: ParticipantRecord) -> dict[str, str]:
    """Return the stored strata of an enrolment."""
    import json

    return json.loads(record.strata)


def unblinded_participants(unblind_rows: Sequence[AuditRow], export_rows: Sequence[AuditRow],
                           records: Sequence[ParticipantRecord]) -> set[str]:
    """Participants whose allocation was revealed, one by one or by an unblinded export."""
    out = {row.data()["participant"] for row in unblind_rows}
    through = max((row.data()["through_sequence"] for row in export_rows), default=0)
    out |= {r.participant for r in records if r.sequence <= through}
    return out


def allocation_table_rows(rule: AllocationRule, key: bytes, trial: str,
                          n: int) -> list[dict[str, Any]]:
    """``n`` rows per stratum of a REDCap allocation table, from streams of their own."""
    names = list(rule.strata)
    out = []
    for combo in itertools.product(*(range(len(rule.strata[k])) for k in names)):
        label = "redcap|" + ";".join(f"{k}={rule.strata[k][i]}"
                                     for k, i in zip(names, combo, strict=True))
        if rule.method == "blocks":
            seq = [a for a, _, _ in block_sequence(key, trial, label, n, rule.block_sizes,
                                                  rule.ratio)]
        else:
            stream = KeyedStream(key, "complete", trial, label)
            seq = [arm_from_uniform(stream.uniform(), rule.ratio) for _ in range(n)]
        for arm in seq:
            rec = {"randomization_group": arm + 1}
            rec.update({k: i + 1 for k, i in zip(names, combo, strict=True)})
            out.append(rec)
    return out


def _imbalance(counts: Sequence[int], ratio: Sequence[int]) -> float:
    scaled = [c / r for c, r in zip(counts, ratio, strict=True)]
    return max(scaled) - min(scaled)


def _index(groups: Sequence[str], allocation: Any) -> int | None:
    return groups.index(allocation) if allocation in groups else None
