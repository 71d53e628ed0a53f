"""Live adaptive trials: outcomes in, interim analyses, allocation by probabilities, stopping.

An adaptive design whose allocation method is ``adaptive`` (the default for adaptive designs)
runs live as it was simulated. Each enrolment draws a keyed uniform against the allocation
probabilities in force (:func:`trialkit.randomise.history.next_allocation`, with the simulator's
rule :func:`trialkit.stats.arms_from_uniforms`). Outcomes are recorded once per participant
(corrections need a reason). An interim analysis, due when the design's next ``looks.data``
count of participants have outcomes, runs :func:`trialkit.adaptive.live.live_look` — the
simulator's look function with a batch of one trial — and its result is logged; the new
probabilities, the number of looks done and why the trial stopped (if it did) are kept in the
sealed allocation state. Before each look the design randomises at most its ``looks.randomised``
count, as the simulator does; once the trial has stopped nobody more is randomised.

``verify`` replays the whole history with the key: every allocation, and every interim
recomputed from the outcomes logged before it.

In a blinded trial the interim results (per-arm counts, posteriors, probabilities) are logged
sealed under the key, and enrolment payloads carry the look number but not the probabilities.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from trialkit.errors import Conflict, InvalidInput, ServiceError, Tampered
from trialkit.randomise.history import (
    Allocation,
    AllocationState,
    advance,
    next_allocation,
)
from trialkit.service import identity
from trialkit.service.audit import AuditRow, canonical, check_chain
from trialkit.service.keys import TrialKey, seal, unseal
from trialkit.service.kinds import compare_table
from trialkit.service.multiarm import MultiArmKind
from trialkit.service.store import OutcomeRecord, ParticipantRecord

#: The name under which an adaptive trial's one outcome per participant is stored.
OUTCOME = "outcome"
#: Outcome values beyond this magnitude are refused as absurd.
MAX_VALUE = 1e12
#: Floating-point tolerance when verification compares a recomputed interim with the logged one.
TOLERANCE = 1e-12
OUTCOME_ACTIONS = ("outcome", "outcome_correction")
#: How far in the future an observation time may lie (clock differences).
_SLACK = timedelta(minutes=5)


class AdaptiveKind(MultiArmKind):
    """An adaptive design run live: response-adaptive allocation, outcomes and interims."""

    actions = MultiArmKind.actions | {"outcome", "interim", "looks"}

    def __init__(self, trial: Any):
        super().__init__(trial)
        self._spec: Any = None

    @property
    def spec(self) -> Any:
        """Return the trial's :class:`~trialkit.adaptive.spec.TrialSpec` (from its design)."""
        if self._spec is None:
            from trialkit.adaptive.spec import setup_trial
            from trialkit.design import loads_design

            design = loads_design(self.trial.record.design_text,
                                  f"<design of trial {self.trial.name}>")
            self._spec = setup_trial(design)
        return self._spec

    # -- enrolment -----------------------------------------------------------------------------
    def check_open(self, state: AllocationState) -> None:
        """Refuse enrolment once stopped, and beyond the design's count before the next look.

        Enrolments marked in error do not count: each can be replaced.
        """
        if state.stopped:
            raise Conflict(f"{self._stopped(state)} — nobody more is randomised")
        spec = self.spec
        limit = spec.randomised_at_looks[state.looks]
        if state.sequence - self.store.error_count(self.trial.name) >= limit:
            need = spec.data_looks[state.looks]
            raise Conflict(f"the design randomises {limit} participants before look "
                           f"{state.looks + 1} and all are randomised — record outcomes until "
                           f"{need} participants have one, run the interim analysis, then enrol")

    def _stopped(self, state: AllocationState) -> str:
        from trialkit.adaptive.live import STOP_REASONS

        return (f"trial {self.trial.name!r} stopped at look {state.looks} "
                f"({STOP_REASONS[state.stopped]})")

    def allocation_extra(self, alloc: Allocation) -> dict[str, Any]:
        """Log the look number (and, open-label, the probabilities in force) with an enrolment."""
        out: dict[str, Any] = {"look": alloc.detail["look"]}
        if not self.blinded:
            out["probabilities"] = alloc.detail["probabilities"]
        return out

    def result_extra(self, record: ParticipantRecord,
                     logged: Mapping[str, Any]) -> dict[str, Any]:
        """Report the look number and, open-label, the probability of the arm given."""
        out: dict[str, Any] = {"look": logged.get("look")}
        probs = logged.get("probabilities")
        if probs is not None and record.arm is not None:
            out["probability"] = probs[record.arm]
        return out

    # -- outcomes ------------------------------------------------------------------------------
    def record_outcomes(self, items: Sequence[Mapping[str, Any]],
                        user: str | None) -> list[dict[str, Any]]:
        """Record outcomes (participant, value, observed_at, reason): all of them or none."""
        if not items:
            raise InvalidInput("no outcomes were given — give at least one", param="value")
        with self.trial.transaction(user) as tx:
            out = []
            for i, item in enumerate(items, start=1):
                try:
                    out.append(self._record_one(tx, item))
                except ServiceError as exc:
                    if len(items) == 1:
                        raise
                    raise type(exc)(f"outcome {i}: {exc} (nothing was recorded)",
                                    param=exc.param) from None
            return out

    def _record_one(self, tx: Any, item: Mapping[str, Any]) -> dict[str, Any]:
        if item.get("decision_point") is not None:
            raise InvalidInput("an adaptive trial has one outcome per participant, not per "
                               "decision point — drop the decision point",
                               param="decision_point")
        pid = identity.participant_id(item.get("participant"))
        record = self._enrolled(pid)
        if record.error:
            raise Conflict(f"participant {identity.shown(pid)} is marked in error "
                           f"({identity.shown(record.error_reason)}) — no outcome is recorded "
                           "for an enrolment made in error", param="participant")
        value = outcome_value(item.get("value"), self.spec.binary)
        observed = observed_time(item.get("observed_at"), record.enrolled_at)
        known = self.store.outcome(self.trial.name, pid, OUTCOME)
        payload: dict[str, Any] = {"participant": pid, "outcome": OUTCOME, "value": value,
                                   "observed_at": observed}
        reason = item.get("reason")
        if known is not None:
            if reason is None:
                raise Conflict(f"participant {identity.shown(pid)} already has outcome "
                               f"{known.value:g} (recorded {known.recorded_at}) — a correction "
                               "needs a reason", param="reason")
            payload.update(previous=known.value,
                           reason=identity.reason_text(reason, "reason for the correction"))
        elif reason is not None:
            raise InvalidInput(f"participant {identity.shown(pid)} has no outcome yet — a reason "
                               "is for correcting one; leave it out", param="reason")
        row = tx.log("outcome_correction" if known else "outcome", payload)
        corrections = known.corrections + 1 if known else 0
        self.store.put_outcome(self.trial.name, OutcomeRecord(
            pid, OUTCOME, 0, value, observed, row.at, tx.who, corrections, row.seq))
        return {"trial": self.trial.name, "participant": pid, "value": value,
                "observed_at": observed, "recorded_at": row.at, "corrected": known is not None,
                "receipt": tx.receipt(row)}

    # -- interim analyses ----------------------------------------------------------------------
    def interim(self, user: str | None) -> dict[str, Any]:
        """Run the next interim analysis if it is due; log it and apply its decisions."""
        from trialkit.adaptive.live import live_look

        with self.trial.transaction(user) as tx:
            state = tx.allocation_state()
            if state.stopped:
                raise Conflict(f"{self._stopped(state)} — there is no further look")
            look = state.looks
            need = self.spec.data_looks[look]
            have = self._outcome_count()
            if have < need:
                raise InvalidInput(f"look {look + 1} is not due: it needs outcomes of {need} "
                                   f"participants and {have} are recorded ({need - have} more)")
            arms, values, previous = self._analysed(tx)
            res = live_look(self.spec, look, arms, values, previous,
                            look_seed(tx.key, self.trial.name, look))
            result = json.loads(canonical(res.to_dict()))
            row = tx.log("interim", self._sealed(tx.key, result))
            tx.state = self._after(state, res.probabilities, res.stop_code)
            return {"trial": self.trial.name, **result, "receipt": tx.receipt(row)}

    def _after(self, state: AllocationState, probs: Sequence[float] | None,
               stop_code: int) -> AllocationState:
        new = tuple(float(p) for p in probs) if probs else (0.0,) * len(self.groups)
        return replace(state, probs=new, looks=state.looks + 1, stopped=stop_code)

    def _analysed(self, tx: Any) -> tuple[list[int], list[float], dict[str, Any] | None]:
        """Return, from the authenticated log, what the next look analyses.

        The arm and outcome of every participant with an outcome (not marked in error), in
        enrolment order, and the arms' state after the previous look. The whole audit chain is
        checked with the key first, so a look never rests on an edited table or row.
        """
        rows = self.store.audit_rows(self.trial.name)
        bad, problem = check_chain(rows, tx.n_audit, tx.last_hash, tx.key)
        if problem:
            raise Tampered(f"the audit log of trial {self.trial.name!r} does not verify with its "
                           f"key ({problem}); nothing was written — run verify")
        folded = _Outcomes()
        arm_of: dict[str, tuple[int, int]] = {}
        previous = None
        for row in rows:
            folded.add(row)
            if row.action == "enrol":
                data = row.data()
                arm_of[data["participant"]] = (data["sequence"], self._logged_arm(tx.key, data))
            elif row.action == "interim":
                previous = self.opened(tx.key, row)["state"]
        pids = folded.analysed(arm_of)
        return [arm_of[p][1] for p in pids], [folded.values[p] for p in pids], previous

    def _logged_arm(self, key: TrialKey, data: Mapping[str, Any]) -> int:
        text = data["allocation"]
        if not self.blinded:
            return self.groups.index(text)
        for arm in range(len(self.groups)):
            if self.allocation_text(key, data["participant"], arm) == text:
                return arm
        raise Tampered(f"the logged code of participant {identity.shown(data['participant'])} "
                       "matches no arm with the key — run verify")

    def _sealed(self, key: TrialKey, result: dict[str, Any]) -> dict[str, Any]:
        if not self.blinded:
            return result
        return {"look": result["look"],
                "sealed": seal(key, _look_context(self.trial.name, result["look"]),
                               canonical(result).encode("utf-8"))}

    def opened(self, key: TrialKey | None, row: AuditRow) -> dict[str, Any]:
        """Return an interim row's result (a blinded trial's needs the key)."""
        data = row.data()
        if "sealed" not in data:
            return data
        if key is None:
            raise InvalidInput(f"trial {self.trial.name!r} is blinded: its interim results are "
                               "sealed — give the key file", param="key_file")
        return json.loads(unseal(key, _look_context(self.trial.name, data["look"]),
                                 data["sealed"]))

    def looks(self, key: TrialKey | None) -> list[dict[str, Any]]:
        """Return every interim analysis logged so far, in order."""
        return [self.opened(key, row) for row in self.store.audit_rows(self.trial.name, "interim")]

    # -- reports -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Add the looks done, probabilities, arms and stopping state (open-label in full)."""
        out = super().status()
        rows = self.store.audit_rows(self.trial.name, "interim")
        spec = self.spec
        info: dict[str, Any] = {
            "looks_done": len(rows), "looks_planned": spec.n_looks,
            "start_probabilities": dict(zip(self.groups, spec.start_probs, strict=True))}
        if self.blinded:
            info["note"] = ("a blinded trial's interim results are sealed — the interim "
                            "command with the key shows them")
            out["adaptive"] = info
            return out
        looks = [row.data() for row in rows]
        last = looks[-1] if looks else None
        probs = last["probabilities"] if last else list(spec.start_probs)
        stopped = bool(last and last["stopped"])
        n_outcomes = self._outcome_count()
        info.update({
            "stopped": stopped, "stop_reason": last["stop_reason"] if last else None,
            "superior": last["superior"] if last else None,
            "control": last["control"] if last else (spec.arms[spec.control]
                                                     if spec.control >= 0 else None),
            "probabilities": dict(zip(self.groups, probs or [0.0] * len(self.groups),
                                      strict=True)),
            "arms": [{"arm": a["arm"], "status": a["status"], "active": a["active"]}
                     for a in last["arms"]] if last else
                    [{"arm": g, "status": "active", "active": True} for g in self.groups],
            "outcomes": n_outcomes,
            "next_look": None if stopped else {
                "look": len(looks) + 1, "needs_outcomes": spec.data_looks[len(looks)],
                "randomised_limit": spec.randomised_at_looks[len(looks)]},
            "history": [{"look": lk["look"], "participants_with_outcomes":
                         lk["participants_with_outcomes"],
                         "p_best": {a["arm"]: a["p_best"] for a in lk["arms"]},
                         "probabilities": lk["probabilities"]} for lk in looks],
        })
        out["adaptive"] = info
        if probs:
            from trialkit.randomise.guessing import allocation_guess_rate

            out["predictability"] = allocation_guess_rate({**self.config, "probabilities": probs})
        return out

    def _outcome_count(self) -> int:
        errors = {r.participant for r in self.store.participants(self.trial.name) if r.error}
        return sum(1 for o in self.store.outcomes(self.trial.name)
                   if o.outcome == OUTCOME and o.participant not in errors)

    def export_columns(self, with_key: bool) -> list[str]:
        """Add the look, probabilities in force and the outcome to the export's columns."""
        cols = super().export_columns(with_key) + ["look"]
        if not self.blinded or with_key:
            cols += ["allocation_probability", *(f"p_{g}" for g in self.groups)]
        return cols + ["outcome", "outcome_observed_at", "outcome_recorded_at",
                       "outcome_corrections"]

    def export_context(self, key: TrialKey | None) -> dict[str, Any]:
        """Read what every export row needs: looks, probabilities per look, outcomes."""
        enrol_looks = {r.data()["participant"]: r.data()["look"]
                       for r in self.store.audit_rows(self.trial.name, "enrol")}
        probs: list[list[float] | None] = [list(self.spec.start_probs)]
        if not self.blinded or key is not None:
            probs += [lk["probabilities"] for lk in self.looks(key)]
        outcomes = {o.participant: o for o in self.store.outcomes(self.trial.name)
                    if o.outcome == OUTCOME}
        return {"looks": enrol_looks, "probs": probs, "outcomes": outcomes,
                "arms_shown": not self.blinded or key is not None}

    def export_extra(self, record: ParticipantRecord, arm: int | None,
                     ctx: Mapping[str, Any]) -> dict[str, Any]:
        """Return the adaptive columns of one export row."""
        look = ctx["looks"].get(record.participant)
        out: dict[str, Any] = {"look": look}
        if ctx["arms_shown"]:
            probs = ctx["probs"][look] if look is not None and look < len(ctx["probs"]) else None
            out["allocation_probability"] = probs[arm] if probs and arm is not None else None
            out.update({f"p_{g}": probs[j] if probs else None
                        for j, g in enumerate(self.groups)})
        o = ctx["outcomes"].get(record.participant)
        out.update({"outcome": o.value if o else None,
                    "outcome_observed_at": o.observed_at if o else None,
                    "outcome_recorded_at": o.recorded_at if o else None,
                    "outcome_corrections": o.corrections if o else None})
        return out

    # -- verification --------------------------------------------------------------------------
    def cross_check(self, rows: Sequence[AuditRow]) -> tuple[int | None, str]:
        """Also compare the outcomes table with the outcomes in the log."""
        bad, problem = super().cross_check(rows)
        if problem:
            return bad, problem
        expected: dict[str, tuple[int, OutcomeRecord]] = {}
        for row in rows:
            if row.action in OUTCOME_ACTIONS:
                d = row.data()
                before = expected.get(d["participant"])
                expected[d["participant"]] = (row.seq, OutcomeRecord(
                    d["participant"], d["outcome"], 0, d["value"], d["observed_at"], row.at,
                    row.who, before[1].corrections + 1 if before else 0, row.seq))
        return compare_table(self.store.outcomes(self.trial.name), expected,
                             lambda r: r.participant,
                             lambda pid: f"the outcome of participant {identity.shown(pid)}",
                             "outcomes")

    def replay(self, key: TrialKey, rows: Sequence[AuditRow]) -> list[dict[str, Any]]:
        """Replay every allocation and recompute every interim from the logged outcomes."""
        return _Replay(self, key).run(rows)[0]

    def final_state(self, key: TrialKey, rows: Sequence[AuditRow]) -> AllocationState:
        """Return the allocation state after the whole logged history."""
        return _Replay(self, key).run(rows)[1]

    def check_replay(self, key: TrialKey, rows: Sequence[AuditRow]
                     ) -> tuple[int | None, str, int]:
        """Replay and compare with the log, interims to a relative tolerance of 1e-12."""
        results = self.replay(key, rows)
        for r in results:
            if r.get("look") is not None and r["participant"] is None:
                where = same(r["expected"], r["logged"])
                if where is not None:
                    return r["row"], (f"audit row {r['row']} (interim look {r['look']}) does not "
                                      "replay: the outcomes logged before it give a different "
                                      f"{where}"), len(results)
            elif r["expected"] != r["logged"]:
                return r["row"], (f"audit row {r['row']} (participant "
                                  f"{identity.shown(r['participant'])}) does not replay: the key "
                                  "gives a different allocation"), len(results)
        return None, "", len(results)


