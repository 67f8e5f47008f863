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
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

from node.model.data import Bar, BarType, QuoteTick
from node.model.errors import InvalidValueError, OutOfOrderDataError
from node.model.instruments import Instrument
from node.model.objects import POW10, RAW_MAX, RAW_MIN, Price, Quantity
from node.model.timestamps import check_unix_nanos, format_iso8601, parse_timestamp

PARQUET_INSTALL_HINT = "pip install 'trading-orchestrator[parquet]'"
DEFAULT_QUOTE_SIZE = 1_000_000

QUOTE_COLUMNS = ("timestamp", "bid", "ask")
QUOTE_OPTIONAL_COLUMNS = ("bid_size", "ask_size")
BAR_COLUMNS = ("timestamp", "open", "high", "low", "close")
BAR_OPTIONAL_COLUMNS = ("volume",)

# A plain decimal written with ASCII digits: parsed exactly with int() (fast path).
_PLAIN_DECIMAL = re.compile(r"[+-]?(\d+)(?:\.(\d*))?|[+-]?\.(\d+)", re.ASCII)


class DataLoadError(InvalidValueError):
    """A data file cannot be loaded; says which file, row and field, and why.

    ``row`` is None for problems with the file as a whole (unknown extension, wrong
    instrument) and 0 for header problems; ``field`` is None when no single column is at
    fault (a row with the wrong number of fields, for example).
    """

    def __init__(self, file: str | Path, row: int | None, field: str | None, reason: str) -> None:
        self.file = str(file)
        self.row = row
        self.field = field
        self.reason = reason
        where = self.file
        if row == 0:
            where += " header"
        elif row is not None:
            where += f" row {row}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {reason}")


class DataOrderError(DataLoadError, OutOfOrderDataError):
    """A timestamp goes backwards; also an ``OutOfOrderDataError`` for generic handlers."""


class ParquetUnavailableError(ImportError):
    """Reading or writing Parquet needs pyarrow, which is an optional extra."""


class _FieldError(Exception):
    """Internal: a single value is bad; the row loop adds file, row and field."""


# --------------------------------------------------------------------------- values


def _decimal_to_raw(dec: Decimal, precision: int, value: Any) -> int:
    if not dec.is_finite():
        raise _FieldError(f"not finite: {value!r}")
    try:
        return int(dec.scaleb(precision).to_integral_value(ROUND_HALF_EVEN))
    except ArithmeticError:  # decimal.Overflow on an absurd exponent such as 1e999999999
        raise _FieldError(f"out of range at precision {precision}: {value!r}") from None


def _to_raw(value: Any, precision: int) -> int:
    """Convert one cell (str from CSV; int/float/Decimal/str from Parquet) to a raw int."""
    if type(value) is str:
        text = value.strip()
        m = _PLAIN_DECIMAL.fullmatch(text)
        if m is not None:
            frac = m.group(2) if m.group(3) is None else m.group(3)
            frac = frac or ""
            if len(frac) <= precision:
                whole = m.group(1) or "0"
                raw = int(whole + frac + "0" * (precision - len(frac)))
                raw = -raw if text[0] == "-" else raw
            else:
                raw = _decimal_to_raw(Decimal(text), precision, value)
        elif not text:
            raise _FieldError("missing value")
        else:
            try:
                dec = Decimal(text)
            except InvalidOperation:
                raise _FieldError(f"not a number: {value!r}") from None
            if "_" in text:  # Decimal accepts "1_000"; a data file should not.
                raise _FieldError(f"not a number: {value!r}")
            raw = _decimal_to_raw(dec, precision, value)
    elif value is None:
        raise _FieldError("missing value")
    elif type(value) is float:
        if not math.isfinite(value):
            raise _FieldError(f"not finite: {value!r}")
        scaled = value * POW10[precision]
        if not -9.3e18 < scaled < 9.3e18:
            raise _FieldError(f"out of range at precision {precision}: {value!r}")
        raw = round(scaled)
        if abs(abs(scaled - raw) - 0.5) < 1e-6:
            # Near a rounding tie the float product may be off by an ulp; round the
            # shortest decimal repr instead, which is what the writer of the file meant.
            raw = _decimal_to_raw(Decimal(repr(value)), precision, value)
    elif type(value) is int:
        raw = value * POW10[precision]
    elif isinstance(value, Decimal):
        raw = _decimal_to_raw(value, precision, value)
    else:
        raise _FieldError(f"not a number: {value!r} ({type(value).__name__})")
    if raw > RAW_MAX or raw < RAW_MIN:
        raise _FieldError(f"out of range at precision {precision}: {value!r}")
    return raw


