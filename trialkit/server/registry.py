"""What one server process holds: the store, the trials' keys, open trials and checked tokens.

Request handlers run in a thread pool; every thread gets its own connection (a :class:`Trial`
per trial and a store for token look-ups), while the keys, read once from their files, and
recently checked tokens are shared. A checked token is trusted for :data:`TOKEN_TTL` seconds, so
a revocation takes effect within that time in every worker.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from trialkit.errors import NotFound
from trialkit.server.batcher import Batcher
from trialkit.service import tokens
from trialkit.service.custody import KeyDirectory, authenticate
from trialkit.service.keys import TrialKey
from trialkit.service.store import Store, connect
from trialkit.service.trial import Trial

TOKEN_TTL = 2.0


class Registry:
    """The server's view of one store: keys, per-thread trials, a short-lived token cache."""

    def __init__(self, db: str, key_dir: str | None, lock_timeout: float | None = None):
        self.db = db
        self.keys = KeyDirectory(key_dir) if key_dir else None
        self.lock_timeout = lock_timeout
        self._local = threading.local()
        self._guard = threading.Lock()
        self._trial_keys: dict[str, TrialKey] = {}
        self._checked: dict[str, tuple[float, tokens.Token]] = {}
        self._writers: dict[str, Batcher] = {}
        # A server with a key folder may create trials, so it may start on a new store.
        store = connect(db, create=self.keys is not None, lock_timeout=lock_timeout)
        try:
            if self.keys is not None:
                store.migrate()
            else:
                store.require_schema()
        finally:
            store.close()

    # -- connections (one per thread) ---------------------------------------------------
    def store(self) -> Store:
        """Return this thread's store connection."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = connect(self.db, lock_timeout=self.lock_timeout)
        return store

    def trial(self, name: str) -> Trial:
        """Return this thread's open :class:`Trial` ``name`` (holding the trial's key)."""
        trials: dict[str, Trial] = self._local.__dict__.setdefault("trials", {})
        trial = trials.get(name)
        if trial is None:
            key = self.key_for(name)
            trial = trials[name] = Trial.open(self.db, name, lock_timeout=self.lock_timeout,
                                              key=key.secret)
        return trial

    def writer(self, name: str) -> Batcher:
        """Return the writer thread of trial ``name`` (group commit), started on first use."""
        with self._guard:
            writer = self._writers.get(name)
        if writer is None:
            key = self.key_for(name)  # fails here, in the caller, for an unknown trial
            with self._guard:
                writer = self._writers.get(name)
                if writer is None:
                    writer = self._writers[name] = Batcher(
                        lambda: Trial.open(self.db, name, lock_timeout=self.lock_timeout,
                                           key=key.secret), name)
        return writer

    def forget(self, name: str) -> None:
        """Close this thread's connection to trial ``name`` (after it failed)."""
        trial = self._local.__dict__.get("trials", {}).pop(name, None)
        if trial is not None:
            trial.close()

    # -- keys and tokens ------------------------------------------------------------------
    def key_for(self, trial: str | None) -> TrialKey:
        """Return the key of ``trial`` (read once from its stored path), or the server key."""
        if trial is None:
            if self.keys is None:
                raise NotFound("this server has no key folder, so it has no server-wide tokens — "
                               "start it with a key folder")
            return self.keys.server_key()
        with self._guard:
            key = self._trial_keys.get(trial)
        if key is None:
            with Trial.open(self.db, trial, lock_timeout=self.lock_timeout) as opened:
                key = opened.key()
            with self._guard:
                self._trial_keys[trial] = key
        return key

    def cached_principal(self, header: str | None) -> tokens.Token | None:
        """Return the token of ``header`` if it was checked less than :data:`TOKEN_TTL` s ago."""
        digest = hashlib.sha256(_bearer(header).encode()).hexdigest()
        with self._guard:
            hit = self._checked.get(digest)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def principal(self, header: str | None) -> tokens.Token:
        """Return the token presented in an ``Authorization: Bearer`` header, checked."""
        cached = self.cached_principal(header)
        if cached is not None:
            return cached
        text = _bearer(header)
        digest = hashlib.sha256(text.encode()).hexdigest()
        now = time.monotonic()
        token = authenticate(self.store(), text, self.key_for)
        with self._guard:
            if len(self._checked) > 10_000:
                self._checked.clear()
            self._checked[digest] = (now + TOKEN_TTL, token)
        return token

    def close(self) -> None:
        """Close this thread's connections (the writer threads end with the process)."""
        for trial in self._local.__dict__.get("trials", {}).values():
            trial.close()
        store: Any = getattr(self._local, "store", None)
        if store is not None:
            store.close()


def _bearer(header: str | None) -> str:
    from trialkit.errors import Unauthenticated

    scheme, _, text = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not text.strip():
        raise Unauthenticated("the request has no access token — send 'Authorization: Bearer "
                              "TOKEN'")
    return text.strip()
