"""Key custody for a randomisation server: its key folder, the server key and admin tokens.

A server keeps the keys of the trials it creates in one folder (mode 0700), next to
``server.key``, from which server-wide admin tokens are authenticated. Trials created elsewhere
keep their key at the path stored with the trial; the server reads it there. Only the server's
user should be able to read the folder: it is everything a site must never hold.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any

from trialkit.errors import Conflict, Forbidden, NotFound
from trialkit.service import tokens
from trialkit.service.keys import TrialKey, create_key_file, read_key_file
from trialkit.service.store import Store


class KeyDirectory:
    """The server's key folder."""

    def __init__(self, path: str, create: bool = False):
        self.path = os.path.abspath(path)
        if create and not os.path.exists(self.path):
            try:
                os.makedirs(self.path, mode=0o700)
            except OSError as exc:
                raise Forbidden(f"cannot create key folder {path} ({exc.strerror}) — check the "
                                "parent folder", param="key_dir") from None
        if not os.path.isdir(self.path):
            raise NotFound(f"key folder {path} does not exist — create it (mode 700) or give "
                           "another", param="key_dir")
        mode = stat.S_IMODE(os.stat(self.path).st_mode)
        if mode & 0o077:
            raise Forbidden(f"key folder {path} is accessible to other users (mode {mode:04o}) — "
                            f"run: chmod 700 {path}", param="key_dir")

    def trial_key_path(self, trial: str) -> str:
        """Where the server writes the key of a trial it creates."""
        return os.path.join(self.path, f"{trial}.key")

    def server_key(self, create: bool = False) -> TrialKey:
        """Return the server key (created when ``create`` and missing)."""
        path = os.path.join(self.path, "server.key")
        if create and not os.path.exists(path):
            create_key_file(path)
        return TrialKey(read_key_file(path), tokens.SERVER)


def create_admin_token(store: Store, keys: KeyDirectory, who: str,
                       expires_days: float | None = None) -> dict[str, Any]:
    """Make a server-wide admin token (may create trials); its string is shown once."""
    key = keys.server_key(create=True)
    store.migrate()
    text, row = tokens.new_token(key, None, "admin", {}, expires_days, who)
    with store.write(None):
        store.insert_token(row)
    return {"token": text, **row.public()}


def revoke_admin_token(store: Store, keys: KeyDirectory, token_id: str, who: str
                       ) -> dict[str, Any]:
    """Revoke a server-wide admin token."""
    key = keys.server_key()
    with store.write(None):
        row = store.token(token_id)
        if row is None or row.trial is not None:
            raise tokens.unknown(token_id)
        if row.revoked_at is not None:
            raise Conflict(f"token {row.id} was already revoked at {row.revoked_at} — nothing "
                           "to do")
        row = tokens.revoked(key, row, who)
        store.update_token(row)
    return row.public()


def authenticate(store: Store, text: str,
                 key_for: Callable[[str | None], TrialKey]) -> tokens.Token:
    """Return the token row behind a presented token string, checked (or :class:`Unauthenticated`).

    ``key_for(trial)`` gives the key that authenticates a token of ``trial`` (the server key for
    ``None``).
    """
    token_id, secret = tokens.parse(text)
    row = store.token(token_id)
    if row is None:
        raise tokens.unknown_token()
    return tokens.check(key_for(row.trial), row, secret)
