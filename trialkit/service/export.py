"""Writing exported rows as CSV, JSON or Parquet."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any


def write_rows(rows: list[dict[str, Any]], fmt: str, output: str | None = None) -> None:
    """Write ``rows`` (dicts with the same keys) to ``output`` (stdout when ``None``)."""
    columns: list[str] = []
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
