"""Access tokens: principals with roles, for a randomisation server that alone holds the keys.

A token is ``tk_ID_SECRET``: a public id and 256 random bits. It is shown once; the store keeps the
id, the role, the trial, the optional site limits, the expiry and an HMAC of the secret, and the
whole row carries a MAC under a key derived from the trial's key (from the server key for
server-wide admin tokens), so anyone who can write the database still cannot add a token or widen
one. Creating and revoking a trial's token are audit rows in its chain, and verification checks
the tokens table against them.

Roles and what they may do:

======================  ==========================================================================
``coordinator``         enrol, mark in error, look up its own participants (optionally limited to
                        strata values, e.g. ``site=london``); never counts per arm of a blinded
                        trial, never the key
``app``                 MRT decisions (single and batch)
``statistician``        status and export (a blinded export stays blinded)
``unblinder``           unblind one participant, with a reason
``auditor``             verify, read the audit log, checkpoint receipts
``admin``               create trials (server-wide tokens), manage the trial's tokens, upgrade
======================  ==========================================================================
"""

from __future__ import annotations

import base64
import hmac
import json
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from trialkit.errors import AccessDenied, InvalidInput, NotFound, Unauthenticated
from trialkit.service import identity
from trialkit.service.audit import canonical
from trialkit.service.keys import TrialKey

ROLES: dict[str, frozenset[str]] = {
    "coordinator": frozenset({"enrol", "mark_error", "participant", "outcome", "schedule"}),
    "app": frozenset({"decide", "outcome", "schedule"}),
    "statistician": frozenset({"status", "export", "interim", "looks", "policy_update",
                               "policy"}),
    "unblinder": frozenset({"unblind"}),
    "auditor": frozenset({"verify", "audit", "checkpoint", "looks", "policy"}),
    "admin": frozenset({"create", "tokens", "upgrade"}),
}
#: The pseudo trial name under which server-wide tokens are keyed (never a valid trial name).
SERVER = "*"
PREFIX = "tk"


@dataclass(frozen=True)
class Token:
    """One stored token (never its secret)."""

    id: str
    trial: str | None
    role: str
    sites: str
    created_at: str
    created_by: str
    expires_at: str | None
    revoked_at: str | None
    secret_hash: str
    mac: str

    @property
    def site_limits(self) -> dict[str, list[str]]:
        """Stratum → allowed values (empty: no limit)."""
        return json.loads(self.sites)

    def public(self) -> dict[str, Any]:
        """Return what ``token list`` shows."""
        out = {k: v for k, v in asdict(self).items() if k not in ("secret_hash", "mac")}
        out["sites"] = self.site_limits
        return out

    def principal(self) -> str:
        """How the token is named in the audit trail."""
        return f"token:{self.id}:{self.role}"


def _mac(key: TrialKey, token: Token) -> str:
    fields = asdict(token)
    fields.pop("mac")
    return key.mac(key.token, "token-row", canonical(fields))


def _secret_hash(key: TrialKey, token_id: str, secret: str) -> str:
    return key.mac(key.token, "token-secret", token_id, secret)


def _b32(n: int) -> str:
    return base64.b32encode(secrets.token_bytes(n)).decode("ascii").rstrip("=").lower()


def check_sites(sites: Mapping[str, Any] | None, strata: Mapping[str, Sequence[str]]
                ) -> dict[str, list[str]]:
    """Validate site limits against the trial's strata; return them in canonical form."""
    out: dict[str, list[str]] = {}
    for name, values in (sites or {}).items():
        if name not in strata:
            allowed = ", ".join(strata) or "none (the trial is not stratified)"
            raise InvalidInput(f"site limit {identity.shown(name)} is not a stratum — strata: "
                               f"{allowed}", param="sites")
        values = [values] if isinstance(values, str) else list(values)
        for v in values:
            if v not in strata[name]:
                raise InvalidInput(f"site limit {name}={identity.shown(v)} is not an allowed value "
                                   f"— use one of: {', '.join(strata[name])}", param="sites")
        out[name] = sorted(set(values))
    return out


