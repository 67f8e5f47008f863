"""The child's command line: ``--slot SLOT --endpoint ENDPOINT`` and its timing knobs.

The parent builds this command line; a person only types it when debugging (with
``ORCHESTRATOR_PARENT_PID`` set to the pid of the process that binds the ROUTER). A bad command
line exits 2 (argparse's usage exit, which is also ``ChildExit.CONFIG``: the child cannot run as
asked and restarting it will not help).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.child.heartbeat import InvalidInterval, check_interval
from orchestrator.child.logfile import DEFAULT_BACKUPS, DEFAULT_MAX_BYTES
from orchestrator.child.outbox import DEFAULT_MAX_UNACKED

DEFAULT_HEARTBEAT_INTERVAL_S = 0.05
DEFAULT_PARENT_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class ChildOptions:
    slot: str
    endpoint: str
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S
    parent_timeout_s: float = DEFAULT_PARENT_TIMEOUT_S
    max_unacked: int = DEFAULT_MAX_UNACKED
    log_dir: str | None = None  # on assign, stdout/stderr move to <log_dir>/<node>.log
    log_max_bytes: int = DEFAULT_MAX_BYTES
    log_backups: int = DEFAULT_BACKUPS
    rehearse: bool = False  # run a throwaway node before hello (``rehearsal``): for spares
    prepare: str | None = None  # a ``prepare`` message file: build its nodes before hello (``prepared``)
    lifeline: str | None = None  # a lifeline file to hold for life (``orchestrator.process.lifeline``)


def _seconds(text: str) -> float:
    try:
        return check_interval("value", float(text))
    except (ValueError, InvalidInterval):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.child",
        description="One trading node's process: connects to the orchestrator, waits as a warm spare "
        "for an assign, then runs the node.",
    )
    parser.add_argument("--slot", required=True, help="slot id; the DEALER's zmq identity")
    parser.add_argument("--endpoint", required=True, help="the parent's node ROUTER (ipc://... or tcp://...)")
    parser.add_argument(
        "--heartbeat-interval",
        type=_seconds,
        default=DEFAULT_HEARTBEAT_INTERVAL_S,
        metavar="S",
        help=f"send hb at most every S seconds, from the node's loop (default {DEFAULT_HEARTBEAT_INTERVAL_S})",
    )
    parser.add_argument(
        "--parent-timeout",
        type=_seconds,
        default=DEFAULT_PARENT_TIMEOUT_S,
        metavar="S",
        help=f"exit PARENT_LOST (4) after S seconds without a parent hb (default {DEFAULT_PARENT_TIMEOUT_S})",
    )
    parser.add_argument(
        "--max-unacked",
        type=_positive_int,
        default=DEFAULT_MAX_UNACKED,
        metavar="N",
        help=f"events kept until acked; when full the node is slowed, never dropped (default {DEFAULT_MAX_UNACKED})",
    )
    parser.add_argument(
        "--log-dir",
        metavar="DIR",
        help="on assign, send stdout/stderr to DIR/<node>.log (default: keep the slot's output)",
    )
    parser.add_argument(
        "--log-max-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"rotate the node's log at N bytes (default {DEFAULT_MAX_BYTES})",
    )
    parser.add_argument(
        "--log-backups",
        type=int,
        default=DEFAULT_BACKUPS,
        metavar="N",
        help=f"rotated files kept (default {DEFAULT_BACKUPS})",
    )
    parser.add_argument(
        "--rehearse",
        action="store_true",
        help="before hello, run a throwaway sandbox node through a trade and a recovery, so that the "
        "assigned node starts faster (~60 ms more before hello; the parent asks it of warm spares)",
    )
    parser.add_argument(
        "--prepare",
        metavar="FILE",
        help="before hello, build ahead each node of FILE (a msgpack 'prepare' message: node id -> "
        "assign.config); an assign with one of those configs then starts faster (the parent writes "
        "FILE in its runtime dir and passes it to warm spares)",
    )
    parser.add_argument(
        "--lifeline",
        metavar="FILE",
        help="hold the robust mutex in FILE for the process's life, released only on a deliberate "
        "exit: the parent then sees a crash as it begins, not when the kernel has torn the process "
        "down (the parent creates FILE in its runtime dir)",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> ChildOptions:
    """Parse ``argv`` (default ``sys.argv[1:]``); exits 2 with a usage message on error."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    if not ns.slot:
        parser.error("--slot must not be empty")
    return ChildOptions(
        slot=ns.slot,
        endpoint=ns.endpoint,
        heartbeat_interval_s=ns.heartbeat_interval,
        parent_timeout_s=ns.parent_timeout,
        max_unacked=ns.max_unacked,
        log_dir=ns.log_dir,
        log_max_bytes=ns.log_max_bytes,
        log_backups=max(0, ns.log_backups),
        rehearse=ns.rehearse,
        prepare=ns.prepare,
        lifeline=ns.lifeline,
    )


__all__ = ["ChildOptions", "build_parser", "parse_args"]
