"""Typed reading of one TOML table with complete validation.

A :class:`Section` hands out values by key, checks type and range, and remembers which keys were
read; :meth:`Section.done` then rejects every key that was not read, so a misspelt key is never
silently ignored. Every error names the file, the dotted key, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Sequence
from typing import Any, Literal, overload

from trialkit.errors import MISSING, DesignError

_NUMBER = (int, float)


def read_text(path: str, what: str) -> str:
    """Return the UTF-8 text of the ``what`` (e.g. "design file") at ``path``."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DesignError(path, "<file>", MISSING, f"cannot be read ({exc.strerror})",
                          "check the path") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DesignError(path, "<file>", MISSING, "is not UTF-8 text",
                          f"save the {what} as UTF-8") from None


def parse_toml(text: str, path: str) -> Section:
    """Parse TOML ``text`` into its top-level :class:`Section` (``path`` is used in messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DesignError(path, "<syntax>", MISSING, f"is not valid TOML ({exc})",
                          "fix the TOML syntax at the position shown") from None
    return Section(data, path)


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)


def _interval(minimum: float | None, maximum: float | None, exclusive_min: bool,
              exclusive_max: bool) -> str:
    lo = "-inf" if minimum is None else f"{minimum:g}"
    hi = "inf" if maximum is None else f"{maximum:g}"
    left = "(" if exclusive_min or minimum is None else "["
    right = ")" if exclusive_max or maximum is None else "]"
    return f"{left}{lo}, {hi}{right}"


class Section:
    """One TOML table of a design file.

    Parameters
    ----------
    data : dict
        The parsed table.
    file : str
        Path of the design file, used in error messages.
    path : str
        Dotted path of this table inside the file ("" for the top level).
    """

    def __init__(self, data: dict[str, Any], file: str, path: str = ""):
        if not isinstance(data, dict):
            raise DesignError(file, path or "<top>", data, "is not a table",
                              "write it as a TOML table")
        self.data = data
        self.file = file
        self.path = path
        self._used: set[str] = set()

    # -- helpers -------------------------------------------------------------------------------
    def key(self, key: str) -> str:
        """Return the dotted path of ``key`` inside the file."""
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, value: Any, problem: str, allowed: str) -> DesignError:
        """Build a :class:`DesignError` for ``key`` of this section."""
        return DesignError(self.file, self.key(key), value, problem, allowed)

    def has(self, key: str) -> bool:
        """Whether ``key`` is present (marks nothing as read)."""
        return key in self.data

    def raw(self, key: str, default: Any = MISSING) -> Any:
        """Return the raw value of ``key`` (marking it read), or ``default`` when absent."""
        self._used.add(key)
        if key in self.data:
            return self.data[key]
        if default is MISSING:
            raise self.error(key, MISSING, "is required", "add it to the design file")
        return default

    # -- scalars -------------------------------------------------------------------------------
    def string(self, key: str, default: Any = MISSING, choices: Sequence[str] | None = None) -> Any:
        """Read a string, optionally restricted to ``choices``."""
        value = self.raw(key, default)
        if value is default and key not in self.data:
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, value, "is not a non-empty string",
                             'write a quoted string, e.g. "x"')
        if choices is not None and value not in choices:
            raise self.error(key, value, "is not an allowed value",
                             "use one of: " + ", ".join(choices))
        return value

    def boolean(self, key: str, default: Any = MISSING) -> Any:
        """Read ``true`` or ``false``."""
        value = self.raw(key, default)
        if value is default and key not in self.data:
            return value
        if not isinstance(value, bool):
            raise self.error(key, value, "is not a boolean", "use true or false")
        return value

    def check_number(
        self,
        key: str,
        value: Any,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_min: bool = False,
        exclusive_max: bool = False,
        integer: bool = False,
    ) -> float:
        """Check that ``value`` (read from ``key``) is a finite number in the given interval."""
        if integer:
            if not isinstance(value, int) or isinstance(value, bool):
                raise self.error(key, value, "is not a whole number", "write an integer such as 3")
        elif not _is_number(value) or not math.isfinite(value):
            raise self.error(key, value, "is not a finite number", "write a number such as 0.5")
        bad = (
            (minimum is not None and (value < minimum or (exclusive_min and value == minimum)))
            or (maximum is not None and (value > maximum or (exclusive_max and value == maximum)))
        )
        if bad:
            interval = _interval(minimum, maximum, exclusive_min, exclusive_max)
            kind = "an integer" if integer else "a number"
            raise self.error(key, value, "is out of range", f"use {kind} in {interval}")
        return int(value) if integer else float(value)

    def number(
        self,
        key: str,
        default: Any = MISSING,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_min: bool = False,
        exclusive_max: bool = False,
    ) -> Any:
        """Read a finite number in ``[minimum, maximum]`` (bounds optionally exclusive)."""
        value = self.raw(key, default)
        if value is default and key not in self.data:
            return value
        return self.check_number(key, value, minimum, maximum, exclusive_min, exclusive_max)

    def positive(self, key: str, default: Any = MISSING) -> Any:
        """Read a number > 0."""
        return self.number(key, default, minimum=0, exclusive_min=True)

    def probability(self, key: str, default: Any = MISSING) -> Any:
        """Read a probability strictly inside (0, 1)."""
        return self.number(key, default, 0, 1, exclusive_min=True, exclusive_max=True)

    def integer(
        self, key: str, default: Any = MISSING, minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        """Read a whole number in ``[minimum, maximum]``."""
        value = self.raw(key, default)
        if value is default and key not in self.data:
            return value
        return self.check_number(key, value, minimum, maximum, integer=True)

    # -- lists ---------------------------------------------------------------------------------
    def number_list(
        self,
        key: str,
        default: Any = MISSING,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_min: bool = False,
        exclusive_max: bool = False,
        length: int | None = None,
        integer: bool = False,
        scalar_ok: bool = False,
    ) -> Any:
        """Read a list of numbers (or, with ``scalar_ok``, a single number returned as a float)."""
        value = self.raw(key, default)
        if value is default and key not in self.data:
            return value
        if scalar_ok and not isinstance(value, list):
            return self.check_number(key, value, minimum, maximum, exclusive_min, exclusive_max,
                                     integer)
        if not isinstance(value, list) or not value:
            raise self.error(key, value, "is not a non-empty list of numbers",
                             "write a list such as [0.2, 0.3]")
        if length is not None and len(value) != length:
            raise self.error(key, value, f"has {len(value)} entries",
                             f"give exactly {length} entries")
        return tuple(
            self.check_number(key, v, minimum, maximum, exclusive_min, exclusive_max, integer)
            for v in value
        )

    def string_list(
        self, key: str, default: Any = MISSING, choices: Sequence[str] | None = None,
        unique: bool = True,
    ) -> Any:
        """Read a list of strings, optionally restricted to ``choices`` and free of duplicates."""
        value = self.raw(key, default)
        if value is default and key not in self.data:
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, value, "is not a list of strings", 'write ["a", "b"]')
        if choices is not None:
            for v in value:
                if v not in choices:
                    raise self.error(key, v, "is not an allowed value",
                                     "use one of: " + ", ".join(choices))
        if unique:
            check_unique(self, key, value)
        return tuple(value)

    # -- nested tables ---------------------------------------------------------------------------
    @overload
    def section(self, key: str, required: Literal[True]) -> Section: ...

    @overload
    def section(self, key: str, required: bool = False) -> Section | None: ...

    def section(self, key: str, required: bool = False) -> Section | None:
        """Return the sub-table ``key`` as a :class:`Section` (``None`` if absent and optional)."""
        value = self.raw(key, MISSING if required else None)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(key, value, "is not a table", f"write it as [{self.key(key)}]")
        return Section(value, self.file, self.key(key))

    def sections(self, key: str, required: bool = False) -> list[Section]:
        """Return an array of tables (``[[key]]``) as a list of sections."""
        value = self.raw(key, MISSING if required else [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, value, "is not an array of tables",
                             f"write [[{self.key(key)}]] blocks")
        return [Section(v, self.file, f"{self.key(key)}[{i}]") for i, v in enumerate(value)]

    def named_sections(self, key: str, required: bool = False) -> dict[str, Section]:
        """Return a table of tables (``[key.NAME]``) as ``{NAME: Section}`` in file order."""
        value = self.raw(key, MISSING if required else {})
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise self.error(key, value, "is not a table of named tables",
                             f"write [{self.key(key)}.NAME] blocks")
        return {name: Section(v, self.file, f"{self.key(key)}.{name}") for name, v in value.items()}

    def number_mapping(
        self, key: str, required: bool = False, allowed_keys: Sequence[str] | None = None,
        minimum: float | None = None, maximum: float | None = None,
        exclusive_min: bool = False, exclusive_max: bool = False,
    ) -> dict[str, float]:
        """Read a table of ``name = number`` pairs, optionally restricting the names."""
        sub = self.section(key, required)
        if sub is None:
            return {}
        out = {}
        for name, value in sub.data.items():
            if allowed_keys is not None and name not in allowed_keys:
                raise sub.unknown(name, allowed_keys)
            out[name] = sub.number(name, minimum=minimum, maximum=maximum,
                                   exclusive_min=exclusive_min, exclusive_max=exclusive_max)
        sub.done()
        return out

    # -- finishing ---------------------------------------------------------------------------
    def unknown(self, key: str, allowed: Sequence[str]) -> DesignError:
        """Build the error for an unknown key, suggesting the closest allowed one."""
        allowed = sorted(allowed)
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        where = f"[{self.path}]" if self.path else "the top level"
        listed = ", ".join(allowed) if allowed else "none"
        return self.error(key, self.data.get(key), "is not a known key",
                          f"allowed keys in {where}: {listed}{hint}")

    def done(self, extra_allowed: Sequence[str] = ()) -> None:
        """Reject any key that was not read (a typo must never be silently ignored)."""
        allowed = self._used | set(extra_allowed)
        for key in self.data:
            if key not in allowed:
                raise self.unknown(key, sorted(allowed))


def check_unique(section: Section, key: str, names: Sequence[str]) -> None:
    """Raise when ``names`` (read from ``key``) contains a duplicate."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise section.error(key, name, "is duplicated", "give every entry a distinct name")
        seen.add(name)


def identifier(section: Section, key: str, default: Any = MISSING) -> Any:
    """Read a name usable as a column/identifier: letters, digits and underscores."""
    value = section.string(key, default)
    if value is default and not section.has(key):
        return value
    if not value.replace("_", "a").isalnum() or value[0].isdigit():
        raise section.error(key, value, "is not a valid name",
                            "use letters, digits and underscores, starting with a letter")
    return value

