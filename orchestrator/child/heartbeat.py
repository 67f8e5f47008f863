"""Heartbeats both ways: watching the parent's, pacing our own.

**The parent's heartbeat (``ParentWatchdog``).** ``PR_SET_PDEATHSIG`` covers a parent that dies;
it does not cover a parent that is alive but stuck (SIGSTOPped, deadlocked, its relay wedged).
Such a parent will never restart or stop us, so a child that has not seen a parent ``hb`` for
``--parent-timeout`` seconds stops itself (exit ``PARENT_LOST``). Only ``hb`` counts: other
traffic proves the socket works, not that the parent's supervision loop does. The deadline
starts when the watch starts (right after ``hello``), so a parent that never sends a heartbeat
is detected too. Beats only move the deadline later, so the watcher sleeps until the deadline
and re-checks; it never needs waking early.

**Our heartbeat (``HeartbeatPacer``).** The child's ``hb`` must come from the kernel's own loop:
a strategy that blocks the loop must stop the heartbeat, which is how the parent sees a hang.
The node's liveness tick is exactly that (a task on the kernel loop), so the pacer is a liveness
listener. The listener only marks a heartbeat as due; the session's heartbeat task, on the same
loop, sends it, so a blocked loop stops both.

Pacing: at most one ``hb`` per ``interval``. Liveness ticks are on a fixed grid with some jitter
(a tick may come a little early relative to the previous late one), so a strict
``gap >= interval`` test would skip every tick that is early by a microsecond and double the
gap. The pacer therefore accepts a tick once ``interval - tick_interval/2`` has passed since the
last heartbeat: with the tick interval equal to the heartbeat interval every tick is sent
(the grid itself keeps them ``interval`` apart), and with a faster tick a heartbeat goes out on
the first tick at or after ``interval`` (give or take half a tick). One exception: a change of
the node's lifecycle state (STARTING -> RUNNING -> STOPPING -> STOPPED) is announced by a
heartbeat at once, because the parent measures a restart until it sees RUNNING and a tick may be
up to one interval away: the session sends it from inside the transition itself, and only if the
socket cannot take it then is it left to the sender (:meth:`HeartbeatPacer.due_now`).

**PnL in the heartbeat (``pnl_micros``).** The orchestrator's status view shows each node's PnL.
The node's portfolio is state of the kernel loop, so it is read there, by the heartbeat sender
(which runs on that loop), once per heartbeat: no extra task, no lock, and a node that trades
nothing pays a dictionary look-up. Heartbeat counters are integers, so the PnL travels as
millionths of the account currency (``round(pnl * 1e6)``). It is left out when it cannot be one
number: PnL in several currencies with no FX to combine them, or a value beyond int64.
"""

from __future__ import annotations

import math

import trio


class InvalidInterval(ValueError):
    """A heartbeat interval or timeout that is not a finite number > 0."""


def check_interval(name: str, value: float) -> float:
    """``value`` as a float if it is a finite number > 0, else :class:`InvalidInterval` naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidInterval(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


class ParentWatchdog:
    """Deadline on the parent's heartbeats (see module docstring)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = check_interval("parent timeout", timeout_s)
        self.beats = 0
        self._started_at: float | None = None
        self._last_beat: float | None = None
        self._deadline = math.inf
        self._grace = False  # one short extension after this loop was blocked (see watch)

    def beat(self) -> None:
        """A parent ``hb`` arrived."""
        now = trio.current_time()
        self.beats += 1
        self._last_beat = now
        self._deadline = now + self.timeout_s
        self._grace = False

    async def watch(self) -> str:
        """Return, with a readable reason, once no parent ``hb`` came for ``timeout_s``."""
        now = trio.current_time()
        self._started_at = now
        if self._last_beat is None:
            self._deadline = now + self.timeout_s
        while True:
            deadline = self._deadline
            await trio.sleep_until(deadline)
            now = trio.current_time()
            if now < self._deadline:
                continue  # a beat moved the deadline
            if not self._grace:
                # Before judging, one short grace: if this loop itself was blocked past the
                # deadline (a long kernel step, e.g. a strategy's slow on_stop), the parent's
                # heartbeats are waiting unread on the socket, and the receiver must get to them
                # first. A parent that is really gone costs a tenth of the timeout more.
                self._grace = True
                self._deadline = now + self.timeout_s / 10
                continue
            return self._reason(now)

    def _reason(self, now: float) -> str:
        if self._last_beat is None:
            return (
                f"parent heartbeat lost: none received within {self.timeout_s:g} s of start-up "
                f"(--parent-timeout {self.timeout_s:g})"
            )
        return (
            f"parent heartbeat lost: the last one came {now - self._last_beat:.3f} s ago "
            f"(--parent-timeout {self.timeout_s:g}, {self.beats} received)"
        )


