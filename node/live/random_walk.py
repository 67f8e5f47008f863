"""A real-time market-data client that makes up seeded random-walk quotes (and optionally trades).

For the sandbox: it behaves like a venue feed (items arrive over time, stamped by the node's live
clock when they are made) without any network, so a strategy can be run live end to end. Prices
come from :class:`node.persistence.generators.RandomWalk`, the same integer walk the backtest data
generators use, so the *sequence of prices* for a seed is reproducible; only the timestamps are
wall-clock.

Streaming starts when the node is RUNNING and covers the instruments someone subscribed to
(quotes, trades or bars of it). Each instrument has its own walk (seed + its index in the config),
so subscribing one more instrument does not change another's prices. If the loop falls behind
(a blocked strategy), missed steps are skipped rather than sent in a burst, and counted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

import anyio

from node.backtest.config import ConfigError, _Reader
from node.data.client import DataRequest, DataResponse
from node.data.messages import DataKind
from node.live.clients import LiveDataClient
from node.model.data import QuoteTick, TradeTick
from node.model.enums import AggressorSide
from node.model.identifiers import TradeId
from node.model.objects import RAW_MAX, Price, Quantity
from node.persistence.generators import RandomWalk

_HISTORY = 1_000  # quotes kept per instrument to answer history requests


@dataclass(frozen=True)
class RandomWalkConfig:
    instruments: tuple[str, ...] = ()  # empty: every instrument the node knows
    rate: float = 10.0  # steps per second, per instrument
    seed: int = 42
    start_price: str = "1.10000"
    step_raw: float = 5.0  # std-dev of one step, in raw price units (0.5 pip on a 5-decimal pair)
    spread_raw: int = 20
    size: str = "1000000"
    trades: bool = False  # also a trade per step, on the side the price moved to

    @classmethod
    def from_dict(cls, table: dict, path: str) -> RandomWalkConfig:
        r = _Reader(table, path)
        instruments = r.get("instruments", list, [])
        config = cls(
            instruments=tuple(str(i) for i in instruments),
            rate=float(r.positive("rate", (int, float), 10.0)),
            seed=r.get("seed", int, 42),
            start_price=str(r.get("start_price", (str, int, float), "1.10000")),
            step_raw=float(r.get("step_raw", (int, float), 5.0)),
            spread_raw=r.positive("spread_raw", int, 20),
            size=str(r.get("size", (str, int), "1000000")),
            trades=r.get("trades", bool, False),
        )
        r.done()
        if config.step_raw < 0:
            raise ConfigError(r.key("step_raw"), f"must be >= 0, got {config.step_raw}")
        for name in ("start_price", "size"):
            try:
                if Decimal(getattr(config, name)) <= 0:
                    raise ValueError
            except (ArithmeticError, ValueError):
                raise ConfigError(
                    r.key(name), f"must be a positive number, got {getattr(config, name)!r}"
                ) from None
        return config


class _Walker:
    """One instrument's walk and the values it needs to build quotes quickly."""

    def __init__(self, instrument, config: RandomWalkConfig, seed: int) -> None:
        self.instrument = instrument
        self.precision = instrument.price_precision
        self.half = config.spread_raw // 2
        self.spread = config.spread_raw
        start = Price(Decimal(config.start_price), self.precision).raw
        self.walk = RandomWalk(
            seed, max(start, self.half + 1), config.step_raw, self.half + 1, RAW_MAX - self.spread
        )
        self.size = Quantity(Decimal(config.size), instrument.size_precision)
        self.last_mid: int | None = None
        self.trade_count = 0
        self.history: deque[QuoteTick] = deque(maxlen=_HISTORY)

    def step(self, ts: int, with_trade: bool) -> list:
        mid = self.walk.next()
        bid = Price.from_raw(mid - self.half, self.precision)
        ask = Price.from_raw(mid - self.half + self.spread, self.precision)
        quote = QuoteTick(self.instrument.id, bid, ask, self.size, self.size, ts, ts)
        self.history.append(quote)
        out: list = [quote]
        if with_trade:
            up = self.last_mid is None or mid >= self.last_mid
            self.trade_count += 1
            out.append(
                TradeTick(
                    self.instrument.id,
                    ask if up else bid,
                    self.size,
                    AggressorSide.BUYER if up else AggressorSide.SELLER,
                    TradeId(f"RW-{self.trade_count}"),
                    ts,
                    ts,
                )
            )
        self.last_mid = mid
        return out


class RandomWalkDataClient(LiveDataClient):
    def __init__(self, client_id: str, config: RandomWalkConfig, clock, instruments: list) -> None:
        super().__init__(client_id)
        if not instruments:
            raise ValueError(f"random-walk client {client_id}: no instruments to generate quotes for")
        self.config = config
        self._clock = clock
        self._walkers = {
            inst.id: _Walker(inst, config, config.seed + i) for i, inst in enumerate(instruments)
        }
        self.generated = 0
        self.skipped_steps = 0

    def _active(self) -> list[_Walker]:
        ids = {getattr(key, "instrument_id", key) for _, key in self.subscriptions}
        return [w for iid, w in self._walkers.items() if iid in ids]

    async def stream_async(self) -> None:
        period = 1.0 / self.config.rate
        next_at = anyio.current_time()
        with_trades = self.config.trades
        while True:
            walkers = self._active()
            if walkers:
                ts = self._clock.timestamp_ns()
                for walker in walkers:
                    for item in walker.step(ts, with_trades):
                        self.generated += 1
                        await self.handle_data_async(item)
            next_at += period
            now = anyio.current_time()
            if next_at < now:
                missed = int((now - next_at) / period) + 1
                self.skipped_steps += missed
                next_at += missed * period
            await anyio.sleep_until(next_at)

    def serves(self, request: DataRequest) -> bool:
        if request.client_id is not None:
            return request.client_id == self.id
        return getattr(request.key, "instrument_id", request.key) in self._walkers

    def request(self, correlation_id: str, request: DataRequest) -> None:
        walker = self._walkers.get(request.key)
        if request.kind != DataKind.QUOTES or walker is None:
            super().request(correlation_id, request)
            return
        history = list(walker.history)
        if request.limit is not None:
            history = history[-request.limit :] if request.limit > 0 else []
        self.handle_response(DataResponse(correlation_id, self.id, tuple(history)))


__all__ = ["RandomWalkConfig", "RandomWalkDataClient"]
