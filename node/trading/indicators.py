"""Technical indicators: moving averages fed by bars, quotes, trades or raw floats.

Indicators compute on floats, unlike the engine's prices: their output is a signal that a
strategy compares with another signal, never an amount that is booked, so float speed wins
over decimal exactness here.

``update_raw`` is the public entry point for a plain number and checks it is finite (a
single NaN would poison an average forever). The ``handle_*`` methods read an already
validated ``Price`` and skip that check, because they run for every bar or tick of a
backtest. Counters and the current value are plain attributes, not properties, for the same
reason.
"""

from __future__ import annotations

import math
from collections import deque

from node.model.data import Bar, QuoteTick, TradeTick
from node.model.enums import PriceType
from node.model.errors import InvalidValueError, NonFiniteValueError
from node.model.objects import POW10

_INF = math.inf


class IndicatorParameterError(InvalidValueError):
    """An indicator was configured with an invalid parameter (e.g. period <= 0)."""


def _check_period(period) -> int:
    if type(period) is not int or period <= 0:
        raise IndicatorParameterError(f"indicator period must be a positive int, got {period!r}")
    return period


def _check_price_type(price_type) -> PriceType:
    try:
        return PriceType(price_type)
    except ValueError:
        raise IndicatorParameterError(
            f"price_type must be one of {', '.join(p.name for p in PriceType)}, got {price_type!r}"
        ) from None


class Indicator:
    """Base class: input plumbing, the counters and ``reset``; subclasses implement ``_update``.

    ``price_type`` selects what a quote tick contributes: BID, ASK or MID. A quote has no
    last-trade price, so LAST (the default, meaningful for trades and bars) reads the mid.
    Bars always contribute their close and trades their price.
    """

    __slots__ = ("name", "period", "price_type", "count", "value", "initialized", "has_inputs")

    def __init__(self, period: int, price_type: PriceType = PriceType.LAST) -> None:
        self.period = _check_period(period)
        self.price_type = _check_price_type(price_type)
        suffix = "" if self.price_type == PriceType.LAST else f",{self.price_type.name}"
        self.name = f"{type(self).__name__}({period}{suffix})"
        self.count = 0
        self.value = 0.0
        self.initialized = False
        self.has_inputs = False

    def _update(self, value: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _reset(self) -> None:
        """Subclass hook: clear any extra state."""

    def update_raw(self, value: float) -> None:
        """Feed one number (must be finite)."""
        if not -_INF < value < _INF:  # False for NaN as well as for the infinities
            raise NonFiniteValueError(f"{self.name}: input must be a finite number, got {value!r}")
        self._update(float(value))

    def handle_bar(self, bar: Bar) -> None:
        close = bar.close
        self._update(close.raw / POW10[close.precision])

    def handle_quote_tick(self, tick: QuoteTick) -> None:
        pt = self.price_type
        if pt == PriceType.BID:
            price = tick.bid_price
            self._update(price.raw / POW10[price.precision])
        elif pt == PriceType.ASK:
            price = tick.ask_price
            self._update(price.raw / POW10[price.precision])
        else:
            bid = tick.bid_price
            self._update((bid.raw + tick.ask_price.raw) / (2 * POW10[bid.precision]))

    def handle_trade_tick(self, tick: TradeTick) -> None:
        price = tick.price
        self._update(price.raw / POW10[price.precision])

    def reset(self) -> None:
        """Back to the freshly constructed state (parameters are kept)."""
        self.count = 0
        self.value = 0.0
        self.initialized = False
        self.has_inputs = False
        self._reset()

    def __repr__(self) -> str:
        return f"{self.name}[count={self.count}, value={self.value!r}]"


class ExponentialMovingAverage(Indicator):
    """EMA with ``alpha = 2 / (period + 1)``, seeded with the first input.

    ``value = value + alpha * (input - value)``; the first input becomes the value as is.
    ``initialized`` turns True after ``period`` inputs (earlier values are still computed).
    """

    __slots__ = ("alpha",)

    def __init__(self, period: int, price_type: PriceType = PriceType.LAST) -> None:
        super().__init__(period, price_type)
        self.alpha = 2.0 / (period + 1.0)

    def _update(self, value: float) -> None:
        if self.has_inputs:
            self.value += self.alpha * (value - self.value)
        else:
            self.value = value
            self.has_inputs = True
        self.count += 1
        if not self.initialized and self.count >= self.period:
            self.initialized = True


class SimpleMovingAverage(Indicator):
    """Mean of the last ``period`` inputs (of all inputs so far until there are ``period``).

    A rolling sum makes each update O(1). Adding and subtracting floats for millions of
    updates lets rounding error creep into that sum, so it is recomputed exactly with
    ``math.fsum`` every ``max(period, 64)`` updates, which keeps the amortized cost O(1).
    """

    __slots__ = ("_window", "_sum", "_until_resync", "_resync_every")

    def __init__(self, period: int, price_type: PriceType = PriceType.LAST) -> None:
        super().__init__(period, price_type)
        self._window: deque[float] = deque()
        self._sum = 0.0
        self._resync_every = max(period, 64)
        self._until_resync = self._resync_every

    def _update(self, value: float) -> None:
        window = self._window
        if len(window) == self.period:
            self._sum += value - window.popleft()
        else:
            self._sum += value
        window.append(value)
        self._until_resync -= 1
        if not self._until_resync:
            self._sum = math.fsum(window)
            self._until_resync = self._resync_every
        self.value = self._sum / len(window)
        self.has_inputs = True
        self.count += 1
        if not self.initialized and self.count >= self.period:
            self.initialized = True

    def _reset(self) -> None:
        self._window.clear()
        self._sum = 0.0
        self._until_resync = self._resync_every


EMA = ExponentialMovingAverage
SMA = SimpleMovingAverage
