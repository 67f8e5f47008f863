"""Market data: QuoteTick, TradeTick, Bar and BarType.

All are immutable after construction and validated there (types, timestamps, sizes,
bar shape, prices above zero). They are plain ``__slots__`` classes rather than dataclasses
because a backtest creates millions of them and reads their attributes on every tick.

The constructors are the one place every way in passes through (the CSV and Parquet loaders,
the live replay and random-walk clients, a venue's stored state, a host's own adapter), so the
checks live here once. They cost a few comparisons per record when it is made, never on the
backtest's per-tick path, which only reads records made beforehand. The bulk generators
(``node.persistence.generators``) bypass the constructors for speed and keep these invariants
by construction (their walks are floored at one raw unit).
"""

from __future__ import annotations

from node.model.enums import AggregationSource, AggressorSide, BarAggregation, PriceType
from node.model.errors import InvalidDataError, InvalidValueError, NonPositivePriceError
from node.model.identifiers import InstrumentId, TradeId
from node.model.objects import Price, Quantity
from node.model.timestamps import NANOS_PER_SECOND, check_unix_nanos


def _need(value, cls, field: str, owner: str):
    if type(value) is not cls:
        raise InvalidValueError(f"{owner}.{field} must be a {cls.__name__}, got {type(value).__name__}")


def _refuse_price(owner: str, instrument, field: str, price: Price) -> None:
    """Raise for a price at or below zero (corrupt data: nothing here trades at or below 0)."""
    raise NonPositivePriceError(
        field, f"{owner} {instrument}: {field} must be positive, got {price} (corrupt data: refused)"
    )


def _need_id(value, owner: str) -> None:
    if not isinstance(value, InstrumentId):
        raise InvalidValueError(
            f"{owner}.instrument_id must be an InstrumentId, got {type(value).__name__} {value!r}"
        )


class Data:
    """Base of everything that flows through the DataEngine; ``ts_init`` orders a stream."""

    __slots__ = ("ts_event", "ts_init")


class QuoteTick(Data):
    """Top of book: best bid and ask with their sizes."""

    __slots__ = ("instrument_id", "bid_price", "ask_price", "bid_size", "ask_size")

    def __init__(
        self,
        instrument_id: InstrumentId,
        bid_price: Price,
        ask_price: Price,
        bid_size: Quantity,
        ask_size: Quantity,
        ts_event: int,
        ts_init: int,
    ) -> None:
        _need(bid_price, Price, "bid_price", "QuoteTick")
        _need(ask_price, Price, "ask_price", "QuoteTick")
        _need(bid_size, Quantity, "bid_size", "QuoteTick")
        _need(ask_size, Quantity, "ask_size", "QuoteTick")
        _need_id(instrument_id, "QuoteTick")
        if bid_price.raw <= 0:
            _refuse_price("QuoteTick", instrument_id, "bid_price", bid_price)
        if ask_price.raw <= 0:  # a crossed quote (bid > ask) is allowed: real feeds have them
            _refuse_price("QuoteTick", instrument_id, "ask_price", ask_price)
        if bid_price.precision != ask_price.precision:
            raise InvalidDataError(
                f"QuoteTick {instrument_id}: bid precision {bid_price.precision} != ask precision {ask_price.precision}"
            )
        self.instrument_id = instrument_id
        self.bid_price = bid_price
        self.ask_price = ask_price
        self.bid_size = bid_size
        self.ask_size = ask_size
        self.ts_event = check_unix_nanos(ts_event, "QuoteTick.ts_event")
        self.ts_init = check_unix_nanos(ts_init, "QuoteTick.ts_init")

    def mid_raw(self) -> int:
        """Mid price as a raw int at one more decimal than the quote (exact, no rounding)."""
        return (self.bid_price.raw + self.ask_price.raw) * 5

    def extract_price(self, price_type: PriceType) -> Price:
        if price_type == PriceType.BID:
            return self.bid_price
        if price_type == PriceType.ASK:
            return self.ask_price
        if price_type == PriceType.MID:
            return Price.from_raw(self.mid_raw(), self.bid_price.precision + 1)
        raise InvalidValueError(f"a QuoteTick has no {price_type.name} price")

    def __eq__(self, other) -> bool:
        return (
            type(other) is QuoteTick
            and other.instrument_id == self.instrument_id
            and other.bid_price == self.bid_price
            and other.ask_price == self.ask_price
            and other.bid_size == self.bid_size
            and other.ask_size == self.ask_size
            and other.ts_event == self.ts_event
            and other.ts_init == self.ts_init
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"QuoteTick({self.instrument_id},{self.bid_price},{self.ask_price},"
            f"{self.bid_size},{self.ask_size},{self.ts_event})"
        )


