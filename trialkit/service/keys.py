"""The trial's secret key: a file of mode 0600 kept outside the database.

Format: the line ``trialkit-key v1`` followed by 64 hexadecimal digits (32 random bytes). The
database stores only a check value, HMAC(key, "key-check" + trial), so a wrong key is refused and
the key cannot be recovered from the database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat

from trialkit.errors import ServiceError

HEADER = "trialkit-key v1"


def create_key_file(path: str) -> bytes:
    """Create a new key file at ``path`` (mode 0600, never overwriting) and return the key."""
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ServiceError(f"key file {path} already exists — choose a new path; a key file is "
                           "never overwritten") from None
    except OSError as exc:
        raise ServiceError(f"cannot create key file {path} ({exc.strerror}) — check the "
                           "folder exists and is writable") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{HEADER}\n{key.hex()}\n")
    os.chmod(path, 0o600)
    return key


def read_key_file(path: str) -> bytes:
    """Read and check a key file; raise :class:`ServiceError` when missing, open or malformed."""
    try:
        st = os.stat(path)
        with open(path, encoding="ascii") as fh:
            text = fh.read(4096)
    except FileNotFoundError:
        raise ServiceError(f"key file {path} does not exist — give the key file written by "
                           "'trialkit trial create'") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise ServiceError(f"key file {path} cannot be read ({reason}) — give the key file "
                           "written by 'trialkit trial create'") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ServiceError(f"key file {path} is accessible to other users "
                           f"(mode {stat.S_IMODE(st.st_mode):04o}) — run: chmod 600 {path}")
    lines = text.split()
    if len(lines) != 3 or " ".join(lines[:2]) != HEADER or len(lines[2]) != 64:
        raise ServiceError(f"key file {path} is malformed — give the unmodified key file written "
                           "by 'trialkit trial create'")
    try:
        return bytes.fromhex(lines[2])
    except ValueError:
        raise ServiceError(f"key file {path} is malformed (not hexadecimal) — give the "
                           "unmodified key file written by 'trialkit trial create'") from None


def key_check(key: bytes, trial: str) -> str:
    """The value stored in the database to recognise the trial's key."""
    return hmac.new(key, b"key-check\x1f" + trial.encode(), hashlib.sha256).hexdigest()