class _Replay:
    """The logged history of an adaptive trial folded through the live rules, row by row."""

    def __init__(self, kind: AdaptiveKind, key: TrialKey):
        self.kind, self.key = kind, key
        self.state = AllocationState.initial(kind.rule)
        self.arm_of: dict[str, tuple[int, int]] = {}
        self.folded = _Outcomes()
        self.previous: dict[str, Any] | None = None

    def run(self, rows: Sequence[AuditRow]) -> tuple[list[dict[str, Any]], AllocationState]:
        """Return the replayed entries (allocations and interims) and the final state."""
        out = []
        for row in rows:
            self.folded.add(row)
            if row.action == "enrol":
                out.append(self._enrol(row))
            elif row.action == "interim":
                out.append(self._interim(row))
        return out, self.state

    def _enrol(self, row: AuditRow) -> dict[str, Any]:
        kind, data = self.kind, row.data()
        pid = data["participant"]
        logged = {"allocation": data["allocation"], "sequence": data["sequence"],
                  **{k: data.get(k) for k in ("look", "probabilities") if k in data}}
        try:
            alloc = next_allocation(kind.rule, self.key.secret, kind.trial.name, self.state,
                                    data["strata"])
        except ValueError:
            return {"row": row.seq, "participant": pid, "expected": {"allocation": None},
                    "logged": logged}
        self.state = advance(kind.rule, self.state, data["strata"], alloc)
        self.arm_of[pid] = (alloc.sequence, alloc.arm)
        expected = {"allocation": kind.allocation_text(self.key, pid, alloc.arm),
                    "sequence": alloc.sequence, **kind.allocation_extra(alloc)}
        return {"row": row.seq, "participant": pid, "sequence": alloc.sequence, "arm": alloc.arm,
                "label": kind.groups[alloc.arm], "detail": alloc.detail, "expected": expected,
                "logged": logged}

    def _interim(self, row: AuditRow) -> dict[str, Any]:
        from trialkit.adaptive.live import live_look

        kind = self.kind
        pids = self.folded.analysed(self.arm_of)
        look = self.state.looks
        logged = kind.opened(self.key, row)
        if self.state.stopped or look >= kind.spec.n_looks:
            return {"row": row.seq, "participant": None, "look": look + 1,
                    "expected": {"look": None}, "logged": logged}
        res = live_look(kind.spec, look, [self.arm_of[p][1] for p in pids],
                        [self.folded.values[p] for p in pids], self.previous,
                        look_seed(self.key, kind.trial.name, look))
        expected = json.loads(canonical(res.to_dict()))
        self.previous = expected["state"]
        self.state = kind._after(self.state, res.probabilities, res.stop_code)
        return {"row": row.seq, "participant": None, "look": look + 1, "expected": expected,
                "logged": logged}


