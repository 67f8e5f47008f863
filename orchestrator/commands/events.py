"""``orchestrator events``: a fleet's events, from its journals and/or live.

History comes from the nodes' journals: through the running orchestrator (control socket), or,
when none runs, read from the state dir directly (``--config``'s, or the default): what a fleet
did before it stopped, or before its machine went down, is what its operator asks first. Live
events come from the orchestrator's PUB socket. With ``--follow`` the subscription is opened *before* the history is read
and every live batch is checked against the last sequence number printed for its node: a gap
(the subscription was not effective yet, or the PUB dropped for us) is filled from the history,
and what was already printed is skipped, so the output is each node's events in order, once.
"""

from __future__ import annotations

import json
import os
import sys

from orchestrator import exit_codes
from orchestrator.commands.closed_output import point_at_devnull
from orchestrator.control.cli_support import add_target_args, raw_formatter, run_control

HELP = "print a fleet's events (from its journals; --follow for live)"
DESCRIPTION = """\
Print the events the nodes of a fleet published (orders, fills, positions, component state
changes...), oldest first, one per line: NODE #SEQ TIME TOPIC TYPE DATA. Each node numbers its
events with a sequence that survives restarts, and every event is in its node's journal.

Without --follow: prints the journaled events and exits; --since SEQ: only those with a
sequence number >= SEQ (per node). With no orchestrator running, the journals are read from
the state dir (--config FILE: that fleet's; else the default), so a fleet's history can be read
after it stopped, or after a reboot. With --follow (a running orchestrator): keeps printing live
events (and node state changes) until Ctrl-C or the orchestrator exits; with --since it first
replays.

example:
  orchestrator events --node ema-eurusd --since 1
  orchestrator events --since 1 --config configs/example.toml     # the fleet is down
  orchestrator events --follow --json | jq .type

A damaged journal read with no orchestrator running: its events before the damage are
printed, then one error line naming the file, the byte offset and what to do.

exit status: 0 ok (Ctrl-C ending --follow, or a reader gone, as `| head`, included), 1 no
orchestrator is running (--follow; or no journal to read) or it did not answer, or a journal is
damaged, 2 unknown node/usage.
"""

PAGE = 1000


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("events", help=HELP, description=DESCRIPTION, formatter_class=raw_formatter())
    p.add_argument("--node", metavar="NODE", help="only this node's events")
    p.add_argument("--since", type=_seq, metavar="SEQ", help="replay kept events with sequence >= SEQ")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing live events")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_target_args(p)
    p.set_defaults(func=run)


