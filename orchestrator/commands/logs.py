"""``orchestrator logs NODE``: a node's log file from the fleet's logs dir (tail, or follow)."""

from __future__ import annotations

import os
import select
import sys
from pathlib import Path

from orchestrator import exit_codes
from orchestrator.commands.closed_output import point_at_devnull
from orchestrator.control.cli_support import (
    UsageError,
    add_target_args,
    raw_formatter,
    runtime_dir,
    state_dir,
)

HELP = "print a node's log (its stdout/stderr and logger), --follow to keep printing"
DESCRIPTION = """\
Print the last lines of NODE's log, <state dir>/logs/<node>.log (reached as <runtime
dir>/logs/<node>.log while the runtime dir lasts): everything the node's process wrote (its
logger, prints, tracebacks) since the node was assigned, across restarts. Files are rotated by
size (<node>.log.1 is the newest backup). Reading works after the orchestrator has stopped too,
after a reboot included (--config FILE finds a fleet's own state_dir); --follow needs it
running and ends when it exits.

example:
  orchestrator logs ema-eurusd --lines 100
  orchestrator logs ema-eurusd --follow

exit status: 0 ok, 1 no such log (or, with --follow, no running orchestrator), 2 usage.
"""

FOLLOW_CHECK_S = 0.25  # how often --follow looks for new data (as `tail -f` does without inotify)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("logs", help=HELP, description=DESCRIPTION, formatter_class=raw_formatter())
    p.add_argument("node", metavar="NODE", help="the node id")
    p.add_argument("--lines", "-n", type=_count, default=50, metavar="N", help="last N lines (default 50)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing what the node writes")
    add_target_args(p)
    p.set_defaults(func=run)


def _count(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of lines >= 0, got {text!r}")
    return value


def run(args) -> int:
    from orchestrator.child.logfile import node_log_name

    try:
        rdir = runtime_dir(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_USAGE
    try:
        log_dir = _log_dir(args, rdir)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_USAGE
    path = log_dir / node_log_name(args.node)
    if not path.is_file():
        logs = sorted(p.name[:-4] for p in log_dir.glob("*.log")) if log_dir.is_dir() else []
        known = ", ".join(logs) or "none"
        print(f"error: no log for node {args.node!r} in {log_dir} (logs there: {known})", file=sys.stderr)
        return exit_codes.JOB_FAILED
    try:
        with open(path, "rb") as fh:
            sys.stdout.buffer.write(_tail(fh, args.lines))
            sys.stdout.flush()
            if not args.follow:
                return exit_codes.OK
            return _follow(rdir, path, fh)
    except BrokenPipeError:  # `orchestrator logs NODE | head`: the reader has had enough
        point_at_devnull()
        return exit_codes.OK


def _log_dir(args, rdir: Path) -> Path:
    """``<runtime dir>/logs`` (a link into the state dir) while it lasts; else the state dir's
    ``logs`` (the runtime dir lost to a reboot or a logout): the fleet file's, or the default."""
    if (rdir / "logs").is_dir():
        return rdir / "logs"
    return state_dir(args) / "logs"


def _tail(fh, lines: int) -> bytes:
    """The last ``lines`` lines of ``fh``, leaving it positioned at the end."""
    end = fh.seek(0, os.SEEK_END)
    if lines == 0:
        return b""
    block, data, pos = 65536, b"", end
    while pos > 0 and data.count(b"\n") <= lines:
        step = min(block, pos)
        pos -= step
        fh.seek(pos)
        data = fh.read(step) + data
    fh.seek(end)
    return b"\n".join(data.split(b"\n")[-lines - 1 :]) if data.count(b"\n") > lines else data


def _follow(rdir: Path, path: Path, fh) -> int:
    from orchestrator.control.client import ControlClient, NotRunning

    try:
        with ControlClient(rdir) as client:
            pid = client.ping()["pid"]
    except NotRunning as exc:
        print(f"error: not following: {exc}", file=sys.stderr)
        return exit_codes.JOB_FAILED
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return exit_codes.OK
    out = sys.stdout.buffer
    # One wait for three things: new lines (checked every FOLLOW_CHECK_S), the orchestrator's end
    # (its pidfd becomes readable) and our reader's (a pipe's write end reports POLLERR once its
    # reader has gone; a terminal POLLHUP when it hangs up; both are reported without asking).
    # Without the last, `logs NODE -f | head -1` waited for the node to write again, forever if
    # it is idle: only a write would have failed.
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(out.fileno(), 0)
    try:
        while True:
            chunk = fh.read()
            if chunk:
                out.write(chunk)
                out.flush()
            elif _rotated(path, fh):
                fh.close()
                fh = open(path, "rb")  # noqa: SIM115 - replaced on every rotation
                continue
            ready = dict(poller.poll(FOLLOW_CHECK_S * 1000))
            if out.fileno() in ready:  # nobody reads what we would print
                point_at_devnull()
                return exit_codes.OK
            if pidfd in ready:
                out.write(fh.read())
                out.flush()
                return exit_codes.OK
    except KeyboardInterrupt:
        return exit_codes.OK
    finally:
        os.close(pidfd)


def _rotated(path: Path, fh) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(fh.fileno()).st_ino
    except FileNotFoundError:
        return False