class TradeTick(Data):
    """One trade printed by the venue."""

    __slots__ = ("instrument_id", "price", "size", "aggressor_side", "trade_id")

    def __init__(
        self,
        instrument_id: InstrumentId,
        price: Price,
        size: Quantity,
        aggressor_side: AggressorSide,
        trade_id: TradeId,
        ts_event: int,
        ts_init: int,
    ) -> None:
        _need(price, Price, "price", "TradeTick")
        _need(size, Quantity, "size", "TradeTick")
        if size.raw == 0:
            raise InvalidDataError(f"TradeTick {instrument_id}: size must be positive")
        _need_id(instrument_id, "TradeTick")
        if price.raw <= 0:
            _refuse_price("TradeTick", instrument_id, "price", price)
        try:
            aggressor = AggressorSide(aggressor_side)
        except ValueError:
            raise InvalidDataError(
                f"TradeTick {instrument_id}: unknown aggressor side {aggressor_side!r}"
            ) from None
        self.instrument_id = instrument_id
        self.price = price
        self.size = size
        self.aggressor_side = aggressor
        self.trade_id = trade_id
        self.ts_event = check_unix_nanos(ts_event, "TradeTick.ts_event")
        self.ts_init = check_unix_nanos(ts_init, "TradeTick.ts_init")

    def __repr__(self) -> str:
        return f"TradeTick({self.instrument_id},{self.price},{self.size},{self.aggressor_side.name},{self.ts_event})"


_AGG_NANOS = {
    BarAggregation.SECOND: NANOS_PER_SECOND,
    BarAggregation.MINUTE: 60 * NANOS_PER_SECOND,
    BarAggregation.HOUR: 3600 * NANOS_PER_SECOND,
    BarAggregation.DAY: 86_400 * NANOS_PER_SECOND,
}


class BarSpecification:
    """``step`` units of ``aggregation`` (time-based) built from ``price_type``."""

    __slots__ = ("step", "aggregation", "price_type")

    def __init__(self, step: int, aggregation: BarAggregation, price_type: PriceType) -> None:
        if type(step) is not int or step <= 0:
            raise InvalidValueError(f"bar step must be a positive int, got {step!r}")
        self.step = step
        self.aggregation = BarAggregation(aggregation)
        self.price_type = PriceType(price_type)

    @property
    def interval_ns(self) -> int:
        return self.step * _AGG_NANOS[self.aggregation]

    def __str__(self) -> str:
        return f"{self.step}-{self.aggregation.name}-{self.price_type.name}"

    def __eq__(self, other) -> bool:
        return isinstance(other, BarSpecification) and str(other) == str(self)

    def __hash__(self) -> int:
        return hash(str(self))


