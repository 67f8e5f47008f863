"""The Kernel: builds and wires one trader's components for an environment.

It owns exactly one clock, logger, MessageBus, Cache, Portfolio and the Data, Risk and
Execution engines; nothing is shared with another kernel in the same process. Actors and
strategies are registered into it, and its ``start``/``stop``/``reset``/``dispose`` drive
every component in a fixed order (engines before strategies on start, after on stop).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from node.cache.cache import Cache
from node.common.component import ComponentState
from node.common.logging import Logger, LogLevel, parse_level
from node.data.engine import DataEngine
from node.execution.engine import ExecutionEngine
from node.model.enums import OmsType
from node.model.identifiers import TraderId
from node.msgbus.bus import MessageBus
from node.portfolio.portfolio import Portfolio
from node.risk.engine import RiskConfig, RiskEngine

_DISPOSABLE = (ComponentState.READY, ComponentState.STOPPED)


class Environment(Enum):
    BACKTEST = "backtest"
    SANDBOX = "sandbox"
    LIVE = "live"


class KernelError(Exception):
    """Misuse of the kernel (e.g. two strategies with one id)."""


@dataclass
class KernelConfig:
    trader_id: str = "TRADER-001"
    log_level: str | int = "WARNING"
    risk: RiskConfig = field(default_factory=RiskConfig)
    oms_type: OmsType = OmsType.NETTING
    bar_capacity: int = 10_000


class Kernel:
    def __init__(
        self,
        environment: Environment,
        clock,
        config: KernelConfig | None = None,
        log_sink=None,
        msgbus_factory=MessageBus,
    ) -> None:
        """``msgbus_factory(trader_id, clock)`` makes the bus; a live node passes a subclass that
        also hands selected publishes to its external stream (every engine must share that bus)."""
        self.environment = Environment(environment)
        self.config = config or KernelConfig()
        self.trader_id = TraderId(self.config.trader_id)
        self.clock = clock
        self.logger = Logger(
            self.trader_id.value, parse_level(self.config.log_level), sink=log_sink, clock=clock
        )
        self.msgbus = msgbus_factory(self.trader_id.value, clock)
        self.cache = Cache(bar_capacity=self.config.bar_capacity)
        self.portfolio = Portfolio(self.msgbus, self.cache, clock, self.logger)
        self.data_engine = DataEngine(self.msgbus, self.cache, clock, self.logger)
        self.risk_engine = RiskEngine(self.msgbus, self.cache, clock, self.logger, self.config.risk)
        self.exec_engine = ExecutionEngine(
            self.msgbus, self.cache, clock, self.logger, default_oms_type=self.config.oms_type
        )
        self.actors: list = []
        self.strategies: list = []
        self._log = self.logger.child("Kernel")

    @property
    def engines(self) -> tuple:
        return (self.data_engine, self.risk_engine, self.exec_engine, self.portfolio)

    def add_actor(self, actor) -> None:
        self._check_unique(actor.id)
        actor.register(self.trader_id, self.msgbus, self.cache, self.clock, self.logger, self.portfolio)
        self.actors.append(actor)

    def add_strategy(self, strategy) -> None:
        self._check_unique(strategy.id)
        strategy.register(self.trader_id, self.msgbus, self.cache, self.clock, self.logger, self.portfolio)
        self.strategies.append(strategy)

    def _check_unique(self, component_id: str) -> None:
        if any(c.id == component_id for c in self.actors + self.strategies):
            raise KernelError(
                f"a component with id '{component_id}' is already registered; give each strategy a distinct order_id_tag"
            )

    @property
    def components(self) -> list:
        return [*self.actors, *self.strategies]

    def start(self) -> None:
        self.start_engines()
        self.start_components()

    def start_engines(self) -> None:
        """Engines first: clients connect and accounts can report before any strategy runs."""
        for engine in self.engines:
            engine.start()

    def start_components(self) -> None:
        for component in self.components:
            component.start()
        self._log.info("kernel started")

    def stop(self) -> None:
        for component in self.components:
            if component.is_running or component.is_degraded:
                component.stop()
        for engine in reversed(self.engines):
            if engine.is_running:
                engine.stop()
        self._log.info("kernel stopped")

    def reset(self) -> None:
        """Back to READY with an empty cache, keeping registrations (between backtest runs)."""
        for component in self.components:
            if component.is_stopped:
                component.reset()
        for engine in self.engines:
            if engine.is_stopped:
                engine.reset()
        self.cache.reset()

    def dispose(self) -> None:
        self.stop()
        for component in [*self.components, *self.engines]:
            if component.state in _DISPOSABLE:
                component.dispose()
        self.clock.cancel_timers()
        self.cache.dispose()
        self.actors.clear()
        self.strategies.clear()


__all__ = ["Environment", "Kernel", "KernelConfig", "KernelError", "LogLevel"]
