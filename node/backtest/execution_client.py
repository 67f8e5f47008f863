"""BacktestExecutionClient: the ExecutionClient port, plugged straight into a SimulatedExchange.

A live adapter would serialise commands to a venue and parse its replies; in a backtest the venue
is an object in the same process, so the client only forwards each command and the exchange
answers synchronously through ``emit`` (inherited), before the command call returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node.execution.client import ExecutionClient

if TYPE_CHECKING:  # the exchange creates its client; importing it here would be circular
    from node.backtest.exchange import SimulatedExchange


class BacktestExecutionClient(ExecutionClient):
    """Forwards SubmitOrder/CancelOrder/CancelAllOrders to its SimulatedExchange."""

    def __init__(self, exchange: SimulatedExchange) -> None:
        super().__init__(str(exchange.venue), exchange.venue, exchange.account_id)
        self._exchange = exchange

    @property
    def exchange(self) -> SimulatedExchange:
        return self._exchange

    def submit_order(self, command) -> None:
        self._exchange.submit_order(command)

    def cancel_order(self, command) -> None:
        self._exchange.cancel_order(command)

    def cancel_all_orders(self, command) -> None:
        self._exchange.cancel_all_orders(command)
