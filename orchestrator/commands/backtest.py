"""``orchestrator backtest CONFIG``: run one backtest from a TOML file and report it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from orchestrator import exit_codes
from orchestrator.configfile import load_or_report, read_toml

HELP = "run one backtest from a TOML config and print its results"
DESCRIPTION = """\
Run one backtest in this process from a TOML config: venues, instruments, data (CSV,
Parquet or a seeded generator) and strategies given by import path. Prints a summary, or
with --json a single JSON object with stats (total_return, pnl, sharpe, max_drawdown,
trades, win_rate), orders, fills, positions, events, equity_curve and elapsed_s.

example:
  orchestrator backtest configs/backtest_ema_cross.toml
  orchestrator backtest configs/backtest_mean_reversion.toml --json | jq .stats

exit status: 0 ok, 1 the backtest failed while running, 2 invalid config or usage.
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("backtest", help=HELP, description=DESCRIPTION, formatter_class=_raw())
    p.add_argument("config", help="path to the backtest TOML file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(func=run)


def _raw():
    import argparse

    return argparse.RawDescriptionHelpFormatter


def run(args) -> int:
    from node.backtest.config import BacktestRunConfig
    from node.backtest.node import BacktestNode

    path = Path(args.config)
    config = load_or_report(path, lambda p: BacktestRunConfig.from_dict(read_toml(p), base_dir=p.parent))
    if config is None:
        return exit_codes.BAD_USAGE
    try:
        result = BacktestNode([config], log_sink=_stderr_line).run_one(config)
    except Exception as exc:  # the job failed: say why, exit 1
        print(f"error: backtest {config.run_id} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exit_codes.JOB_FAILED
    if args.json:
        json.dump(result.to_dict(), sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    else:
        print(result.summary())
    return exit_codes.OK


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr)
