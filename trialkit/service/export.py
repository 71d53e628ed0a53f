"""Writing exported rows as CSV, JSON or Parquet."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Any

from trialkit.errors import Unavailable


def write_rows(rows: list[dict[str, Any]], fmt: str, output: str | None = None,
               columns: Sequence[str] = ()) -> None:
    """Write ``rows`` (dicts with the same keys) to ``output`` (stdout when ``None``).

    ``columns`` come first (and make the CSV header and Parquet schema of an empty export).
    """
    try:
        _write(rows, fmt, output, columns)
    except OSError as exc:
        if output is None:
            raise
        reason = exc.strerror or str(exc).strip().splitlines()[0]
        raise Unavailable(f"cannot write {output} ({reason}) — check the output path and the "
                          "free space", param="out") from None


def _write(rows: list[dict[str, Any]], fmt: str, output: str | None,
           header: Sequence[str]) -> None:
    columns: list[str] = list(header)
    for r in rows:
        columns += [c for c in r if c not in columns]
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: [r.get(c) for r in rows] for c in columns})
        pq.write_table(table, output)
        return
    if fmt == "json":
        text = json.dumps(rows, indent=2) + "\n"
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
    if output:
        with open(output, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
