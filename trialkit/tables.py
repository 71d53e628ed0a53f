"""Reading data tables (CSV or Parquet) at the I/O boundary; pandas is imported here only."""

from __future__ import annotations

import os

import numpy as np

from trialkit.constants import TABLE_FORMATS
from trialkit.errors import DataError


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


def numeric_column(table, col: str, what: str) -> np.ndarray:
    """Return column ``col`` as floats; non-numeric, missing or infinite values raise DataError."""
    import pandas as pd

    values = pd.to_numeric(table[col], errors="coerce")
    bad = values.isna() & table[col].notna()
    if bad.any():
        raise DataError(f"{what} column '{col}' has non-numeric values (e.g. "
                        f"{table[col][bad].iloc[0]!r}) — give numbers only")
    if values.isna().any():
        raise DataError(f"{what} column '{col}' has {int(values.isna().sum())} missing values — "
                        "remove or impute those rows before the analysis")
    arr = values.to_numpy(float)
    if not np.isfinite(arr).all():
        raise DataError(f"{what} column '{col}' has {int((~np.isfinite(arr)).sum())} infinite "
                        "values — give finite numbers only")
    return arr


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
