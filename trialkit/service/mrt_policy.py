"""Adaptive MRTs in the live service: probabilities from a learning policy, updated online.

An MRT whose design has a ``[policy]`` decides each available decision point with the
probability :func:`trialkit.mrt.live.live_probability` gives from the posterior in force and the
point's context (the simulator's own policy function, with a batch of one), drawn with the keyed
uniform of a fixed-probability MRT (:func:`trialkit.randomise.mrt_draw`). The decision's audit row
logs its context, probability and policy version.

Proximal outcomes are recorded per decided, available decision point (the ``outcomes`` table with
``point`` = the decision point; corrections need a reason). A policy update refits the posterior
on every available decision with its outcome recorded, read from the audit log after the whole
chain was checked with the key, and logs the new posterior (version k) as a ``policy_update``
audit row: the next decision reads the last such row (its MAC checked). Updates happen on the
``policy-update`` command and by the design's schedule: before the first decision at a decision
point of a new stage (``(t − 1) // update_every``), inside that decision's transaction.

``verify`` replays the whole log: every probability from the posterior in force and the logged
context, every draw from the key, every update from the outcomes logged before it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from trialkit.errors import Conflict, InvalidInput, NotFound, ServiceError, Tampered
from trialkit.randomise import mrt_draw
from trialkit.service import identity
from trialkit.service.adaptive import (
    MAX_VALUE,
    OUTCOME_ACTIONS,
    observed_time,
    outcome_value,
    same,
)
from trialkit.service.audit import AuditRow, canonical, check_chain, check_row
from trialkit.service.keys import TrialKey
from trialkit.service.kinds import compare_table
from trialkit.service.mrt import MRT_COLUMNS, MrtKind
from trialkit.service.store import DecisionRecord, OutcomeRecord, utc_now


class AdaptiveMrtKind(MrtKind):
    """An MRT whose probabilities a learning policy sets: context in, outcomes in, updates."""

    actions = MrtKind.actions | {"outcome", "policy_update", "policy", "schedule"}
    replayed_word = "decision"

    def __init__(self, trial: Any):
        super().__init__(trial)
        self.settings: dict[str, Any] = self.config["policy"]
        self.names: list[str] = list(self.settings["context"])
        self._spec: Any = None

    @property
    def spec(self) -> Any:
        """Return the design's :class:`~trialkit.design.policy.PolicySpec` (from its text)."""
        if self._spec is None:
            from trialkit.design import loads_design

            design = loads_design(self.trial.record.design_text,
                                  f"<design of trial {self.trial.name}>")
            self._spec = getattr(design, "policy", None)
        return self._spec

    # -- decisions -----------------------------------------------------------------------------
    def check_decision(self, participant: Any, decision_point: Any, available: Any,
                       reason: Any, context: Any = None) -> tuple[Any, ...]:
        """Validate one decision request; an available decision point needs its context."""
        pid, dp, avail, why = self.check_request(participant, decision_point, available, reason)
        ctx = self.check_context(context, dp, required=avail)
        return pid, dp, avail, why, ctx

    def check_context(self, context: Any, dp: int, required: bool,
                      partial: bool = False) -> dict[str, float] | None:
        """Return the context values (policy order), or ``None`` when none is given."""
        if context is None or context == {}:
            if required:
                raise InvalidInput(f"decision point {dp} needs the context "
                                   f"{', '.join(self.names)} — give each as name=value",
                                   param="context")
            return None
        if not isinstance(context, Mapping):
            raise InvalidInput("the context is not a set of name=value pairs — give "
                               + ", ".join(f"{n}=…" for n in self.names), param="context")
        unknown = [k for k in context if k not in self.names]
        if unknown:
            raise InvalidInput(f"context variable {identity.shown(unknown[0])} is not one of "
                               f"the policy's: {', '.join(self.names)}", param="context")
        missing = [n for n in self.names if n not in context]
        if missing and not partial:
            raise InvalidInput(f"decision point {dp} is missing the context "
                               f"{', '.join(missing)} — give every one of "
                               f"{', '.join(self.names)}", param="context")
        return {n: context_value(n, context[n]) for n in self.names if n in context}

    def decide_many(self, rows: Sequence[Sequence[Any]], user: str | None) -> list[dict]:
        """Decide many decision points in one transaction; one bad row changes nothing."""
        checked = [self.check_decision(*row) for row in rows]
        with self.trial.transaction(user) as tx:
            policy = self.in_force(tx)
            out = []
            for request in checked:
                pid, dp, available, why, ctx = request
                result, policy = self._decide_at(tx, policy, pid, dp, available, why, ctx,
                                                 scheduled=False)
                out.append(result)
            return out

    def _decide_at(self, tx: Any, policy: dict[str, Any], pid: str, dp: int, available: bool,
                   reason: str | None, ctx: dict[str, float] | None,
                   scheduled: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        from trialkit.mrt.live import live_probability, update_stage

        known = self.store.decision(self.trial.name, pid, dp)
        if known is not None:
            return self._repeat(known, available, tx.key), policy
        stage = update_stage(self.spec, dp)
        if not scheduled and stage > policy["stage"]:
            policy = self._update(tx, stage, "schedule")
        values = ctx if ctx is not None else self.settings["default_context"]
        p = live_probability(self.spec, policy["params"], [values[n] for n in self.names])
        action, draw = mrt_draw(tx.key.secret, self.trial.name, pid, dp, p) if available \
            else (0, None)
        at = utc_now()
        row = tx.log("decide", {"participant": pid, "decision_point": dp, "available": available,
                                "reason": reason, "probability": p, "action": action,
                                "draw": draw, "context": ctx, "policy_version": policy["version"],
                                "scheduled": scheduled}, at)
        record = DecisionRecord(pid, dp, int(available), reason, p, action, draw, at, tx.who,
                                row.seq, canonical(ctx) if ctx is not None else None,
                                policy["version"])
        self.store.insert_decision(self.trial.name, record)
        return self.result(record, True, tx.receipt(row)), policy

    def result(self, record: DecisionRecord, new: bool, receipt_text: str) -> dict[str, Any]:
        """Add the context and policy version to the ``decide`` JSON contract."""
        out = super().result(record, new, receipt_text)
        out["policy_version"] = record.policy_version
        out["context"] = _context_of(record)
        return out

    def schedule(self, participant: Any, decision_points: Any, context: Any,
                 user: str | None) -> dict[str, Any]:
        """Decide decision points A..B ahead, available, from the policy in force.

        The context is the design's default context, with the values given replacing defaults.
        No policy update is run for a schedule: every decision uses the version in force now.
        """
        pid = identity.participant_id(participant)
        first, last = self.point_range(decision_points)
        given = self.check_context(context, first, required=False, partial=True) or {}
        ctx = {n: float(given.get(n, self.settings["default_context"][n])) for n in self.names}
        with self.trial.transaction(user) as tx:
            policy = self.in_force(tx)
            out = [self._decide_at(tx, policy, pid, dp, True, None, ctx, scheduled=True)[0]
                   for dp in range(first, last + 1)]
        return {"trial": self.trial.name, "participant": pid, "first": first, "last": last,
                "policy_version": policy["version"], "context": ctx, "decisions": out}

    def point_range(self, text: Any) -> tuple[int, int]:
        """Return ``(A, B)`` from ``"A..B"`` (or one decision point ``"A"``), within the trial."""
        n = int(self.config["n_decision_points"])
        raw = text if isinstance(text, str) else str(text)
        first, sep, last = raw.partition("..")
        a = identity.whole_number(first.strip(), "first decision point", 1, n, "decision_points")
        b = identity.whole_number(last.strip(), "last decision point", 1, n,
                                  "decision_points") if sep else a
        if b < a:
            raise InvalidInput(f"decision points {a}..{b} are in the wrong order — give A..B "
                               "with A ≤ B", param="decision_points")
        return a, b

    # -- the policy ----------------------------------------------------------------------------
    def in_force(self, tx: Any) -> dict[str, Any]:
        """Return the policy in force: ``version``, ``stage`` and ``params`` (``None``: prior).

        It is the last ``policy_update`` row of the log, whose MAC is checked with the key.
        """
        row = self.store.last_audit_row(self.trial.name, "policy_update")
        if row is None:
            return {"version": 0, "stage": 0, "params": None}
        if not check_row(tx.key, row):
            raise Tampered(f"policy update (audit row {row.seq}) of trial {self.trial.name!r} "
                           "does not verify with its key — the store was edited outside "
                           "trialkit; nothing was written — run verify with the key file")
        data = row.data()
        return {"version": data["version"], "stage": data["stage"],
                "params": {"mean": data["mean"], "covariance": data["covariance"]}}

    def policy_update(self, user: str | None) -> dict[str, Any]:
        """Refit the policy now on every outcome recorded so far; log it as the next version."""
        with self.trial.transaction(user) as tx:
            stage = self.in_force(tx)["stage"]
            return self._update(tx, stage, "manual")["result"]

    def _update(self, tx: Any, stage: int, trigger: str) -> dict[str, Any]:
        rows = self.store.audit_rows(self.trial.name)
        bad, problem = check_chain(rows, tx.n_audit, tx.last_hash, tx.key)
        if problem:
            raise Tampered(f"the audit log of trial {self.trial.name!r} does not verify with its "
                           f"key ({problem}); nothing was written — run verify")
        history = PolicyHistory(self.names)
        for row in rows:
            history.add(row)
        payload = history.refit(self.spec, stage, trigger)
        row = tx.log("policy_update", payload)
        params = {"mean": payload["mean"], "covariance": payload["covariance"]}
        return {"version": payload["version"], "stage": stage, "params": params,
                "result": {"trial": self.trial.name, **payload, "receipt": tx.receipt(row)}}

    def policy(self) -> dict[str, Any]:
        """Return the policy in force and its updates so far (read only)."""
        rows = self.store.audit_rows(self.trial.name, "policy_update")
        last = rows[-1].data() if rows else None
        every = int(self.settings["update_every"])
        stage = last["stage"] if last else 0
        return {"trial": self.trial.name, "version": last["version"] if last else 0,
                "stage": stage, "next_update_at_decision_point": 1 + (stage + 1) * every,
                "update_every": every, "context": self.names, "outcome": self.settings["outcome"],
                "p_min": self.settings["p_min"], "p_max": self.settings["p_max"],
                "mean": last["mean"] if last else None,
                "covariance": last["covariance"] if last else None,
                "updates": [{k: r.data()[k] for k in ("version", "stage", "trigger", "rows",
                                                      "missing")} | {"at": r.at}
                            for r in rows]}

    # -- outcomes ------------------------------------------------------------------------------
    def record_outcomes(self, items: Sequence[Mapping[str, Any]],
                        user: str | None) -> list[dict[str, Any]]:
        """Record proximal outcomes (participant, decision_point, value, …): all or none."""
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

    def _decided(self, item: Mapping[str, Any]) -> DecisionRecord:
        pid = identity.participant_id(item.get("participant"))
        raw = item.get("decision_point")
        if raw is None:
            raise InvalidInput("an MRT outcome belongs to a decision point — give its number",
                               param="decision_point")
        dp = identity.whole_number(raw, "decision point", 1, int(self.config["n_decision_points"]),
                                   "decision_point")
        record = self.store.decision(self.trial.name, pid, dp)
        if record is None:
            raise NotFound(f"decision point {dp} of participant {identity.shown(pid)} has not been "
                           "decided — outcomes are recorded for decided, available decision "
                           "points", param="decision_point")
        if not record.available:
            raise Conflict(f"decision point {dp} of participant {identity.shown(pid)} was "
                           "unavailable — it has no proximal outcome", param="decision_point")
        return record

    def _record_one(self, tx: Any, item: Mapping[str, Any]) -> dict[str, Any]:
        record = self._decided(item)
        pid, dp, name = record.participant, record.decision_point, self.settings["outcome"]
        value = outcome_value(item.get("value"), self.settings["outcome_type"] == "binary")
        observed = observed_time(item.get("observed_at"), record.decided_at)
        known = self.store.outcome(self.trial.name, pid, name, dp)
        payload: dict[str, Any] = {"participant": pid, "decision_point": dp, "outcome": name,
                                   "value": value, "observed_at": observed}
        reason = item.get("reason")
        if known is not None:
            if reason is None:
                raise Conflict(f"decision point {dp} of participant {identity.shown(pid)} "
                               f"already has outcome {known.value:g} (recorded "
                               f"{known.recorded_at}) — a correction needs a reason",
                               param="reason")
            payload.update(previous=known.value,
                           reason=identity.reason_text(reason, "reason for the correction"))
        elif reason is not None:
            raise InvalidInput(f"decision point {dp} of participant {identity.shown(pid)} has no "
                               "outcome yet — a reason is for correcting one; leave it out",
                               param="reason")
        row = tx.log("outcome_correction" if known else "outcome", payload)
        self.store.put_outcome(self.trial.name, OutcomeRecord(
            pid, name, dp, value, observed, row.at, tx.who,
            known.corrections + 1 if known else 0, row.seq))
        return {"trial": self.trial.name, "participant": pid, "decision_point": dp,
                "value": value, "observed_at": observed, "recorded_at": row.at,
                "corrected": known is not None, "receipt": tx.receipt(row)}

    # -- reports -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Add the policy in force, its updates and the outcomes recorded."""
        out = super().status()
        policy = self.policy()
        out["policy"] = {k: policy[k] for k in ("version", "stage",
                                                "next_update_at_decision_point", "p_min",
                                                "p_max")}
        out["policy"]["updates"] = len(policy["updates"])
        out["outcomes"] = len(self.store.outcomes(self.trial.name))
        return out

    def export_columns(self, with_key: bool) -> list[str]:
        """Return the MRT columns, then policy version, scheduled, the context and outcome."""
        return [*MRT_COLUMNS, "policy_version", "scheduled", *self.names,
                self.settings["outcome"]]

    def export_rows(self, key_file: str | None, reason: str | None,
                    user: str | None) -> list[dict[str, Any]]:
        """One row per decision point: what ``trialkit analyse mrt --variance adaptive`` reads."""
        with self.store.snapshot():
            records = self.store.decisions(self.trial.name)
            outcomes = {(o.participant, o.point): o.value
                        for o in self.store.outcomes(self.trial.name)}
            scheduled = {r.seq for r in self.store.audit_rows(self.trial.name, "decide")
                         if r.data().get("scheduled")}
        name = self.settings["outcome"]
        rows = []
        for r in records:
            ctx = _context_of(r) or {}
            rows.append({"id": r.participant, "decision_point": r.decision_point,
                         "availability": int(r.available), "treatment": int(r.action),
                         "probability": r.probability, "policy_version": r.policy_version,
                         "scheduled": int(r.audit_seq in scheduled),
                         **{n: ctx.get(n) for n in self.names},
                         name: outcomes.get((r.participant, r.decision_point))})
        return rows

    # -- verification --------------------------------------------------------------------------
    def cross_check(self, rows: Sequence[AuditRow]) -> tuple[int | None, str]:
        """Also compare the outcomes table with the outcomes in the log."""
        bad, problem = super().cross_check(rows)
        if problem:
            return bad, problem
        expected: dict[tuple[str, int], tuple[int, OutcomeRecord]] = {}
        for row in rows:
            if row.action in OUTCOME_ACTIONS:
                d = row.data()
                before = expected.get((d["participant"], d["decision_point"]))
                expected[(d["participant"], d["decision_point"])] = (row.seq, OutcomeRecord(
                    d["participant"], d["outcome"], d["decision_point"], d["value"],
                    d["observed_at"], row.at, row.who,
                    before[1].corrections + 1 if before else 0, row.seq))
        return compare_table(
            self.store.outcomes(self.trial.name), expected,
            lambda r: (r.participant, r.point),
            lambda k: f"the outcome of decision point {k[1]} of participant "
                      f"{identity.shown(k[0])}", "outcomes")

    def replay(self, key: TrialKey, rows: Sequence[AuditRow]) -> list[dict[str, Any]]:
        """Recompute every decision (probability, draw, version) and every policy update."""
        from trialkit.mrt.live import live_probability, update_stage

        history = PolicyHistory(self.names)
        out = []
        for row in rows:
            if row.action == "decide":
                data = row.data()
                dp, ctx = data["decision_point"], data.get("context")
                values = ctx if ctx is not None else self.settings["default_context"]
                version = history.version
                if not data.get("scheduled") and update_stage(self.spec, dp) > history.stage:
                    version += 1   # an update was due before this decision
                p = live_probability(self.spec, history.params,
                                     [values[n] for n in self.names])
                act, draw = (mrt_draw(key.secret, self.trial.name, data["participant"], dp, p)
                             if data["available"] else (0, None))
                out.append({"row": row.seq, "participant": data["participant"],
                            "decision_point": dp,
                            "expected": {"action": act, "draw": draw, "probability": p,
                                         "policy_version": version},
                            "logged": {k: data.get(k) for k in ("action", "draw", "probability",
                                                                "policy_version")}})
            elif row.action == "policy_update":
                out.append(history.replay_update(self.spec, row))
            history.add(row, replaying=True)
        return out

    def check_replay(self, key: TrialKey, rows: Sequence[AuditRow]
                     ) -> tuple[int | None, str, int]:
        """Replay and compare with the log (probabilities and posteriors to 1e-12)."""
        results = self.replay(key, rows)
        for r in results:
            where = same(r["expected"], r["logged"])
            if where is None:
                continue
            if r["participant"] is None:
                return r["row"], (f"audit row {r['row']} (policy update {r['version']}) does not "
                                  "replay: the decisions and outcomes logged before it give a "
                                  f"different {where}"), len(results)
            return r["row"], (f"audit row {r['row']} (decision point {r['decision_point']} of "
                              f"participant {identity.shown(r['participant'])}) does not replay: "
                              f"the key and the policy give a different {where}"), len(results)
        return None, "", len(results)


class PolicyHistory:
    """An adaptive MRT's audit log folded row by row: decisions, outcomes and the policy."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.decisions: dict[tuple[str, int], dict[str, Any]] = {}
        self.outcomes: dict[tuple[str, int], float] = {}
        self.version, self.stage = 0, 0
        self.params: dict[str, Any] | None = None
        self._replayed: dict[str, Any] | None = None

    def add(self, row: AuditRow, replaying: bool = False) -> None:
        """Fold one audit row in (rows of other actions are ignored)."""
        if row.action == "decide":
            d = row.data()
            self.decisions[(d["participant"], d["decision_point"])] = d
        elif row.action in OUTCOME_ACTIONS:
            d = row.data()
            self.outcomes[(d["participant"], d["decision_point"])] = d["value"]
        elif row.action == "policy_update":
            d = self._replayed if replaying and self._replayed is not None else row.data()
            self.version, self.stage = d["version"], d["stage"]
            self.params = {"mean": d["mean"], "covariance": d["covariance"]}

    def refit(self, spec, stage: int, trigger: str) -> dict[str, Any]:
        """Return the next version's update record: the posterior of every used decision.

        Used: available decisions with an outcome recorded, in the order they were decided;
        ``missing`` counts the available decisions still without one.
        """
        from trialkit.mrt.live import live_update

        used = [(k, d) for k, d in self.decisions.items()
                if d["available"] and k in self.outcomes]
        missing = sum(1 for k, d in self.decisions.items()
                      if d["available"] and k not in self.outcomes)
        params = live_update(spec, [[d["context"][n] for n in self.names] for _, d in used],
                             [d["action"] for _, d in used],
                             [d["probability"] for _, d in used],
                             [self.outcomes[k] for k, _ in used])
        return {"version": self.version + 1, "stage": stage, "trigger": trigger,
                "rows": len(used), "missing": missing, **params}

    def replay_update(self, spec, row: AuditRow) -> dict[str, Any]:
        """Recompute a logged update; the replay continues with the recomputed posterior."""
        logged = row.data()
        stage = logged.get("stage")
        ok = (logged.get("trigger") == "manual" and stage == self.stage) or (
            logged.get("trigger") == "schedule" and isinstance(stage, int) and stage > self.stage)
        expected = self.refit(spec, stage if ok else self.stage, logged.get("trigger"))
        if not ok:
            expected["trigger"] = "manual or schedule (a stage beyond the last)"
        self._replayed = expected
        return {"row": row.seq, "participant": None, "version": self.version + 1,
                "expected": expected, "logged": logged}


def context_value(name: str, value: Any) -> float:
    """Return one context value: a finite number (its decimal text is accepted too)."""
    if isinstance(value, bool):
        value = int(value)
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise InvalidInput(f"context {name} = {identity.shown(value)} is not a number — give a "
                           "finite number", param="context") from None
    if not math.isfinite(number):
        raise InvalidInput(f"context {name} = {value!r} is not finite — give a finite number",
                           param="context")
    if abs(number) > MAX_VALUE:
        raise InvalidInput(f"context {name} = {number:g} is absurd (beyond ±10^12) — check the "
                           "value and its unit", param="context")
    return number


def _context_of(record: DecisionRecord) -> dict[str, float] | None:
    import json

    return json.loads(record.context) if record.context is not None else None
