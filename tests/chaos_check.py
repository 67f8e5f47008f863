"""Chaos proof of issue #5: kill -9 trading nodes (and the orchestrator) at random; check nothing was lost.

The checker, shared by ``tests/test_chaos.py`` (CI-sized) and ``bench/chaos.py`` (the same at scale):

**The checker** (:func:`check_fleet`) reads what the run left on disk once everything has stopped:
each node's event journal (``<state_dir>/journal/<node>.journal``, what the orchestrator relayed)
and, when it exists, the node's own state store (``<state_dir>/state/<node>.sqlite``). It states
the crash-only promises as facts about those files:

(a) *nothing lost, nothing twice on the wire*: the event seqs of a journal, every event of every
    frame in journal order, are exactly 1..N. A missing seq is a lost event, a repeated one a
    duplicate. The seq alone cannot see events that vanished *together with* their numbers (a node
    that forgot unacked events and numbered on from the last ack), so the semantic checks below
    and the store comparison look for those;
(b) *no order sent twice*: each client order id appears in at most one ``OrderSubmitted`` and the
    simulated venue never answered "duplicate client order id" (its wording in
    ``node/backtest/exchange.py``); and every submitted order ends (fill, cancel, reject, expiry)
    or is still held open in the node's store: an order nobody heard of again was lost;
(c) *the books agree*: the positions rebuilt by replaying the journal's ``OrderFilled`` events in
    order (``node.model.position.Position``, one object per position id, as the execution engine
    does) equal the node's own view: the last ``PositionOpened/Changed/Closed`` of each position in
    the journal, and the positions rebuilt from the store's ``position_fills``. The store keeps
    state, not history (closed orders and positions may be forgotten), so: every open position is
    in it and equals the journal's, its fills are all journaled, and it has not issued a seq the
    journal lacks (see :func:`_check_store`).

Every finding is kept with its numbers (which seqs, which order ids, which position and both
values), so a test asserts ``result.ok`` and prints ``result.problems``, and the bench prints counts.

The harness that produces those files is ``tests/chaos_harness.py``.
"""

from __future__ import annotations

import bisect
import os
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import msgpack

from node.model.events import OrderFilled
from node.model.position import InvalidPositionError, Position
from node.persistence.store import (
    SqliteStateStore,
    StateStoreError,
    decode_event,
    decode_fills,
    rebuild_orders,
)
from node.persistence.store.codec import CODEC_VERSION
from orchestrator.fleet.config import state_path
from orchestrator.journal import JournalError, journal_path, read_journal
from orchestrator.protocol import ProtocolError, codec

ROOT = Path(__file__).resolve().parent.parent
CHAOS_FLEET = ROOT / "configs" / "chaos.toml"

DUPLICATE_REJECTION = "duplicate client order id"
"""How the simulated venue words its refusal of a client order id it has already seen."""

ORDER_END_TYPES = frozenset({"OrderFilled", "OrderCanceled", "OrderRejected", "OrderExpired", "OrderDenied"})
"""An order heard of in one of these has ended (a fill is taken as the end: the chaos strategies
trade sizes far below the quotes' size, so every fill is complete)."""

POSITION_EVENT_TYPES = frozenset({"PositionOpened", "PositionChanged", "PositionClosed"})


# == the checker ====================================================================================


