"""``orchestrator status [--json]``: the state of every node of the running fleet."""

from __future__ import annotations

import json

from orchestrator import exit_codes
from orchestrator.control.cli_support import add_target_args, raw_formatter, run_control

HELP = "show every node of the running fleet (state, pid, restarts, heartbeat...)"
DESCRIPTION = """\
Ask the running orchestrator (over its control socket in the runtime dir) for the state of
every node: state, pid, incarnation, restarts, uptime, heartbeat age, events relayed (in all
and per second over the last few seconds), PnL (realized + unrealized, in the account
currency, as the node last reported it) and how its last process ended. With --json: one JSON
list of objects with node, state, pid, incarnation, restarts, uptime_s, heartbeat_age_ms,
events, events_per_s, pnl, last_exit (null where not known yet).

example:
  orchestrator status
  orchestrator status --config configs/example.toml --json | jq '.[].state'

exit status: 0 ok, 1 no orchestrator is running (or it did not answer), 2 usage.
"""


def _duration(seconds: float) -> str:
    """``12.3s``, ``5m07s``, ``2h03m``, ``3d04h``: short enough for a column, exact enough to read."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


# (header, status key, formatter of a non-None value); the last column is not padded.
COLUMNS = (
    ("NODE", "node", str),
    ("STATE", "state", str),
    ("PID", "pid", str),
    ("INC", "incarnation", str),
    ("RESTARTS", "restarts", str),
    ("UPTIME", "uptime_s", _duration),
    ("HB_AGE_MS", "heartbeat_age_ms", lambda v: f"{v:.0f}"),
    ("EVENTS", "events", str),
    ("EV/S", "events_per_s", lambda v: f"{v:.1f}"),
    ("PNL", "pnl", lambda v: f"{v:+,.2f}"),
    ("LAST_EXIT", "last_exit", str),
)

# `up`'s live view leaves out the event total and uses short headers: it must fit 80 columns
# with the figures that move (events/s, PnL) before the free text of the last exit.
_SHORT = {"RESTARTS": "RST", "HB_AGE_MS": "HB_MS"}
LIVE_COLUMNS = tuple((_SHORT.get(h, h), k, f) for h, k, f in COLUMNS if k != "events")


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


def format_table(rows: list[dict], columns=COLUMNS) -> str:
    """The status rows as an aligned text table (one line per node; ``-`` for an unknown value)."""

    def cell(row: dict, key: str, fmt) -> str:
        value = row.get(key)
        return "-" if value is None else fmt(value)

    table = [[h for h, _, _ in columns]] + [[cell(r, k, f) for _, k, f in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns) - 1)]
    lines = []
    for row in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return "\n".join(lines)


# -- the live view of `orchestrator up` on a terminal ---------------------------------------------

CLEAR_HOME = "\x1b[H\x1b[2J"
"""ANSI: cursor home, clear the screen. Plain escape codes work on every terminal emulator and
need no dependency (curses would take over the terminal and its input, which `up` does not need)."""


def render_live(header: str, rows: list[dict], recent: list[str], width: int) -> str:
    """One frame of `up`'s live view: the header, the status table, then the recent state changes.

    A pure function (rows in, text out) so the view is tested without a terminal. Lines are cut
    to ``width``: a wrapped line would push the frame down and leave a mess at each redraw.
    """
    lines = [header, "", *format_table(rows, LIVE_COLUMNS).splitlines()]
    if recent:
        lines += ["", "recent changes:", *recent]
    width = max(1, width)
    return CLEAR_HOME + "\n".join(line if len(line) <= width else line[: width - 1] + "~" for line in lines)
