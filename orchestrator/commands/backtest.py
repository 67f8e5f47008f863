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

exit status: 0 ok, 1 the backtest failed while running, 2 invalid config or usage (also a bad
value found only once the run starts: a trade_size the instrument's size precision cannot
hold, negative starting balances, a data path that is a directory), 130 interrupted (Ctrl-C).
A closed stdout (| head) stops the output, not the exit status: nothing more is printed.
"""
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process that Ctrl-C killed


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("backtest", help=HELP, description=DESCRIPTION, formatter_class=_raw())
    p.add_argument("config", help="path to the backtest TOML file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(func=run)


def _raw():
    import argparse

    return argparse.RawDescriptionHelpFormatter


def run(args) -> int:
    """Ctrl-C anywhere (loading data, mid-run) is one line and exit 130, not a traceback."""
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


def _run(args) -> int:
    from node.backtest.config import BacktestRunConfig
    from node.backtest.node import BacktestNode
    from orchestrator.commands.closed_output import GuardedStdout
    from orchestrator.sweep.config_faults import HeldTracebacks, as_config_error

    path = Path(args.config)
    config = load_or_report(path, lambda p: BacktestRunConfig.from_dict(read_toml(p), base_dir=p.parent))
    if config is None:
        return exit_codes.BAD_USAGE
    sink = HeldTracebacks(_stderr_line)
    try:
        result = BacktestNode([config], log_sink=sink).run_one(config)
    except Exception as exc:
        bad = as_config_error(exc, config)
        if bad is not None:  # a bad value only the running node could see: config, exit 2
            sink.drop()
            print(f"error: {path}: {bad}", file=sys.stderr)
            return exit_codes.BAD_USAGE
        sink.release()  # the job failed: say why, exit 1
        print(f"error: backtest {config.run_id} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exit_codes.JOB_FAILED
    sink.release()
    out = GuardedStdout()
    if args.json:
        out.print(json.dumps(result.to_dict(), separators=(",", ":")))
    else:
        out.print(result.summary())
    return exit_codes.OK


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr)
