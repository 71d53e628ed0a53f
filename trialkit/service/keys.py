"""The trial's secret key: a file of mode 0600 kept outside the database, and what derives from it.

Format: the line ``trialkit-key v1`` followed by 64 hexadecimal digits (32 random bytes). The
database stores only a check value, HMAC(key, "key-check" + trial), so a wrong key is refused and
the key cannot be recovered from the database.

From the key, :class:`TrialKey` derives one sub-key per purpose (HMAC of the key and a label naming
the purpose and the trial): the audit chain's MACs, the encryption of secret allocation state,
receipts and access tokens. The allocation streams themselves use the key directly
(:mod:`trialkit.randomise`), under labels that never collide with these.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field

from trialkit.errors import Forbidden, InvalidInput, NotFound, Tampered

HEADER = "trialkit-key v1"


def create_key_file(path: str) -> bytes:
    """Create a new key file at ``path`` (mode 0600, never overwriting) and return the key."""
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(f"key file {path} already exists — choose a new path; a key file is "
                           "never overwritten", param="key_file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot create key file {path} ({exc.strerror}) — check the "
                           "folder exists and is writable", param="key_file") from None
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
        raise NotFound(f"key file {path} does not exist — give the key file written when the "
                       "trial was created", param="key_file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise Forbidden(f"key file {path} cannot be read ({reason}) — give the key file "
                        "written when the trial was created", param="key_file") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise Forbidden(f"key file {path} is accessible to other users "
                        f"(mode {stat.S_IMODE(st.st_mode):04o}) — run: chmod 600 {path}",
                        param="key_file")
    lines = text.split()
    if len(lines) != 3 or " ".join(lines[:2]) != HEADER or len(lines[2]) != 64:
        raise InvalidInput(f"key file {path} is malformed — give the unmodified key file "
                           "written when the trial was created", param="key_file")
    try:
        return bytes.fromhex(lines[2])
    except ValueError:
        raise InvalidInput(f"key file {path} is malformed (not hexadecimal) — give the "
                           "unmodified key file written when the trial was created",
                           param="key_file") from None


def key_check(key: bytes, trial: str) -> str:
    """Return the value stored in the database to recognise the trial's key."""
    return hmac.new(key, b"key-check\x1f" + trial.encode(), hashlib.sha256).hexdigest()


def _derive(key: bytes, purpose: str, trial: str) -> bytes:
    return hmac.new(key, f"derive\x1f{purpose}\x1f{trial}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class TrialKey:
    """A trial's secret key and the sub-keys derived from it.

    Attributes
    ----------
    secret : bytes
        The 32-byte key (allocation streams use it directly).
    trial : str
        The trial's name (every sub-key is bound to it).
    """

    secret: bytes = field(repr=False)
    trial: str
    audit: bytes = field(init=False, repr=False)
    seal: bytes = field(init=False, repr=False)
    receipt: bytes = field(init=False, repr=False)
    token: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Derive the sub-keys."""
        for purpose in ("audit", "seal", "receipt", "token"):
            object.__setattr__(self, purpose, _derive(self.secret, purpose, self.trial))

    @property
    def check(self) -> str:
        """The key check value stored with the trial."""
        return key_check(self.secret, self.trial)

    def mac(self, purpose_key: bytes, *parts: object) -> str:
        """Hex HMAC-SHA256 of ``parts`` (joined unambiguously) under one of the sub-keys."""
        msg = "\x1f".join(str(p) for p in parts).encode("utf-8")
        return hmac.digest(purpose_key, msg, "sha256").hex()


# -- sealing: authenticated encryption with HMAC-SHA256 only (encrypt-then-MAC) -------------
_NONCE = 16
_TAG = 32


def _keystream(key: bytes, nonce: bytes, n: int) -> bytes:
    blocks = []
    for counter in range((n + 31) // 32):
        blocks.append(hmac.new(key, b"stream\x1f" + nonce + counter.to_bytes(8, "big"),
                               hashlib.sha256).digest())
    return b"".join(blocks)[:n]


def seal(key: TrialKey, context: str, plaintext: bytes) -> str:
    """Encrypt and authenticate ``plaintext`` under the trial's sealing key, bound to ``context``.

    The keystream is HMAC-SHA256 in counter mode under a random nonce; the tag is HMAC-SHA256 of
    the context, nonce and ciphertext under a second sub-key. The result's length depends only on
    the plaintext's length.
    """
    nonce = secrets.token_bytes(_NONCE)
    enc = hmac.new(key.seal, b"encrypt", hashlib.sha256).digest()
    auth = hmac.new(key.seal, b"authenticate", hashlib.sha256).digest()
    body = bytes(a ^ b for a, b in zip(plaintext, _keystream(enc, nonce, len(plaintext)),
                                       strict=True))
    tag = hmac.new(auth, context.encode() + b"\x1f" + nonce + body, hashlib.sha256).digest()
    return base64.b64encode(nonce + body + tag).decode("ascii")


def unseal(key: TrialKey, context: str, sealed: str) -> bytes:
    """Decrypt what :func:`seal` produced; raise :class:`Tampered` unless it is authentic."""
    try:
        raw = base64.b64decode(sealed.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) < _NONCE + _TAG:
        raise Tampered(f"the sealed state of trial {key.trial!r} is damaged — the store was "
                       "edited outside trialkit; run verify with the key")
    nonce, body, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
    enc = hmac.new(key.seal, b"encrypt", hashlib.sha256).digest()
    auth = hmac.new(key.seal, b"authenticate", hashlib.sha256).digest()
    want = hmac.new(auth, context.encode() + b"\x1f" + nonce + body, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, want):
        raise Tampered(f"the sealed state of trial {key.trial!r} does not belong to its audit "
                       "chain — the store was edited or restored outside trialkit; run verify "
                       "with the key")
    return bytes(a ^ b for a, b in zip(body, _keystream(enc, nonce, len(body)), strict=True))


__all__ = ["HEADER", "TrialKey", "create_key_file", "key_check", "read_key_file", "seal",
           "unseal"]
