"""A live trial: create from a design file, then enrol or decide, correct, unblind, report, verify.

Every action is one transaction holding the trial's write lock (:meth:`Trial.transaction`). Before
anything is written the transaction checks, with the key, that the stored chain head is the MAC
of the last audit row and that the sealed allocation state belongs to that head, so a store
edited outside trialkit is refused before it can influence an allocation. What differs between
design kinds (enrolment of arms or conditions, MRT decisions, their reports) lives in one adapter
per kind (:mod:`trialkit.service.kinds`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from trialkit.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError, Tampered
from trialkit.service import identity, lifecycle, tokens
from trialkit.service.adaptive import AdaptiveKind
from trialkit.service.audit import check_row, receipt
from trialkit.service.identity import default_user
from trialkit.service.keys import TrialKey, key_check, read_key_file
from trialkit.service.kinds import TrialKind
from trialkit.service.mrt import MrtKind
from trialkit.service.mrt_policy import AdaptiveMrtKind
from trialkit.service.multiarm import FactorialKind, MultiArmKind
from trialkit.service.store import ConnectionLost, Store, TrialRecord, connect
from trialkit.service.transaction import Transaction
from trialkit.service.verify import verify

KINDS: dict[str, type[TrialKind]] = {"factorial": FactorialKind, "adaptive": MultiArmKind,
                                     "mrt": MrtKind}


def adapter_for(trial: Trial) -> TrialKind:
    """Return the adapter of ``trial``'s kind."""
    if trial.kind not in KINDS:
        raise InvalidInput(f"trial {trial.name!r} is of kind {trial.kind!r}, which this trialkit "
                           "does not know — upgrade trialkit")
    if trial.kind == "adaptive" and trial.config.get("method") == "adaptive":
        return AdaptiveKind(trial)
    if trial.kind == "mrt" and trial.config.get("policy") is not None:
        return AdaptiveMrtKind(trial)
    return KINDS[trial.kind](trial)


