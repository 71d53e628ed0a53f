"""Identifiers and free text that enter the live service: one set of rules for every entry point.

Participant ids, stratum values, reasons and user names are matched whole and in Unicode NFC. An
identifier is refused when it holds a control or format character (newline, NUL, ESC, zero-width
space, bidi overrides...) or a character whose compatibility form differs (full-width ``Ｐ００１``
and other look-alikes of ``P001``), so two different strings can never look like one participant.
Error messages quote at most the first 40 characters, escaped.
"""

from __future__ import annotations

import functools
import math
import os
import re
import unicodedata
from typing import Any

from trialkit.errors import InvalidInput

TRIAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_ID_PUNCTUATION = set(",;=\"'")
_WHOLE = re.compile(r"[0-9]{1,18}(\.0*)?", re.ASCII)


def shown(value: Any, limit: int = 40) -> str:
    """``repr`` of ``value`` cut to ``limit`` characters (control characters escaped)."""
    text = str(value)
    cut = text[:limit]
    return repr(cut) + ("…" if len(text) > limit else "")


def _bad_character(text: str) -> str | None:
    for ch in text:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            return f"control or format character U+{ord(ch):04X}"
    if unicodedata.normalize("NFKC", text) != text:
        return "characters with a look-alike compatibility form (e.g. full-width letters)"
    return None


def clean_text(value: Any, what: str, *, max_length: int = 200, param: str | None = None,
               identifier: bool = False) -> str:
    """Check and normalise (NFC) one identifier or one line of free text.

    Parameters
    ----------
    value : object
        The value as given (converted with ``str``).
    what : str
        What it is, for the error message ("participant id").
    max_length : int
        At most this many characters.
    identifier : bool
        Also refuse whitespace, commas, semicolons, ``=`` and quotes.
    """
    if value is None or isinstance(value, bool | float):
        raise InvalidInput(f"{what} {shown(value)} is not text — give a {what}", param=param)
    text = unicodedata.normalize("NFC", str(value))
    problem = _bad_character(text)
    if problem is None and identifier and any(c.isspace() or c in _ID_PUNCTUATION for c in text):
        problem = "spaces, commas, semicolons, '=' or quotes"
    if problem is None and identifier and not text:
        problem = "no characters"
    if problem is None and not identifier and not text.strip():
        problem = "no text"
    if problem is None and len(text) > max_length:
        problem = f"more than {max_length} characters"
    if problem:
        raise InvalidInput(f"{what} {shown(value)} is invalid: it has {problem} — use 1-"
                           f"{max_length} visible characters", param=param)
    return text if identifier else text.strip()


def participant_id(value: Any) -> str:
    """Return a participant id: 1-200 visible characters, no spaces, commas, ';', '=' or quotes."""
    return clean_text(value, "participant id", identifier=True, param="participant")


def reason_text(value: Any, what: str = "reason") -> str:
    """Return a one-line reason (1-500 characters, no control or format characters)."""
    if value is None or not str(value).strip():
        raise InvalidInput(f"a {what} is required — give one", param="reason")
    return clean_text(value, what, max_length=500, param="reason")


def user_name(value: Any) -> str:
    """Who acts, as recorded in the audit trail."""
    return clean_text(value, "user name", max_length=100, param="user")


def trial_name(value: Any) -> str:
    """Return a trial name: letters, digits, '_', '.' or '-' (at most 100), matched whole."""
    text = str(value)
    if not TRIAL_NAME.fullmatch(text):
        raise InvalidInput(f"trial name {shown(text)} is invalid — use letters, digits, '_', '.' "
                           "or '-' (at most 100)", param="name")
    return text


def whole_number(value: Any, what: str, lo: int, hi: int, param: str | None = None) -> int:
    """Return an integer in ``lo..hi`` given as an int or as text/float holding a whole number."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value == int(value):
        number = int(value)
    elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        number = int(value.strip().split(".")[0])
    if number is None:
        raise InvalidInput(f"{what} {shown(value)} is not a whole number — use {lo}..{hi}",
                           param=param)
    if not lo <= number <= hi:
        raise InvalidInput(f"{what} {number} is out of range — use {lo}..{hi}", param=param)
    return number


def default_user() -> str:
    """Return the operating-system user name (recorded in the audit trail when no user is given)."""
    user = os.environ.get("TRIALKIT_USER") or os.environ.get("USER") or os.environ.get("LOGNAME")
    return user or _login_name()


@functools.cache
def _login_name() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return "unknown"