@dataclass
class NodeCheck:
    """What the checker found for one node; every list names the items, so a failure explains itself."""

    node: str
    events: int = 0
    frames: int = 0
    last_seq: int = 0
    missing_seqs: list[int] = field(default_factory=list)
    duplicate_seqs: list[int] = field(default_factory=list)  # one entry per extra occurrence
    out_of_order: list[tuple[int, int]] = field(default_factory=list)  # (previous seq, this seq)
    bad_frames: list[str] = field(default_factory=list)
    submitted: int = 0
    fills: int = 0
    duplicate_client_order_ids: dict[str, int] = field(default_factory=dict)  # id -> times submitted
    duplicate_rejections: list[str] = field(default_factory=list)  # client order ids
    unfinished_orders: list[str] = field(default_factory=list)  # submitted, never ended, not kept (lost)
    open_at_end: list[str] = field(default_factory=list)  # submitted, not ended, kept open in the store
    store_order_mismatches: list[str] = field(default_factory=list)
    duplicate_fills: list[str] = field(default_factory=list)
    position_mismatches: list[str] = field(default_factory=list)
    mismatched_positions: set[str] = field(default_factory=set)  # position ids (or instrument ids)
    store: str | None = None  # path of the state store, when the node has one
    store_last_seq: int | None = None
    unjournaled: int = 0  # seqs the store issued beyond the journal's last
    fills_only_in_store: list[str] = field(default_factory=list)
    fills_only_in_journal: list[str] = field(default_factory=list)
    store_errors: list[str] = field(default_factory=list)
    # The order/position timeline (for "was an order open when the node was killed?"): at each
    # ts_ns, the number of working orders and of open positions from then on.
    timeline_ts: list[int] = field(default_factory=list, repr=False)
    timeline_open: list[tuple[int, int]] = field(default_factory=list, repr=False)

    @property
    def lost_events(self) -> int:
        return len(self.missing_seqs) + self.unjournaled

    def open_at(self, ts_ns: int) -> tuple[int, int]:
        """(working orders, open positions) just before ``ts_ns``, as the journal tells it."""
        i = bisect.bisect_left(self.timeline_ts, ts_ns)
        return (0, 0) if i == 0 else self.timeline_open[i - 1]

    @property
    def problems(self) -> list[str]:
        out: list[str] = []
        if self.missing_seqs:
            out.append(f"{len(self.missing_seqs)} event seq(s) missing (lost): {_ranges(self.missing_seqs)}")
        if self.duplicate_seqs:
            out.append(
                f"{len(self.duplicate_seqs)} duplicate event(s), seqs {_ranges(sorted(set(self.duplicate_seqs)))}"
            )
        if self.out_of_order:
            out.append(f"{len(self.out_of_order)} event(s) out of order, e.g. {self.out_of_order[:5]}")
        out += [f"bad frame: {b}" for b in self.bad_frames]
        if self.duplicate_client_order_ids:
            ids = sorted(self.duplicate_client_order_ids.items())
            out.append(
                f"{len(ids)} client order id(s) submitted more than once: "
                + ", ".join(f"{c} x{n}" for c, n in ids[:10])
                + (" ..." if len(ids) > 10 else "")
            )
        if self.duplicate_rejections:
            out.append(
                f"{len(self.duplicate_rejections)} order(s) rejected by the venue as duplicates: "
                f"{_head(self.duplicate_rejections)}"
            )
        if self.unfinished_orders:
            out.append(
                f"{len(self.unfinished_orders)} order(s) submitted, never heard of again and not in the "
                f"node's state (lost): {_head(self.unfinished_orders)}"
            )
        out += self.store_order_mismatches
        if self.duplicate_fills:
            out.append(f"{len(self.duplicate_fills)} fill(s) journaled twice: {_head(self.duplicate_fills)}")
        if self.position_mismatches:
            out.append(
                f"{len(self.mismatched_positions)} position(s) disagree ({len(self.position_mismatches)} findings):"
                + "".join(f"\n    {m}" for m in self.position_mismatches[:8])
                + ("\n    ..." if len(self.position_mismatches) > 8 else "")
            )
        if self.unjournaled:
            out.append(
                f"the store issued seqs up to {self.store_last_seq} but the journal ends at {self.last_seq}: "
                f"{self.unjournaled} event(s) never reached the journal (lost)"
            )
        if self.fills_only_in_store:
            out.append(
                f"{len(self.fills_only_in_store)} fill(s) in the node's store but not in the journal: "
                f"{_head(self.fills_only_in_store)}"
            )
        if self.fills_only_in_journal:
            out.append(
                f"{len(self.fills_only_in_journal)} journaled fill(s) the node's store does not have: "
                f"{_head(self.fills_only_in_journal)}"
            )
        out += [f"state store: {e}" for e in self.store_errors]
        return [f"{self.node}: {p}" for p in out]


@dataclass
class CheckResult:
    """The checker's verdict on a whole fleet: ``ok`` when no node has a problem."""

    nodes: dict[str, NodeCheck]

    @property
    def problems(self) -> list[str]:
        return [p for check in self.nodes.values() for p in check.problems]

    @property
    def ok(self) -> bool:
        return not self.problems

    def _sum(self, fn) -> int:
        return sum(fn(c) for c in self.nodes.values())

    @property
    def events(self) -> int:
        return self._sum(lambda c: c.events)

    @property
    def lost_events(self) -> int:
        return self._sum(lambda c: c.lost_events)

    @property
    def duplicate_events(self) -> int:
        return self._sum(lambda c: len(c.duplicate_seqs))

    @property
    def duplicate_client_order_ids(self) -> int:
        """Extra submissions of an id already submitted, plus the venue's duplicate rejections."""
        return self._sum(
            lambda c: sum(n - 1 for n in c.duplicate_client_order_ids.values()) + len(c.duplicate_rejections)
        )

    @property
    def lost_orders(self) -> int:
        return self._sum(lambda c: len(c.unfinished_orders))

    @property
    def duplicate_fills(self) -> int:
        return self._sum(lambda c: len(c.duplicate_fills))

    @property
    def position_mismatches(self) -> int:
        return self._sum(lambda c: len(c.mismatched_positions))

    @property
    def store_fill_mismatches(self) -> int:
        return self._sum(lambda c: len(c.fills_only_in_store) + len(c.fills_only_in_journal))


