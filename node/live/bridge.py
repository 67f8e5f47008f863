"""Puts the kernel's engines behind the eight queues and drains each queue into its engine.

Rewiring. Engines talk to each other through bus endpoints (a strategy sends to
``RiskEngine.execute``, the risk engine to ``ExecEngine.execute``, and so on). In a live node each
of those endpoints is re-registered to *queue* the message instead of handling it at once, and one
task per queue hands the messages to the engine's real handler. The engines themselves are the
same objects as in a backtest; only the delivery changes:

=======================  ===================  =========================================
endpoint                 queue                handler
=======================  ===================  =========================================
DataEngine.execute       data_commands        DataEngine.execute (subscriptions)
DataEngine.request       data_requests        routed to the data client that serves it
(client responses)       data_responses       MessageBus.respond (requester's callback)
DataEngine.process       data                 venue hooks, then DataEngine.process
RiskEngine.execute       risk_commands        RiskEngine.execute (pre-trade checks)
RiskEngine.process       risk_events          trading-state changes
ExecEngine.execute       exec_commands        ExecutionEngine.execute (to the venue)
ExecEngine.process       exec_events          ExecutionEngine.process (order FSM, positions)
=======================  ===================  =========================================

Execution before market data (``settle``). Before a data item reaches a simulated venue, and again
before it reaches the DataEngine, the data task applies everything already queued on the
execution side (events first, then risk and execution commands), until none is left. So a
strategy never decides on a quote while a fill that happened before it still waits in a queue,
and an order sent before a quote reaches the venue before that quote does: the same causal order
as a backtest, which is what makes sandbox/backtest parity possible. (When one event triggers
several commands, their events may interleave differently from a backtest's depth-first order;
each order's own events stay in order.)

Errors. A handler that raises is logged and counted on its queue, and the node carries on (one
bad message must not stop trading). A :class:`NodeFatalError` (a never-drop queue overflowing)
is handed to ``on_fatal``, which stops the node.
"""

from __future__ import annotations

from collections.abc import Callable

from anyio.lowlevel import checkpoint

from node.data.client import DataRequest, DataResponse
from node.live.errors import NodeFatalError
from node.live.queues import EndOfQueue, KernelQueue, KernelQueues
from node.model.enums import TradingState

_SETTLE_LIMIT = 100_000  # items per settle call; more means a feedback loop, not a backlog


class KernelBridge:
    def __init__(
        self,
        kernel,
        queues: KernelQueues,
        on_fatal: Callable[[BaseException], None],
        data_clients: list,
    ) -> None:
        self._kernel = kernel
        self._queues = queues
        self._on_fatal = on_fatal
        self._log = kernel.logger.child("KernelBridge")
        self._data_clients = data_clients
        self.market_data_hooks: list[Callable[[object], None]] = []
        self.wait_room = None  # set by the node when streaming: async backpressure before each item
        self.error_count = 0
        self.last_error: tuple[str, BaseException] | None = None  # (queue name, exception)
        de, re, ee = kernel.data_engine, kernel.risk_engine, kernel.exec_engine
        bus = kernel.msgbus
        q = queues
        for endpoint, original, queue in (
            ("DataEngine.execute", de.execute, q.data_commands),
            ("DataEngine.process", de.process, q.data),
            ("RiskEngine.execute", re.execute, q.risk_commands),
            ("ExecEngine.execute", ee.execute, q.exec_commands),
            ("ExecEngine.process", ee.process, q.exec_events),
        ):
            bus.deregister(endpoint, original)
            bus.register(endpoint, queue.put_nowait)
        bus.register("DataEngine.request", q.data_requests.put_nowait)
        bus.register("RiskEngine.process", q.risk_events.put_nowait)
        self._handlers: dict[KernelQueue, Callable[[object], None]] = {
            q.data_commands: de.execute,
            q.data_requests: self._on_request,
            q.data_responses: self._on_response,
            q.data: self._on_data,
            q.risk_commands: re.execute,
            q.risk_events: self._on_risk_event,
            q.exec_commands: ee.execute,
            q.exec_events: ee.process,
        }
        # settle(): execution events first, then what turns into them.
        self._settle_order = (q.exec_events, q.risk_events, q.risk_commands, q.exec_commands)

    # -- one item -------------------------------------------------------------------------------

    def handle(self, queue: KernelQueue, item: object) -> None:
        try:
            self._handlers[queue](item)
        except NodeFatalError as exc:
            self._count_error(queue, exc)
            self._on_fatal(exc)
        except Exception as exc:
            self._count_error(queue, exc)
            self._log.exception(f"{queue.name}: handling {type(item).__name__} failed", exc)
        queue.processed += 1
        self._queues.notify_progress()

    def _count_error(self, queue: KernelQueue, exc: BaseException) -> None:
        queue.errors += 1
        self.error_count += 1
        self.last_error = (queue.name, exc)

    async def drain(self, queue: KernelQueue) -> None:
        """The task for one queue: hand each item to its handler until the queue is closed."""
        handle = self.handle
        while True:
            wait_room = self.wait_room
            if wait_room is not None:
                await wait_room()
            try:
                item = await queue.get()
            except EndOfQueue:
                return
            handle(queue, item)
            await checkpoint()  # let the other queues' tasks run between items

    def settle(self) -> int:
        """Apply everything queued on the execution side (see module docstring); return the count."""
        done = 0
        order = self._settle_order
        handle = self.handle
        while done < _SETTLE_LIMIT:
            for queue in order:
                if queue:
                    handle(queue, queue.get_nowait())
                    done += 1
                    break
            else:
                return done
        self._log.warning(f"settle stopped after {done} items: a feedback loop between strategy and venue?")
        return done

    def drain_all_nowait(self) -> int:
        """Apply every queued item synchronously (shutdown after the drain tasks were cancelled)."""
        done = 0
        while done < _SETTLE_LIMIT and not self._queues.is_idle():
            for queue in self._queues:
                while queue and done < _SETTLE_LIMIT:
                    self.handle(queue, queue.get_nowait())
                    done += 1
        return done

    # -- handlers -------------------------------------------------------------------------------

    def _on_data(self, item: object) -> None:
        hooks = self.market_data_hooks
        if hooks:
            self.settle()
            for hook in hooks:
                hook(item)
        self.settle()
        self._kernel.data_engine.process(item)

    def _on_request(self, request) -> None:
        payload = request.payload
        if isinstance(payload, DataRequest):
            for client in self._data_clients:
                if client.serves(payload):
                    client.request(request.correlation_id, payload)
                    return
            error = f"no data client serves {payload.kind.name} requests for {payload.key}"
        else:
            error = f"DataEngine.request expects a DataRequest payload, got {type(payload).__name__}"
        self._queues.data_responses.put_nowait(DataResponse(request.correlation_id, "", error=error))

    def _on_response(self, response: DataResponse) -> None:
        self._kernel.msgbus.respond(response.correlation_id, response)

    def _on_risk_event(self, event) -> None:
        if isinstance(event, TradingState):
            self._kernel.risk_engine.set_trading_state(event)
            return
        process = getattr(self._kernel.risk_engine, "process", None)
        if process is None:
            raise TypeError(f"the risk engine takes TradingState events here, got {type(event).__name__}")
        process(event)


__all__ = ["KernelBridge"]
