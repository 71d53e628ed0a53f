"""Errors raised by trialkit's library code.

Every error a user can cause is a :class:`TrialkitError`. Its message is one line that says what is
wrong and how to fix it (``"what is wrong — what to do"``); the CLI prints it and exits with code 2.
"""

from __future__ import annotations


class TrialkitError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(" ".join(str(message).split()))
        #: The name of the argument to fix (e.g. ``"key_file"``), so that an interface can name
        #: its own spelling of it (a CLI flag, an HTTP field); ``None`` when no single one.
        self.param = param


class DesignError(TrialkitError):
    """A design file (or design argument) is invalid.

    Parameters
    ----------
    file : str
        The design file's path (or ``"<arguments>"``).
    key : str
        Dotted key of the offending value, e.g. ``"sample.alpha"``.
    value : object
        The offending value (``None`` when the key is missing).
    problem : str
        What is wrong with it.
    allowed : str
        What would be accepted.
    """

    def __init__(self, file: str, key: str, value: object, problem: str, allowed: str):
        self.file, self.key, self.value = file, key, value
        shown = "missing" if value is _MISSING_VALUE else repr(value)
        super().__init__(f"{file}: key '{key}' = {shown}: {problem} — {allowed}")


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

    def __init__(self, message: str, *, param: str | None = None, retryable: bool = True):
        super().__init__(message, param=param)
        self.retryable = retryable


class AccessDenied(Forbidden):
    """The caller is authenticated but its role or site does not allow the request."""


class Unauthenticated(ServiceError):
    """A request came without valid credentials (a missing, unknown, expired or revoked token)."""


class Tampered(ServiceError):
    """The store was changed outside trialkit: the action was refused and nothing was written."""
