"""``orchestrator down``: stop the whole running fleet gracefully and wait for the orchestrator."""

from __future__ import annotations

from orchestrator import exit_codes
from orchestrator.control.cli_support import add_target_args, raw_formatter, run_control, wait_pid_exit

HELP = "stop every node gracefully and wait until the orchestrator has exited"
DESCRIPTION = """\
Ask the running orchestrator to shut down gracefully (the same as SIGTERM to it: stop to every
node -> stop_timeout_s -> SIGTERM -> SIGKILL), then wait until its process has exited. How
the nodes ended is in its log (<runtime dir>/logs/orchestrator.log for `up --detach`).

example:
  orchestrator down
  orchestrator down --config configs/example.toml

exit status: 0 the orchestrator exited, 1 none was running or it did not exit in time, 2 usage.
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("down", help=HELP, description=DESCRIPTION, formatter_class=raw_formatter())
    add_target_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    return run_control(args, _down)


def _down(client, args) -> int:
    result = client.call("down")
    pid, max_wait = result["pid"], result["max_wait_s"]
    print(f"orchestrator (pid {pid}): stopping every node", flush=True)
    if not wait_pid_exit(pid, max_wait):
        print(f"error: the orchestrator (pid {pid}) has not exited after {max_wait:g} s", flush=True)
        return exit_codes.JOB_FAILED
    print(f"orchestrator (pid {pid}): exited")
    return exit_codes.OK
