"""The status view of issue #6: events/s and PnL per node, the table, and `up`'s live view.

The rendering is tested as pure functions (rows in, text out) and the rate meter with explicit
clock values. What crosses process boundaries is tested with real processes: a child's PnL
reaching ``Orchestrator.status()`` through its heartbeats, the fleet file's log rotation
reaching the child's command line, and ``orchestrator up`` drawing its live table on a real
pseudo-terminal and stopping cleanly on Ctrl-C. Waits are on events or bounded reads, never
sleeps.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from node.model.objects import Currency, Money
from orchestrator.child.heartbeat import pnl_micros
from orchestrator.commands.status import CLEAR_HOME, format_table, render_live
from orchestrator.fleet.orchestrator import Orchestrator
from orchestrator.fleet.slots import child_argv
from orchestrator.fleet.state import EventRate, NodeState
from tests.fleet_support import Subscriber, fleet, fleet_ready, node
from tests.test_orchestrator_process import write_fleet

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60  # bounds a broken test on a loaded machine; never a speed assertion

ROW = {
    "node": "ema-eurusd",
    "state": "running",
    "pid": 4242,
    "incarnation": 2,
    "restarts": 1,
    "uptime_s": 125.0,
    "heartbeat_age_ms": 12.4,
    "events": 1500,
    "events_per_s": 198.5,
    "pnl": -1234.5,
    "last_exit": "killed by SIGKILL",
}
PENDING = {"node": "b", "state": "pending", "pid": None, "incarnation": 0, "restarts": 0}


# -- pure rendering --------------------------------------------------------------------------------


def test_the_table_has_one_row_per_node_with_every_column():
    lines = format_table([ROW, PENDING]).splitlines()
    assert lines[0].split() == [
        "NODE", "STATE", "PID", "INC", "RESTARTS", "UPTIME", "HB_AGE_MS", "EVENTS", "EV/S", "PNL", "LAST_EXIT",
    ]  # fmt: skip
    assert lines[1].split() == [
        "ema-eurusd", "running", "4242", "2", "1", "2m05s", "12", "1500", "198.5", "-1,234.50",
        "killed", "by", "SIGKILL",
    ]  # fmt: skip
    assert lines[2].split() == ["b", "pending", "-", "0", "0", "-", "-", "-", "-", "-", "-"]
    # aligned: a column starts at the same offset on every line
    assert lines[0].index("STATE") == lines[1].index("running") == lines[2].index("pending")
    assert lines[0].index("PNL") == lines[1].index("-1,234.50")
    assert lines[2][lines[0].index("PNL")] == "-"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0.0s"), (59.94, "59.9s"), (60, "1m00s"), (3599, "59m59s"), (3600, "1h00m"), (90061, "1d01h")],
)
def test_uptime_is_short_and_readable(seconds, text):
    assert format_table([{"node": "a", "uptime_s": seconds}]).splitlines()[1].split()[5] == text


def test_the_live_frame_clears_the_screen_then_shows_header_table_and_recent_changes():
    frame = render_live("orchestrator: runtime dir /x", [ROW], ["12:00:00 a: running pid=1"], width=200)
    assert frame.startswith(CLEAR_HOME)
    lines = frame[len(CLEAR_HOME) :].splitlines()
    assert lines[0] == "orchestrator: runtime dir /x"
    assert lines[2].split() == [
        "NODE",
        "STATE",
        "PID",
        "INC",
        "RST",
        "UPTIME",
        "HB_MS",
        "EV/S",
        "PNL",
        "LAST_EXIT",
    ]
    assert lines[3].split()[:9] == [
        "ema-eurusd",
        "running",
        "4242",
        "2",
        "1",
        "2m05s",
        "12",
        "198.5",
        "-1,234.50",
    ]
    assert lines[-2:] == ["recent changes:", "12:00:00 a: running pid=1"]


def test_the_live_frame_cuts_lines_to_the_terminal_width_and_omits_an_empty_change_list():
    frame = render_live("h" * 100, [ROW], [], width=40)
    lines = frame[len(CLEAR_HOME) :].splitlines()
    assert all(len(line) <= 40 for line in lines)
    assert lines[0] == "h" * 39 + "~"
    assert "recent changes:" not in frame


# -- events/s ----------------------------------------------------------------------------------------


def test_event_rate_is_none_until_counting_starts_then_zero_when_idle():
    rate = EventRate(window_s=2.0, bucket_s=0.5)
    assert rate.per_second(10.0) is None
    rate.start(10.0)
    assert rate.per_second(11.0) == 0.0


def test_event_rate_averages_over_the_window_and_forgets_older_events():
    rate = EventRate(window_s=2.0, bucket_s=0.5)
    rate.start(100.0)
    for i in range(40):  # 20 events/s for 2 s, in batches of 1 every 50 ms
        rate.add(100.0 + i * 0.05, 1)
    assert rate.per_second(102.0) == pytest.approx(20.0, rel=0.05)
    assert rate.per_second(105.0) == 0.0  # nothing in the last window


def test_a_young_node_is_averaged_over_its_own_life_not_the_whole_window():
    rate = EventRate(window_s=3.0, bucket_s=0.25)
    rate.start(50.0)
    rate.add(50.1, 50)
    assert rate.per_second(50.5) == pytest.approx(100.0)  # 50 events in 0.5 s, not in 3 s


# -- PnL in the heartbeat ------------------------------------------------------------------------


class _Portfolio:
    def __init__(self, totals: dict) -> None:
        self._totals = totals

    def total_pnls(self) -> dict:
        return self._totals


class _Account:
    def __init__(self, base, currencies=()) -> None:
        self.base_currency = base
        self._currencies = list(currencies)

    def currencies(self):
        return self._currencies


USD, EUR = Currency.from_str("USD"), Currency.from_str("EUR")


def test_pnl_is_sent_in_millionths_of_the_account_currency():
    usd = [_Account(USD)]
    assert pnl_micros(_Portfolio({USD: Money("-12.34", USD)}), usd) == -12_340_000
    assert pnl_micros(_Portfolio({}), usd) == 0  # nothing traded yet
    cash = [_Account(None, [USD])]  # no base currency, one balance: that is its currency
    assert pnl_micros(_Portfolio({USD: Money("1.5", USD)}), cash) == 1_500_000
    assert pnl_micros(_Portfolio({USD: Money("2", USD)}), []) == 2_000_000  # no account: the one currency


def test_pnl_that_is_not_one_number_is_left_out():
    usd = [_Account(USD)]
    assert pnl_micros(_Portfolio({EUR: Money("1", EUR)}), usd) is None  # no FX to convert
    both = {USD: Money("1", USD), EUR: Money("1", EUR)}
    assert pnl_micros(_Portfolio(both), []) is None
    two_accounts = [_Account(USD), _Account(EUR)]
    assert pnl_micros(_Portfolio(both), two_accounts) is None
    # accounts in two currencies but PnL in one: still one number
    assert pnl_micros(_Portfolio({USD: Money("1", USD)}), two_accounts) == 1_000_000


@pytest.mark.trio
async def test_a_running_node_reports_pnl_and_event_rate_in_status(tmp_path):
    """Real child: its heartbeats carry pnl_micros from its portfolio; status() shows it."""
    orch = Orchestrator(fleet(tmp_path, node("a")))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            sub = Subscriber(orch.event_endpoint)
            await orch.wait_for("a", NodeState.RUNNING)
            filled = False
            row = {}
            async for item in sub:  # woken by each relayed batch; heartbeats come in between
                if item.topic == "evt.a":
                    filled = filled or any(e[3] == "OrderFilled" for e in item.message["events"])
                (row,) = orch.status()
                if filled and row["pnl"] not in (None, 0.0) and row["events_per_s"]:
                    break
            await sub.aclose()
            assert row["state"] == "running"
            assert isinstance(row["pnl"], float) and row["pnl"] != 0.0  # spread/commission at least
            assert row["events_per_s"] > 0
            orch.shutdown()
    assert orch.clean_shutdown is True


# -- log rotation from the fleet file -------------------------------------------------------------


def test_child_argv_carries_the_log_rotation_settings():
    argv = child_argv(None, "s1", "ipc:///x", 0.05, 1.0, Path("/logs"), 4096, 2)
    assert argv[argv.index("--log-max-bytes") + 1] == "4096"
    assert argv[argv.index("--log-backups") + 1] == "2"
    assert "--log-max-bytes" not in child_argv(None, "s1", "ipc:///x", 0.05, 1.0)


@pytest.mark.trio
@pytest.mark.parametrize("zygote", [False, True])
async def test_every_child_is_started_with_the_fleets_log_rotation(tmp_path, zygote):
    from orchestrator.child.cli import parse_args

    config = fleet(tmp_path, node("a"), spares=1, log_max_bytes=4096, log_backups=2, zygote=zygote)
    orch = Orchestrator(config)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await fleet_ready(orch, "a")
            slots = [orch._node_slot["a"], orch._children.spares[0]]
            for slot in slots:  # what the running processes were really given, parsed as the child does
                if zygote:  # the command line the zygote's child runs (its /proc cmdline is the zygote's)
                    argv = list(slot.process.argv)
                else:
                    argv = Path(f"/proc/{slot.pid}/cmdline").read_bytes().decode().split("\0")[:-1]
                options = parse_args(argv[argv.index("orchestrator.child") + 1 :])
                assert (options.log_max_bytes, options.log_backups) == (4096, 2)
            orch.shutdown()


# -- `orchestrator up` on a terminal ---------------------------------------------------------------


def _read_until(fd: int, wanted, deadline: float, buf: bytearray) -> bool:
    """Read the pty into ``buf`` until ``wanted(buf)`` holds or the deadline passes."""
    while not wanted(buf):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return False
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side closed
            return wanted(buf)
        if not chunk:
            return wanted(buf)
        buf.extend(chunk)
    return True


@pytest.mark.slow
def test_up_on_a_terminal_draws_the_live_table_and_stops_cleanly_on_ctrl_c(tmp_path):
    config, _runtime = write_fleet(tmp_path, nodes=2)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "up", str(config)],
        cwd=ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    buf = bytearray()
    try:
        deadline = time.monotonic() + TIMEOUT

        def both_running_in_a_frame(b: bytearray) -> bool:
            frame = bytes(b).rsplit(CLEAR_HOME.encode(), 1)[-1].decode(errors="replace")
            rows = [line.split() for line in frame.splitlines()]
            running = {r[0] for r in rows if len(r) > 1 and r[1] == "running"}
            redrawn = bytes(b).count(CLEAR_HOME.encode()) >= 2
            changes = frame.partition("recent changes:")[2]  # a frame may arrive in pieces
            return redrawn and {"n0", "n1"} <= running and all(f"{n}: running" in changes for n in running)

        assert _read_until(master, both_running_in_a_frame, deadline, buf), bytes(buf)[-2000:]
        frame = bytes(buf).rsplit(CLEAR_HOME.encode(), 1)[-1].decode()
        assert "EV/S" in frame and "PNL" in frame and "n0: running" in frame
        proc.send_signal(signal.SIGINT)
        assert _read_until(master, lambda b: b"orchestrator: stopped" in b, deadline, buf), bytes(buf)[-2000:]
        assert proc.wait(timeout=TIMEOUT) == 0
        tail = bytes(buf).rsplit(CLEAR_HOME.encode(), 1)[-1].decode()
        assert "SIGINT: stopping every node" in tail and "stopped (clean)" in tail
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
