"""The statistics a sweep records and ranks by, and which way is better for each.

Why a fixed list here rather than whatever a result happens to hold: the results store has
one column per statistic, and a column set that changed from run to run would make two rows
incomparable. ``tests/test_sweep_plan.py`` checks this list against what the backtest
computes, so a new statistic there fails a test instead of silently going missing.
"""

from __future__ import annotations

STAT_NAMES: tuple[str, ...] = ("total_return", "pnl", "sharpe", "max_drawdown", "trades", "win_rate")
DEFAULT_METRIC = "sharpe"
# Lower is better for these; every other statistic ranks descending.
ASCENDING: frozenset[str] = frozenset({"max_drawdown"})


class UnknownMetricError(ValueError):
    """A ranking metric that is not one of STAT_NAMES."""


def check_metric(name: str) -> str:
    if name not in STAT_NAMES:
        raise UnknownMetricError(f"unknown metric {name!r}; choose one of {', '.join(STAT_NAMES)}")
    return name


def better_first(metric: str) -> bool:
    """True when larger values rank first (everything except drawdown)."""
    return metric not in ASCENDING
