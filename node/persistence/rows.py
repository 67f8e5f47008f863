"""From numbered rows of cells, whatever the file format, to validated QuoteTicks and Bars.

The CSV and Parquet readers only produce ``(row number, cells)`` pairs; the column
contract (which columns are required, which optional, what a missing size means), the
row-by-row checks (consistent OHLC, timestamps never going backwards) and the turning of
a cell error into a ``DataLoadError`` naming file, row and field live here, once, so both
formats validate identically. The row loops are the hot path of every backtest load.

A price at or below zero is refused by the data types' constructors (``node.model.data``,
the one place every source of market data passes through); the row loops only translate the
field that error names into the file's column, so the message reads like the NaN one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from node.model.data import Bar, BarType, QuoteTick
from node.model.errors import InvalidValueError, NonPositivePriceError
from node.model.instruments import Instrument
from node.model.objects import Price, Quantity
from node.model.timestamps import format_iso8601
from node.persistence.cells import _interner, _to_nanos
from node.persistence.load_errors import DataLoadError, DataOrderError, _FieldError

DEFAULT_QUOTE_SIZE = 1_000_000

QUOTE_COLUMNS = ("timestamp", "bid", "ask")
QUOTE_OPTIONAL_COLUMNS = ("bid_size", "ask_size")
BAR_COLUMNS = ("timestamp", "open", "high", "low", "close")
BAR_OPTIONAL_COLUMNS = ("volume",)


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


_QUOTE_PRICE_COLUMNS = {"bid_price": "bid", "ask_price": "ask"}  # QuoteTick field -> column


def _non_positive(
    file: str | Path, row: int, cells: Sequence[Any], idx: dict[str, int], column: str
) -> DataLoadError:
    return DataLoadError(
        file, row, column, f"not positive: {cells[idx[column]]!r}; a price must be above zero (corrupt data)"
    )


def _raise_backwards(file: str | Path, row: int, ts: int, last_ts: int) -> NoReturn:
    raise DataOrderError(
        file,
        row,
        "timestamp",
        f"goes backwards: {format_iso8601(ts)} is before the previous row's "
        f"{format_iso8601(last_ts)}; sort the file by timestamp (rows are never reordered)",
    )


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
        except NonPositivePriceError as exc:
            raise _non_positive(file, row, cells, idx, _QUOTE_PRICE_COLUMNS[exc.field]) from None
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
        except NonPositivePriceError as exc:  # its field is the column's name (open, high, ...)
            raise _non_positive(file, row, cells, idx, exc.field) from None
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