class Trial:
    """One live trial in a store.

    Open an existing trial with :meth:`Trial.open`, create one with :meth:`Trial.create`.

    Examples
    --------
    >>> trial = Trial.open("sqlite:///trial.db")                # doctest: +SKIP
    >>> trial.enrol("P001", {"site": "london"})["allocation"]   # doctest: +SKIP
    """

    def __init__(self, store: Store, name: str, key_file: str | None = None,
                 user: str | None = None, key: bytes | None = None):
        self.store = store
        self.name = name
        record = store.load_trial(name)
        if record is None:
            listed = ", ".join(store.trial_names()) or "none"
            raise NotFound(f"trial {identity.shown(name)} does not exist in {store.url} — known "
                           f"trials: {listed}", param="name")
        self.record = record
        self.kind = record.kind
        self.design_sha256 = record.design_sha256
        self.config: dict[str, Any] = json.loads(record.config)
        self.key_file = key_file
        self.user = identity.user_name(user) if user else None
        self._key: TrialKey | None = None
        self._batch: Transaction | None = None
        if key is not None:
            self._key = self._checked(key, "the key given")
        self.adapter = adapter_for(self)

    @property
    def notes(self) -> list[str]:
        """What the live trial does not apply of its design (see ``config.live_notes``)."""
        from trialkit.service.config import live_notes

        return live_notes(self.config)

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | None = None, name: str | None = None, *,
             key_file: str | None = None, user: str | None = None,
             lock_timeout: float | None = None, key: bytes | None = None) -> Trial:
        """Open trial ``name`` (or the only trial) in the store at ``url`` (or ``$TRIALKIT_DB``).

        ``key`` (bytes) or ``key_file`` give the trial's key; without either, actions that need it
        read the key file whose path was stored when the trial was created.
        """
        if name is not None:
            identity.trial_name(name)
        store = connect(url, lock_timeout=lock_timeout)
        try:
            store.require_schema()
            if name is None:
                names = store.trial_names()
                if len(names) != 1:
                    raise InvalidInput(f"{store.url} holds {len(names)} trials "
                                       f"({', '.join(names) or 'none'}) — name the trial",
                                       param="name")
                name = names[0]
            return cls(store, name, key_file=key_file, user=user, key=key)
        except BaseException:
            store.close()
            raise

    @classmethod
    def create(cls, design: Any, url: str | None = None, *, key_file: str,
               name: str | None = None, user: str | None = None,
               lock_timeout: float | None = None) -> Trial:
        """Create a trial from a design (file path or loaded design) and write its key file.

        The design's exact text and SHA-256 are stored; the new secret key goes to ``key_file``
        (mode 0600), which must not exist yet and must not be the database file. A refused
        creation leaves neither a key file nor a new database file behind.
        """
        return lifecycle.create_trial(cls, design, url, key_file=key_file, name=name, user=user,
                            lock_timeout=lock_timeout)

    def close(self) -> None:
        """Close the database connection."""
        self.store.close()

    def __enter__(self) -> Trial:
        """Return the trial (closed when the ``with`` block ends)."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the trial."""
        self.close()

    # -- key -------------------------------------------------------------------------------
    def _checked(self, secret: bytes, where: str) -> TrialKey:
        if key_check(secret, self.name) != self.record.key_check:
            raise Forbidden(f"{where} is not the key of trial {self.name!r} — give the key file "
                            "written when this trial was created", param="key_file")
        return TrialKey(secret, self.name)

    def key(self, key_file: str | None = None) -> TrialKey:
        """Read and check the trial's key: ``key_file``, the open one, or the stored path."""
        if key_file is None and self._key is not None:
            return self._key
        path = key_file or self.key_file or self.record.key_file
        if not path:
            raise InvalidInput(f"trial {self.name!r} needs its key file — give it",
                               param="key_file")
        key = self._checked(read_key_file(path), f"key file {path}")
        if key_file is None:
            self._key = key
        return key

    def use_key(self, key_file: str | None) -> TrialKey:
        """Use the key in ``key_file`` (when given) for the actions that follow; return the key."""
        if key_file is not None:
            self._key = self.key(key_file)
        return self.key()

    # -- writes ----------------------------------------------------------------------------
    def who(self, user: str | None = None) -> str:
        """Who acts: ``user``, the trial's user, or the operating-system user."""
        return identity.user_name(user or self.user or default_user())

    @contextlib.contextmanager
    def transaction(self, user: str | None = None) -> Iterator[Transaction]:
        """One write: lock the trial, check its head with the key, append, store the new head.

        Inside :meth:`run_batch` the write joins the batch's transaction as a savepoint: if it
        fails, only its own rows are rolled back.
        """
        who = self.who(user)
        if self._batch is not None:
            with self._batch.savepoint(who) as tx:
                yield tx
            return
        key = self.key()
        with self.store.write(self.name):
            tx = Transaction(self.store, self.adapter.rule, key, who, self._locked_record())
            yield tx
            tx.commit()

    def _locked_record(self) -> TrialRecord:
        record = self.store.load_trial(self.name, lock=True)
        if record is None:
            raise NotFound(f"trial {self.name!r} no longer exists in {self.store.url}",
                           param="db")
        return record

    def run_batch(self, calls: Sequence[Callable[[], Any]]) -> list[tuple[bool, Any]]:
        """Run many writes in one transaction (group commit): one lock, one commit, one fsync.

        Each call runs as a savepoint, so one that fails (its error is returned, not raised)
        leaves the others in. Returns ``(True, result)`` or ``(False, error)`` per call; if the
        commit itself fails, that error is raised for all.
        """
        key = self.key()
        with self.store.write(self.name):
            self._batch = Transaction(self.store, self.adapter.rule, key, self.who(),
                                      self._locked_record())
            try:
                results: list[tuple[bool, Any]] = []
                for call in calls:
                    try:
                        results.append((True, call()))
                    except ServiceError as exc:
                        results.append((False, exc))
                self._batch.commit()
            finally:
                self._batch = None
        return results

    def _retrying(self, action: Any) -> Any:
        """Run ``action``; after a lost connection, once more on a new one.

        Only for idempotent actions: reads, and enrolments and decisions (a repeat returns the
        original allocation, so a commit whose reply was lost is never allocated twice).
        """
        try:
            return action()
        except ConnectionLost:
            return action()

    def enrol(self, participant: Any, strata: Mapping[str, Any] | None = None,
              user: str | None = None) -> dict[str, Any]:
        """Randomise ``participant`` once; enrolling again returns the original allocation.

        Returns
        -------
        dict
            ``participant``, ``allocation`` (arm name, factorial condition number, or the code of
            a blinded trial), ``sequence`` (1-based enrolment number), ``new`` (false when the
            participant was already enrolled), ``stratum``, ``receipt`` and, for factorial
            designs, ``condition`` (factor → ±1).
        """
        return self._retrying(lambda: self.adapter.enrol(participant, strata, user))

    def participant(self, participant: Any) -> dict[str, Any]:
        """Return an enrolment as :meth:`enrol` returned it (``"new": false``); enrol nobody."""
        return self._retrying(lambda: self.adapter.lookup(participant))

    def decide(self, participant: Any, decision_point: Any, available: bool = True,
               reason: str | None = None, user: str | None = None,
               context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Decide one MRT decision point: Bernoulli with the design's probability if available.

        Returns ``action`` (0/1), ``probability``, ``decision_point`` and ``receipt``; an
        unavailable point gets action 0 and no draw. Repeating a decision point returns the
        logged decision. An adaptive MRT (a design with a ``[policy]``) takes the decision
        point's ``context`` (name → value, every variable of the policy) and computes the
        probability from the policy in force; it also returns ``policy_version`` and
        ``context``.
        """
        return self.decide_many([(participant, decision_point, available, reason, context)],
                                user)[0]

    def decide_many(self, rows: Iterable[Sequence[Any]],
                    user: str | None = None) -> list[dict[str, Any]]:
        """Decide many ``(participant, decision_point, available, reason[, context])`` at once.

        One transaction; all rows are checked first; any bad row leaves the store unchanged.
        """
        rows = list(rows)
        return self._retrying(lambda: self.adapter.decide_many(rows, user))

    def mark_error(self, participant: Any, reason: str, user: str | None = None) -> dict:
        """Flag an enrolment as made in error (with a reason); nothing is deleted."""
        return self.adapter.mark_error(participant, reason, user)

    def record_outcome(self, participant: Any, value: Any, observed_at: Any = None,
                       reason: str | None = None, user: str | None = None,
                       decision_point: Any = None) -> dict[str, Any]:
        """Record a participant's outcome (an adaptive trial); a correction needs ``reason``.

        Binary outcomes are 0 or 1, continuous ones finite; ``observed_at`` is an ISO 8601 date
        or time. Returns ``value``, ``observed_at``, ``recorded_at``, ``corrected`` and
        ``receipt``. In an adaptive MRT the outcome is the proximal outcome of a decided,
        available ``decision_point``.
        """
        item = {"participant": participant, "value": value, "observed_at": observed_at,
                "reason": reason}
        if decision_point is not None:
            item["decision_point"] = decision_point
        return self.record_outcomes([item], user)[0]

    def record_outcomes(self, items: Iterable[Mapping[str, Any]],
                        user: str | None = None) -> list[dict[str, Any]]:
        """Record many outcomes in one transaction: all of them, or none if one is refused.

        Each item has ``participant`` and ``value``, optionally ``observed_at`` and ``reason``.
        """
        return self.adapter.record_outcomes(list(items), user)

    def interim(self, user: str | None = None) -> dict[str, Any]:
        """Run the next interim analysis of an adaptive trial, if it is due; log it.

        The analysis is the simulator's look (:func:`trialkit.adaptive.live.live_look`) on every
        outcome recorded so far (participants marked in error left out). Its result — per-arm
        data, P(best), P(better than the control), arms dropped, whether and why the trial
        stopped, the new allocation probabilities — is returned with a receipt, and applied to
        the enrolments that follow.
        """
        return self.adapter.interim(user)

    def policy_update(self, user: str | None = None) -> dict[str, Any]:
        """Refit an adaptive MRT's policy on every outcome recorded so far; log version k.

        The posterior (:func:`trialkit.mrt.policy.policy_update` on every available decision
        with its outcome) is logged in the audit chain and used by the decisions that follow.
        Returns ``version``, ``stage``, ``trigger``, ``rows`` (decisions used), ``missing``
        (available decisions still without an outcome), ``mean``, ``covariance`` and
        ``receipt``.
        """
        return self.adapter.policy_update(user)

    def policy(self) -> dict[str, Any]:
        """Return an adaptive MRT's policy in force (version, posterior) and its updates."""
        def read() -> dict[str, Any]:
            with self.store.snapshot():
                return self.adapter.policy()

        return self._retrying(read)

    def schedule(self, participant: Any, decision_points: Any,
                 context: Mapping[str, Any] | None = None,
                 user: str | None = None) -> dict[str, Any]:
        """Decide decision points ``"A..B"`` ahead for an offline participant (adaptive MRT).

        Every point is decided as available, with the policy in force and the design's default
        context (the values in ``context`` replace defaults); all are logged. Returns
        ``decisions`` (as :meth:`decide` returns them), ``policy_version`` and ``context``.
        """
        return self._retrying(lambda: self.adapter.schedule(participant, decision_points,
                                                            context, user))

    def looks(self, key_file: str | None = None) -> list[dict[str, Any]]:
        """Return every interim analysis so far (a blinded trial's need the key)."""
        key = self.use_key(key_file) if key_file or self.config.get("blinded") else None
        return self._retrying(lambda: self.adapter.looks(key))

    def unblind(self, participant: Any, reason: str, key_file: str | None = None,
                user: str | None = None) -> dict:
        """Reveal one participant's arm (needs the key); the log records who, when and why."""
        self.use_key(key_file)
        return self.adapter.unblind(participant, reason, user)

    def checkpoint(self, user: str | None = None) -> dict[str, Any]:
        """Return a receipt for the current chain head, to be kept outside the database."""
        key = self.key()
        with self.store.snapshot():
            record = self.store.load_trial(self.name)
            row = self.store.audit_row(self.name, record.n_audit) if record else None
        if record is None or row is None or row.hash != record.last_hash or \
                not check_row(key, row):
            raise Tampered(f"the audit chain head of trial {self.name!r} does not verify with its "
                           "key — run verify with the key file")
        return {"trial": self.name, "audit_row": row.seq, "at": row.at,
                "receipt": receipt(key, row.seq, row.hash)}

    # -- access tokens (for the randomisation server) ------------------------------------------
    def create_token(self, role: str, sites: Mapping[str, Any] | None = None,
                     expires_days: float | None = None, user: str | None = None
                     ) -> dict[str, Any]:
        """Make an access token for this trial; its string is in the result, shown once.

        ``sites`` limits a coordinator to strata values (e.g. ``{"site": ["london"]}``).
        """
        strata = self.adapter.rule.strata if self.adapter.rule is not None else {}
        limits = tokens.check_sites(sites, strata)
        with self.transaction(user) as tx:
            text, row = tokens.new_token(tx.key, self.name, role, limits, expires_days, tx.who)
            self.store.insert_token(row)
            logged = tx.log("token_create", {"id": row.id, "role": row.role, "sites": limits,
                                             "expires_at": row.expires_at})
            return {"token": text, **row.public(), "receipt": tx.receipt(logged)}

    def tokens(self) -> list[dict[str, Any]]:
        """List the trial's tokens (ids, roles, limits, expiry, revocation; never secrets)."""
        return [t.public() for t in self.store.tokens(self.name)]

    def revoke_token(self, token_id: str, user: str | None = None) -> dict[str, Any]:
        """Revoke one of this trial's tokens (at once, and logged)."""
        with self.transaction(user) as tx:
            row = self.store.token(str(token_id))
            if row is None or row.trial != self.name:
                raise tokens.unknown(str(token_id))
            if row.revoked_at is not None:
                raise Conflict(f"token {row.id} was already revoked at {row.revoked_at} — "
                               "nothing to do")
            row = tokens.revoked(tx.key, row, tx.who)
            self.store.update_token(row)
            logged = tx.log("token_revoke", {"id": row.id})
            return {**row.public(), "receipt": tx.receipt(logged)}

    # -- reports ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Return counts per arm and stratum, imbalance, CONSORT-style counts, predictability."""
        def read() -> dict[str, Any]:
            with self.store.snapshot():
                out = self.adapter.status()
            if self.notes:
                out["notes"] = self.notes
            return out

        return self._retrying(read)

    def export(self, key_file: str | None = None, reason: str | None = None,
               user: str | None = None) -> list[dict[str, Any]]:
        """Return analysis-ready rows.

        Arms of a blinded trial need ``key_file`` and a ``reason`` (the export is logged).
        """
        return self._retrying(lambda: self.adapter.export_rows(key_file, reason, user))

    def export_columns(self, key_file: str | None = None) -> list[str]:
        """Return the columns of :meth:`export` (also when there are no rows yet)."""
        return self.adapter.export_columns(key_file is not None)

    def allocation_table(self, n_per_stratum: int, key_file: str | None = None,
                         user: str | None = None) -> list[dict[str, Any]]:
        """Return a REDCap-compatible allocation table (needs the key; logged)."""
        self.use_key(key_file)
        return self.adapter.allocation_table(n_per_stratum, user)

    def verify(self, key_file: str | None = None,
               receipts: Sequence[str] = ()) -> dict[str, Any]:
        """Check the audit chain and the tables; with the key also MACs, replay and receipts.

        With the key every MAC, allocation and decision, the sealed state and ``receipts`` (one
        receipt string each) are checked.

        The key file is not checked against the stored key check value here: a key whose MACs
        make the chain while the stored check value differs means the check value was edited,
        which verification reports instead of refusing the key.
        """
        key = TrialKey(read_key_file(key_file), self.name) if key_file else self._key
        if receipts and key is None:
            raise InvalidInput("checking receipts needs the trial's key — give the key file",
                               param="key_file")
        return self._retrying(lambda: verify(self, key, receipts))

    def audit_log(self) -> list[dict[str, Any]]:
        """Every audit row, with its payload parsed."""
        def read() -> list[dict[str, Any]]:
            with self.store.snapshot():
                rows = self.store.audit_rows(self.name)
            return [{"seq": r.seq, "at": r.at, "who": r.who, "action": r.action,
                     "payload": r.data(), "prev_hash": r.prev_hash, "hash": r.hash}
                    for r in rows]

        return self._retrying(read)

    def replay(self, key_file: str | None = None) -> list[dict[str, Any]]:
        """Regenerate every allocation or decision from the key and the log, in order."""
        key = self.key(key_file)
        with self.store.snapshot():
            rows = self.store.audit_rows(self.name)
        return self.adapter.replay(key, rows)

    def upgrade(self, key_file: str | None = None, user: str | None = None) -> dict[str, Any]:
        """Convert a trial created by trialkit 0.1 to the keyed audit chain (see docs)."""
        return lifecycle.upgrade_trial(self, self.key(key_file), self.who(user))


__all__ = ["Trial", "Transaction", "default_user"]
