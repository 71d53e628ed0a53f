"""Result objects: what domain functions return instead of bare dictionaries.

A result is a small frozen object. :meth:`Result.to_dict` gives its plain JSON form — the
documented contract that ``--format json`` prints and :meth:`Result.save` writes; ``to_frame``
gives its main table as a pandas DataFrame; results that a user would want to see have
``plot()``, returning a matplotlib figure. Item access (``result["power"]``) reads the values by
name (:meth:`Result.as_mapping`), so code written for the dictionaries the functions used to
return keeps working.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar


def plain(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats to plain JSON values."""
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


class Result(Mapping[str, Any]):
    """Base of result objects.

    Subclasses are frozen dataclasses (or implement :meth:`to_dict`); ``primary`` names the list
    of records that is the result's main table (its CSV output and :meth:`to_frame`).
    """

    primary: ClassVar[str | None] = None

    def as_mapping(self) -> dict[str, Any]:
        """Return the result's values by name, as Python objects (NaN stays NaN).

        Dataclass fields in order; fields marked :func:`hidden`, and fields marked
        :func:`omit_none` while they hold ``None``, are left out.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("hidden") or (value is None and f.metadata.get("omit_none")):
                continue
            out[f.name] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the plain JSON form: :meth:`as_mapping` with JSON values (NaN → None)."""
        out: dict[str, Any] = plain(self.as_mapping())
        return out

    def to_frame(self, key: str | None = None) -> Any:
        """Return the records under ``key`` (default: the main table) as a pandas DataFrame."""
        import pandas as pd

        name = key or self.primary
        if name is None:
            return pd.DataFrame([self.to_dict()])
        return pd.DataFrame(self.to_dict()[name])

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the plain form as JSON (``.json``) or the main table as CSV (``.csv``).

        Any other extension raises :class:`~trialkit.errors.TrialkitError` (nothing is written).
        """
        path = os.fspath(path)
        if not path.lower().endswith((".json", ".csv")):
            from trialkit.errors import TrialkitError

            raise TrialkitError(f"{path} has an extension a result is not saved as — "
                                "give a path ending in .json or .csv", param="path")
        if path.lower().endswith(".csv"):
            self.to_frame().to_csv(path, index=False)
        else:
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(self.to_dict(), fh, indent=2)
        return path

    # -- read-only mapping (the dictionaries of earlier versions) ------------------------------
    def __getitem__(self, key: str) -> Any:
        """Return value ``key`` (as :meth:`as_mapping` has it)."""
        return self.as_mapping()[key]

    def __iter__(self) -> Iterator[str]:
        """Iterate over the names of the values."""
        return iter(self.as_mapping())

    def __len__(self) -> int:
        """Return the number of values."""
        return len(self.as_mapping())


@dataclasses.dataclass(frozen=True)
class Report(Result):
    """A result whose plain form is a nested report of many named metrics (``report``)."""

    report: dict[str, Any]

    def as_mapping(self) -> dict[str, Any]:
        """Return the report."""
        return self.report


def omit_none() -> Any:
    """Return a dataclass field (default ``None``) left out of ``to_dict()`` while ``None``."""
    return dataclasses.field(default=None, metadata={"omit_none": True})


def hidden(default: Any = None) -> Any:
    """Return a dataclass field kept on the object but never part of :meth:`Result.to_dict`."""
    return dataclasses.field(default=default, metadata={"hidden": True}, compare=False,
                             repr=False)