class BarType:
    """``INSTRUMENT-STEP-AGGREGATION-PRICETYPE-SOURCE``, e.g. ``EUR/USD.SIM-1-MINUTE-MID-INTERNAL``."""

    __slots__ = ("instrument_id", "spec", "aggregation_source", "_str", "_hash")

    def __init__(
        self,
        instrument_id: InstrumentId,
        spec: BarSpecification,
        aggregation_source: AggregationSource = AggregationSource.EXTERNAL,
    ) -> None:
        _need_id(instrument_id, "BarType")
        if not isinstance(spec, BarSpecification):
            raise InvalidValueError(f"BarType.spec must be a BarSpecification, got {spec!r}")
        self.instrument_id = instrument_id
        self.spec = spec
        self.aggregation_source = AggregationSource(aggregation_source)
        self._str = f"{instrument_id}-{spec}-{self.aggregation_source.name}"
        self._hash = hash(self._str)

    @classmethod
    def from_str(cls, value: str) -> BarType:
        parts = value.rsplit("-", 4)
        if len(parts) != 5:
            raise InvalidValueError(
                f"bar type must look like 'EUR/USD.SIM-1-MINUTE-MID-INTERNAL', got {value!r}"
            )
        inst, step, agg, price_type, source = parts
        try:
            spec = BarSpecification(int(step), BarAggregation[agg], PriceType[price_type])
            return cls(InstrumentId.from_str(inst), spec, AggregationSource[source])
        except (KeyError, ValueError) as exc:
            raise InvalidValueError(f"bad bar type {value!r}: {exc}") from None

    @property
    def is_internally_aggregated(self) -> bool:
        return self.aggregation_source == AggregationSource.INTERNAL

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return f"BarType('{self._str}')"

    def __eq__(self, other) -> bool:
        return isinstance(other, BarType) and other._str == self._str

    def __hash__(self) -> int:
        return self._hash


class Bar(Data):
    """OHLCV over an interval; ``ts_event`` is the bar's close time."""

    __slots__ = ("bar_type", "open", "high", "low", "close", "volume")

    def __init__(
        self,
        bar_type: BarType,
        open: Price,
        high: Price,
        low: Price,
        close: Price,
        volume: Quantity,
        ts_event: int,
        ts_init: int,
    ) -> None:
        for name, value in (("open", open), ("high", high), ("low", low), ("close", close)):
            _need(value, Price, name, "Bar")
        _need(volume, Quantity, "volume", "Bar")
        if open.raw <= 0 or high.raw <= 0 or low.raw <= 0 or close.raw <= 0:
            for name, value in (("open", open), ("high", high), ("low", low), ("close", close)):
                if value.raw <= 0:
                    _refuse_price("Bar", bar_type, name, value)
        if not open.precision == high.precision == low.precision == close.precision:
            raise InvalidDataError(
                f"Bar {bar_type}: open/high/low/close must share one precision, got "
                f"{open.precision}/{high.precision}/{low.precision}/{close.precision}"
            )
        if high.raw < low.raw or high < open or high < close or low > open or low > close:
            raise InvalidDataError(
                f"Bar {bar_type}: inconsistent OHLC open={open} high={high} low={low} close={close}"
            )
        self.bar_type = bar_type
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.ts_event = check_unix_nanos(ts_event, "Bar.ts_event")
        self.ts_init = check_unix_nanos(ts_init, "Bar.ts_init")

    @classmethod
    def from_raw_unchecked(cls, bar_type, o, h, low, c, precision, volume, ts_event, ts_init) -> Bar:
        """Fast path for the aggregator, which only ever builds consistent bars from valid ticks."""
        bar = object.__new__(cls)
        bar.bar_type = bar_type
        bar.open = Price.from_raw(o, precision)
        bar.high = Price.from_raw(h, precision)
        bar.low = Price.from_raw(low, precision)
        bar.close = Price.from_raw(c, precision)
        bar.volume = volume
        bar.ts_event = ts_event
        bar.ts_init = ts_init
        return bar

    @property
    def instrument_id(self) -> InstrumentId:
        return self.bar_type.instrument_id

    def __repr__(self) -> str:
        return f"Bar({self.bar_type},{self.open},{self.high},{self.low},{self.close},{self.volume},{self.ts_event})"