def _to_size_raw(value: Any, precision: int) -> int:
    raw = _to_raw(value, precision)
    if raw < 0:
        raise _FieldError(f"negative size: {value!r}")
    return raw


def _to_nanos(value: Any) -> int:
    """ISO-8601 text (naive = UTC) or integer nanoseconds, as int nanoseconds."""
    try:
        if type(value) is str:
            if value.isdigit() and value.isascii():  # the common case: integer nanoseconds
                return check_unix_nanos(int(value))
            if not value.strip():
                raise _FieldError("missing value")
            return parse_timestamp(value)
        if type(value) is int:
            return check_unix_nanos(value)
    except ValueError:  # InvalidTimestampError, or int() on odd unicode digits
        pass
    else:
        if value is None:
            raise _FieldError("missing value")
    raise _FieldError(
        f"not a valid timestamp: {value!r}; use ISO-8601 (naive means UTC) "
        "or integer nanoseconds in 0..2**64-1"
    )


# --------------------------------------------------------------------------- rows


def _column_indices(
    file: str | Path, names: Sequence[str], required: Sequence[str], optional: Sequence[str]
) -> dict[str, int]:
    """Map each known column to its index; name every missing required column."""
    normalized = [str(n).strip().lower() for n in names]
    seen: set[str] = set()
    for name in normalized:
        if name in seen and name in (*required, *optional):
            raise DataLoadError(file, 0, name, f"column {name!r} appears more than once")
        seen.add(name)
    missing = [c for c in required if c not in seen]
    if missing:
        expected = ",".join(required) + "".join(f"[,{c}]" for c in optional)
        raise DataLoadError(
            file,
            0,
            ",".join(missing),
            f"missing required column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {', '.join(normalized) or 'no columns'}; expected {expected}",
        )
    return {c: normalized.index(c) for c in (*required, *optional) if c in seen}


def _raise_backwards(file: str | Path, row: int, ts: int, last_ts: int) -> NoReturn:
    raise DataOrderError(
        file,
        row,
        "timestamp",
        f"goes backwards: {format_iso8601(ts)} is before the previous row's "
        f"{format_iso8601(last_ts)}; sort the file by timestamp (rows are never reordered)",
    )


_INTERN_MAX = 1 << 16


def _interner(cls: type[Price] | type[Quantity], precision: int, is_size: bool) -> Callable[[Any], Any]:
    """A per-load function from cell value to the Price or Quantity it parses to.

    Market data repeats the same few thousand prices and sizes, and the values are
    immutable, so each distinct cell text is parsed once and its object shared; that makes
    loading several times faster. The cache lives only as long as one load and stops
    growing at ``_INTERN_MAX`` entries.
    """
    cache: dict[Any, Any] = {}
    get = cache.get
    convert = _to_size_raw if is_size else _to_raw
    from_raw = cls.from_raw

    def intern(value: Any) -> Any:
        try:
            obj = get(value)
        except TypeError:  # an unhashable cell (a Parquet list, say) is not a number
            raise _FieldError(f"not a number: {value!r}") from None
        if obj is None:
            obj = from_raw(convert(value, precision), precision)
            if len(cache) < _INTERN_MAX:
                cache[value] = obj
        return obj

    return intern


