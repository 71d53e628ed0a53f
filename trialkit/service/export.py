"""Exported rows as CSV, JSON or Parquet bytes: one rendering for files, stdout and HTTP."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Any

from trialkit.errors import Unavailable

FORMATS = ("csv", "json", "parquet")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json",
               "parquet": "application/vnd.apache.parquet"}


def render_rows(rows: list[dict[str, Any]], fmt: str, columns: Sequence[str] = ()) -> bytes:
    """Render ``rows`` (dicts) as bytes in ``fmt``.

    ``columns`` come first (and make the CSV header and Parquet schema of an empty export).
    """
    cols: list[str] = list(columns)
    for r in rows:
        cols += [c for c in r if c not in cols]
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({c: [r.get(c) for r in rows] for c in cols}), sink)
        return sink.getvalue().to_pybytes()
    if fmt == "json":
        return (json.dumps(rows, indent=2) + "\n").encode("utf-8")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def write_bytes(data: bytes, output: str | None = None) -> None:
    """Write rendered rows to ``output`` (stdout when ``None``)."""
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        with open(output, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        reason = exc.strerror or str(exc).strip().splitlines()[0]
        raise Unavailable(f"cannot write {output} ({reason}) — check the output path and the "
                          "free space", param="out") from None


def write_rows(rows: list[dict[str, Any]], fmt: str, output: str | None = None,
               columns: Sequence[str] = ()) -> None:
    """Render ``rows`` and write them to ``output`` (stdout when ``None``)."""
    write_bytes(render_rows(rows, fmt, columns), output)
