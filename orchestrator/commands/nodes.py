"""``orchestrator start|stop|restart NODE``: one node of the running fleet."""

from __future__ import annotations

from orchestrator import exit_codes
from orchestrator.control.cli_support import add_target_args, raw_formatter, run_control

_TEXT = {
    "start": (
        "start a stopped (or failed) node of the running fleet and wait until it runs",
        "Assign NODE to a warm spare and wait until it reports RUNNING (bounded by the fleet's\n"
        "startup_timeout_s). Refused if the node is already starting or running.",
    ),
    "stop": (
        "stop one node of the running fleet gracefully",
        "Stop NODE: protocol stop -> stop_timeout_s -> SIGTERM -> term_timeout_s -> SIGKILL. The\n"
        "node stays configured (state stopped) and is not restarted by its policy.",
    ),
    "restart": (
        "stop a node and start it again (its incarnation grows)",
        "Stop NODE gracefully, then start it on a warm spare and wait until it reports RUNNING.\n"
        "Its event sequence continues where it stopped.",
    ),
}

_EPILOG = """
example:
  orchestrator {op} ema-eurusd
  orchestrator {op} ema-eurusd --config configs/example.toml

exit status: 0 ok, 1 no orchestrator is running or the node did not {op}, 2 unknown node/usage.
"""


def add_parser(subparsers) -> None:
    for op, (help_, description) in _TEXT.items():
        p = subparsers.add_parser(
            op,
            help=help_,
            description=description + "\n" + _EPILOG.format(op=op),
            formatter_class=raw_formatter(),
        )
        p.add_argument("node", metavar="NODE", help="the node id (as in the fleet file's [[nodes]] id)")
        add_target_args(p)
        p.set_defaults(func=_runner(op))


def _runner(op: str):
    def run(args) -> int:
        return run_control(args, lambda client, a: _do(op, client, a))

    return run


def _do(op: str, client, args) -> int:
    info = client.info
    timeout = info["stop_wait_s"] + info["start_wait_s"] + 5.0
    row = client.call(op, node=args.node, timeout=timeout)
    pid = f" pid {row['pid']}" if row.get("pid") else ""
    print(f"{row['node']}: {row['state']}{pid} incarnation {row['incarnation']}")
    return exit_codes.OK
