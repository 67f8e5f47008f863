"""The ``orchestrator`` command line: one sub-command per job (DESIGN §4)."""

from __future__ import annotations

import argparse
import sys

from orchestrator import __version__, exit_codes
from orchestrator.commands import backtest, down, events, logs, nodes, status, sweep, up, validate

DESCRIPTION = """\
Run trading nodes: a fleet of isolated live/sandbox nodes, one process each, supervised
and relayed over ZeroMQ; single backtests; and parameter sweeps of backtests in parallel
worker processes. Every sub-command has --help with an example.

examples:
  orchestrator up configs/example.toml
  orchestrator backtest configs/backtest_ema_cross.toml
  orchestrator sweep configs/sweep_example.toml --out /tmp/ema-sweep
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default is exit 2 too; keep the hint
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}\n(see '{self.prog} --help')", file=sys.stderr)
        sys.exit(exit_codes.BAD_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="orchestrator", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    backtest.add_parser(sub)
    sweep.add_parser(sub)
    up.add_parser(sub)
    status.add_parser(sub)
    nodes.add_parser(sub)
    events.add_parser(sub)
    logs.add_parser(sub)
    down.add_parser(sub)
    validate.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return exit_codes.BAD_USAGE
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
