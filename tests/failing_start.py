"""A strategy whose start always fails at run time (say, its venue session is refused).

Loaded by a child as ``tests.failing_start:FailsToStart``: its config is valid, so the node is
built, and every start fails at the 'strategies' step: what restart intensity is for.
"""

from __future__ import annotations

from node.trading.strategy import Strategy, StrategyConfig

FailsToStartConfig = StrategyConfig


class FailsToStart(Strategy):
    def on_start(self) -> None:
        raise RuntimeError("the venue refused the session")
