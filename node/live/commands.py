"""Host commands: what the outside (the orchestrator, a CLI, a test) may ask a running node to do.

The kernel is single-threaded, so a command is never executed by the caller: :meth:`CommandInbox.put`
only records it (thread-safe, in arrival order) and returns a ``concurrent.futures.Future``; the
node's inbox task executes the commands one by one on the kernel loop and resolves each future
with the result or the exception. Arrival order is the order of ``put`` calls, across all threads
(a ``deque.append`` is atomic), so two commands sent one after the other run in that order.

Commands are small dataclasses; :func:`parse_command` also accepts the plain-dict form a wire
protocol would carry, e.g. ``{"kind": "stop_strategy", "strategy_id": "EMACross-000"}``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

import anyio
from anyio.lowlevel import checkpoint

from node.common.component import ComponentState
from node.live.errors import CommandRejected, InvalidCommand, NodeFatalError
from node.model.enums import TradingState


@dataclass(frozen=True, slots=True)
class StopNode:
    """Stop the node (then the host disposes it)."""

    reason: str = "host command"


@dataclass(frozen=True, slots=True)
class StartStrategy:
    """Start a READY strategy, or resume a STOPPED one."""

    strategy_id: str


@dataclass(frozen=True, slots=True)
class StopStrategy:
    strategy_id: str


@dataclass(frozen=True, slots=True)
class StrategyCommand:
    """A custom command for one strategy: its ``on_command(name, payload)`` runs on the kernel loop."""

    strategy_id: str
    name: str
    payload: Any = None


@dataclass(frozen=True, slots=True)
class SetTradingState:
    """ACTIVE, REDUCING or HALTED; routed through the risk engine's event queue."""

    state: str


COMMAND_KINDS: Mapping[str, type] = MappingProxyType(
    {
        "stop_node": StopNode,
        "start_strategy": StartStrategy,
        "stop_strategy": StopStrategy,
        "strategy": StrategyCommand,
        "set_trading_state": SetTradingState,
    }
)
_COMMAND_TYPES = tuple(COMMAND_KINDS.values())


def parse_command(command: Any) -> Any:
    """A command instance, or a dict ``{"kind": ..., <fields>}``; anything else is InvalidCommand."""
    if isinstance(command, _COMMAND_TYPES):
        return command
    if not isinstance(command, Mapping):
        raise InvalidCommand(
            f"a command must be one of {', '.join(t.__name__ for t in _COMMAND_TYPES)} or a dict with "
            f"a 'kind', got {type(command).__name__}"
        )
    kind = command.get("kind")
    cls = COMMAND_KINDS.get(kind)
    if cls is None:
        raise InvalidCommand(f"unknown command kind {kind!r}; use one of {', '.join(COMMAND_KINDS)}")
    names = {f.name for f in fields(cls)}
    extra = sorted(set(command) - names - {"kind"})
    if extra:
        raise InvalidCommand(f"command '{kind}' has unknown field(s) {extra}; its fields: {sorted(names)}")
    try:
        return cls(**{k: v for k, v in command.items() if k != "kind"})
    except TypeError as exc:
        raise InvalidCommand(f"command '{kind}': {exc}") from None