def _ranges(seqs: list[int], limit: int = 8) -> str:
    """``[3, 4, 5, 9]`` -> ``3..5, 9`` (the first ``limit`` runs)."""
    runs: list[str] = []
    start = prev = None
    for s in seqs:
        if prev is not None and s == prev + 1:
            prev = s
            continue
        if start is not None:
            runs.append(str(start) if start == prev else f"{start}..{prev}")
        start = prev = s
    if start is not None:
        runs.append(str(start) if start == prev else f"{start}..{prev}")
    return ", ".join(runs[:limit]) + (f", ... ({len(runs)} runs)" if len(runs) > limit else "")


def _head(items: list, limit: int = 8) -> str:
    return ", ".join(map(str, items[:limit])) + (" ..." if len(items) > limit else "")


def _fill_from(data: dict) -> OrderFilled:
    """An ``OrderFilled`` rebuilt from the ``data`` of a relayed event (its ``to_dict()``).

    Goes through the store's codec, the node's own decoder for exactly this shape, so the checker
    rebuilds fills the way the node does and validates them the same way.
    """
    event = decode_event(msgpack.packb([CODEC_VERSION, data], use_bin_type=True))
    if type(event) is not OrderFilled:
        raise TypeError(f"expected an OrderFilled, got {type(event).__name__}")
    return event


def _fill_key(fill: OrderFilled) -> tuple[str, str, str]:
    # A fill that crosses zero is booked as two parts with the same trade id on two positions.
    return str(fill.position_id), str(fill.trade_id), str(fill.last_qty)


def _fill_text(key: tuple[str, str, str]) -> str:
    return "/".join(key)


class _Replay:
    """Positions rebuilt from fills in order: one ``Position`` per position id, as the engine keeps them.

    A fill for a position id whose position is already closed is what a node does after forgetting
    its positions (it numbers position ids afresh): reported, then replayed on a new Position so the
    rest can still be compared. Without the instrument only net quantities are rebuilt.
    """

    def __init__(self, instruments: dict[str, object]) -> None:
        self.instruments = instruments
        self.positions: dict[str, Position] = {}
        self.net: dict[str, Decimal] = {}  # position id -> net signed qty (needs no instrument)
        self.problems: list[str] = []
        self.reused: list[str] = []  # fills that met an already closed position (one finding for all)
        self.broken: set[str] = set()

    def apply(self, fill: OrderFilled) -> None:
        pid = str(fill.position_id)
        qty = fill.last_qty.as_decimal()
        self.net[pid] = self.net.get(pid, Decimal(0)) + (qty if fill.is_buy else -qty)
        instrument = self.instruments.get(str(fill.instrument_id))
        if instrument is None:
            return
        position = self.positions.get(pid)
        try:
            if position is None:
                self.positions[pid] = Position(instrument, fill)
            elif position.is_closed:
                self.reused.append(f"{fill.trade_id} ({fill.client_order_id}) on {pid}")
                self.broken.add(pid)
                self.positions[pid] = Position(instrument, fill)
            else:
                position.apply(fill)
        except InvalidPositionError as exc:
            self.problems.append(f"fill {fill.trade_id} ({fill.client_order_id}) cannot be replayed: {exc}")
            self.broken.add(pid)

    def findings(self) -> list[str]:
        out = list(self.problems)
        if self.reused:
            out.append(
                f"{len(self.reused)} fill(s) for a position already closed (its id was reused): "
                + _head(self.reused, 4)
            )
        return out

    def view(self, pid: str) -> tuple[Decimal, str | None]:
        """(net signed qty, realized PnL of the current position object or None without instrument)."""
        position = self.positions.get(pid)
        if position is None:
            return self.net.get(pid, Decimal(0)), None
        return position.signed_qty, str(position.realized_pnl)