def _seq(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a sequence number >= 0, got {text!r}")
    return value


def run(args) -> int:
    from orchestrator.control.cli_support import UsageError, runtime_dir
    from orchestrator.control.client import NotRunning, check_socket_file

    if not args.follow:
        running = True
        try:
            check_socket_file(runtime_dir(args))
        except NotRunning:
            running = False
        except UsageError:
            pass  # run_control says it
        if not running:  # no orchestrator: its journals are on disk (read outside the except)
            return _from_journals(args)
    return run_control(args, _events)


def _from_journals(args) -> int:
    from orchestrator.control.cli_support import UsageError, state_dir

    try:
        sdir = state_dir(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_USAGE
    journals = sdir / "journal"
    have = sorted(p.name[: -len(".journal")] for p in journals.glob("*.journal")) if journals.is_dir() else []
    if not have:
        print(
            f"error: no orchestrator is running, and no journal in {journals} to read (for a fleet "
            "with a state_dir of its own, pass --config FILE)",
            file=sys.stderr,
        )
        return exit_codes.JOB_FAILED
    if args.node is not None and args.node not in have:
        print(
            f"error: no orchestrator is running, and no journal of node {args.node!r} in {journals} "
            f"(journals there: {', '.join(have) or 'none'})",
            file=sys.stderr,
        )
        return exit_codes.BAD_USAGE
    print(f"no orchestrator is running: reading the journals in {journals}", file=sys.stderr)
    printer = _Printer(args.json)
    code = exit_codes.OK
    try:
        for node in [args.node] if args.node else have:
            if not _print_journal(sdir, node, printer, args.since or 0):
                code = exit_codes.JOB_FAILED
    except BrokenPipeError:  # `orchestrator events | head`: the reader has had enough
        point_at_devnull()
    return code


def _print_journal(state_dir, node: str, printer: _Printer, since: int) -> bool:
    """Print ``node``'s journaled events with seq >= ``since`` as they are read; False if damaged.

    Read here record by record, not a page at a time: a journal damaged in the middle still
    gives every event before the damage, then one line saying which file, where and what to do
    (``JournalCorruptError``'s message), instead of a traceback and nothing.
    """
    from orchestrator.control.journal_events import UnreadableFrame, journaled_events
    from orchestrator.journal import JournalCorruptError, journal_path

    path = journal_path(state_dir, node)
    try:
        for event in journaled_events(state_dir, node, since):
            printer.event(node, event)
    except (JournalCorruptError, UnreadableFrame) as exc:
        sys.stdout.flush()
        print(f"error: {exc}", file=sys.stderr)
        return False
    except FileNotFoundError:  # removed since it was listed
        pass
    except BrokenPipeError:  # stdout's, not the journal's: the caller's
        raise
    except OSError as exc:
        sys.stdout.flush()
        print(f"error: cannot read journal {path}: {exc.strerror}", file=sys.stderr)
        return False
    return True


class _Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.last: dict[str, int] = {}

    def event(self, node: str, record: list) -> None:
        seq, ts_ns, topic, type_, data = record
        if seq <= self.last.get(node, -1):
            return
        self.last[node] = seq
        if self.as_json:
            obj = {"node": node, "seq": seq, "ts_ns": ts_ns, "topic": topic, "type": type_, "data": data}
            line = json.dumps(obj, default=repr)
        else:
            line = f"{node} #{seq} {_time(ts_ns)} {topic} {type_} {json.dumps(data, default=repr)}"
        print(line, flush=True)

    def state(self, message: dict) -> None:
        if self.as_json:
            print(json.dumps({"state_change": message}, default=repr), flush=True)
        else:
            extra = "".join(f" {k}={message[k]}" for k in ("pid", "incarnation", "reason") if message.get(k))
            print(f"{message['node']} -- {message['state']}{extra}", flush=True)


def _time(ts_ns: int) -> str:
    import datetime

    dt = datetime.datetime.fromtimestamp(ts_ns / 1e9, tz=datetime.UTC)
    return dt.strftime("%H:%M:%S.%f")[:-3]


def _replay(client, printer: _Printer, nodes: list[str], since: int) -> None:
    """Print the kept events of ``nodes`` with seq >= ``since``, page by page."""
    for node in nodes:
        start = max(since, printer.last.get(node, -1) + 1)
        first = True
        while True:
            page = client.call("history", node=node, since=start, limit=PAGE)
            kept = page["first_kept"].get(node)
            if first and kept is not None and since > 0 and start < kept:
                print(
                    f"note: events of {node} before #{kept} are not in its journal",
                    file=sys.stderr,
                )
            first = False
            for record in page["events"]:
                printer.event(record[0], record[1:])
            if not page["truncated"] or not page["events"]:
                break
            start = page["events"][-1][1] + 1


def _events(client, args) -> int:
    nodes = [args.node] if args.node else list(client.info["nodes"])
    if args.node:
        client.call("history", node=args.node, limit=0)  # unknown node -> exit 2 now, not later
    printer = _Printer(args.json)
    if not args.follow:
        _replay(client, printer, nodes, args.since or 0)
        return exit_codes.OK
    import trio

    from orchestrator.exception_groups import leaves

    try:
        return trio.run(_follow, client, args, nodes, printer)
    except BaseExceptionGroup as group:  # trio wraps what ended the nursery
        ends = leaves(group)
        if not all(isinstance(e, KeyboardInterrupt | BrokenPipeError) for e in ends):
            raise
        if any(isinstance(e, BrokenPipeError) for e in ends):
            point_at_devnull()
        return exit_codes.OK  # Ctrl-C (the way a --follow ends), or the reader has gone


async def _follow(client, args, nodes: list[str], printer: _Printer) -> int:
    import trio

    from orchestrator.fleet.subscriber import EventSubscriber

    info = client.info
    subscriber = EventSubscriber(info["event_endpoint"], nodes=[args.node] if args.node else None)
    try:
        if args.since is not None:
            _replay(client, printer, nodes, args.since)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_until_exit, info["pid"], nursery.cancel_scope)
            nursery.start_soon(_until_reader_gone, nursery.cancel_scope)
            async for item in subscriber:
                message = item.message
                if item.topic == "orchestrator":
                    if args.node is None or message["node"] == args.node:
                        printer.state(message)
                    continue
                node = message["node"]
                batch = message["events"]
                last = printer.last.get(node)
                if last is not None and batch[0][0] > last + 1:
                    _replay(client, printer, [node], last + 1)  # fill a gap from the history
                for record in batch:
                    printer.event(node, record)
    finally:
        await subscriber.aclose()
    if _reader_gone():
        point_at_devnull()
    else:
        print("orchestrator exited; no more events", file=sys.stderr)
    return exit_codes.OK


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has gone (``| head`` has had enough)."""
    import select

    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # not a real file (replaced, closed)
        return False
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR/POLLHUP are reported whatever is asked
    return bool(poller.poll(0))


async def _until_reader_gone(scope) -> None:
    """Cancel ``scope`` when stdout is a pipe and its reader has gone, even while no event comes
    to fail a write: the write end of a pipe with no reader reports EPOLLERR, which wakes a
    ``wait_readable`` on it (a pipe's write end is never readable otherwise). Not for a terminal
    (readable when a key is pressed) nor a file (not pollable): they have no reader to lose."""
    import stat

    import trio

    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
    except (OSError, ValueError):  # not a real file (replaced, closed)
        return
    await trio.lowlevel.wait_readable(fd)
    scope.cancel()


async def _until_exit(pid: int, scope) -> None:
    """Cancel ``scope`` when process ``pid`` (the orchestrator) ends: its pidfd becomes readable."""
    import trio

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        scope.cancel()
        return
    try:
        await trio.lowlevel.wait_readable(fd)
    finally:
        trio.lowlevel.notify_closing(fd)
        os.close(fd)
    scope.cancel()
