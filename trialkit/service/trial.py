"""A live trial: create from a design file, enrol, decide, report, export, unblind, verify.

Every action is one transaction holding the trial's write lock, appends one audit row and leaves
the store unchanged when it fails. Allocations are pure functions of the secret key and the
allocation history (:mod:`trialkit.randomise`), so :meth:`Trial.verify` can replay all of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from trialkit.errors import ServiceError
from trialkit.randomise import (
    KeyedStream,
    complete_draw,
    keyed_code,
    minimisation_choice,
    mrt_draw,
    permuted_block,
)
from trialkit.service.audit import GENESIS, canonical, row_hash
from trialkit.service.keys import create_key_file, key_check, read_key_file
from trialkit.service.store import Store, _utc_now, connect

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_PARTICIPANT = re.compile(r"^[^\s,;=\"']{1,200}$")


def default_user() -> str:
    """The operating-system user name (recorded in the audit trail when no user is given)."""
    user = os.environ.get("TRIALKIT_USER") or os.environ.get("USER") or os.environ.get("LOGNAME")
    if not user:
        try:
            import getpass

            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user database in some containers
            user = "unknown"
    return user


def _check_participant(participant: Any) -> str:
    participant = str(participant)
    if not _PARTICIPANT.match(participant):
        raise ServiceError(f"participant id {participant!r} is invalid — use 1-200 characters "
                           "without spaces, commas, semicolons, '=' or quotes")
    return participant


# -- allocation (shared by enrolment and replay) ------------------------------------------------
def allocate(cfg: Mapping[str, Any], key: bytes, trial: str, sequence: int, stratum: str,
             last_block: tuple[int, int] | None,
             level_counts: Sequence[Sequence[int]] | None) -> tuple[int, dict, int | None,
                                                                    int | None]:
    """Allocate enrolment ``sequence`` of ``trial``.

    Parameters
    ----------
    cfg : dict
        The trial's stored allocation settings.
    key : bytes
        The secret key.
    sequence : int
        1-based enrolment number in the trial.
    stratum : str
        Canonical stratum label (``""`` when unstratified).
    last_block : (int, int) or None
        Block number and position of the previous allocation in the stratum (blocks only).
    level_counts : list of lists, optional
        Minimisation only: for each factor, counts per arm at the participant's level.

    Returns
    -------
    arm, state, block_no, block_pos
    """
    method = cfg["method"]
    ratio = cfg["ratio"]
    if method == "blocks":
        block_no, pos = (0, 0) if last_block is None else (last_block[0], last_block[1] + 1)
        block = permuted_block(key, trial, stratum, block_no, cfg["block_sizes"], ratio)
        if pos >= len(block):
            block_no, pos = block_no + 1, 0
            block = permuted_block(key, trial, stratum, block_no, cfg["block_sizes"], ratio)
        return block[pos], {"block": [block_no, pos]}, block_no, pos
    if method == "complete":
        arm, u = complete_draw(key, trial, sequence, ratio)
        return arm, {"u": u}, None, None
    if method == "minimisation":
        stream = KeyedStream(key, "minimisation", trial, sequence)
        u_tie, u_choice = stream.uniform(), stream.uniform()
        factors = cfg["minimisation_factors"]
        arm, info = minimisation_choice(level_counts or [[0] * len(ratio) for _ in factors],
                                        cfg["weights"], ratio, cfg["imbalance"],
                                        cfg["preferred_probability"], u_tie, u_choice)
        state: dict[str, Any] = {"u": [u_tie, u_choice]}
        if not cfg["blinded"]:
            state.update(info)
        return arm, state, None, None
    raise ServiceError(f"randomisation method {method!r} is unknown — this trial was created by a "
                       "newer trialkit; upgrade trialkit")


class Trial:
    """One live trial in a store.

    Open an existing trial with :meth:`Trial.open`, create one with :meth:`Trial.create`.

    Examples
    --------
    >>> trial = Trial.open("sqlite:///trial.db")                # doctest: +SKIP
    >>> trial.enrol("P001", {"site": "london"})["allocation"]   # doctest: +SKIP
    """

    def __init__(self, store: Store, name: str, key_file: str | None = None,
                 user: str | None = None):
        self.store = store
        self.name = name
        rows = store.query("SELECT kind, config, key_check, key_file, design_sha256 FROM trials "
                           "WHERE name = ?", (name,))
        if not rows:
            known = [r[0] for r in store.query("SELECT name FROM trials ORDER BY name")]
            listed = ", ".join(known) if known else "none"
            raise ServiceError(f"trial {name!r} does not exist in {store.url} — known trials: "
                               f"{listed}")
        self.kind, config, self._key_check, self._stored_key_file, self.design_sha256 = rows[0]
        self.config: dict[str, Any] = json.loads(config)
        self.key_file = key_file
        self.user = user
        self._key: bytes | None = None

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | None = None, name: str | None = None, *,
             key_file: str | None = None, user: str | None = None) -> Trial:
        """Open trial ``name`` (or the only trial) in the store at ``url`` (or ``$TRIALKIT_DB``)."""
        store = connect(url)
        try:
            store.require_schema()
            if name is None:
                names = [r[0] for r in store.query("SELECT name FROM trials ORDER BY name")]
                if len(names) != 1:
                    raise ServiceError(f"{store.url} holds {len(names)} trials "
                                       f"({', '.join(names) or 'none'}) — name the trial")
                name = names[0]
            return cls(store, name, key_file=key_file, user=user)
        except BaseException:
            store.close()
            raise

    @classmethod
    def create(cls, design: Any, url: str | None = None, *, key_file: str,
               name: str | None = None, user: str | None = None) -> Trial:
        """Create a trial from a design (file path or loaded design) and write its key file.

        The design's exact text and SHA-256 are stored; the new secret key goes to ``key_file``
        (mode 0600), which must not exist yet and must not be the database file.
        """
        from trialkit.design import load_design
        from trialkit.service.config import build_config

        if not hasattr(design, "kind"):
            design = load_design(design)
        config = build_config(design)
        name = name or design.name
        if not _NAME.match(name):
            raise ServiceError(f"trial name {name!r} is invalid — use letters, digits, '_', '.' "
                               "or '-' (at most 100)")
        if not key_file:
            raise ServiceError("no key file given — pass --key-file PATH (a new file, kept "
                               "outside the database)")
        # Checked before the store is opened, so a bad key path creates no database.
        if os.path.lexists(key_file):
            raise ServiceError(f"key file {key_file} already exists — choose a new path; a key "
                               "file is never overwritten")
        key_dir = os.path.dirname(os.path.abspath(key_file))
        if not os.path.isdir(key_dir):
            raise ServiceError(f"cannot create key file {key_file}: folder {key_dir} does not "
                               "exist — create the folder or choose another --key-file")
        store = connect(url, create=True)
        try:
            db_path = getattr(store, "path", None)
            if db_path and os.path.abspath(key_file) in {
                    os.path.abspath(db_path + s) for s in ("", "-wal", "-shm", ".lock")}:
                raise ServiceError(f"key file {key_file} is the database file — keep the key "
                                   "file outside the database")
            store.migrate()
            if store.query("SELECT 1 FROM trials WHERE name = ?", (name,)):
                raise ServiceError(f"trial {name!r} already exists in {store.url} — choose "
                                   "another --name")
            key = create_key_file(key_file)
            try:
                who = user or default_user()
                at = _utc_now()
                text = design.source.text
                sha = design.source.sha256
                payload = canonical({"trial": name, "kind": design.kind, "design": design.name,
                                     "design_sha256": sha, "config": config})
                h = row_hash(name, 1, at, who, "create", payload, GENESIS)
                with store.write(None):
                    store.execute(
                        "INSERT INTO trials (name, kind, design_sha256, design_text, config, "
                        "key_check, key_file, created_at, created_by, n_enrolled, n_audit, "
                        "last_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 1, ?)",
                        (name, design.kind, sha, text, canonical(config), key_check(key, name),
                         os.path.abspath(key_file), at, who, h))
                    store.execute(
                        "INSERT INTO audit (trial, seq, at, who, action, payload, prev_hash, "
                        "hash) VALUES (?, 1, ?, ?, 'create', ?, ?, ?)",
                        (name, at, who, payload, GENESIS, h))
            except BaseException:
                os.unlink(key_file)
                raise
            return cls(store, name, key_file=key_file, user=user)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        """Close the database connection."""
        self.store.close()

    def __enter__(self) -> Trial:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- key -------------------------------------------------------------------------------
    def key(self, key_file: str | None = None) -> bytes:
        """Read and check the trial's key: ``key_file``, the open one, or the stored one."""
        if key_file is None and self._key is not None:
            return self._key
        path = key_file or self.key_file or self._stored_key_file
        if not path:
            raise ServiceError(f"trial {self.name!r} needs its key file — pass --key-file")
        key = read_key_file(path)
        if key_check(key, self.name) != self._key_check:
            raise ServiceError(f"key file {path} is not the key of trial {self.name!r} — give "
                               "the key file written when this trial was created")
        if key_file is None:
            self._key = key
        return key

    # -- helpers ---------------------------------------------------------------------------
    def _user(self, user: str | None) -> str:
        return user or self.user or default_user()

    def _head(self) -> tuple[int, int, str]:
        if self.store.lock_trial_row(self.name) is None:
            raise ServiceError(f"trial {self.name!r} no longer exists — check --db")
        n_enrolled, n_audit, last_hash = self.store.query(
            "SELECT n_enrolled, n_audit, last_hash FROM trials WHERE name = ?", (self.name,))[0]
        return n_enrolled, n_audit, last_hash

    def _log(self, head: tuple[int, int, str], who: str, action: str, payload: Mapping,
             at: str | None = None, n_enrolled: int | None = None) -> tuple[int, int, str]:
        enrolled, n_audit, prev = head
        seq = n_audit + 1
        at = at or _utc_now()
        text = canonical(payload)
        h = row_hash(self.name, seq, at, who, action, text, prev)
        self.store.execute(
            "INSERT INTO audit (trial, seq, at, who, action, payload, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (self.name, seq, at, who, action, text, prev, h))
        enrolled = enrolled if n_enrolled is None else n_enrolled
        self.store.execute("UPDATE trials SET n_enrolled = ?, n_audit = ?, last_hash = ? "
                           "WHERE name = ?", (enrolled, seq, h, self.name))
        return enrolled, seq, h

    def _require(self, kinds: tuple[str, ...], command: str) -> None:
        if self.kind not in kinds:
            other = "decide" if self.kind == "mrt" else "enrol"
            raise ServiceError(f"trial {self.name!r} is of kind {self.kind!r}, which does not "
                               f"take '{command}' — use 'trialkit trial {other}'")

    @property
    def strata_levels(self) -> dict[str, list[str]]:
        """Stratification factors and their allowed values."""
        return self.config.get("strata", {})

    def check_strata(self, strata: Mapping[str, Any] | None) -> tuple[dict[str, str], str]:
        """Validate ``strata`` against the design; return them and the canonical stratum label."""
        strata = {str(k): str(v) for k, v in (strata or {}).items()}
        levels = self.strata_levels
        for k in strata:
            if k not in levels:
                allowed = ", ".join(levels) if levels else "none (this trial is not stratified)"
                raise ServiceError(f"stratum {k!r} is unknown — strata of trial {self.name!r}: "
                                   f"{allowed}")
        for k, values in levels.items():
            if k not in strata:
                raise ServiceError(f"stratum {k!r} is missing — pass --stratum {k}=VALUE "
                                   f"(one of: {', '.join(values)})")
            if strata[k] not in values:
                raise ServiceError(f"stratum {k}={strata[k]!r} is not an allowed value — use "
                                   f"one of: {', '.join(values)}")
        ordered = {k: strata[k] for k in levels}
        return ordered, ";".join(f"{k}={v}" for k, v in ordered.items())

    def _label(self, arm: int) -> Any:
        group = self.config["groups"][arm]
        return int(group) if self.kind == "factorial" else group

    def _decode(self, key: bytes, participant: str, code: str) -> int:
        for arm in range(len(self.config["groups"])):
            if keyed_code(key, self.name, participant, arm) == code:
                return arm
        raise ServiceError(f"the code of participant {participant!r} matches no arm with this "
                           "key — run 'trialkit trial verify' with the key file")

    def _arms(self, key: bytes, rows: Iterable[tuple]) -> list[int]:
        """Arms of participant rows ``(participant, arm, allocation)`` (decoding blinded codes)."""
        return [arm if arm is not None else self._decode(key, p, alloc)
                for p, arm, alloc in rows]

    def _level_counts(self, key: bytes, strata: Mapping[str, str]) -> list[list[int]]:
        factors = self.config["minimisation_factors"]
        n_arms = len(self.config["groups"])
        counts = [[0] * n_arms for _ in factors]
        rows = self.store.query("SELECT participant, arm, allocation, strata FROM participants "
                                "WHERE trial = ?", (self.name,))
        arms = self._arms(key, [r[:3] for r in rows])
        for (_, _, _, st), arm in zip(rows, arms, strict=True):
            st = json.loads(st)
            for f, factor in enumerate(factors):
                if st.get(factor) == strata[factor]:
                    counts[f][arm] += 1
        return counts

    def _enrol_result(self, row: tuple, new: bool) -> dict[str, Any]:
        participant, sequence, strata, arm, allocation, enrolled_at, error = row
        out: dict[str, Any] = {
            "trial": self.name,
            "participant": participant,
            "allocation": allocation if arm is None else self._label(arm),
            "sequence": sequence,
            "new": new,
            "stratum": json.loads(strata),
            "blinded": arm is None,
            "enrolled_at": enrolled_at,
        }
        if self.kind == "factorial" and arm is not None:
            out["condition"] = dict(zip(self.config["factor_names"], self.config["conditions"][arm],
                                        strict=True))
        if error:
            out["marked_error"] = True
        return out

    _ENROL_COLS = "participant, sequence, strata, arm, allocation, enrolled_at, error"

    # -- enrolment -------------------------------------------------------------------------
    def enrol(self, participant: Any, strata: Mapping[str, Any] | None = None,
              user: str | None = None) -> dict[str, Any]:
        """Randomise ``participant`` once; enrolling again returns the original allocation.

        Returns
        -------
        dict
            ``participant``, ``allocation`` (arm name, factorial condition number, or the code of
            a blinded trial), ``sequence`` (1-based enrolment number), ``new`` (false when the
            participant was already enrolled), ``stratum`` and, for factorial designs,
            ``condition`` (factor → ±1).
        """
        self._require(("factorial", "adaptive"), "enrol")
        participant = _check_participant(participant)
        strata, stratum = self.check_strata(strata)
        who = self._user(user)
        cfg = self.config
        store = self.store
        done = store.query(f"SELECT {self._ENROL_COLS} FROM participants WHERE trial = ? AND "
                           "participant = ?", (self.name, participant))
        if done:
            return self._enrol_result(done[0], new=False)
        key = self.key()
        with store.write(self.name):
            head = self._head()
            done = store.query(f"SELECT {self._ENROL_COLS} FROM participants WHERE trial = ? "
                               "AND participant = ?", (self.name, participant))
            if done:
                return self._enrol_result(done[0], new=False)
            sequence = head[0] + 1
            last = store.query("SELECT stratum_seq, block_no, block_pos FROM participants "
                               "WHERE trial = ? AND stratum = ? ORDER BY stratum_seq DESC "
                               "LIMIT 1", (self.name, stratum))
            stratum_seq = last[0][0] + 1 if last else 1
            last_block = (last[0][1], last[0][2]) if last and last[0][1] is not None else None
            counts = (self._level_counts(key, strata) if cfg["method"] == "minimisation"
                      else None)
            arm, state, block_no, block_pos = allocate(cfg, key, self.name, sequence, stratum,
                                                       last_block, counts)
            blinded = cfg["blinded"]
            allocation = (keyed_code(key, self.name, participant, arm) if blinded
                          else cfg["groups"][arm])
            at = _utc_now()
            strata_text = canonical(strata)
            store.execute(
                "INSERT INTO participants (trial, participant, sequence, stratum, strata, "
                "stratum_seq, arm, allocation, block_no, block_pos, state, enrolled_at, "
                "enrolled_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.name, participant, sequence, stratum, strata_text, stratum_seq,
                 None if blinded else arm, allocation, block_no, block_pos, canonical(state),
                 at, who))
            self._log(head, who, "enrol", {"participant": participant, "sequence": sequence,
                                           "strata": strata, "allocation": allocation,
                                           "state": state}, at=at, n_enrolled=sequence)
        row = (participant, sequence, strata_text, None if blinded else arm, allocation, at, 0)
        return self._enrol_result(row, new=True)

    # -- MRT decisions ---------------------------------------------------------------------
    def _check_decision(self, participant: Any, decision_point: Any, available: bool,
                        reason: str | None) -> tuple[str, int, bool, str | None]:
        participant = _check_participant(participant)
        n = self.config["n_decision_points"]
        try:
            dp = int(decision_point)
            if str(decision_point).strip() not in (str(dp), f"{dp}.0"):
                raise ValueError
        except (TypeError, ValueError):
            raise ServiceError(f"decision point {decision_point!r} is not a whole number — use "
                               f"1..{n}") from None
        if not 1 <= dp <= n:
            raise ServiceError(f"decision point {dp} is outside the design's schedule — use "
                               f"1..{n}")
        if not available and not (reason and str(reason).strip()):
            raise ServiceError(f"decision point {dp} of participant {participant!r} is "
                               "unavailable without a reason — give --reason")
        return participant, dp, bool(available), (str(reason).strip() if reason else None)

    def _decide_locked(self, head, who, participant, dp, available, reason, key):
        rows = self.store.query("SELECT available, reason, probability, action, draw FROM "
                                "decisions WHERE trial = ? AND participant = ? AND "
                                "decision_point = ?", (self.name, participant, dp))
        if rows:
            was_available, old_reason, p, action, _ = rows[0]
            if bool(was_available) != available:
                state = "available" if was_available else "unavailable"
                raise ServiceError(f"decision point {dp} of participant {participant!r} was "
                                   f"already logged as {state} — a decision point is decided "
                                   "once; repeat it with the same availability")
            return head, {"participant": participant, "decision_point": dp,
                          "available": available, "action": action, "probability": p,
                          "reason": old_reason, "new": False}
        p = self.config["probabilities"][dp - 1]
        if available:
            action, draw = mrt_draw(key, self.name, participant, dp, p)
        else:
            action, draw = 0, None
        at = _utc_now()
        self.store.execute(
            "INSERT INTO decisions (trial, participant, decision_point, available, reason, "
            "probability, action, draw, decided_at, decided_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?)", (self.name, participant, dp, int(available), reason, p, action, draw, at, who))
        head = self._log(head, who, "decide", {
            "participant": participant, "decision_point": dp, "available": available,
            "reason": reason, "probability": p, "action": action, "draw": draw}, at=at)
        return head, {"participant": participant, "decision_point": dp, "available": available,
                      "action": action, "probability": p, "reason": reason, "new": True}

    def decide(self, participant: Any, decision_point: int, available: bool = True,
               reason: str | None = None, user: str | None = None) -> dict[str, Any]:
        """Decide one MRT decision point: Bernoulli with the design's probability if available.

        Returns ``action`` (0/1), ``probability`` and ``decision_point``; an unavailable point
        gets action 0 and no draw. Repeating a decision point returns the logged decision.
        """
        return self.decide_many([(participant, decision_point, available, reason)], user)[0]

    def decide_many(self, rows: Iterable[Sequence[Any]],
                    user: str | None = None) -> list[dict[str, Any]]:
        """Decide many ``(participant, decision_point, available, reason)`` in one transaction.

        All rows are checked first; any bad row leaves the store unchanged.
        """
        self._require(("mrt",), "decide")
        checked = [self._check_decision(*r) for r in rows]
        who = self._user(user)
        key = self.key()
        out = []
        with self.store.write(self.name):
            head = self._head()
            for participant, dp, available, reason in checked:
                head, result = self._decide_locked(head, who, participant, dp, available,
                                                   reason, key)
                out.append(result)
        return out

    # -- corrections and unblinding ---------------------------------------------------------
    def _participant_row(self, participant: str) -> tuple:
        rows = self.store.query("SELECT participant, arm, allocation, error, error_reason FROM "
                                "participants WHERE trial = ? AND participant = ?",
                                (self.name, participant))
        if not rows:
            raise ServiceError(f"participant {participant!r} is not enrolled in trial "
                               f"{self.name!r} — check the id")
        return rows[0]

    def mark_error(self, participant: Any, reason: str, user: str | None = None) -> dict:
        """Flag an enrolment as made in error (with a reason); nothing is deleted."""
        self._require(("factorial", "adaptive"), "mark-error")
        participant = _check_participant(participant)
        if not reason or not str(reason).strip():
            raise ServiceError("a correction needs a reason — give --reason")
        reason = str(reason).strip()
        who = self._user(user)
        with self.store.write(self.name):
            head = self._head()
            row = self._participant_row(participant)
            if row[3]:
                raise ServiceError(f"participant {participant!r} is already marked in error "
                                   f"({row[4]}) — nothing to do")
            self.store.execute("UPDATE participants SET error = 1, error_reason = ? WHERE "
                               "trial = ? AND participant = ?", (reason, self.name, participant))
            self._log(head, who, "mark_error", {"participant": participant, "reason": reason})
        return {"trial": self.name, "participant": participant, "marked_error": True,
                "reason": reason}

    def unblind(self, participant: Any, reason: str, key_file: str | None = None,
                user: str | None = None) -> dict:
        """Reveal one participant's arm (needs the key); the log records that, not the arm."""
        self._require(("factorial", "adaptive"), "unblind")
        participant = _check_participant(participant)
        if not reason or not str(reason).strip():
            raise ServiceError("unblinding needs a reason — give --reason")
        reason = str(reason).strip()
        key = self.key(key_file)
        who = self._user(user)
        with self.store.write(self.name):
            head = self._head()
            p, arm, allocation, _, _ = self._participant_row(participant)
            if arm is None:
                arm = self._decode(key, p, allocation)
            self._log(head, who, "unblind", {"participant": participant, "reason": reason})
        out = {"trial": self.name, "participant": participant, "allocation": self._label(arm),
               "reason": reason}
        if self.kind == "factorial":
            out["condition"] = dict(zip(self.config["factor_names"],
                                        self.config["conditions"][arm], strict=True))
        return out

    # -- reporting ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Counts per arm/condition and stratum, imbalance and CONSORT-style counts."""
        from trialkit.service.report import status

        return status(self)

    def export(self, key_file: str | None = None) -> list[dict[str, Any]]:
        """Analysis-ready rows (see :func:`trialkit.service.report.export_rows`)."""
        from trialkit.service.report import export_rows

        return export_rows(self, key_file)

    def allocation_table(self, n_per_stratum: int, key_file: str | None = None,
                         user: str | None = None) -> list[dict[str, Any]]:
        """A REDCap-compatible allocation table (needs the key; logged)."""
        from trialkit.service.report import allocation_table

        return allocation_table(self, n_per_stratum, key_file, user)

    def verify(self, key_file: str | None = None) -> dict[str, Any]:
        """Check the audit chain and, given ``key_file``, replay every allocation."""
        from trialkit.service.verify import verify

        return verify(self, key_file)

    def replay(self, key_file: str | None = None) -> list[dict[str, Any]]:
        """Regenerate every allocation from the key and the logged enrolments, in order."""
        from trialkit.service.verify import replay

        return replay(self, self.key(key_file))


def design_sha256(text: str) -> str:
    """SHA-256 of a design file's text (as stored with the trial)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