def _build_quotes(
    file: str | Path, rows: Iterable[tuple[int, Sequence[Any]]], idx: dict[str, int], instrument: Instrument
) -> list[QuoteTick]:
    pp, sp = instrument.price_precision, instrument.size_precision
    iid = instrument.id
    i_ts, i_bid, i_ask = idx["timestamp"], idx["bid"], idx["ask"]
    i_bsz, i_asz = idx.get("bid_size"), idx.get("ask_size")
    default_size = Quantity(DEFAULT_QUOTE_SIZE, sp)
    price = _interner(Price, pp, False)
    size = _interner(Quantity, sp, True)
    out: list[QuoteTick] = []
    append = out.append
    last_ts = 0
    for row, cells in rows:
        field = "timestamp"
        try:
            ts = _to_nanos(cells[i_ts])
            field = "bid"
            bid = price(cells[i_bid])
            field = "ask"
            ask = price(cells[i_ask])
            field = "bid_size"
            bsz = default_size if i_bsz is None else size(cells[i_bsz])
            field = "ask_size"
            asz = default_size if i_asz is None else size(cells[i_asz])
            if ts < last_ts:
                _raise_backwards(file, row, ts, last_ts)
            append(QuoteTick(iid, bid, ask, bsz, asz, ts, ts))
        except _FieldError as exc:
            raise DataLoadError(file, row, field, str(exc)) from None
        except DataLoadError:
            raise
        except InvalidValueError as exc:
            raise DataLoadError(file, row, None, str(exc)) from None
        last_ts = ts
    return out


def _build_bars(
    file: str | Path,
    rows: Iterable[tuple[int, Sequence[Any]]],
    idx: dict[str, int],
    bar_type: BarType,
    instrument: Instrument,
) -> list[Bar]:
    pp, sp = instrument.price_precision, instrument.size_precision
    i_ts, i_o, i_h, i_l, i_c = (idx[c] for c in BAR_COLUMNS)
    i_v = idx.get("volume")
    zero_volume = Quantity.from_raw(0, sp)
    price = _interner(Price, pp, False)
    size = _interner(Quantity, sp, True)
    out: list[Bar] = []
    append = out.append
    last_ts = 0
    for row, cells in rows:
        field = "timestamp"
        try:
            ts = _to_nanos(cells[i_ts])
            field = "open"
            o = price(cells[i_o])
            field = "high"
            h = price(cells[i_h])
            field = "low"
            lo = price(cells[i_l])
            field = "close"
            c = price(cells[i_c])
            field = "volume"
            vol = zero_volume if i_v is None else size(cells[i_v])
            if h.raw < max(o.raw, lo.raw, c.raw):
                field = "high"
                raise _FieldError(f"inconsistent OHLC: high {cells[i_h]!r} is below open, low or close")
            if lo.raw > min(o.raw, c.raw):
                field = "low"
                raise _FieldError(f"inconsistent OHLC: low {cells[i_l]!r} is above open or close")
            if ts < last_ts:
                _raise_backwards(file, row, ts, last_ts)
            append(Bar(bar_type, o, h, lo, c, vol, ts, ts))
        except _FieldError as exc:
            raise DataLoadError(file, row, field, str(exc)) from None
        except DataLoadError:
            raise
        except InvalidValueError as exc:
            raise DataLoadError(file, row, None, str(exc)) from None
        last_ts = ts
    return out


def _check_bar_instrument(file: str | Path, bar_type: BarType, instrument: Instrument) -> None:
    if not isinstance(bar_type, BarType):
        raise DataLoadError(file, None, None, f"bar_type must be a BarType, got {bar_type!r}")
    if bar_type.instrument_id != instrument.id:
        raise DataLoadError(
            file,
            None,
            None,
            f"bar type {bar_type} is for {bar_type.instrument_id} but the instrument given is {instrument.id}",
        )


