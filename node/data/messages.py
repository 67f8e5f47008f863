"""Data commands: subscriptions an actor sends to the DataEngine (``DataEngine.execute``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class DataKind(IntEnum):
    QUOTES = 1
    TRADES = 2
    BARS = 3
    INSTRUMENT = 4


@dataclass(frozen=True, slots=True)
class Subscribe:
    kind: DataKind
    key: object  # InstrumentId, or BarType for bars
    subscriber: str
    ts_init: int


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    kind: DataKind
    key: object
    subscriber: str
    ts_init: int


def quotes_topic(instrument_id) -> str:
    return f"data.quotes.{instrument_id}"


def trades_topic(instrument_id) -> str:
    return f"data.trades.{instrument_id}"


def bars_topic(bar_type) -> str:
    return f"data.bars.{bar_type}"
