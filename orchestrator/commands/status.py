"""``orchestrator status [--json]``: the state of every node of the running fleet."""

from __future__ import annotations

import json

from orchestrator import exit_codes
from orchestrator.control.cli_support import add_target_args, raw_formatter, run_control

HELP = "show every node of the running fleet (state, pid, restarts, heartbeat...)"
DESCRIPTION = """\
Ask the running orchestrator (over its control socket in the runtime dir) for the state of
every node: state, pid, incarnation, restarts, uptime, heartbeat age, events relayed and how
its last process ended. With --json: one JSON list of objects with node, state, pid,
incarnation, restarts, uptime_s, heartbeat_age_ms, events, last_exit.

example:
  orchestrator status
  orchestrator status --config configs/example.toml --json | jq '.[].state'

exit status: 0 ok, 1 no orchestrator is running (or it did not answer), 2 usage.
"""

COLUMNS = (
    ("NODE", "node"),
    ("STATE", "state"),
    ("PID", "pid"),
    ("INC", "incarnation"),
    ("RESTARTS", "restarts"),
    ("UPTIME", "uptime_s"),
    ("HB_AGE_MS", "heartbeat_age_ms"),
    ("EVENTS", "events"),
    ("LAST_EXIT", "last_exit"),
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("status", help=HELP, description=DESCRIPTION, formatter_class=raw_formatter())
    add_target_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    return run_control(args, _status)


def _status(client, args) -> int:
    rows = client.call("status")
    if args.json:
        print(json.dumps(rows))
    else:
        print(format_table(rows))
    return exit_codes.OK


def format_table(rows: list[dict]) -> str:
    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.1f}"
        return str(value)

    table = [[h for h, _ in COLUMNS]] + [[cell(r.get(k)) for _, k in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS) - 1)]
    lines = []
    for row in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return "\n".join(lines)