# --------------------------------------------------------------------------- CSV


def _csv_rows(
    path: str | Path, required: Sequence[str], optional: Sequence[str]
) -> tuple[dict[str, int], Callable[[], Iterator[tuple[int, list[str]]]], Any]:
    """Open ``path``, check its header, and return (column indices, row iterator, file)."""
    f = open(path, newline="", encoding="utf-8-sig")  # closed by the caller's ``with``
    reader = csv.reader(f)
    try:
        header = next(reader, None)
        if not header:
            raise DataLoadError(
                path, 0, None, "the first line must be a header such as " + ",".join((*required, *optional))
            )
        idx = _column_indices(path, header, required, optional)
    except (csv.Error, UnicodeDecodeError) as exc:
        # Decoding works on buffered chunks, so no row number can be given reliably.
        f.close()
        raise DataLoadError(path, None, None, f"not a readable UTF-8 CSV file: {exc}") from None
    except BaseException:
        f.close()
        raise
    width = len(header)

    def rows() -> Iterator[tuple[int, list[str]]]:
        it = iter(reader)
        while True:
            try:
                cells = next(it, None)
            except UnicodeDecodeError as exc:
                raise DataLoadError(path, None, None, f"not a readable UTF-8 CSV file: {exc}") from None
            except csv.Error as exc:
                raise DataLoadError(path, reader.line_num - 1, None, f"malformed CSV: {exc}") from None
            if cells is None:
                return
            if not cells:
                continue
            row = reader.line_num - 1
            if len(cells) != width:
                raise DataLoadError(path, row, None, f"has {len(cells)} fields but the header has {width}")
            yield row, cells

    return idx, rows, f


def load_quotes_csv(path: str | Path, instrument: Instrument) -> list[QuoteTick]:
    """Read ``timestamp,bid,ask[,bid_size,ask_size]`` (extra columns are ignored)."""
    idx, rows, f = _csv_rows(path, QUOTE_COLUMNS, QUOTE_OPTIONAL_COLUMNS)
    with f:
        return _build_quotes(path, rows(), idx, instrument)


def load_bars_csv(path: str | Path, bar_type: BarType, instrument: Instrument) -> list[Bar]:
    """Read ``timestamp,open,high,low,close[,volume]``; the timestamp is the bar's close time."""
    _check_bar_instrument(path, bar_type, instrument)
    idx, rows, f = _csv_rows(path, BAR_COLUMNS, BAR_OPTIONAL_COLUMNS)
    with f:
        return _build_bars(path, rows(), idx, bar_type, instrument)


def write_quotes_csv(path: str | Path, ticks: Iterable[QuoteTick], *, include_sizes: bool = True) -> int:
    """Write quotes (timestamps as int ns of ``ts_event``); return the number of rows.

    ``include_sizes=False`` leaves out the size columns, for files whose sizes are all the
    loader's default of 1,000,000 (it keeps shipped sample files small).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        write = f.write
        if include_sizes:
            write("timestamp,bid,ask,bid_size,ask_size\n")
            for t in ticks:
                write(f"{t.ts_event},{t.bid_price},{t.ask_price},{t.bid_size},{t.ask_size}\n")
                n += 1
        else:
            write("timestamp,bid,ask\n")
            for t in ticks:
                write(f"{t.ts_event},{t.bid_price},{t.ask_price}\n")
                n += 1
    return n


def write_bars_csv(path: str | Path, bars: Iterable[Bar]) -> int:
    """Write bars (timestamps as int ns of ``ts_event``, the close time); return the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        write = f.write
        write("timestamp,open,high,low,close,volume\n")
        for b in bars:
            write(f"{b.ts_event},{b.open},{b.high},{b.low},{b.close},{b.volume}\n")
            n += 1
    return n


# --------------------------------------------------------------------------- Parquet


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
