"""A strategy whose stop takes a while (say, a slow flatten), for the orchestrator's stop tests.

Loaded by a child as ``tests.slow_stop:SlowStop``. Its ``on_stop`` blocks the kernel loop for
``stop_delay_s``: while it does, the node sends no heartbeat, which is what a long stop looks like
from the orchestrator.
"""

from __future__ import annotations

import time

from node.trading.strategy import Strategy, StrategyConfig


class SlowStopConfig(StrategyConfig):
    def __init__(self, stop_delay_s: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stop_delay_s = float(stop_delay_s)


class SlowStop(Strategy):
    def on_stop(self) -> None:
        time.sleep(self.config.stop_delay_s)  # the slow work itself, not a wait for an event