class HeartbeatPacer:
    """Turns liveness ticks into due heartbeats, at most one per interval (see module docstring)."""

    def __init__(self, interval_s: float, tick_interval_s: float) -> None:
        interval_s = check_interval("heartbeat interval", interval_s)
        tick_interval_s = check_interval("liveness tick interval", tick_interval_s)
        self._min_gap_ns = max(0, int((interval_s - tick_interval_s / 2) * 1e9))
        self._last_ns: int | None = None
        self._due_ts: int | None = None
        self._due = trio.Event()
        self.ticks = 0

    def on_tick(self, count: int, ts_ns: int) -> None:
        """The node's liveness listener: runs on the kernel loop at every tick."""
        self.ticks += 1
        last = self._last_ns
        if last is None or ts_ns - last >= self._min_gap_ns:
            self._last_ns = ts_ns
            self._due_ts = ts_ns
            self._due.set()

    def due_now(self, ts_ns: int) -> None:
        """Make a heartbeat due at once, outside the pacing (a lifecycle state change).

        The parent learns of RUNNING from a heartbeat; waiting for the next tick would add up to
        one interval to every restart. Call on the kernel loop, like :meth:`on_tick`.
        """
        self._last_ns = ts_ns
        self._due_ts = ts_ns
        self._due.set()

    def sent(self, ts_ns: int) -> None:
        """A heartbeat was sent outside the pacer (at a state change): the next one paces from it."""
        self._last_ns = ts_ns

    async def next_due(self) -> int:
        """Wait for the next due heartbeat; return the tick's timestamp (ns).

        If the sender fell behind, heartbeats that came due meanwhile collapse into the latest:
        a heartbeat is a statement about now, not a message to queue.
        """
        await self._due.wait()
        self._due = trio.Event()
        ts = self._due_ts
        assert ts is not None  # set together with the event
        return ts


_INT64 = 2**63 - 1


def account_currency(accounts) -> object | None:
    """The one currency the node's accounts are kept in, or None when there is not exactly one.

    An account with no base currency (multi-currency cash) counts with its only balance's
    currency when it has just one.
    """
    found = set()
    for account in accounts:
        if account.base_currency is not None:
            found.add(account.base_currency)
        else:
            currencies = account.currencies()
            if len(currencies) != 1:
                return None
            found.add(currencies[0])
    return found.pop() if len(found) == 1 else None


def pnl_micros(portfolio, accounts) -> int | None:
    """Realized + unrealized PnL in the account currency, in millionths; None if not one number.

    When the accounts do not share one currency, the PnL is still one number if it is all in one
    currency; mixed currencies are never added up (there is no FX rate here).

    Call on the kernel loop (the portfolio reads the cache). See the module docstring.
    """
    totals = portfolio.total_pnls()
    currency = account_currency(accounts)
    if currency is None:
        if len(totals) > 1:
            return None
        currency = next(iter(totals), None)
    if any(c != currency for c in totals):
        return None  # PnL in a currency other than the account's: no FX rate here to convert it
    money = totals.get(currency)
    if money is None:
        return 0
    micros = int((money.as_decimal() * 1_000_000).to_integral_value())
    return micros if -_INT64 <= micros <= _INT64 else None


__all__ = [
    "HeartbeatPacer",
    "InvalidInterval",
    "ParentWatchdog",
    "account_currency",
    "check_interval",
    "pnl_micros",
]
