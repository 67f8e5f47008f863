"""``python -m node.live CONFIG [--duration SECONDS]``: run one node in the foreground.

Prints the node's lifecycle milestones and its order/position events to stdout, one line each
(flushed at once, so a supervisor reading the pipe sees them as they happen); the node's own log
goes to stderr. Ctrl-C, SIGTERM or the end of ``--duration`` stop and dispose the node cleanly.

Exit status: 0 after a clean stop and dispose; 1 if the node failed (start-up step, fatal error);
2 for bad usage or an invalid config (the message names the file, the key and the reason).
"""

from __future__ import annotations

import argparse
import sys

from node.backtest.config import ConfigError
from node.live.config import load_node_config_file
from node.live.errors import LiveNodeError, NodeFatalError, StartupError
from node.live.node import NODE_TOPIC, TradingNode
from node.live.recovery import StateRestoreError
from node.persistence.store.errors import StateStoreError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _say(text: str) -> None:
    print(text, flush=True)


def describe(msg: dict) -> str | None:
    """One line for a streamed message, or None for those the CLI does not show."""
    topic, kind, data = msg["topic"], msg["type"], msg["data"]
    if topic == NODE_TOPIC:
        reason = data.get("reason")
        return f"node {data['state']}{f' ({reason})' if reason else ''}"
    if topic.startswith("events.order."):
        text = f"order {kind} {data.get('client_order_id')}"
        if kind == "OrderFilled":
            text += f" {data['order_side']} {data['last_qty']} @ {data['last_px']} ({data['position_id']})"
        elif data.get("reason"):
            text += f" reason={data['reason']}"
        return text
    if topic.startswith("events.position."):
        return (
            f"position {kind} {data['position_id']} {data['side']} {data['quantity']} "
            f"realized={data['realized_pnl']} unrealized={data['unrealized_pnl']}"
        )
    return None


def _print_event(msg: dict) -> None:
    line = describe(msg)
    if line is not None:
        _say(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.live", description="Run one trading node.")
    parser.add_argument("config", help="node config (TOML), e.g. configs/sandbox.toml")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    if args.duration is not None and not args.duration > 0:
        parser.error(f"--duration must be a positive number of seconds, got {args.duration}")
    try:
        config = load_node_config_file(args.config)
    except ConfigError as exc:
        print(f"error: {args.config}: {exc.key}: {exc.reason}", file=sys.stderr)
        return EXIT_USAGE
    node = TradingNode(config, stream_sink=_print_event)
    try:
        node.build()
    except (ConfigError, LiveNodeError) as exc:
        print(f"error: {args.config}: cannot build the node: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StateStoreError, StateRestoreError) as exc:  # corrupt, locked, unusable: not retried
        print(f"error: {args.config}: the node's state store cannot be used: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _say(f"node {node.state.value} ({node.node_id}, {config.environment.value})")
    status = EXIT_OK
    try:
        node.run(duration=args.duration)
    except (StartupError, NodeFatalError) as exc:
        print(f"error: {node.node_id}: {exc}", file=sys.stderr)
        status = EXIT_FAILED
    except KeyboardInterrupt:  # Ctrl-C before the node's own signal handling was installed
        _say("interrupted")
    finally:
        node.dispose()
        _say(f"node {node.state.value} ({node.loop_report()})")
    for problem in node.shutdown_problems:
        print(f"warning: {problem}", file=sys.stderr)
    return status


__all__ = ["describe", "main"]
