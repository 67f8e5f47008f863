"""Backtest results: summary statistics computed from the equity curve and closed positions.

Definitions (so results can be compared with other engines):
- ``pnl``: final equity minus starting equity, in the account's currency.
- ``total_return``: ``pnl / starting equity``.
- ``sharpe``: mean / sample standard deviation of the period returns of the equity curve,
  annualised by ``sqrt(periods per 365-day year)``; 0.0 with fewer than two returns or no
  variance. The period is the equity sampling interval (``equity_sample_interval_s``).
- ``max_drawdown``: the largest fall from a running peak of equity, as a positive fraction.
- ``trades``: closed positions (round trips); ``win_rate``: the share with realized PnL > 0.
Equity is marked at the side a position would close against (bid for longs, ask for shorts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from node.model.timestamps import NANOS_PER_SECOND

NANOS_PER_YEAR = 365 * 86_400 * NANOS_PER_SECOND


def sharpe_ratio(equity: list[float], interval_ns: int) -> float:
    returns = [b / a - 1.0 for a, b in zip(equity, equity[1:], strict=False) if a != 0]
    if len(returns) < 2:
        return 0.0
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if var <= 0.0:
        return 0.0
    return mean / math.sqrt(var) * math.sqrt(NANOS_PER_YEAR / interval_ns)


def max_drawdown(equity: list[float]) -> float:
    peak = -math.inf
    worst = 0.0
    for value in equity:
        if value > peak:
            peak = value
        elif peak > 0:
            worst = max(worst, (peak - value) / peak)
    return worst


def compute_stats(
    equity_curve: list[tuple[int, float]],
    starting_equity: float,
    closed_realized_pnls: list[float],
    interval_ns: int,
) -> dict:
    values = [starting_equity] + [e for _, e in equity_curve]
    final = values[-1]
    pnl = final - starting_equity
    trades = len(closed_realized_pnls)
    winners = sum(1 for p in closed_realized_pnls if p > 0)
    return {
        "total_return": pnl / starting_equity if starting_equity else 0.0,
        "pnl": round(pnl, 10),
        "sharpe": sharpe_ratio(values, interval_ns),
        "max_drawdown": max_drawdown(values),
        "trades": trades,
        "win_rate": winners / trades if trades else 0.0,
    }


@dataclass
class BacktestResult:
    """Everything a run produced. ``to_dict`` is the CLI's ``--json`` object."""

    run_id: str
    currency: str
    starting_equity: float
    stats: dict
    orders: list = field(default_factory=list)
    fills: list = field(default_factory=list)
    positions: list = field(default_factory=list)
    events: list = field(default_factory=list)
    equity_curve: list = field(default_factory=list)
    data_count: int = 0
    elapsed_s: float = 0.0

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "currency": self.currency,
            "starting_equity": self.starting_equity,
            "stats": dict(self.stats),
            "orders": self.orders,
            "fills": self.fills,
            "positions": self.positions,
            "events": self.events,
            "equity_curve": [[ts, value] for ts, value in self.equity_curve],
            "data_count": self.data_count,
            "elapsed_s": self.elapsed_s,
        }

    def deterministic_dict(self) -> dict:
        """Everything except wall-clock timing: equal for two runs of the same input."""
        d = self.to_dict()
        d.pop("elapsed_s")
        return d

    def summary(self) -> str:
        s = self.stats
        lines = [
            f"run {self.run_id}: {self.data_count:,} data points in {self.elapsed_s:.3f}s",
            f"  total return {s['total_return']:+.4%}   pnl {s['pnl']:+,.2f} {self.currency}",
            f"  sharpe {s['sharpe']:.3f}   max drawdown {s['max_drawdown']:.4%}",
            f"  trades {s['trades']}   win rate {s['win_rate']:.2%}   orders {len(self.orders)}   fills {len(self.fills)}",
        ]
        return "\n".join(lines)