def check_node(runtime_dir: str | os.PathLike, node_id: str, instruments: dict | None = None) -> NodeCheck:
    """Check one node's journal (and its state store, if it has one); see the module docstring."""
    check = NodeCheck(node_id)
    instruments = instruments or {}
    path = journal_path(runtime_dir, node_id)
    seen: Counter[int] = Counter()
    prev = 0
    submitted: Counter[str] = Counter()
    working: set[str] = set()  # submitted, not ended yet
    ended: set[str] = set()
    replay = _Replay(instruments)
    fill_keys: Counter[str] = Counter()
    last_position: dict[str, dict] = {}
    open_positions: set[str] = set()
    try:
        records = list(read_journal(path, since=1))
    except FileNotFoundError:
        check.bad_frames.append(f"no journal at {path}")
        return check
    except JournalError as exc:
        check.bad_frames.append(f"journal {path} is corrupt: {exc}")
        return check
    for record in records:
        try:
            frame = codec.decode(record.payload)
        except ProtocolError as exc:
            check.bad_frames.append(f"record {record.seq}: not a valid evt frame ({exc})")
            continue
        events = frame.get("events") or []
        check.frames += 1
        if frame.get("k") != "evt" or frame.get("node") != node_id or not events:
            check.bad_frames.append(
                f"record {record.seq}: a {frame.get('k')} frame of node {frame.get('node')}"
            )
            continue
        if events[-1][0] != record.seq:
            check.bad_frames.append(f"record {record.seq} holds a frame whose last seq is {events[-1][0]}")
        for seq, ts, _topic, event_type, data in events:
            check.events += 1
            seen[seq] += 1
            if seen[seq] > 1:
                check.duplicate_seqs.append(seq)
                continue  # reported once, as a duplicate; not replayed again
            if seq < prev:
                check.out_of_order.append((prev, seq))
            prev = max(prev, seq)
            before = (len(working), len(open_positions))
            if event_type == "OrderSubmitted":
                coid = data["client_order_id"]
                submitted[coid] += 1
                working.add(coid)
            elif event_type in ORDER_END_TYPES:
                coid = data["client_order_id"]
                working.discard(coid)
                ended.add(coid)
                if event_type == "OrderRejected" and DUPLICATE_REJECTION in str(data.get("reason", "")):
                    check.duplicate_rejections.append(coid)
                if event_type == "OrderFilled":
                    check.fills += 1
                    try:
                        fill = _fill_from(data)
                    except Exception as exc:  # a fill the node's own codec cannot read is a finding
                        check.bad_frames.append(f"seq {seq}: undecodable OrderFilled ({exc})")
                        continue
                    key = _fill_key(fill)
                    fill_keys[key] += 1
                    if fill_keys[key] > 1:
                        check.duplicate_fills.append(f"{_fill_text(key)} (seq {seq})")
                    replay.apply(fill)
            elif event_type in POSITION_EVENT_TYPES:
                pid = data["position_id"]
                last_position[pid] = data
                if event_type == "PositionClosed":
                    open_positions.discard(pid)
                else:
                    open_positions.add(pid)
            if (len(working), len(open_positions)) != before:
                check.timeline_ts.append(ts)
                check.timeline_open.append((len(working), len(open_positions)))
    check.last_seq = max(seen, default=0)
    check.missing_seqs = [s for s in range(1, check.last_seq + 1) if s not in seen]
    check.submitted = len(submitted)
    check.duplicate_client_order_ids = {c: n for c, n in submitted.items() if n > 1}
    check.unfinished_orders = sorted(c for c in submitted if c not in ended)
    _compare_positions(check, replay, last_position)
    _check_store(check, runtime_dir, instruments, replay, fill_keys, ended)
    return check


def _mismatch(check: NodeCheck, pid: str, text: str) -> None:
    check.mismatched_positions.add(pid)
    check.position_mismatches.append(text)


def _compare_positions(check: NodeCheck, replay: _Replay, last_position: dict[str, dict]) -> None:
    """Journal fills replayed vs the last position event of each position in the journal."""
    for text in replay.findings():
        check.position_mismatches.append(f"replaying the journal's fills: {text}")
    check.mismatched_positions |= replay.broken
    for pid in sorted(set(replay.net) | set(last_position)):
        event = last_position.get(pid)
        if event is None:
            _mismatch(check, pid, f"position {pid}: fills were journaled but no position event")
            continue
        if pid not in replay.net:
            _mismatch(check, pid, f"position {pid}: position events were journaled but no fill")
            continue
        qty, pnl = replay.view(pid)
        node_qty = Decimal(event["signed_qty"])
        if qty != node_qty:
            _mismatch(
                check, pid, f"position {pid}: journal fills net {qty}, the node's last event says {node_qty}"
            )
        elif pnl is not None and pnl != event["realized_pnl"]:
            _mismatch(
                check,
                pid,
                f"position {pid}: realized PnL replayed from the journal {pnl}, the node's last event says "
                f"{event['realized_pnl']}",
            )


