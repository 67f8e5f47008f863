"""Enumerations of the domain model (IntEnum: cheap to compare, msgpack-friendly)."""

from enum import IntEnum


class OrderSide(IntEnum):
    NO_ORDER_SIDE = 0
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    MARKET = 1
    LIMIT = 2
    STOP_MARKET = 3


class TimeInForce(IntEnum):
    GTC = 1
    IOC = 2
    FOK = 3
    GTD = 4
    DAY = 5


class OrderStatus(IntEnum):
    INITIALIZED = 1
    DENIED = 2
    SUBMITTED = 3
    ACCEPTED = 4
    REJECTED = 5
    CANCELED = 6
    EXPIRED = 7
    TRIGGERED = 8
    PENDING_CANCEL = 9
    PARTIALLY_FILLED = 10
    FILLED = 11


class PositionSide(IntEnum):
    FLAT = 0
    LONG = 1
    SHORT = 2


class OmsType(IntEnum):
    """NETTING: one position per instrument per strategy; HEDGING: one per entry order."""

    NETTING = 1
    HEDGING = 2


class AccountType(IntEnum):
    CASH = 1
    MARGIN = 2


class LiquiditySide(IntEnum):
    NO_LIQUIDITY_SIDE = 0
    MAKER = 1
    TAKER = 2


class PriceType(IntEnum):
    BID = 1
    ASK = 2
    MID = 3
    LAST = 4


class BarAggregation(IntEnum):
    SECOND = 1
    MINUTE = 2
    HOUR = 3
    DAY = 4


class AggregationSource(IntEnum):
    EXTERNAL = 1
    INTERNAL = 2


class AggressorSide(IntEnum):
    NO_AGGRESSOR = 0
    BUYER = 1
    SELLER = 2


class TradingState(IntEnum):
    """ACTIVE trades; REDUCING only lets orders through that reduce a position; HALTED none."""

    ACTIVE = 1
    HALTED = 2
    REDUCING = 3


class BookType(IntEnum):
    L1_TOP = 1
