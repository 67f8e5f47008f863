"""Seeded synthetic market data for benchmarks, examples and tests.

Everything here is a pure function of its arguments: each call makes its own
``random.Random(seed)``, so the same call always yields the same data, on any machine and
in any order of calls (the global ``random`` module is never touched).

Prices move as an integer random walk in raw units (``RandomWalk``): each step is a
Gaussian with standard deviation ``step_raw`` rounded to an int, so prices are exact at the
instrument's precision and never pass through float formatting. The default ``step_raw=5``
is half a pip per tick for a 5-decimal FX pair: about 70 pips over 20,000 ticks, roughly a
normal EUR/USD day. The walk is reflected at a floor so prices stay positive.

Speed matters (the benchmark builds a million ticks), so the generators build values on the
hot path with ``object.__new__`` and plain slot assignment instead of the validating
constructors. That is safe because every value is valid by construction: raws are ints
within [floor, 2**63), precisions come from a validated instrument, timestamps are checked
once for the whole range, and one shared ``Quantity`` serves every size. The cyclic garbage
collector is paused while the list is built (and restored after): the objects cannot form
cycles, yet without the pause the collector rescans the growing list again and again, which
more than doubled the time for a million ticks.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from node.model.data import Bar, BarType, QuoteTick, TradeTick
from node.model.enums import AggressorSide
from node.model.errors import InvalidValueError
from node.model.identifiers import TradeId
from node.model.instruments import Instrument
from node.model.objects import RAW_MAX, Price, Quantity
from node.model.timestamps import check_unix_nanos

DEFAULT_START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
DEFAULT_INTERVAL_NS = 1_000_000_000
DEFAULT_START_PRICE = "1.10000"
DEFAULT_STEP_RAW = 5
DEFAULT_SPREAD_RAW = 20


class GeneratorParameterError(InvalidValueError):
    """A generator argument is out of range (negative count, zero spread, ...)."""


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC for a bulk build of acyclic objects; restore its previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _require_int(name: str, value, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise GeneratorParameterError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class RandomWalk:
    """An integer random walk with Gaussian steps, reflected at ``floor_raw``.

    The first value returned is ``start_raw``; each later one adds
    ``round(gauss(0, step_raw))``. A value below the floor is reflected back above it
    (``2 * floor - value``, then clamped to the floor), so the walk never goes below it and
    does not stick to it either; ``ceiling_raw`` (default 2**63-1) only guards against
    overflow and simply clamps. ``take(n)`` returns exactly what ``n`` calls of ``next()``
    would, only faster. A live data client reuses this to produce prices in real time.
    """

    __slots__ = ("_rng", "_value", "_started", "step_raw", "floor_raw", "ceiling_raw")

    def __init__(
        self, seed: int, start_raw: int, step_raw: float, floor_raw: int = 1, ceiling_raw: int = RAW_MAX
    ) -> None:
        if type(seed) is not int:
            raise GeneratorParameterError(f"seed must be an int, got {seed!r}")
        if type(floor_raw) is not int:
            raise GeneratorParameterError(f"floor_raw must be an int, got {floor_raw!r}")
        if type(ceiling_raw) is not int or not floor_raw <= ceiling_raw <= RAW_MAX:
            raise GeneratorParameterError(
                f"ceiling_raw must be an int in floor_raw..2**63-1 ({floor_raw}..), got {ceiling_raw!r}"
            )
        if type(start_raw) is not int or not floor_raw <= start_raw <= ceiling_raw:
            raise GeneratorParameterError(
                f"start_raw must be an int in {floor_raw}..{ceiling_raw} (floor..ceiling), got {start_raw!r}"
            )
        if isinstance(step_raw, bool) or not isinstance(step_raw, int | float) or not 0 <= step_raw < 1e15:
            raise GeneratorParameterError(f"step_raw must be a finite number >= 0, got {step_raw!r}")
        self._rng = random.Random(seed)
        self._value = start_raw
        self._started = False
        self.step_raw = step_raw
        self.floor_raw = floor_raw
        self.ceiling_raw = ceiling_raw

    @property
    def value(self) -> int:
        """The value most recently returned (``start_raw`` before the first call)."""
        return self._value

    def next(self) -> int:
        if not self._started:
            self._started = True
            return self._value
        value = self._value + round(self._rng.gauss(0.0, self.step_raw))
        floor = self.floor_raw
        if value < floor:
            value = max(2 * floor - value, floor)
        elif value > self.ceiling_raw:
            value = self.ceiling_raw
        self._value = value
        return value

    def take(self, n: int) -> list[int]:
        """The next ``n`` values (same sequence as ``n`` calls of ``next()``)."""
        _require_int("n", n, 0)
        out: list[int] = []
        if n == 0:
            return out
        if not self._started:
            self._started = True
            out.append(self._value)
            n -= 1
        gauss = self._rng.gauss
        sigma = self.step_raw
        floor = self.floor_raw
        ceiling = self.ceiling_raw
        value = self._value
        append = out.append
        for _ in range(n):
            value += round(gauss(0.0, sigma))
            if value < floor:
                value = max(2 * floor - value, floor)
            elif value > ceiling:
                value = ceiling
            append(value)
        self._value = value
        return out


def _timestamps(start_ns: int, interval_ns: int, count: int) -> range:
    check_unix_nanos(start_ns, "start_ns")
    _require_int("interval_ns", interval_ns, 1)
    if count:
        check_unix_nanos(start_ns + (count - 1) * interval_ns, "last generated timestamp")
    return range(start_ns, start_ns + count * interval_ns, interval_ns)


def _start_raw(instrument: Instrument, start_price: str | Decimal | int | Price) -> int:
    p = instrument.price_precision
    if isinstance(start_price, Price):
        start_price = start_price.as_decimal()
    raw = Price(start_price, p).raw
    if raw <= 0:
        raise GeneratorParameterError(f"start_price must be positive, got {start_price!r}")
    return raw


def _size(instrument: Instrument, size, name: str) -> Quantity:
    qty = size if isinstance(size, Quantity) else Quantity(size, instrument.size_precision)
    if qty.raw <= 0:
        raise GeneratorParameterError(f"{name} must be positive, got {size!r}")
    return qty


def random_walk_quotes(
    instrument: Instrument,
    count: int,
    *,
    seed: int = 42,
    start_ns: int = DEFAULT_START_NS,
    interval_ns: int = DEFAULT_INTERVAL_NS,
    start_price: str | Decimal | int | Price = DEFAULT_START_PRICE,
    spread_raw: int = DEFAULT_SPREAD_RAW,
    step_raw: float = DEFAULT_STEP_RAW,
    size: int | str | Quantity = 1_000_000,
) -> list[QuoteTick]:
    """``count`` quotes, one every ``interval_ns`` from ``start_ns``, around a random-walk mid.

    ``bid = mid - spread_raw // 2`` and ``ask = bid + spread_raw``, so the spread is
    constant and bid < ask; the mid is floored so the bid is always at least one raw unit.
    """
    _require_int("count", count, 0)
    _require_int("spread_raw", spread_raw, 1)
    timestamps = _timestamps(start_ns, interval_ns, count)
    half = spread_raw // 2
    floor = half + 1
    start = _start_raw(instrument, start_price)
    if start < floor:
        raise GeneratorParameterError(
            f"start_price {start_price!r} is too low for a spread of {spread_raw} raw units: the bid would not "
            "be positive; raise start_price or lower spread_raw"
        )
    mids = RandomWalk(seed, start, step_raw, floor, RAW_MAX - spread_raw).take(count)
    qty = _size(instrument, size, "size")
    prec = instrument.price_precision
    iid = instrument.id
    new = object.__new__
    out: list[QuoteTick] = []
    append = out.append
    with _gc_paused():
        for mid, ts in zip(mids, timestamps, strict=True):
            bid = new(Price)
            bid.raw = mid - half
            bid.precision = prec
            ask = new(Price)
            ask.raw = mid - half + spread_raw
            ask.precision = prec
            tick = new(QuoteTick)
            tick.instrument_id = iid
            tick.bid_price = bid
            tick.ask_price = ask
            tick.bid_size = qty
            tick.ask_size = qty
            tick.ts_event = ts
            tick.ts_init = ts
            append(tick)
    return out


def random_walk_trades(
    instrument: Instrument,
    count: int,
    *,
    seed: int = 42,
    start_ns: int = DEFAULT_START_NS,
    interval_ns: int = DEFAULT_INTERVAL_NS,
    start_price: str | Decimal | int | Price = DEFAULT_START_PRICE,
    step_raw: float = DEFAULT_STEP_RAW,
    size: int | str | Quantity = 100_000,
) -> list[TradeTick]:
    """``count`` trades on a random-walk price, with trade ids ``T-1``, ``T-2``, ...

    The aggressor follows the tick rule: an uptick is a BUYER, a downtick a SELLER and an
    unchanged price NO_AGGRESSOR (the first trade has no previous price: NO_AGGRESSOR).
    """
    _require_int("count", count, 0)
    timestamps = _timestamps(start_ns, interval_ns, count)
    prices = RandomWalk(seed, _start_raw(instrument, start_price), step_raw, 1).take(count)
    qty = _size(instrument, size, "size")
    prec = instrument.price_precision
    iid = instrument.id
    buyer, seller, none = AggressorSide.BUYER, AggressorSide.SELLER, AggressorSide.NO_AGGRESSOR
    new = object.__new__
    out: list[TradeTick] = []
    append = out.append
    prev = prices[0] if prices else 0
    with _gc_paused():
        for n, (raw, ts) in enumerate(zip(prices, timestamps, strict=True), start=1):
            price = new(Price)
            price.raw = raw
            price.precision = prec
            trade = new(TradeTick)
            trade.instrument_id = iid
            trade.price = price
            trade.size = qty
            trade.aggressor_side = buyer if raw > prev else seller if raw < prev else none
            trade.trade_id = TradeId(f"T-{n}")
            trade.ts_event = ts
            trade.ts_init = ts
            append(trade)
            prev = raw
    return out


def random_walk_bars(
    bar_type: BarType,
    instrument: Instrument,
    count: int,
    *,
    seed: int = 42,
    start_ns: int = DEFAULT_START_NS,
    start_price: str | Decimal | int | Price = DEFAULT_START_PRICE,
    step_raw: float = DEFAULT_STEP_RAW,
    ticks_per_bar: int = 15,
    volume: int | str | Quantity = 1_000_000,
) -> list[Bar]:
    """``count`` consecutive bars of ``bar_type``'s interval, the first opening at ``start_ns``.

    Each bar summarizes ``ticks_per_bar`` steps of one random walk: open is the previous
    bar's close (the start price for the first bar), high/low the extremes including the
    open, close the last step. ``ts_event = ts_init`` is the bar's close time, so bar ``i``
    (from 0) is stamped ``start_ns + (i + 1) * interval``.
    """
    if not isinstance(bar_type, BarType):
        raise GeneratorParameterError(f"bar_type must be a BarType, got {bar_type!r}")
    if bar_type.instrument_id != instrument.id:
        raise GeneratorParameterError(
            f"bar type {bar_type} is for {bar_type.instrument_id}, not the instrument {instrument.id}"
        )
    _require_int("count", count, 0)
    _require_int("ticks_per_bar", ticks_per_bar, 1)
    interval = bar_type.spec.interval_ns
    timestamps = _timestamps(start_ns + interval, interval, count)
    vol = volume if isinstance(volume, Quantity) else Quantity(volume, instrument.size_precision)
    walk = RandomWalk(seed, _start_raw(instrument, start_price), step_raw, 1)
    path = walk.take(1 + count * ticks_per_bar)
    prec = instrument.price_precision
    out: list[Bar] = []
    append = out.append
    with _gc_paused():
        for i, ts in enumerate(timestamps):
            start = i * ticks_per_bar
            seg = path[start : start + ticks_per_bar + 1]  # includes the open (previous close)
            append(Bar.from_raw_unchecked(bar_type, seg[0], max(seg), min(seg), seg[-1], prec, vol, ts, ts))
    return out
