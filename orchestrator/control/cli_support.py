"""What every control command shares: finding the runtime dir, connecting, exit codes.

Kept here (not in each command) so that all of them word "no orchestrator is running" the same
way and map failures to the same exit codes: not running / hung / the job failed -> 1; an
unknown node name or a bad ``--config`` -> 2.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
from pathlib import Path

from orchestrator import exit_codes


class UsageError(Exception):
    """A bad --config or argument: printed, exit 2."""


def add_target_args(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--runtime-dir",
        metavar="DIR",
        help="the running orchestrator's runtime dir (default: $XDG_RUNTIME_DIR/orchestrator, "
        "else /tmp/orchestrator-<uid>)",
    )
    where.add_argument(
        "--config", metavar="CONFIG", help="take the runtime dir from this fleet file's [orchestrator]"
    )


def runtime_dir(args) -> Path:
    """The runtime dir to look in: ``--runtime-dir``, ``--config``'s, else the default.

    Raises ``UsageError`` for a bad fleet file, or a ``--runtime-dir`` that is (or lies under) a
    file: no orchestrator can run there, and the user mistyped something.
    """
    if getattr(args, "runtime_dir", None):
        from orchestrator.configfile import file_in_the_way

        path = Path(args.runtime_dir)
        blocker = file_in_the_way(path)
        if blocker is not None:
            where = "is" if blocker == path else f"is under {blocker}, which is"
            raise UsageError(f"--runtime-dir {path} {where} a file, not a directory")
        return path
    if getattr(args, "config", None):
        from orchestrator.fleet.loader import runtime_dir_of

        return _from_fleet_file(args.config, runtime_dir_of)
    from orchestrator.transport.runtime_dir import default_runtime_dir

    return default_runtime_dir()


def state_dir(args) -> Path:
    """The fleet's state dir (journals, state stores, logs): ``--config``'s, else the default.

    For reading what a fleet left when no orchestrator runs (after a reboot, say): a running one
    is asked instead. Raises ``UsageError`` for a bad fleet file or no home for the default.
    """
    from orchestrator.fleet.loader import state_dir_of
    from orchestrator.fleet.state_dir import StateDirError, default_state_dir

    try:
        return (
            _from_fleet_file(args.config, state_dir_of)
            if getattr(args, "config", None)
            else default_state_dir()
        )
    except StateDirError as exc:
        raise UsageError(str(exc)) from None


def _from_fleet_file(path: str, read) -> Path:
    """``read(path)``: a directory a fleet file names; a bad file is a ``UsageError``."""
    from node.backtest.config import ConfigError
    from orchestrator.configfile import ConfigFileError

    try:
        return read(path)
    except ConfigFileError as exc:
        raise UsageError(str(exc)) from None
    except ConfigError as exc:
        raise UsageError(f"{path}: {exc}") from None


def run_control(args, body) -> int:
    """Connect (bounded), run ``body(client, args) -> exit code``, map failures to exit codes."""
    from orchestrator.control.client import ControlClient, NotRunning, RequestFailed
    from orchestrator.control.messages import UNKNOWN_NODE

    try:
        with ControlClient(runtime_dir(args)) as client:
            client.ping()
            return body(client, args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_USAGE
    except NotRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.JOB_FAILED
    except RequestFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_USAGE if exc.code == UNKNOWN_NODE else exit_codes.JOB_FAILED
    except BrokenPipeError:  # `orchestrator events | head`: the reader has had enough
        from orchestrator.commands.closed_output import point_at_devnull

        point_at_devnull()
        return exit_codes.OK
    except KeyboardInterrupt:  # Ctrl-C ends a --follow
        return exit_codes.OK


def wait_pid_exit(pid: int, timeout: float) -> bool:
    """Wait (at most ``timeout`` s) for process ``pid`` to end; True if it did.

    A pidfd becomes readable when the process ends, whoever its parent is: no polling.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def raw_formatter():
    return argparse.RawDescriptionHelpFormatter