def _check_store(
    check: NodeCheck,
    runtime_dir,
    instruments: dict,
    journal: _Replay,
    journal_fills: Counter,
    ended: set[str],
) -> None:
    """The node's own durable state vs the journal (skipped while nodes have no store).

    The store holds what the node needs to carry on, not its history: a closed order or position
    may be forgotten (the journal keeps the history). So every position open in the journal must
    be in the store, every position in the store must equal the journal's replay of that position,
    every fill in the store must be in the journal, and every journaled fill of a position the
    store holds must be in the store; closed positions absent from the store are fine. An order
    still working when the node stopped (the journal never saw it end) is not lost if the store
    holds it open (the next start carries on with it); one the store holds open although the
    journal saw it end means the store missed events.
    """
    path = state_path(runtime_dir, check.node)
    if not path.exists():
        return
    check.store = str(path)
    try:
        store = SqliteStateStore(path)
        try:
            loaded = store.load()
        finally:
            store.close()
        fills = decode_fills(loaded)
    except (StateStoreError, ValueError) as exc:
        check.store_errors.append(f"{path}: {type(exc).__name__}: {exc}")
        return
    try:
        orders = rebuild_orders(loaded)
    except (StateStoreError, ValueError) as exc:  # reported; the position checks still run
        check.store_errors.append(f"{path}: its orders cannot be rebuilt: {type(exc).__name__}: {exc}")
        orders = {}
    check.store_last_seq = loaded.last_seq
    held_open = {str(coid) for coid, order in orders.items() if not order.is_closed}
    check.open_at_end = [c for c in check.unfinished_orders if c in held_open]
    check.unfinished_orders = [c for c in check.unfinished_orders if c not in held_open]
    check.store_order_mismatches = [
        f"the store holds order {c} open, but the journal saw it end" for c in sorted(held_open & ended)
    ]
    check.unjournaled = max(0, loaded.last_seq - check.last_seq)
    stored = _Replay(instruments)
    store_keys: Counter[str] = Counter()
    for fill in fills:
        store_keys[_fill_key(fill)] += 1
        stored.apply(fill)
    held = set(stored.net)
    check.fills_only_in_store = [_fill_text(k) for k in sorted((store_keys - journal_fills).elements())]
    check.fills_only_in_journal = [
        _fill_text(k) for k in sorted((journal_fills - store_keys).elements()) if k[0] in held
    ]
    for text in stored.findings():
        check.position_mismatches.append(f"replaying the store's fills: {text}")
    check.mismatched_positions |= stored.broken
    open_in_journal = {pid for pid, qty in journal.net.items() if qty != 0}
    for pid in sorted(held | open_in_journal):
        if pid not in held:
            _mismatch(
                check, pid, f"position {pid}: open in the journal (net {journal.net[pid]}), not in the store"
            )
            continue
        if pid not in journal.net:
            _mismatch(check, pid, f"position {pid}: in the store, never in the journal")
            continue
        mine, theirs = journal.view(pid), stored.view(pid)
        if mine != theirs:
            _mismatch(
                check,
                pid,
                f"position {pid}: journal replay (qty {mine[0]}, realized {mine[1]}) != store replay "
                f"(qty {theirs[0]}, realized {theirs[1]})",
            )


def check_fleet(
    runtime_dir: str | os.PathLike, node_ids, instruments: dict[str, dict] | None = None
) -> CheckResult:
    """Check every node (``instruments``: node id -> {instrument id: Instrument}, see :func:`instruments_of`)."""
    instruments = instruments or {}
    return CheckResult({n: check_node(runtime_dir, n, instruments.get(n)) for n in node_ids})


def instruments_of(fleet_path: str | os.PathLike) -> dict[str, dict]:
    """node id -> {instrument id: Instrument}, built by the node's own config parser."""
    from node.live.config import load_node_config
    from orchestrator.fleet.loader import load_fleet

    out = {}
    for spec in load_fleet(fleet_path).nodes:
        config = load_node_config(spec.doc, spec.base_dir)
        out[spec.node_id] = {str(i.id): i for i in config.instruments}
    return out


# == the harness ====================================================================================
