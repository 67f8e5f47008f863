"""Market data as Parquet files, through pyarrow, which is an optional extra.

pyarrow is heavy and not always installed, so it is imported only inside these functions
(importing this module, and the node, stays cheap) and its absence is reported as
``ParquetUnavailableError`` with the command that installs it. Reading turns Arrow
columns into Python values (Arrow timestamps as int nanoseconds) and hands the rows to the
same checks the CSV reader uses; writing stores prices and sizes as exact decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from node.model.data import Bar, BarType, QuoteTick
from node.model.instruments import Instrument
from node.persistence.load_errors import DataLoadError
from node.persistence.rows import (
    BAR_COLUMNS,
    BAR_OPTIONAL_COLUMNS,
    QUOTE_COLUMNS,
    QUOTE_OPTIONAL_COLUMNS,
    _build_bars,
    _build_quotes,
    _check_bar_instrument,
    _column_indices,
)

PARQUET_INSTALL_HINT = "pip install 'trading-orchestrator[parquet]'"


class ParquetUnavailableError(ImportError):
    """Reading or writing Parquet needs pyarrow, which is an optional extra."""


def _pyarrow(path: str | Path):
    """Import pyarrow (and its parquet module) or explain how to install it."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ParquetUnavailableError(
            f"{path}: Parquet support needs pyarrow, which is not installed; run: {PARQUET_INSTALL_HINT}"
        ) from None
    return pa, pq


def _parquet_columns(
    path: str | Path, required: Sequence[str], optional: Sequence[str]
) -> tuple[dict[str, int], list[tuple[int, tuple[Any, ...]]]]:
    """Read a Parquet file into (column indices, [(row, values)]) with Python values."""
    pa, pq = _pyarrow(path)
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise DataLoadError(path, None, None, f"not a readable Parquet file: {exc}") from None
    idx = _column_indices(path, table.column_names, required, optional)
    columns: list[list[Any]] = []
    for name, i in idx.items():
        col = table.column(i)
        if name == "timestamp" and pa.types.is_timestamp(col.type):
            # Arrow stores timestamps as UTC ints; read them as ns without going
            # through datetime (which would drop the nanoseconds).
            col = col.cast(pa.timestamp("ns", tz=col.type.tz)).cast(pa.int64())
        elif name == "timestamp" and pa.types.is_date(col.type):
            raise DataLoadError(
                path, 0, name, f"column type {col.type} has no time of day; use int64 ns or timestamp"
            )
        columns.append(col.to_pylist())
    # Re-index: the row tuples below hold only the known columns, in idx order.
    compact = {name: pos for pos, name in enumerate(idx)}
    rows = [(n, cells) for n, cells in enumerate(zip(*columns, strict=True), start=1)]
    return compact, rows


def load_quotes_parquet(path: str | Path, instrument: Instrument) -> list[QuoteTick]:
    """Parquet version of :func:`load_quotes_csv`; same columns and validation.

    ``timestamp`` may be int64 nanoseconds, an Arrow timestamp of any unit, or text.
    """
    idx, rows = _parquet_columns(path, QUOTE_COLUMNS, QUOTE_OPTIONAL_COLUMNS)
    return _build_quotes(path, rows, idx, instrument)


def load_bars_parquet(path: str | Path, bar_type: BarType, instrument: Instrument) -> list[Bar]:
    """Parquet version of :func:`load_bars_csv`; same columns and validation."""
    _check_bar_instrument(path, bar_type, instrument)
    idx, rows = _parquet_columns(path, BAR_COLUMNS, BAR_OPTIONAL_COLUMNS)
    return _build_bars(path, rows, idx, bar_type, instrument)


def _write_parquet(path: str | Path, columns: dict[str, tuple[list[Any], int | None]]) -> int:
    """Write columns given as (values, decimal scale or None for int64 timestamps)."""
    pa, pq = _pyarrow(path)
    arrays = {}
    for name, (values, scale) in columns.items():
        # decimal128 keeps prices exact (a float64 column would round-trip only approximately).
        typ = pa.int64() if scale is None else pa.decimal128(38, scale)
        arrays[name] = pa.array(values, type=typ)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(arrays), path)
    return len(next(iter(columns.values()))[0])


def write_quotes_parquet(path: str | Path, ticks: Sequence[QuoteTick]) -> int:
    """Write quotes to Parquet (int64 ns timestamps, exact decimal prices and sizes)."""
    ticks = list(ticks)
    pp = ticks[0].bid_price.precision if ticks else 0
    sp = ticks[0].bid_size.precision if ticks else 0
    return _write_parquet(
        path,
        {
            "timestamp": ([t.ts_event for t in ticks], None),
            "bid": ([t.bid_price.as_decimal() for t in ticks], pp),
            "ask": ([t.ask_price.as_decimal() for t in ticks], pp),
            "bid_size": ([t.bid_size.as_decimal() for t in ticks], sp),
            "ask_size": ([t.ask_size.as_decimal() for t in ticks], sp),
        },
    )


def write_bars_parquet(path: str | Path, bars: Sequence[Bar]) -> int:
    """Write bars to Parquet (int64 ns close-time timestamps, exact decimal prices)."""
    bars = list(bars)
    pp = bars[0].close.precision if bars else 0
    sp = bars[0].volume.precision if bars else 0
    return _write_parquet(
        path,
        {
            "timestamp": ([b.ts_event for b in bars], None),
            "open": ([b.open.as_decimal() for b in bars], pp),
            "high": ([b.high.as_decimal() for b in bars], pp),
            "low": ([b.low.as_decimal() for b in bars], pp),
            "close": ([b.close.as_decimal() for b in bars], pp),
            "volume": ([b.volume.as_decimal() for b in bars], sp),
        },
    )
