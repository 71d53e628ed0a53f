"""Verification of a live trial: the chain, the stored values against it, and a replay with the key.

Everything is read in one snapshot, so a verification running while others enrol sees one
consistent state (no false alarms). Without the key only the structure of the chain and the
agreement of the tables with the log can be checked: anyone who can write the database could have
rewritten both. With the key every audit row's MAC is checked, every allocation and decision is
recomputed, the sealed allocation state must equal the replayed one, and each receipt must still
be found in the chain (a restored older copy or a cut tail fails here).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from trialkit.errors import Forbidden, NotFound, Tampered
from trialkit.service import tokens
from trialkit.service.audit import AuditRow, canonical, check_chain, check_receipts, check_row
from trialkit.service.keys import TrialKey, unseal
from trialkit.service.kinds import TrialHandle
from trialkit.service.store import AUDIT_VERSION, TrialRecord
from trialkit.service.transaction import state_context

NO_KEY_NOTE = ("without the key the audit MACs, the allocations, the sealed state and receipts "
               "were not checked: anyone who can write the database could have rewritten it — "
               "give the key file for a full verification")


def _check_trial_row(record: TrialRecord, rows: Sequence[AuditRow]) -> tuple[int | None, str]:
    """Return the trials row against the log: design text, creation, counts."""
    if hashlib.sha256(record.design_text.encode("utf-8")).hexdigest() != record.design_sha256:
        return 1, "the stored design text does not match its SHA-256 — it was edited"
    if not rows or rows[0].action != "create":
        return 1, "audit row 1 is not the trial's creation — the log was rewritten"
    created = rows[0].data()
    same = (created.get("design_sha256") == record.design_sha256
            and canonical(created.get("config")) == record.config
            and created.get("kind") == record.kind and created.get("trial") == record.name
            and rows[0].at == record.created_at and rows[0].who == record.created_by)
    if not same:
        return 1, ("the trial's stored design, settings or creation differ from audit row 1 "
                   "(create) — the trials table was edited")
    n_enrol = sum(1 for r in rows if r.action == "enrol")
    if n_enrol != record.n_enrolled:
        return None, (f"the trial records {record.n_enrolled} enrolments but the audit log holds "
                      f"{n_enrol} — the trials table was edited")
    return None, ""


def _check_tokens(trial: TrialHandle, key: TrialKey | None,
                  rows: Sequence[AuditRow]) -> tuple[int | None, str]:
    """Check the trial's tokens against their creation and revocation rows (and MACs, by key)."""
    logged: dict[str, tuple[int, dict[str, Any]]] = {}
    revoked: set[str] = set()
    for row in rows:
        if row.action == "token_create":
            logged[row.data()["id"]] = (row.seq, row.data())
        elif row.action == "token_revoke":
            revoked.add(row.data()["id"])
    for token in trial.store.tokens(trial.name):
        if token.id not in logged:
            return None, (f"token {token.id} has no creation in the audit log — a token was "
                          "inserted")
        seq, data = logged.pop(token.id)
        same = (token.role == data["role"] and token.site_limits == data["sites"]
                and token.expires_at == data["expires_at"]
                and (token.revoked_at is not None) == (token.id in revoked))
        if same and key is not None:
            same = tokens.authentic(key, token)
        if not same:
            return seq, (f"token {token.id} differs from its audit rows — the tokens table was "
                         "edited")
    if logged:
        token_id, (seq, _) = next(iter(logged.items()))
        return seq, f"token {token_id} of audit row {seq} is missing — a row was deleted"
    return None, ""


def _check_state(trial: TrialHandle, key: TrialKey, record: TrialRecord,
                 rows: Sequence[AuditRow]) -> str:
    """Return the sealed allocation state against the replayed one ("" when they agree)."""
    want = trial.adapter.final_state(key, rows)
    if want is None:
        return ""
    try:
        stored = unseal(key, state_context(record.name, record.n_audit, record.last_hash),
                        record.state or "")
    except Tampered:
        return ("the sealed allocation state does not belong to the chain head — the trials "
                "table was edited or restored")
    if stored != want.pack():
        return ("the sealed allocation state differs from the replayed history — the trials "
                "table was edited")
    return ""


