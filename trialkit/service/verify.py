"""Verification: the audit chain, the tables against the log, and a replay with the key."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from trialkit.errors import ServiceError
from trialkit.randomise import keyed_code, mrt_draw
from trialkit.service.audit import canonical, check_chain


def _audit_rows(trial) -> list[tuple]:
    return trial.store.query("SELECT seq, at, who, action, payload, prev_hash, hash FROM audit "
                             "WHERE trial = ? ORDER BY seq", (trial.name,))


def replay(trial, key: bytes, rows: list[tuple] | None = None) -> list[dict[str, Any]]:
    """Recompute every logged allocation and decision from ``key``.

    Returns one dict per enrolment or decision: ``row`` (audit row), ``participant``, the
    ``expected`` allocation (or action) and ``state``, and ``logged`` — what the log holds.
    """
    from trialkit.service.trial import allocate

    cfg = trial.config
    rows = _audit_rows(trial) if rows is None else rows
    out: list[dict[str, Any]] = []
    last_block: dict[str, tuple[int, int]] = {}
    counts: dict[tuple[str, str], list[int]] = {}
    n_arms = len(cfg.get("groups", ()))
    sequence = 0
    for seq, _, _, action, payload, _, _ in rows:
        if action not in ("enrol", "decide"):
            continue
        data = json.loads(payload)
        if action == "decide":
            dp, p = data["decision_point"], cfg["probabilities"][data["decision_point"] - 1]
            act, draw = (mrt_draw(key, trial.name, data["participant"], dp, p)
                         if data["available"] else (0, None))
            out.append({"row": seq, "participant": data["participant"], "decision_point": dp,
                        "expected": {"action": act, "draw": draw, "probability": p},
                        "logged": {k: data[k] for k in ("action", "draw", "probability")}})
            continue
        strata, stratum = trial.check_strata(data["strata"])
        level_counts = None
        if cfg["method"] == "minimisation":
            level_counts = [list(counts.get((f, strata[f]), [0] * n_arms))
                            for f in cfg["minimisation_factors"]]
        sequence += 1
        arm, state, block_no, pos = allocate(cfg, key, trial.name, sequence, stratum,
                                             last_block.get(stratum), level_counts)
        if block_no is not None:
            last_block[stratum] = (block_no, pos)
        for f in cfg.get("minimisation_factors", ()):
            counts.setdefault((f, strata[f]), [0] * n_arms)[arm] += 1
        allocation = (keyed_code(key, trial.name, data["participant"], arm) if cfg["blinded"]
                      else cfg["groups"][arm])
        out.append({"row": seq, "participant": data["participant"], "sequence": sequence,
                    "arm": arm, "label": cfg["groups"][arm],
                    "expected": {"allocation": allocation, "state": state,
                                 "sequence": sequence},
                    "logged": {"allocation": data["allocation"], "state": data["state"],
                               "sequence": data["sequence"]}})
    return out


def _cross_check(trial, rows: list[tuple]) -> tuple[int | None, str]:
    """Compare the participants/decisions tables with the log (no key needed)."""
    store = trial.store
    logged: dict[str, tuple[int, dict]] = {}
    decided: dict[tuple[str, int], tuple[int, dict]] = {}
    for seq, _, _, action, payload, _, _ in rows:
        data = json.loads(payload)
        if action == "enrol":
            logged[data["participant"]] = (seq, data)
        elif action == "decide":
            decided[(data["participant"], data["decision_point"])] = (seq, data)
    table = store.query("SELECT participant, sequence, strata, allocation, state FROM "
                        "participants WHERE trial = ? ORDER BY sequence", (trial.name,))
    for participant, sequence, strata, allocation, state in table:
        if participant not in logged:
            return None, (f"participant {participant!r} is in the participants table but has no "
                          "enrolment in the audit log — a row was inserted")
        seq, data = logged.pop(participant)
        same = (data["sequence"] == sequence and data["allocation"] == allocation
                and canonical(data["strata"]) == strata and canonical(data["state"]) == state)
        if not same:
            return seq, (f"participant {participant!r} differs from its enrolment in audit row "
                         f"{seq} — the participants table was edited")
    if logged:
        participant, (seq, _) = next(iter(logged.items()))
        return seq, (f"participant {participant!r} of audit row {seq} is missing from the "
                     "participants table — a row was deleted")
    dtable = store.query("SELECT participant, decision_point, available, probability, action, "
                         "draw FROM decisions WHERE trial = ?", (trial.name,))
    for participant, dp, available, p, action, draw in dtable:
        if (participant, dp) not in decided:
            return None, (f"decision point {dp} of participant {participant!r} has no entry in "
                          "the audit log — a row was inserted")
        seq, data = decided.pop((participant, dp))
        if (bool(available) != data["available"] or action != data["action"]
                or p != data["probability"] or draw != data["draw"]):
            return seq, (f"decision point {dp} of participant {participant!r} differs from audit "
                         f"row {seq} — the decisions table was edited")
    if decided:
        (participant, dp), (seq, _) = next(iter(decided.items()))
        return seq, (f"decision point {dp} of participant {participant!r} (audit row {seq}) is "
                     "missing from the decisions table — a row was deleted")
    return None, ""


def verify(trial, key_file: str | None = None) -> dict[str, Any]:
    """Check the audit chain and the tables; with ``key_file`` also replay every allocation.

    Returns a dict with ``ok`` (true only if every check that ran passed), ``chain_ok``,
    ``first_bad_row`` and ``problem`` (the first failure), ``audit_rows``, ``replayed`` (number of
    allocations and decisions recomputed, ``None`` without a key) and ``replay_ok``.
    """
    key = trial.key(key_file) if key_file else None
    head = trial.store.query("SELECT n_audit, last_hash, design_text, design_sha256, config "
                             "FROM trials WHERE name = ?", (trial.name,))
    if not head:
        raise ServiceError(f"trial {trial.name!r} no longer exists — check --db")
    n_audit, last_hash, design_text, design_sha, config = head[0]
    rows = _audit_rows(trial)
    bad, problem = check_chain(trial.name, rows, n_audit, last_hash)
    chain_ok = bad is None
    if chain_ok and hashlib.sha256(design_text.encode("utf-8")).hexdigest() != design_sha:
        chain_ok = False
        problem = "the stored design text does not match its SHA-256 — it was edited"
    if chain_ok and rows and rows[0][3] == "create":
        created = json.loads(rows[0][4])
        if (created.get("design_sha256") != design_sha
                or canonical(created.get("config")) != config):
            chain_ok = False
            bad = rows[0][0]
            problem = (f"the trial's stored design or allocation settings differ from audit row "
                       f"{bad} (create) — the trials table was edited")
    tables_ok = True
    if chain_ok:
        bad, problem = _cross_check(trial, rows)
        tables_ok = not problem
    replayed = None
    replay_ok = None
    if key is not None and chain_ok and tables_ok:
        results = replay(trial, key, rows)
        replayed = len(results)
        replay_ok = True
        for r in results:
            if canonical(r["expected"]) != canonical(r["logged"]):
                replay_ok = False
                bad = r["row"]
                problem = (f"audit row {r['row']} (participant {r['participant']!r}) does not "
                           "replay: the key gives a different allocation")
                break
    ok = chain_ok and tables_ok and replay_ok is not False
    return {"trial": trial.name, "ok": ok, "audit_rows": len(rows), "chain_ok": chain_ok,
            "tables_ok": tables_ok if chain_ok else None, "replayed": replayed,
            "replay_ok": replay_ok, "first_bad_row": bad, "problem": problem or None}
