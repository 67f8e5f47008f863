"""Load market data from CSV or Parquet files into validated QuoteTick and Bar lists.

Files are the edge where outside data enters the node, so every value is checked here and
a bad value stops the load with a ``DataLoadError`` that names the file, the row and the
field (``data/eurusd.csv row 17, field 'bid': not a number: 'abc'``): a backtest on a
silently skipped or repaired row would be a backtest on data nobody looked at.

Rows are numbered like this: the header is row 0 and the first record is row 1. Blank
lines are skipped but still counted, so row N of a CSV file is line N + 1 in an editor.
Parquet files have no header line; their first record is row 1 as well.

Rows are never reordered: a timestamp that goes backwards is an error (equal timestamps
are allowed, several quotes can share a nanosecond). Prices are rounded half-even to the
instrument's price precision and sizes to its size precision; a crossed quote (bid above
ask) is accepted because real feeds contain them and ``QuoteTick`` allows them.

Parquet support is an optional extra: pyarrow is imported only inside the Parquet
functions, so importing this module (and the node) stays cheap.

This module is the entry point and picks the reader by file extension (``load_data``); the
work is done by ``csv_files`` and ``parquet_files`` (one per format), ``rows`` (the
column contract and row checks both formats share), ``cells`` (one value at a time) and
``load_errors``. Every public name of those modules is re-exported here.
"""

from __future__ import annotations

from pathlib import Path

from node.model.data import Bar, BarType, QuoteTick
from node.model.instruments import Instrument
from node.persistence.csv_files import load_bars_csv, load_quotes_csv, write_bars_csv, write_quotes_csv
from node.persistence.load_errors import DataLoadError, DataOrderError
from node.persistence.parquet_files import (
    PARQUET_INSTALL_HINT,
    ParquetUnavailableError,
    load_bars_parquet,
    load_quotes_parquet,
    write_bars_parquet,
    write_quotes_parquet,
)
from node.persistence.rows import (
    BAR_COLUMNS,
    BAR_OPTIONAL_COLUMNS,
    DEFAULT_QUOTE_SIZE,
    QUOTE_COLUMNS,
    QUOTE_OPTIONAL_COLUMNS,
)

__all__ = [
    "BAR_COLUMNS",
    "BAR_OPTIONAL_COLUMNS",
    "DEFAULT_QUOTE_SIZE",
    "PARQUET_INSTALL_HINT",
    "QUOTE_COLUMNS",
    "QUOTE_OPTIONAL_COLUMNS",
    "DataLoadError",
    "DataOrderError",
    "ParquetUnavailableError",
    "load_bars_csv",
    "load_bars_parquet",
    "load_data",
    "load_quotes_csv",
    "load_quotes_parquet",
    "write_bars_csv",
    "write_bars_parquet",
    "write_quotes_csv",
    "write_quotes_parquet",
]

# --------------------------------------------------------------------------- dispatch

_KINDS = ("quotes", "bars")
_SUFFIXES = (".csv", ".parquet")


def load_data(
    path: str | Path, instrument: Instrument, kind: str, bar_type: BarType | None = None
) -> list[QuoteTick] | list[Bar]:
    """Load ``kind`` ("quotes" or "bars") from a .csv or .parquet file (chosen by extension)."""
    suffix = Path(path).suffix.lower()
    if kind not in _KINDS:
        raise DataLoadError(path, None, None, f"unknown data kind {kind!r}; use one of {', '.join(_KINDS)}")
    if suffix not in _SUFFIXES:
        raise DataLoadError(
            path,
            None,
            None,
            f"unsupported file extension {suffix or '(none)'!r}; use one of {', '.join(_SUFFIXES)}",
        )
    if kind == "quotes":
        return (
            load_quotes_csv(path, instrument) if suffix == ".csv" else load_quotes_parquet(path, instrument)
        )
    if bar_type is None:
        raise DataLoadError(
            path, None, None, "loading bars needs a bar_type, e.g. EUR/USD.SIM-1-MINUTE-MID-EXTERNAL"
        )
    if suffix == ".csv":
        return load_bars_csv(path, bar_type, instrument)
    return load_bars_parquet(path, bar_type, instrument)