def verify(trial: TrialHandle, key: TrialKey | None,
           receipts: Sequence[str] = ()) -> dict[str, Any]:
    """Check the trial in one snapshot; with ``key`` also MACs, replay, state and ``receipts``.

    Returns a dict with ``ok`` (true only if every check that ran passed), ``authenticated``
    (whether the key was used), ``chain_ok``, ``tables_ok``, ``replayed``, ``replay_ok``,
    ``receipts_checked``, ``receipts_ok``, ``audit_rows``, ``first_bad_row`` and ``problem``
    (the first failure).
    """
    store = trial.store
    with store.snapshot():
        record = store.load_trial(trial.name)
        if record is None:
            raise NotFound(f"trial {trial.name!r} no longer exists in {store.url}", param="db")
        rows = store.audit_rows(trial.name)
        checks = _run_checks(trial, key, record, rows, receipts)
    ok = all(checks[k] is not False for k in ("chain_ok", "tables_ok", "replay_ok", "receipts_ok"))
    out = {"trial": trial.name, "ok": ok, "authenticated": key is not None,
           "audit_rows": len(rows), **checks}
    if key is None:
        out["note"] = NO_KEY_NOTE
    return out


def _check_tables(trial: TrialHandle, key: TrialKey | None,
                  rows: Sequence[AuditRow]) -> tuple[int | None, str]:
    bad, problem = trial.adapter.cross_check(rows)
    if not problem:
        bad, problem = _check_tokens(trial, key, rows)
    return bad, problem


def _run_checks(trial: TrialHandle, key: TrialKey | None, record: TrialRecord,
                rows: Sequence[AuditRow], receipts: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"chain_ok": None, "tables_ok": None, "replayed": None,
                           "replay_ok": None, "receipts_checked": len(receipts) if key else None,
                           "receipts_ok": None, "first_bad_row": None, "problem": None}

    def fail(check: str, bad: int | None, problem: str) -> dict[str, Any]:
        out.update({check: False, "first_bad_row": bad, "problem": problem})
        return out

    if record.audit_version != AUDIT_VERSION:
        return fail("chain_ok", None, "the trial was created by trialkit 0.1 with an unkeyed "
                                      "audit chain — upgrade it once with its key, then verify")
    if key is not None and key.check != record.key_check:
        if not rows or not check_row(key, rows[0]):
            raise Forbidden(f"the key given is not the key of trial {record.name!r} — give the "
                            "key file written when this trial was created", param="key_file")
        return fail("chain_ok", None, "the trial's stored key check value differs from the key "
                                      "that made its audit chain — the trials table was edited "
                                      "(the trial's key was swapped)")
    bad, problem = check_chain(rows, record.n_audit, record.last_hash, key)
    if not problem:
        bad, problem = _check_trial_row(record, rows)
    if problem:
        return fail("chain_ok", bad, problem)
    out["chain_ok"] = True
    bad, problem = _check_tables(trial, key, rows)
    if problem:
        return fail("tables_ok", bad, problem)
    out["tables_ok"] = True
    if key is None:
        return out
    bad, problem, out["replayed"] = trial.adapter.check_replay(key, rows)
    problem = problem or _check_state(trial, key, record, rows)
    if problem:
        return fail("replay_ok", bad, problem)
    out["replay_ok"] = True
    if receipts:
        lines = [(f"receipt {i}", text) for i, text in enumerate(receipts, start=1)]
        where, problem = check_receipts(key, lines, rows)
        if problem:
            return fail("receipts_ok", None, problem)
        out["receipts_ok"] = True
    return out


def read_receipts(text: str) -> list[str]:
    """Receipts from a file's text: one a line; blank lines and ``#`` comments are skipped."""
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


__all__ = ["read_receipts", "verify"]
