"""CSV and Parquet loaders: round trips, and one test per kind of bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from node.model.data import BarType
from node.model.errors import OutOfOrderDataError
from node.model.instruments import default_fx_pair
from node.model.objects import Price, Quantity
from node.persistence.generators import random_walk_bars, random_walk_quotes
from node.persistence.loaders import (
    PARQUET_INSTALL_HINT,
    DataLoadError,
    ParquetUnavailableError,
    load_bars_csv,
    load_bars_parquet,
    load_data,
    load_quotes_csv,
    load_quotes_parquet,
    write_bars_csv,
    write_bars_parquet,
    write_quotes_csv,
    write_quotes_parquet,
)

INSTRUMENT = default_fx_pair()
BAR_TYPE = BarType.from_str("EUR/USD.SIM-1-MINUTE-MID-EXTERNAL")
T0 = 1_704_067_200_000_000_000
SHIPPED = Path(__file__).resolve().parent.parent / "configs" / "data"


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_quotes_text(tmp_path: Path, text: str):
    return load_quotes_csv(write(tmp_path, text), INSTRUMENT)


def load_bars_text(tmp_path: Path, text: str):
    return load_bars_csv(write(tmp_path, text), BAR_TYPE, INSTRUMENT)


def expect_error(fn, *, row, field):
    with pytest.raises(DataLoadError) as info:
        fn()
    err = info.value
    assert (err.row, err.field) == (row, field), str(err)
    assert "data.csv" in str(err) and err.file.endswith("data.csv")
    if row:
        assert f"row {row}" in str(err)
    if field:
        assert f"field {field!r}" in str(err)
    return err


# ------------------------------------------------------------------ round trips


def test_quotes_csv_round_trip(tmp_path):
    ticks = random_walk_quotes(INSTRUMENT, 500, seed=3)
    path = tmp_path / "q.csv"
    assert write_quotes_csv(path, ticks) == 500
    assert load_quotes_csv(path, INSTRUMENT) == ticks


def test_quotes_csv_round_trip_without_sizes_uses_default_size(tmp_path):
    ticks = random_walk_quotes(INSTRUMENT, 50, seed=3, size=1_000_000)
    path = tmp_path / "q.csv"
    write_quotes_csv(path, ticks, include_sizes=False)
    assert path.read_text().splitlines()[0] == "timestamp,bid,ask"
    assert load_quotes_csv(path, INSTRUMENT) == ticks


def test_bars_csv_round_trip(tmp_path):
    bars = random_walk_bars(BAR_TYPE, INSTRUMENT, 300, seed=3)
    path = tmp_path / "sub" / "b.csv"  # the writer creates the directory
    assert write_bars_csv(path, bars) == 300
    loaded = load_bars_csv(path, BAR_TYPE, INSTRUMENT)
    assert [(b.open, b.high, b.low, b.close, b.volume, b.ts_event, b.ts_init) for b in loaded] == [
        (b.open, b.high, b.low, b.close, b.volume, b.ts_event, b.ts_init) for b in bars
    ]
    assert all(b.bar_type == BAR_TYPE for b in loaded)


def test_quotes_csv_parsing_details(tmp_path):
    text = (
        "\ufeffTimeStamp, Bid ,ASK,venue\n"  # BOM, mixed case, spaces, an extra column
        "2024-01-01T00:00:00Z,1.100004,1.100016,X\n"
        "\n"  # blank lines are skipped
        "2024-01-01T01:00:00+01:00,1.100005,1.100015,Y\n"  # same instant again: allowed
        f"{T0 + 1},1.1,1.2,Z\n"
    )
    ticks = load_quotes_text(tmp_path, text)
    assert [t.ts_event for t in ticks] == [T0, T0, T0 + 1]
    assert all(t.ts_init == t.ts_event for t in ticks)
    # Rounded half-even to 5 decimals.
    assert [str(t.bid_price) for t in ticks] == ["1.10000", "1.10000", "1.10000"]
    assert [str(t.ask_price) for t in ticks] == ["1.10002", "1.10002", "1.20000"]
    assert ticks[0].bid_size == Quantity(1_000_000, 0)
    assert ticks[0].instrument_id == INSTRUMENT.id


def test_quotes_csv_with_sizes_and_scientific_notation(tmp_path):
    ticks = load_quotes_text(tmp_path, "timestamp,bid,ask,bid_size,ask_size\n5,1.1e0,11000e-4,2.6,0\n")
    t = ticks[0]
    assert (t.bid_price, t.ask_price) == (Price.from_str("1.10000"), Price.from_str("1.10000"))
    assert (t.bid_size, t.ask_size) == (Quantity(3, 0), Quantity(0, 0))


def test_bars_csv_default_volume_is_zero(tmp_path):
    bars = load_bars_text(tmp_path, "timestamp,open,high,low,close\n60000000000,1.1,1.2,1.0,1.15\n")
    assert bars[0].volume == Quantity(0, 0)
    assert bars[0].ts_event == 60 * 10**9


def test_header_only_file_loads_nothing(tmp_path):
    assert load_quotes_text(tmp_path, "timestamp,bid,ask\n") == []


def test_shipped_sample_files_load():
    quotes = load_data(SHIPPED / "eurusd_quotes_1d.csv", INSTRUMENT, "quotes")
    assert len(quotes) == 21_600
    assert quotes[-1].ts_event - quotes[0].ts_event == (21_600 - 1) * 4 * 10**9
    bars = load_data(SHIPPED / "eurusd_bars_1m.csv", INSTRUMENT, "bars", bar_type=BAR_TYPE)
    assert len(bars) == 5_000
    assert all(b.bar_type == BAR_TYPE for b in bars)


# ------------------------------------------------------------------ bad rows: one test per kind

QUOTE_HEADER = "timestamp,bid,ask,bid_size,ask_size\n"
GOOD_QUOTE = f"{T0},1.10000,1.10020,1000,1000\n"


def test_error_message_format(tmp_path):
    err = expect_error(
        lambda: load_quotes_text(tmp_path, QUOTE_HEADER + GOOD_QUOTE * 16 + f"{T0},abc,1.1,1,1\n"),
        row=17,
        field="bid",
    )
    assert str(err) == f"{tmp_path / 'data.csv'} row 17, field 'bid': not a number: 'abc'"
    assert err.reason == "not a number: 'abc'"


def test_row_numbers_count_blank_lines(tmp_path):
    # Row N is line N + 1 of the file, so blank lines count.
    expect_error(
        lambda: load_quotes_text(tmp_path, QUOTE_HEADER + "\n\n" + f"{T0},1.1,x,1,1\n"), row=3, field="ask"
    )


@pytest.mark.parametrize("value", ["abc", "1.1.1", "1,5", "0x10", "1_000", "--1", "1e"])
def test_not_a_number(tmp_path, value):
    text = QUOTE_HEADER + GOOD_QUOTE + f'{T0},1.1,"{value}",1,1\n'
    err = expect_error(lambda: load_quotes_text(tmp_path, text), row=2, field="ask")
    assert "not a number" in err.reason


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "sNaN"])
def test_not_finite(tmp_path, value):
    err = expect_error(
        lambda: load_quotes_text(tmp_path, QUOTE_HEADER + f"{T0},{value},1.1,1,1\n"), row=1, field="bid"
    )
    assert "not finite" in err.reason


@pytest.mark.parametrize(
    "prices, field, value",
    [
        ("0,1.1", "bid", "0"),
        ("0.00000,1.1", "bid", "0.00000"),
        ("-1.09,1.1", "bid", "-1.09"),
        ("1.1,0", "ask", "0"),
        ("1.1,-0.00001", "ask", "-0.00001"),
        ("0.000001,1.1", "bid", "0.000001"),  # rounds to 0 at the instrument's 5 decimals
    ],
)
def test_non_positive_quote_price(tmp_path, prices, field, value):
    # No instrument kind here trades at or below zero: such a row is corrupt, like a NaN.
    crossed = f"{T0},1.10030,1.10020,1,1\n"  # bid above ask: real feeds have them, still accepted
    text = QUOTE_HEADER + GOOD_QUOTE + crossed + f"{T0},{prices},1,1\n"
    err = expect_error(lambda: load_quotes_text(tmp_path, text), row=3, field=field)
    assert err.reason == f"not positive: {value!r}; a price must be above zero (corrupt data)"


@pytest.mark.parametrize(
    "ohlc, field",
    [
        ("0,1.2,0,1.1", "open"),
        ("1.1,1.2,0,1.1", "low"),
        ("-1.1,1.2,-1.2,1.1", "open"),
        ("0,0,0,0", "open"),
        ("1.1,1.2,-1.0,-0.5", "low"),
    ],
)
def test_non_positive_bar_price(tmp_path, ohlc, field):
    text = "timestamp,open,high,low,close\n60,1.1,1.2,1.0,1.1\n" + f"120,{ohlc}\n"
    err = expect_error(lambda: load_bars_text(tmp_path, text), row=2, field=field)
    assert err.reason.startswith("not positive")


def test_missing_value(tmp_path):
    err = expect_error(
        lambda: load_quotes_text(tmp_path, QUOTE_HEADER + f"{T0},1.1,1.2, ,1\n"), row=1, field="bid_size"
    )
    assert "missing" in err.reason


def test_out_of_range_number(tmp_path):
    err = expect_error(
        lambda: load_quotes_text(tmp_path, QUOTE_HEADER + f"{T0},1e20,1.2,1,1\n"), row=1, field="bid"
    )
    assert "out of range" in err.reason


@pytest.mark.parametrize("field", ["bid_size", "ask_size"])
def test_negative_size(tmp_path, field):
    sizes = "-1,5" if field == "bid_size" else "5,-0.6"
    err = expect_error(
        lambda: load_quotes_text(tmp_path, QUOTE_HEADER + f"{T0},1.1,1.2,{sizes}\n"), row=1, field=field
    )
    assert "negative" in err.reason


def test_negative_bar_volume(tmp_path):
    text = "timestamp,open,high,low,close,volume\n60,1.1,1.2,1.0,1.1,-5\n"
    expect_error(lambda: load_bars_text(tmp_path, text), row=1, field="volume")


@pytest.mark.parametrize(
    "ohlc, field",
    [
        ("1.1,1.0,1.2,1.1", "high"),  # high < low
        ("1.3,1.2,1.0,1.1", "high"),  # open above high
        ("1.1,1.2,1.0,1.25", "high"),  # close above high
        ("0.9,1.2,1.0,1.1", "low"),  # open below low
        ("1.1,1.2,1.0,0.95", "low"),  # close below low
    ],
)
def test_inconsistent_ohlc(tmp_path, ohlc, field):
    text = "timestamp,open,high,low,close\n60,1.1,1.2,1.0,1.1\n" + f"120,{ohlc}\n"
    err = expect_error(lambda: load_bars_text(tmp_path, text), row=2, field=field)
    assert "inconsistent OHLC" in err.reason


@pytest.mark.parametrize(
    "ts",
    [
        "yesterday",
        "-5",
        str(2**64),
        "2024-02-30T00:00:00",
        "1.5e18",
        "2024-01-01T00:00:00.1234567891Z",
        "",
        "²",
    ],
)
def test_bad_timestamp(tmp_path, ts):
    err = expect_error(
        lambda: load_quotes_text(tmp_path, QUOTE_HEADER + f'"{ts}",1.1,1.2,1,1\n'), row=1, field="timestamp"
    )
    assert "timestamp" in err.reason or "missing" in err.reason


def test_timestamps_going_backwards_are_rejected(tmp_path):
    text = QUOTE_HEADER + f"{T0},1.1,1.2,1,1\n{T0 + 10},1.1,1.2,1,1\n{T0 + 9},1.1,1.2,1,1\n"
    err = expect_error(lambda: load_quotes_text(tmp_path, text), row=3, field="timestamp")
    assert isinstance(err, OutOfOrderDataError)
    assert "backwards" in err.reason and "sort" in err.reason


def test_bar_timestamps_going_backwards_are_rejected(tmp_path):
    text = "timestamp,open,high,low,close\n120,1.1,1.2,1.0,1.1\n60,1.1,1.2,1.0,1.1\n"
    expect_error(lambda: load_bars_text(tmp_path, text), row=2, field="timestamp")


def test_equal_timestamps_are_allowed(tmp_path):
    ticks = load_quotes_text(tmp_path, QUOTE_HEADER + GOOD_QUOTE * 3)
    assert len(ticks) == 3


def test_wrong_number_of_fields(tmp_path):
    err = expect_error(
        lambda: load_quotes_text(tmp_path, QUOTE_HEADER + GOOD_QUOTE + f"{T0},1.1,1.2\n"), row=2, field=None
    )
    assert "3 fields" in err.reason and "header has 5" in err.reason


@pytest.mark.parametrize(
    "header, missing",
    [("timestamp,bid\n", ["ask"]), ("time,bid,ask\n", ["timestamp"]), ("timestamp,price\n", ["bid", "ask"])],
)
def test_missing_quote_columns_are_named(tmp_path, header, missing):
    err = expect_error(lambda: load_quotes_text(tmp_path, header + "1,2\n"), row=0, field=",".join(missing))
    for name in missing:
        assert repr(name) in err.reason
    assert "header" in str(err)


def test_missing_bar_columns_are_named(tmp_path):
    err = expect_error(lambda: load_bars_text(tmp_path, "timestamp,open,close\n"), row=0, field="high,low")
    assert "'high', 'low'" in err.reason


def test_duplicate_column_is_rejected(tmp_path):
    expect_error(lambda: load_quotes_text(tmp_path, "timestamp,bid,ask,bid\n"), row=0, field="bid")


def test_empty_file_needs_a_header(tmp_path):
    err = expect_error(lambda: load_quotes_text(tmp_path, ""), row=0, field=None)
    assert "header" in err.reason


def test_not_utf8(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"timestamp,bid,ask\n1,1.1\xff,1.2\n")
    with pytest.raises(DataLoadError, match="UTF-8"):
        load_quotes_csv(path, INSTRUMENT)


def test_bar_type_for_another_instrument_is_rejected(tmp_path):
    other = BarType.from_str("GBP/USD.SIM-1-MINUTE-MID-EXTERNAL")
    with pytest.raises(DataLoadError, match="GBP/USD.SIM"):
        load_bars_csv(write(tmp_path, "timestamp,open,high,low,close\n"), other, INSTRUMENT)


# ------------------------------------------------------------------ load_data dispatch


def test_load_data_dispatches_on_kind_and_extension(tmp_path):
    quotes = random_walk_quotes(INSTRUMENT, 20)
    write_quotes_csv(tmp_path / "q.CSV", quotes)
    assert load_data(tmp_path / "q.CSV", INSTRUMENT, "quotes") == quotes
    bars = random_walk_bars(BAR_TYPE, INSTRUMENT, 20)
    write_bars_csv(tmp_path / "b.csv", bars)
    assert len(load_data(str(tmp_path / "b.csv"), INSTRUMENT, "bars", BAR_TYPE)) == 20


@pytest.mark.parametrize(
    "name, kind, bar_type, match",
    [
        ("x.txt", "quotes", None, "extension '.txt'"),
        ("x", "quotes", None, "extension"),
        ("x.csv", "trades", None, "unknown data kind 'trades'"),
        ("x.csv", "bars", None, "needs a bar_type"),
    ],
)
def test_load_data_rejects_bad_arguments(tmp_path, name, kind, bar_type, match):
    with pytest.raises(DataLoadError, match=match):
        load_data(tmp_path / name, INSTRUMENT, kind, bar_type)


# ------------------------------------------------------------------ Parquet


def test_quotes_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    ticks = random_walk_quotes(INSTRUMENT, 300, seed=5)
    path = tmp_path / "q.parquet"
    assert write_quotes_parquet(path, ticks) == 300
    assert load_quotes_parquet(path, INSTRUMENT) == ticks
    assert load_data(path, INSTRUMENT, "quotes") == ticks


def test_bars_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    bars = random_walk_bars(BAR_TYPE, INSTRUMENT, 300, seed=5)
    path = tmp_path / "b.parquet"
    write_bars_parquet(path, bars)
    loaded = load_bars_parquet(path, BAR_TYPE, INSTRUMENT)
    assert [(b.open, b.high, b.low, b.close, b.volume, b.ts_event) for b in loaded] == [
        (b.open, b.high, b.low, b.close, b.volume, b.ts_event) for b in bars
    ]


def test_parquet_timestamp_types_and_float_prices(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "timestamp": pa.array([T0 // 1000, T0 // 1000 + 1], pa.timestamp("us", tz="UTC")),
            # Exact decimal ties whose float products fall on the wrong side of .5.
            "bid": pa.array([1.000055, 1.000185]),
            "ask": pa.array([1.10002, 1.10003]),
        }
    )
    pq.write_table(table, tmp_path / "q.parquet")
    ticks = load_quotes_parquet(tmp_path / "q.parquet", INSTRUMENT)
    assert [t.ts_event for t in ticks] == [T0, T0 + 1000]
    assert [str(t.bid_price) for t in ticks] == ["1.00006", "1.00018"]  # half-even, as written


def test_parquet_bad_rows_are_reported_like_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "q.parquet"
    table = pa.table({"timestamp": [T0, T0, T0 - 1], "bid": [1.1, float("nan"), 1.1], "ask": [1.2, 1.2, 1.2]})
    pq.write_table(table, path)
    with pytest.raises(DataLoadError) as info:
        load_quotes_parquet(path, INSTRUMENT)
    assert (info.value.row, info.value.field) == (2, "bid")
    assert str(info.value).startswith(f"{path} row 2, field 'bid': not finite")

    pq.write_table(table.set_column(1, "bid", pa.array([1.1, 1.1, 1.1])), path)
    with pytest.raises(DataLoadError) as info:
        load_quotes_parquet(path, INSTRUMENT)
    assert (info.value.row, info.value.field) == (3, "timestamp")

    pq.write_table(pa.table({"timestamp": [T0], "bid": [None], "ask": [1.2]}), path)
    with pytest.raises(DataLoadError, match="row 1, field 'bid': missing value"):
        load_quotes_parquet(path, INSTRUMENT)


def test_parquet_non_positive_prices_are_reported_like_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "q.parquet"
    pq.write_table(pa.table({"timestamp": [T0, T0], "bid": [1.1, 1.1], "ask": [1.2, -1.09]}), path)
    with pytest.raises(DataLoadError) as info:
        load_quotes_parquet(path, INSTRUMENT)
    assert (
        str(info.value)
        == f"{path} row 2, field 'ask': not positive: -1.09; a price must be above zero (corrupt data)"
    )

    bars = tmp_path / "b.parquet"
    ohlc = {"open": [1.1, 1.1], "high": [1.2, 1.2], "low": [1.0, 0.0], "close": [1.1, 1.1]}
    pq.write_table(pa.table({"timestamp": [60, 120], **ohlc}), bars)
    with pytest.raises(DataLoadError) as info:
        load_bars_parquet(bars, BAR_TYPE, INSTRUMENT)
    assert (info.value.row, info.value.field) == (2, "low")


def test_parquet_missing_columns_are_named(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"timestamp": [1], "open": [1.1], "close": [1.1]}), path)
    with pytest.raises(DataLoadError, match="'high', 'low'") as info:
        load_bars_parquet(path, BAR_TYPE, INSTRUMENT)
    assert info.value.row == 0


def test_not_a_parquet_file(tmp_path):
    pytest.importorskip("pyarrow")
    path = write(tmp_path, "timestamp,bid,ask\n", "q.parquet")
    with pytest.raises(DataLoadError, match="not a readable Parquet file"):
        load_quotes_parquet(path, INSTRUMENT)


def test_missing_pyarrow_explains_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(
        ParquetUnavailableError, match=PARQUET_INSTALL_HINT.replace("[", r"\[").replace("]", r"\]")
    ):
        load_quotes_parquet(tmp_path / "q.parquet", INSTRUMENT)
    with pytest.raises(ImportError, match="trading-orchestrator"):
        write_bars_parquet(tmp_path / "b.parquet", [])


def test_importing_the_loaders_does_not_import_pyarrow():
    import subprocess

    code = (
        "import sys, node.persistence.loaders, node.persistence.generators; print('pyarrow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=SHIPPED.parent.parent
    )
    assert out.stdout.strip() == "False"
