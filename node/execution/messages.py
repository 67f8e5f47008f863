"""Trading commands: what a strategy asks the RiskEngine/ExecutionEngine to do.

Commands carry the ids needed to route them (strategy, instrument, client order id) so a
retry after a restart is harmless: the venue refuses a client order id it has seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node.model.identifiers import ClientOrderId, InstrumentId, PositionId, StrategyId, TraderId


@dataclass(frozen=True, slots=True)
class TradingCommand:
    trader_id: TraderId
    strategy_id: StrategyId
    instrument_id: InstrumentId
    ts_init: int


@dataclass(frozen=True, slots=True)
class SubmitOrder(TradingCommand):
    order: object = field(default=None)  # node.model.orders.Order (kept untyped to avoid an import cycle)
    position_id: PositionId | None = None


@dataclass(frozen=True, slots=True)
class CancelOrder(TradingCommand):
    client_order_id: ClientOrderId = field(default=None)  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class CancelAllOrders(TradingCommand):
    pass
