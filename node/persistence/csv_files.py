"""Market data as CSV files: read them (header checked, rows numbered) and write them.

CSV is the format people edit and ship as samples, so reading is strict about what a
text file can get wrong: a missing or duplicated header column, a row with the wrong
number of fields, bytes that are not UTF-8, malformed quoting. Each row is then handed,
as text cells, to the format-independent checks in ``node.persistence.rows``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
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