class _Outcomes:
    """The outcomes and corrections in an audit log, and the enrolments marked in error."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.errors: set[str] = set()

    def add(self, row: AuditRow) -> None:
        """Fold one audit row in (rows of other actions are ignored)."""
        if row.action in OUTCOME_ACTIONS:
            data = row.data()
            self.values[data["participant"]] = data["value"]
        elif row.action == "mark_error":
            self.errors.add(row.data()["participant"])

    def analysed(self, arm_of: Mapping[str, tuple[int, int]]) -> list[str]:
        """Return the participants a look analyses, in enrolment order."""
        return sorted((p for p in self.values if p not in self.errors and p in arm_of),
                      key=lambda p: arm_of[p][0])


def look_seed(key: TrialKey, trial: str, look: int) -> int:
    """Return the seed of a look's posterior draws, derived from the key (replays exactly)."""
    digest = hmac.new(key.secret, f"interim-draws\x1f{trial}\x1f{look}".encode(),
                      hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


def _look_context(trial: str, look: int) -> str:
    return f"interim\x1f{trial}\x1f{look}"


def outcome_value(value: Any, binary: bool) -> float:
    """Return a valid outcome value: 0 or 1 for a binary outcome, a finite number otherwise."""
    kind = "binary (0 or 1)" if binary else "continuous"
    if isinstance(value, bool):
        value = int(value)
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise InvalidInput(f"outcome value {identity.shown(value)} is not a number — the outcome "
                           f"is {kind}", param="value") from None
    if not math.isfinite(number):
        raise InvalidInput(f"outcome value {value!r} is not finite — give a finite number",
                           param="value")
    if binary and number not in (0.0, 1.0):
        raise InvalidInput(f"outcome value {number:g} is not 0 or 1 — the outcome is binary",
                           param="value")
    if abs(number) > MAX_VALUE:
        raise InvalidInput(f"outcome value {number:g} is absurd (beyond ±10^12) — check the "
                           "value and its unit", param="value")
    return number


def observed_time(value: Any, enrolled_at: str) -> str | None:
    """Return an observation time (ISO 8601, UTC) checked against enrolment and now."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = identity.clean_text(value, "observation time", max_length=40, param="observed_at")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"observation time {identity.shown(text)} is not an ISO 8601 date or "
                           "time — e.g. 2026-03-01 or 2026-03-01T14:30:00Z",
                           param="observed_at") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    enrolled = datetime.fromisoformat(enrolled_at.replace("Z", "+00:00"))
    if when.date() < enrolled.date():
        raise InvalidInput(f"observation time {text} is before the participant's enrolment "
                           f"({enrolled_at}) — check the date", param="observed_at")
    if when > datetime.now(UTC).replace(microsecond=0) + _SLACK:
        raise InvalidInput(f"observation time {text} is in the future — check the date",
                           param="observed_at")
    return when.isoformat().replace("+00:00", "Z")


def same(expected: Any, logged: Any, where: str = "result") -> str | None:
    """Return the first place two interim results differ (floats to 1e-12), else ``None``."""
    if isinstance(expected, float) and isinstance(logged, float | int) and \
            not isinstance(logged, bool):
        ok = math.isclose(expected, logged, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
        return None if ok else where
    if isinstance(expected, dict) and isinstance(logged, dict):
        if set(expected) != set(logged):
            return where
        for k in expected:
            found = same(expected[k], logged[k], k)
            if found is not None:
                return found
        return None
    if isinstance(expected, list) and isinstance(logged, list):
        if len(expected) != len(logged):
            return where
        for a, b in zip(expected, logged, strict=True):
            found = same(a, b, where)
            if found is not None:
                return found
        return None
    return None if expected == logged else where

