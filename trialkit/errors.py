"""Errors raised by trialkit's library code.

Every error a user can cause is a :class:`TrialkitError`. Its message is one line that says what is
wrong and how to fix it (``"what is wrong — what to do"``); the CLI prints it and exits with code 2.

Library messages name Python parameters, never command-line flags. An error about an argument
carries the argument's name in ``param`` (``TrialkitError("reps = 0 is invalid — …",
param="reps")``); the command line appends the flag that sets it (``(option --reps)``), so the
same message serves the Python API, the CLI and any other front-end.
"""

from __future__ import annotations

#: Longest echo of a user's value in a message; longer values are cut and end with "…".
SHOWN_LENGTH = 40


def shown(value: object, limit: int = SHOWN_LENGTH) -> str:
    """Return ``value`` as text for a message, cut to ``limit`` characters (ending "…")."""
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class TrialkitError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do.

    Parameters
    ----------
    message : str
        ``"what is wrong — what to do"``; white space is folded to one line.
    param : str or tuple of str, optional
        The Python name(s) of the argument(s) at fault (e.g. ``"reps"``). Front-ends map them
        to their own spelling (the CLI to ``--reps``).
    """

    def __init__(self, message: str, *, param: str | tuple[str, ...] | None = None):
        super().__init__(" ".join(str(message).split()))
        self.param: tuple[str, ...] = (param,) if isinstance(param, str) else tuple(param or ())

    @property
    def message(self) -> str:
        """The one-line message."""
        return str(self)


class DesignError(TrialkitError):
    """A design file (or design argument) is invalid.

    Parameters
    ----------
    file : str
        The design file's path (or ``"<arguments>"``).
    key : str
        Dotted key of the offending value, e.g. ``"sample.alpha"``.
    value : object
        The offending value (``None`` when the key is missing); its echo is cut to
        :data:`SHOWN_LENGTH` characters.
    problem : str
        What is wrong with it.
    allowed : str
        What would be accepted.
    """

    def __init__(self, file: str, key: str, value: object, problem: str, allowed: str):
        self.file, self.key, self.value = file, key, value
        echoed = "missing" if value is _MISSING_VALUE else shown(repr(value))
        super().__init__(f"{file}: key '{key}' = {echoed}: {problem} — {allowed}")


class _Missing:
    def __repr__(self) -> str:
        return "missing"


_MISSING_VALUE = _Missing()
MISSING = _MISSING_VALUE


class DataError(TrialkitError):
    """An input data table is unusable (wrong column, bad value, bad order)."""


class ServiceError(TrialkitError):
    """The randomisation service refused an action.

    The subclasses say what kind of failure it is, so that an interface can map it (an HTTP
    server to a status code): :class:`InvalidInput`, :class:`NotFound`, :class:`Conflict`,
    :class:`Forbidden`, :class:`Unauthenticated`, :class:`Unavailable` and :class:`Tampered`.
    """


class InvalidInput(ServiceError):
    """A value given to the service is malformed or out of range; nothing was changed."""


class NotFound(ServiceError):
    """The trial, participant, store or file named does not exist."""


class Conflict(ServiceError):
    """The request contradicts what the trial already holds (exists already, other stratum...)."""


class Forbidden(ServiceError):
    """The caller may not do this: wrong key, file permissions, or a role that lacks the right."""


class Unavailable(ServiceError):
    """The store cannot serve the request now (lock timeout, full disk, lost connection...).

    ``retryable`` is true when repeating the same request later may succeed.
    """

    def __init__(self, message: str, *, param: str | tuple[str, ...] | None = None,
                 retryable: bool = True):
        super().__init__(message, param=param)
        self.retryable = retryable


class AccessDenied(Forbidden):
    """The caller is authenticated but its role or site does not allow the request."""


class Unauthenticated(ServiceError):
    """A request came without valid credentials (a missing, unknown, expired or revoked token)."""


class Tampered(ServiceError):
    """The store was changed outside trialkit: the action was refused and nothing was written."""
