"""Reading data tables (CSV or Parquet) at the I/O boundary; pandas is imported here only."""

from __future__ import annotations

import os

import numpy as np

from trialkit.constants import TABLE_FORMATS
from trialkit.errors import DataError, shown


def read_table(path: str | os.PathLike[str]):
    """Read a CSV or Parquet file (by extension; CSV otherwise) into a pandas DataFrame.

    Raises
    ------
    DataError
        When the file is missing or cannot be parsed; the message is one line.
    """
    import pandas as pd

    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file — check the data path")
    try:
        if path.lower().endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:
        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise DataError(f"{path}: cannot be read as CSV or Parquet ({detail}) — export the data "
                        "again as CSV or Parquet") from None


#: Largest magnitude accepted in an analysed column (outcomes, covariates, moderators, controls):
#: larger values are data errors (a missing-value code such as 9.99e307, a unit mix-up) and make
#: sums of squares overflow or lose every digit of the real values.
MAX_ABS_VALUE = 1e12


def row_number(table, position: int) -> int:
    """Return the 1-based data row (header not counted) of the row at ``position`` of ``table``.

    Tables read from a file keep their original row numbers after rows are dropped.
    """
    label = table.index[position]
    return int(label) + 1 if isinstance(label, int | np.integer) else position + 1


def check_magnitude(values: np.ndarray, col: str, what: str, rows=None) -> None:
    """Refuse values above :data:`MAX_ABS_VALUE` in magnitude, naming the column and row.

    ``rows`` gives the 1-based data row of each value (default: position + 1).
    """
    with np.errstate(invalid="ignore"):
        bad = np.abs(values) > MAX_ABS_VALUE
    if bad.any():
        i = int(np.argmax(bad))
        row = i + 1 if rows is None else int(rows[i])
        raise DataError(f"{what} column '{col}' has the value {values[i]:g} at row {row}, beyond "
                        f"±{MAX_ABS_VALUE:g} — fix or remove that row (a missing-value code or a "
                        "unit error?)")


def numeric_column(table, col: str, what: str) -> np.ndarray:
    """Return column ``col`` as floats.

    Non-numeric, missing, infinite or absurdly large (beyond :data:`MAX_ABS_VALUE`) values
    raise :class:`DataError` naming the column and the first row.
    """
    import pandas as pd

    values = pd.to_numeric(table[col], errors="coerce")
    bad = (values.isna() & table[col].notna()).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{what} column '{col}' has non-numeric values (e.g. "
                        f"{shown(repr(table[col].iloc[i]))} at row {row_number(table, i)}) — give "
                        "numbers only")
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataError(f"{what} column '{col}' has {int(missing.sum())} missing values (first "
                        f"at row {row_number(table, int(np.argmax(missing)))}) — remove or "
                        "impute those rows before the analysis")
    arr = values.to_numpy(float)
    infinite = ~np.isfinite(arr)
    if infinite.any():
        raise DataError(f"{what} column '{col}' has {int(infinite.sum())} infinite values (first "
                        f"at row {row_number(table, int(np.argmax(infinite)))}) — give finite "
                        "numbers only")
    check_magnitude(arr, col, what, [row_number(table, i) for i in range(len(arr))]
                    if np.abs(arr).max(initial=0) > MAX_ABS_VALUE else None)
    return arr


#: The column of a trial export that marks participants enrolled in error.
MARKED_ERROR = "marked_error"


def marked_rows(table) -> np.ndarray:
    """Return which rows are marked in error (``marked_error`` 1/true); others must be 0.

    A table without the ``marked_error`` column has none.
    """
    if MARKED_ERROR not in table.columns:
        return np.zeros(len(table), dtype=bool)
    raw = table[MARKED_ERROR]
    text = raw.astype(str).str.strip().str.lower()
    marked = text.isin(("1", "1.0", "true", "yes")).to_numpy()
    ok = marked | text.isin(("0", "0.0", "false", "no", "", "nan", "none")).to_numpy()
    if not ok.all():
        i = int(np.argmax(~ok))
        raise DataError(f"column '{MARKED_ERROR}' has the value {shown(repr(raw.iloc[i]))} at row "
                        f"{row_number(table, i)} — use 1 (marked in error) or 0")
    return marked


def exclude_marked_errors(table, include: bool = False):
    """Drop the rows marked in error unless ``include``; return (table, data summary).

    The summary says how many rows the data had, how many are analysed and which were left out
    and why: ``{"rows", "analysed", "excluded", "exclusions": [{"reason", "rows"}],
    "marked_error": ...}``. A table without a ``marked_error`` column keeps every row.
    """
    n = len(table)
    marked = marked_rows(table)
    if include or not marked.any():
        kept = table
        exclusions: list[dict] = []
    else:
        kept = table[~marked]
        exclusions = [{"reason": f"marked in error ({MARKED_ERROR} = 1)",
                       "rows": int(marked.sum())}]
    summary = {"rows": n, "analysed": len(kept), "excluded": n - len(kept),
               "exclusions": exclusions, "marked_error": int(marked.sum()),
               "marked_error_included": bool(include and marked.any())}
    return kept, summary


def factor_codes(design, table) -> np.ndarray:
    """Return a factorial design's ±1 factor columns of ``table`` as a (rows × k) array.

    The columns must be named as the design's factors and coded −1 (off) / +1 (on), the layout
    ``trialkit trial export`` writes.
    """
    missing = [f for f in design.factor_names if f not in table.columns]
    if missing:
        raise DataError(f"the data have no column for factor(s) {', '.join(missing)} — the "
                        f"factor columns must be named as in the design: "
                        + ", ".join(design.factor_names))
    if len(table) == 0:
        raise DataError("the data table has no rows — export the trial data again")
    codes = np.empty((len(table), design.k))
    for i, f in enumerate(design.factor_names):
        v = numeric_column(table, f, "factor")
        found = sorted(set(np.unique(v).tolist()))
        if not set(found) <= {-1.0, 1.0}:
            shown = ", ".join(f"{x:g}" for x in found[:6])
            raise DataError(f"factor column '{f}' is coded {{{shown}}}, not -1/+1 as the design "
                            "says — recode it as -1 (off) and +1 (on)")
        codes[:, i] = v
    return codes


def write_table(table, path: str | os.PathLike[str] | None) -> None:
    """Write a DataFrame as CSV or Parquet (by extension); CSV on stdout without a path.

    Raises
    ------
    DataError
        When the extension is neither ``.csv`` nor ``.parquet``/``.pq`` (nothing is written).
    """
    import sys

    if path is None:
        table.to_csv(sys.stdout, index=False)
        return
    name = os.fspath(path)
    if not name.lower().endswith(TABLE_FORMATS):
        raise DataError(f"{name} has an extension trialkit does not write — give a path "
                        "ending in " + ", ".join(TABLE_FORMATS), param="path")
    if name.lower().endswith((".parquet", ".pq")):
        table.to_parquet(name, index=False)
    else:
        table.to_csv(name, index=False)