class CommandInbox:
    """Thread-safe arrival-ordered inbox, executed by one task on the kernel loop.

    ``wake_from_thread`` is set by the node while its loop runs: a callable that schedules
    :meth:`wake` on the loop from a foreign thread without blocking (``loop_backend.thread_waker``).
    """

    def __init__(self) -> None:
        self._items: deque[tuple[Any, Future]] = deque()
        self._lock = threading.Lock()  # guards open/closed against a racing put
        self._open = False
        self._loop_thread: int | None = None
        self._wake_event: anyio.Event | None = None
        self.wake_from_thread: Callable[[Callable[[], None]], object] | None = None
        self.on_fatal: Callable[[BaseException], None] | None = None
        self.executed = 0
        self.failed = 0

    def open(self, loop_thread: int) -> None:
        with self._lock:
            self._open = True
            self._loop_thread = loop_thread

    def put(self, command: Any) -> Future:
        """Record ``command`` (parsed now, so a malformed one fails in the caller) and wake the loop."""
        command = parse_command(command)
        future: Future = Future()
        with self._lock:
            if not self._open:
                future.set_exception(
                    CommandRejected("the node is not running; commands are accepted while it runs")
                )
                return future
            self._items.append((command, future))
            on_loop = threading.get_ident() == self._loop_thread
        if on_loop:
            self.wake()
        else:
            try:
                self.wake_from_thread(self.wake)
            except Exception:  # the loop is shutting down; close() rejects what is left
                pass
        return future

    def wake(self) -> None:
        event = self._wake_event
        if event is not None:
            self._wake_event = None
            event.set()

    async def run(self, execute: Callable[[Any], Any]) -> None:
        """Execute commands in arrival order until cancelled."""
        items = self._items
        while True:
            while items:
                command, future = items.popleft()
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result = execute(command)
                except Exception as exc:  # the caller gets it; a fatal one is also the node's business
                    self.failed += 1
                    future.set_exception(exc)
                    if isinstance(exc, NodeFatalError) and self.on_fatal is not None:
                        self.on_fatal(exc)
                else:
                    self.executed += 1
                    future.set_result(result)
                await checkpoint()
            self._wake_event = anyio.Event()
            if items:  # a put raced with the reset above
                continue
            await self._wake_event.wait()

    def close(self) -> None:
        """Stop accepting; reject whatever was never executed."""
        with self._lock:
            self._open = False
            left = list(self._items)
            self._items.clear()
        for command, future in left:
            if future.set_running_or_notify_cancel():
                future.set_exception(
                    CommandRejected(f"{type(command).__name__} was not executed: the node stopped first")
                )


class CommandExecutor:
    """Carries out one parsed command on the kernel loop; returns a result or raises CommandRejected.

    ========================  ===============================================  ==================
    command                   effect                                           result
    ========================  ===============================================  ==================
    StopNode                  the node stops (then the host disposes it)       node state
    SetTradingState           queued on the risk engine's event queue          the state's name
    StartStrategy             READY -> start(); STOPPED/DEGRADED -> resume()   strategy state
    StopStrategy              stop() if running or degraded                    strategy state
    StrategyCommand           ``strategy.on_command(name, payload)``           what the hook returns
    ========================  ===============================================  ==================

    The strategy commands need a RUNNING node.
    """

    def __init__(
        self, kernel, queues, request_stop: Callable[[str], None], node_state: Callable[[], str]
    ) -> None:
        self._kernel = kernel
        self._queues = queues
        self._request_stop = request_stop
        self._node_state = node_state

    def execute(self, command: Any) -> Any:
        if isinstance(command, StopNode):
            state = self._node_state()
            self._request_stop(command.reason)
            return state
        if isinstance(command, SetTradingState):
            try:
                state = TradingState[command.state.upper()]
            except (KeyError, AttributeError):
                raise CommandRejected(
                    f"unknown trading state {command.state!r}; use ACTIVE, REDUCING or HALTED"
                ) from None
            self._queues.risk_events.put_nowait(state)
            return state.name
        if self._node_state() != "RUNNING":
            raise CommandRejected(
                f"{type(command).__name__} needs a RUNNING node; it is {self._node_state()}"
            )
        strategy = self._strategy(command.strategy_id)
        if isinstance(command, StartStrategy):
            if strategy.state is ComponentState.READY:
                strategy.start()
            elif strategy.state in (ComponentState.STOPPED, ComponentState.DEGRADED):
                strategy.resume()
            elif strategy.state is not ComponentState.RUNNING:
                raise CommandRejected(
                    f"strategy {strategy.id} is {strategy.state.name} and cannot be started"
                )
            return strategy.state.name
        if isinstance(command, StopStrategy):
            if strategy.is_running or strategy.is_degraded:
                strategy.stop()
            return strategy.state.name
        if isinstance(command, StrategyCommand):
            hook = getattr(strategy, "on_command", None)
            if hook is None:
                raise CommandRejected(f"strategy {strategy.id} has no on_command(name, payload) hook")
            return hook(command.name, command.payload)
        raise CommandRejected(f"unsupported command {type(command).__name__}")

    def _strategy(self, strategy_id: str):
        for strategy in self._kernel.strategies:
            if strategy.id == strategy_id:
                return strategy
        known = ", ".join(s.id for s in self._kernel.strategies) or "none"
        raise CommandRejected(f"no strategy '{strategy_id}' on this node (strategies: {known})")


__all__ = [
    "COMMAND_KINDS",
    "CommandExecutor",
    "CommandInbox",
    "SetTradingState",
    "StartStrategy",
    "StopNode",
    "StopStrategy",
    "StrategyCommand",
    "parse_command",
]
