"""Time-bar aggregation from quotes (BID/ASK/MID) or trades (LAST).

Bars close on a clock timer at each interval boundary: the same code closes bars in a
backtest (the TestClock fires the timer when simulated time crosses the boundary, before
the first tick of the next bar is seen) and in a live node (the live loop fires it on
time). A bar covers [close - interval, close); ``ts_event`` is the close. An interval with
no updates produces no bar.

Per-tick work is kept to a handful of integer operations: prices are kept as raw ints and
a Bar object is only built at the close.
"""

from __future__ import annotations

from node.model.data import Bar, BarType
from node.model.enums import PriceType
from node.model.errors import InvalidValueError, PrecisionError
from node.model.objects import MAX_PRECISION, Quantity


class TimeBarAggregator:
    """Aggregates one BarType and hands each finished bar to ``handler``."""

    def __init__(self, instrument, bar_type: BarType, handler, clock) -> None:
        self.bar_type = bar_type
        self._handler = handler
        self._clock = clock
        self._interval = bar_type.spec.interval_ns
        self._timer_name = f"bar-aggregator:{bar_type}"
        price_type = bar_type.spec.price_type
        self._size_precision = instrument.size_precision
        self._price_precision = precision = instrument.price_precision
        # Quotes: we accumulate bid+ask (MID) or 2*side (BID/ASK) so all three share one path;
        # the raw sum is turned into a price at the close.
        if price_type == PriceType.MID:
            self._precision = min(precision + 1, MAX_PRECISION)
            self._scale = 5 if precision < MAX_PRECISION else None
        else:
            self._precision = precision
            self._scale = None
        self._price_type = price_type
        self._open = self._high = self._low = self._close = 0
        self._has_update = False
        self._volume_raw = 0
        self.handle_quote_tick = self._quote_handler(price_type)

    def _quote_handler(self, price_type: PriceType):
        if price_type == PriceType.MID:
            return self._update_mid
        if price_type == PriceType.BID:
            return self._update_bid
        if price_type == PriceType.ASK:
            return self._update_ask
        return self._reject_quote

    def start(self) -> None:
        """Arm the close timer at the next interval boundary from the clock's current time.

        A partial bar left from before a stop is dropped: its ticks lie outside the interval the
        new timer closes. Starting an aggregator whose timer is already armed does nothing.
        """
        if self._timer_name in self._clock.timer_names:
            return
        self._has_update = False
        now = self._clock.timestamp_ns()
        first_close = (now // self._interval + 1) * self._interval
        self._clock.set_timer(
            self._timer_name, self._interval, self._on_close, start_time_ns=first_close - self._interval
        )

    def stop(self) -> None:
        if self._timer_name in self._clock.timer_names:
            self._clock.cancel_timer(self._timer_name)

    # -- per-tick updates (hot path) -------------------------------------------------------------
    def _update(self, p: int, volume_raw: int) -> None:
        if self._has_update:
            if p > self._high:
                self._high = p
            elif p < self._low:
                self._low = p
            self._close = p
            self._volume_raw += volume_raw
        else:
            self._open = self._high = self._low = self._close = p
            self._volume_raw = volume_raw
            self._has_update = True

    def _update_mid(self, tick) -> None:
        if (
            tick.bid_price.precision != self._price_precision
            or tick.bid_size.precision != self._size_precision
            or tick.ask_size.precision != self._size_precision
        ):
            self._reject_precision(tick, tick.bid_price, tick.bid_size, tick.ask_size)
        p = tick.bid_price.raw + tick.ask_price.raw
        if self._has_update:
            if p > self._high:
                self._high = p
            elif p < self._low:
                self._low = p
            self._close = p
            self._volume_raw += tick.bid_size.raw + tick.ask_size.raw
        else:
            self._open = self._high = self._low = self._close = p
            self._volume_raw = tick.bid_size.raw + tick.ask_size.raw
            self._has_update = True

    def _update_bid(self, tick) -> None:
        price, size = tick.bid_price, tick.bid_size
        if price.precision != self._price_precision or size.precision != self._size_precision:
            self._reject_precision(tick, price, size)
        self._update(price.raw * 2, size.raw * 2)

    def _update_ask(self, tick) -> None:
        price, size = tick.ask_price, tick.ask_size
        if price.precision != self._price_precision or size.precision != self._size_precision:
            self._reject_precision(tick, price, size)
        self._update(price.raw * 2, size.raw * 2)

    def _reject_quote(self, tick) -> None:
        raise InvalidValueError(f"bar type {self.bar_type} is built from trades, not quotes")

    def handle_trade_tick(self, tick) -> None:
        price, size = tick.price, tick.size
        if price.precision != self._price_precision or size.precision != self._size_precision:
            self._reject_precision(tick, price, size)
        self._update(price.raw * 2, size.raw * 2)

    def _reject_precision(self, tick, price, *sizes) -> None:
        # Raw ints are summed as if at the instrument's precisions; a tick at another precision
        # would silently scale the bar by a power of ten.
        raise PrecisionError(
            f"cannot aggregate {self.bar_type} from {tick!r}: price precision {price.precision} / size "
            f"precision(s) {', '.join(str(s.precision) for s in sizes)} do not match the instrument's "
            f"{self._price_precision} / {self._size_precision}"
        )

    # -- close ----------------------------------------------------------------------------------
    def _to_price_raw(self, doubled: int) -> int:
        if self._scale is not None:
            return doubled * self._scale
        return doubled // 2

    def _on_close(self, event) -> None:
        ts = event.ts_event
        if not self._has_update:
            return
        conv = self._to_price_raw
        bar = Bar.from_raw_unchecked(
            self.bar_type,
            conv(self._open),
            conv(self._high),
            conv(self._low),
            conv(self._close),
            self._precision,
            Quantity.from_raw(self._volume_raw // 2, self._size_precision),
            ts,
            ts,
        )
        self._has_update = False
        self._handler(bar)
