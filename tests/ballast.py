"""A strategy that holds memory (as a node with a big cache does), for the crash-notice tests.

Loaded by a child as ``tests.ballast:Ballast``. On start it allocates ``ballast_mb`` MB and
writes every page, so the process owns them: the kernel's teardown of the process after a
SIGKILL then takes tens of ms (~0.15 ms per MB on the project's machine), a window in which the
orchestrator must already know of the death (``orchestrator.process.lifeline``).
"""

from __future__ import annotations

from node.trading.strategy import Strategy, StrategyConfig


class BallastConfig(StrategyConfig):
    def __init__(self, ballast_mb: int = 200, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ballast_mb = int(ballast_mb)


class Ballast(Strategy):
    def on_start(self) -> None:
        self.ballast = b"\x01" * (self.config.ballast_mb << 20)  # written: owned, not zero pages
