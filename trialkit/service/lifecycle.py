"""Creating a trial, and upgrading one created by trialkit 0.1 to the keyed audit chain.

Creation checks everything it can before it touches the store (design, name, key path), writes
the key file only inside the store's lock after the name proved free, and on any refusal leaves
neither a key file nor a database file it created behind.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any, TypeVar

from trialkit.errors import Conflict, InvalidInput, NotFound, Tampered
from trialkit.randomise.history import AllocationRule, AllocationState
from trialkit.service import identity
from trialkit.service.audit import GENESIS, AuditRow, canonical, row_mac
from trialkit.service.keys import TrialKey, create_key_file, seal
from trialkit.service.kinds import TrialHandle
from trialkit.service.store import (
    AUDIT_VERSION,
    Store,
    TrialRecord,
    connect,
    resolve_url,
    sqlite_path,
    utc_now,
)
from trialkit.service.transaction import Transaction, state_context

T = TypeVar("T")


def _check_key_path(key_file: str | None) -> str:
    if not key_file:
        raise InvalidInput("no key file given — give the path of a new key file, kept outside "
                           "the database", param="key_file")
    if os.path.lexists(key_file):
        raise InvalidInput(f"key file {key_file} already exists — choose a new path; a key file "
                           "is never overwritten", param="key_file")
    folder = os.path.dirname(os.path.abspath(key_file))
    if not os.path.isdir(folder):
        raise NotFound(f"cannot create key file {key_file}: folder {folder} does not exist — "
                       "create the folder or choose another path", param="key_file")
    return key_file


def _check_not_database(url: str, key_file: str) -> None:
    path = sqlite_path(url)
    if path is not None:
        path = os.path.abspath(path)
        if os.path.abspath(key_file) in {path + s for s in ("", "-wal", "-shm", ".lock")}:
            raise InvalidInput(f"key file {key_file} is the database file — keep the key file "
                               "outside the database", param="key_file")


def create_trial(cls: Callable[..., T], design: Any, url: str | None, *, key_file: str,
                 name: str | None, user: str | None, lock_timeout: float | None) -> T:
    """Create a trial (see :meth:`Trial.create`)."""
    from trialkit.design import load_design
    from trialkit.service.config import build_config

    if not hasattr(design, "kind"):
        design = load_design(design)
    config = build_config(design)
    name = identity.trial_name(name or design.name)
    who = identity.user_name(user or identity.default_user())
    key_file = _check_key_path(key_file)
    url = resolve_url(url)
    _check_not_database(url, key_file)
    store = connect(url, create=True, lock_timeout=lock_timeout)
    try:
        store.migrate()
        with store.write(None):
            if store.load_trial(name) is not None:
                raise Conflict(f"trial {name!r} already exists in {store.url} — choose another "
                               "name", param="name")
            key = TrialKey(create_key_file(key_file), name)
            try:
                _insert_trial(store, key, os.path.abspath(key_file), design, config, who)
            except BaseException:
                os.unlink(key_file)
                raise
        return cls(store, name, key_file=key_file, user=user)
    except BaseException:
        store.discard()
        raise


def creation_report(trial: TrialHandle, key_file: str, db: str) -> dict[str, Any]:
    """Return what creating ``trial`` reports: its settings and its predictability."""
    from trialkit.randomise.guessing import allocation_guess_rate

    out = {"trial": trial.name, "kind": trial.kind,
           "method": trial.config.get("method", "bernoulli"),
           "blinded": trial.config.get("blinded", False), "design_sha256": trial.design_sha256,
           "key_file": key_file, "db": db}
    if trial.kind != "mrt":
        out["predictability"] = allocation_guess_rate(trial.config)
    if trial.notes:
        out["notes"] = trial.notes
    return out


def _insert_trial(store: Store, key: TrialKey, key_path: str, design: Any,
                  config: dict[str, Any], who: str) -> None:
    at = utc_now()
    payload = canonical({"trial": key.trial, "kind": design.kind, "design": design.name,
                         "design_sha256": design.source.sha256, "config": config})
    mac = row_mac(key, 1, at, who, "create", payload, GENESIS)
    state = _initial_state(config, key, state_context(key.trial, 1, mac))
    store.insert_trial(TrialRecord(
        key.trial, design.kind, design.source.sha256, design.source.text, canonical(config),
        key.check, key_path, at, who, 0, 1, mac, state, AUDIT_VERSION))
    store.append_audit(key.trial, AuditRow(1, at, who, "create", payload, GENESIS, mac))


def _initial_state(config: dict[str, Any], key: TrialKey, context: str) -> str | None:
    if config["kind"] == "mrt":
        return None
    rule = AllocationRule.from_config(config)
    return seal(key, context, AllocationState.initial(rule).pack())


# -- upgrade from trialkit 0.1 -------------------------------------------------------------------
def legacy_row_hash(trial: str, row: AuditRow) -> str:
    """Return the unkeyed SHA-256 of an audit row as trialkit 0.1 computed it."""
    text = canonical([trial, row.seq, row.at, row.who, row.action, row.payload, row.prev_hash])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_legacy_chain(trial: str, rows: list[AuditRow], record: TrialRecord) -> None:
    prev = GENESIS
    for i, row in enumerate(rows, start=1):
        if row.seq != i or row.prev_hash != prev or legacy_row_hash(trial, row) != row.hash:
            raise Tampered(f"the unkeyed audit chain of trial {trial!r} fails at row {i} — it "
                           "cannot be upgraded; restore an intact copy of the database")
        prev = row.hash
    if len(rows) != record.n_audit or prev != record.last_hash:
        raise Tampered(f"the unkeyed audit chain of trial {trial!r} does not end at its recorded "
                       "head — it cannot be upgraded; restore an intact copy of the database")


def upgrade_trial(trial: TrialHandle, key: TrialKey, who: str) -> dict[str, Any]:
    """Convert a trialkit 0.1 trial to the keyed chain (see :meth:`Trial.upgrade`).

    The old chain is checked first (unkeyed hashes and a replay with the key). Every audit row is
    then authenticated with the key; the clear-text draws, scores and block positions of 0.1 are
    removed from the enrolment payloads and the participants table (they revealed arms of blinded
    trials); and a final ``upgrade`` row records the old chain head, so the sponsor can match it
    against anything kept from before.
    """
    store = trial.store
    with store.write(trial.name):
        record = store.load_trial(trial.name, lock=True)
        if record is None:
            raise NotFound(f"trial {trial.name!r} no longer exists", param="db")
        if record.audit_version == AUDIT_VERSION:
            raise Conflict(f"trial {trial.name!r} already has a keyed audit chain — nothing to "
                           "upgrade")
        rows = store.audit_rows(trial.name)
        _check_legacy_chain(trial.name, rows, record)
        bad, problem, replayed = trial.adapter.check_replay(key, rows)
        if problem:
            raise Tampered(f"trial {trial.name!r} cannot be upgraded: {problem}")
        rows = _rekey(store, key, trial.name, rows)
        state = trial.adapter.final_state(key, rows)
        sealed = seal(key, state_context(trial.name, rows[-1].seq, rows[-1].hash),
                      state.pack()) if state is not None else None
        store.set_head(trial.name, record.n_enrolled, rows[-1].seq, rows[-1].hash, sealed)
        store.set_audit_version(trial.name, AUDIT_VERSION)
        upgraded = store.load_trial(trial.name)
        assert upgraded is not None
        tx = Transaction(store, trial.adapter.rule, key, who, upgraded)
        row = tx.log("upgrade", {"from_version": record.audit_version, "rows": len(rows),
                                 "legacy_head": record.last_hash})
        tx.commit()
    return {"trial": trial.name, "upgraded_rows": len(rows), "replayed": replayed,
            "legacy_head": record.last_hash, "receipt": tx.receipt(row)}


def _rekey(store: Store, key: TrialKey, trial: str, rows: list[AuditRow]) -> list[AuditRow]:
    prev = GENESIS
    out = []
    for row in rows:
        data = row.data()
        if row.action == "enrol":
            data.pop("state", None)
        text = canonical(data)
        mac = row_mac(key, row.seq, row.at, row.who, row.action, text, prev)
        new = AuditRow(row.seq, row.at, row.who, row.action, text, prev, mac)
        store.rewrite_audit(trial, new)
        if row.action == "enrol":
            store.rewrite_participant(trial, data["participant"], row.seq)
        elif row.action == "decide":
            store.set_decision_audit(trial, data["participant"], data["decision_point"], row.seq)
        out.append(new)
        prev = mac
    return out