def _expiry(days: Any, now: datetime) -> str | None:
    if days is None:
        return None
    try:
        value = float(days)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 < value <= 3650:
        raise InvalidInput(f"expiry {identity.shown(days)} days is invalid — give a number of days "
                           "in (0, 3650]", param="expires")
    return _iso(now + timedelta(days=value))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def new_token(key: TrialKey, trial: str | None, role: str, sites: dict[str, list[str]],
              expires_days: Any, who: str) -> tuple[str, Token]:
    """Make a new token (its string, shown once, and its stored row)."""
    if role not in ROLES:
        raise InvalidInput(f"role {identity.shown(role)} is unknown — use one of: "
                           f"{', '.join(ROLES)}", param="role")
    if trial is None and role != "admin":
        raise InvalidInput("a server-wide token is for an admin — give a trial for other roles",
                           param="role")
    if sites and role != "coordinator":
        raise InvalidInput("site limits apply to coordinators only — drop them", param="sites")
    now = datetime.now(UTC)
    token_id, secret = _b32(6), _b32(32)
    row = Token(token_id, trial, role, canonical(sites), _iso(now), who,
                _expiry(expires_days, now), None, _secret_hash(key, token_id, secret), "")
    return f"{PREFIX}_{token_id}_{secret}", replace(row, mac=_mac(key, row))


def revoked(key: TrialKey, token: Token, who: str) -> Token:
    """Return the row of ``token`` marked revoked now (and re-authenticated)."""
    row = replace(token, revoked_at=_iso(datetime.now(UTC)), mac="")
    return replace(row, mac=_mac(key, row))


def parse(text: str) -> tuple[str, str]:
    """Split a token string into id and secret; raise :class:`Unauthenticated` when malformed."""
    parts = str(text).strip().split("_")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        raise Unauthenticated("the access token is malformed — give the token printed by "
                              "'token create'")
    return parts[1], parts[2]


def authentic(key: TrialKey, token: Token) -> bool:
    """Whether the stored row of ``token`` was made with ``key``."""
    return hmac.compare_digest(_mac(key, token), token.mac)


def unknown_token() -> Unauthenticated:
    """Return the error for a presented token that matches no stored token."""
    return Unauthenticated("the access token is unknown — ask the trial's admin for a token")


def check(key: TrialKey, token: Token, secret: str, now: datetime | None = None) -> Token:
    """Check a presented token against its stored row; return the row or raise."""
    if not hmac.compare_digest(_secret_hash(key, token.id, secret), token.secret_hash):
        raise unknown_token()
    if not authentic(key, token):
        raise Unauthenticated(f"the stored row of token {token.id} is not authentic — it was "
                              "edited outside trialkit; ask the trial's admin for a new token")
    if token.revoked_at is not None:
        raise Unauthenticated(f"token {token.id} was revoked at {token.revoked_at} — ask the "
                              "trial's admin for a new token")
    now = now or datetime.now(UTC)
    if token.expires_at is not None and _iso(now) >= token.expires_at:
        raise Unauthenticated(f"token {token.id} expired at {token.expires_at} — ask the trial's "
                              "admin for a new token")
    return token


def allow(token: Token, action: str, trial: str | None) -> None:
    """Raise :class:`AccessDenied` unless ``token`` may do ``action`` on ``trial``."""
    if action not in ROLES[token.role]:
        raise AccessDenied(f"role {token.role} may not {action.replace('_', '-')} — ask for a "
                        f"token with a role that may")
    if token.trial is not None and trial != token.trial:
        if trial is None:
            raise AccessDenied(f"token {token.id} is for trial {token.trial!r} only — creating "
                               "trials needs a server-wide admin token")
        raise AccessDenied(f"token {token.id} is for trial {token.trial!r}, not {trial!r} — use "
                           "a token of that trial")


def allow_strata(token: Token, strata: Mapping[str, Any]) -> None:
    """Raise :class:`AccessDenied` unless ``strata`` lie within the token's site limits."""
    for name, values in token.site_limits.items():
        if str(strata.get(name)) not in values:
            raise AccessDenied(f"token {token.id} may act only for {name} = "
                               f"{', '.join(values)} — use a token of that site", param="strata")


def unknown(token_id: str) -> NotFound:
    """Return the error for a token id that does not exist."""
    return NotFound(f"token {identity.shown(token_id)} does not exist — list tokens to see their "
                    "ids", param="token_id")
