"""``orchestrator up CONFIG``: run a fleet of nodes in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from orchestrator import exit_codes

HELP = "start every node of a fleet config and supervise them (foreground)"
DESCRIPTION = """\
Start the orchestrator in the foreground: one child process per node (from warm spares),
events relayed over ZeroMQ, crashes and hangs detected and answered by the node's restart
policy. Prints one line per node state change. Ctrl-C or SIGTERM stops every node
gracefully (stop -> stop_timeout_s -> SIGTERM -> SIGKILL) and exits 0 only if every node
stopped cleanly.

example:
  orchestrator up configs/example.toml

exit status: 0 every node stopped cleanly, 1 a node did not, 2 invalid config or usage.
"""


def add_parser(subparsers) -> None:
    import argparse

    p = subparsers.add_parser(
        "up", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("config", help="path to the fleet TOML file")
    p.set_defaults(func=run)


def run(args) -> int:
    from node.backtest.config import ConfigError
    from orchestrator.configfile import ConfigFileError
    from orchestrator.fleet.loader import load_fleet

    path = Path(args.config)
    try:
        config = load_fleet(path)
    except ConfigFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_USAGE
    except ConfigError as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return exit_codes.BAD_USAGE
    import trio

    clean = trio.run(_serve, config)
    return exit_codes.OK if clean else exit_codes.JOB_FAILED


async def _serve(config) -> bool:
    import trio

    from orchestrator.fleet.orchestrator import Orchestrator
    from orchestrator.fleet.subscriber import EventSubscriber

    orch = Orchestrator(config)
    print(f"orchestrator: runtime dir {orch.runtime_dir}; events at {orch.event_endpoint}", flush=True)
    # A SUB may connect before the PUB binds: zmq retries, so no state change is missed.
    states = EventSubscriber(orch.event_endpoint, nodes=[])

    async def print_states() -> None:
        shown = ("pid", "incarnation", "reason", "cold")
        async for item in states:
            e = item.message
            extra = "".join(f" {k}={e[k]}" for k in shown if e.get(k) not in (None, False))
            print(f"{e['node']}: {e['state']}{extra}", flush=True)

    async def on_signals() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                print(f"orchestrator: {signal.Signals(signum).name}: stopping every node", flush=True)
                orch.shutdown()
                return

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(print_states)
            nursery.start_soon(on_signals)
            clean = await orch.run()
            nursery.cancel_scope.cancel()
    finally:
        await states.aclose()
    print(f"orchestrator: stopped ({'clean' if clean else 'NOT clean'})", flush=True)
    return clean
