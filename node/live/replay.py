"""A market-data client that plays recorded data into a live node.

Pace. ``speed = 1`` plays at the recorded pace (the gap between two items' ``ts_init`` becomes
the same wall-clock gap), ``speed = 10`` ten times faster. ``speed = 0`` plays as fast as the
node absorbs it: before each item the client waits until the kernel's queues are empty, so every
consequence of the previous item (orders, fills, the strategy's reaction) has been applied first.
That lock-step mode is what makes a sandbox run comparable with a backtest of the same data.

Stamps. By default each item is re-stamped with the live clock when it is handed over (it is
*received now*, and a live node's bars and timers run on wall-clock time); ``restamp = false``
keeps the recorded timestamps.

Playback starts when the node is RUNNING and covers the whole file whether or not anyone
subscribed (the simulated venue needs the prices either way). When it ends, ``finished`` is set
and, with ``stop_when_done``, the node is asked to stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio

from node.backtest.config import ConfigError, _Reader
from node.live.clients import LiveDataClient
from node.model.data import Bar, BarType, QuoteTick, TradeTick
from node.model.errors import InvalidValueError


@dataclass(frozen=True)
class ReplayConfig:
    instrument_id: str
    path: Path | None = None  # .csv or .parquet (node.persistence.loaders)
    kind: str = "quotes"  # or "bars"
    bar_type: str | None = None
    speed: float = 1.0  # 0: as fast as the node absorbs it (lock-step)
    restamp: bool = True
    stop_when_done: bool = False

    @classmethod
    def from_dict(cls, table: dict, path: str, base_dir: Path) -> ReplayConfig:
        r = _Reader(table, path)
        file = r.get("path", str)
        config = cls(
            instrument_id=r.get("instrument_id", str),
            kind=r.get("kind", str, "quotes", choices=("quotes", "bars")),
            bar_type=r.get("bar_type", str, None),
            speed=float(r.get("speed", (int, float), 1.0)),
            restamp=r.get("restamp", bool, True),
            stop_when_done=r.get("stop_when_done", bool, False),
            path=Path(file) if Path(file).is_absolute() else base_dir / file,
        )
        r.done()
        if config.speed < 0:
            raise ConfigError(r.key("speed"), f"must be >= 0 (0 = as fast as possible), got {config.speed}")
        if config.kind == "bars" and config.bar_type is None:
            raise ConfigError(r.key("bar_type"), "is required for kind = 'bars'")
        if config.bar_type is not None:
            try:
                BarType.from_str(config.bar_type)
            except InvalidValueError as exc:
                raise ConfigError(r.key("bar_type"), str(exc)) from None
        if not config.path.exists():
            raise ConfigError(r.key("path"), f"file not found: {config.path}")
        return config


def restamped(item, ts: int):
    """A copy of ``item`` with ``ts_event = ts_init = ts``."""
    t = type(item)
    if t is QuoteTick:
        return QuoteTick(
            item.instrument_id, item.bid_price, item.ask_price, item.bid_size, item.ask_size, ts, ts
        )
    if t is TradeTick:
        return TradeTick(
            item.instrument_id, item.price, item.size, item.aggressor_side, item.trade_id, ts, ts
        )
    if t is Bar:
        return Bar(item.bar_type, item.open, item.high, item.low, item.close, item.volume, ts, ts)
    raise TypeError(f"cannot replay {t.__name__}: only QuoteTick, TradeTick and Bar")


class ReplayDataClient(LiveDataClient):
    """Plays ``items`` (or the file in ``config``) into the node; see module docstring."""

    def __init__(
        self,
        client_id: str,
        config: ReplayConfig,
        clock,
        instrument=None,
        items: list | None = None,
        wait_idle=None,
        request_stop=None,
    ) -> None:
        super().__init__(client_id, instrument.id.venue if instrument is not None else None)
        if items is None and config.path is None:
            raise ValueError(f"replay client {client_id}: give a data file (path) or the items to play")
        if config.speed == 0 and wait_idle is None:
            raise ValueError(f"replay client {client_id}: speed 0 (lock-step) needs the node's wait_idle")
        self.config = config
        self._clock = clock
        self._instrument = instrument
        self._items = items
        self._wait_idle = wait_idle
        self._request_stop = request_stop
        self.played = 0
        self._finished: anyio.Event | None = None
        self.is_finished = False

    @property
    def items(self) -> list | None:
        return self._items

    async def connect_async(self) -> None:
        if self._items is None:
            self._items = await anyio.to_thread.run_sync(self._load)
        self.connect()

    def _load(self) -> list:
        from node.persistence.loaders import load_data  # only paid for when a file is replayed

        bar_type = BarType.from_str(self.config.bar_type) if self.config.bar_type else None
        return load_data(self.config.path, self._instrument, self.config.kind, bar_type)

    def _finished_event(self) -> anyio.Event:
        if self._finished is None:
            self._finished = anyio.Event()
            if self.is_finished:
                self._finished.set()
        return self._finished

    async def wait_finished(self) -> None:
        await self._finished_event().wait()

    async def stream_async(self) -> None:
        items = self._items or []
        speed = self.config.speed
        restamp = self.config.restamp
        clock = self._clock
        started = anyio.current_time()
        first_ts = items[0].ts_init if items else 0
        for item in items:
            if speed == 0:
                await self._wait_idle()
            else:
                await anyio.sleep_until(started + (item.ts_init - first_ts) / 1e9 / speed)
            if restamp:
                item = restamped(item, clock.timestamp_ns())
            await self.handle_data_async(item)
            self.played += 1
        if speed == 0:
            await self._wait_idle()  # the last item's consequences belong to the replay
        self.is_finished = True
        self._finished_event().set()
        if self.config.stop_when_done and self._request_stop is not None:
            self._request_stop(f"replay {self.id} finished")

    def dispose(self) -> None:
        self._items = None


__all__ = ["ReplayConfig", "ReplayDataClient", "restamped"]
