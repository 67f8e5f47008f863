"""A stand-in child for ``bench/relay_throughput.py``: sends pre-built ``evt`` frames as fast as it can.

It measures the orchestrator's own relay capacity with the node's event-building cost out of the
picture. It speaks the child side of the protocol just enough to be supervised like a real child
(``hello``; ``assign``; ``hb`` with state ``RUNNING`` every heartbeat interval; ``stop`` answered with
``reply`` and ``bye``; the parent's ``ack``/``hb`` read and discarded), and in between sends ``evt``
frames on its DEALER, blocking only while the socket's queue is full.

The frames are those of the emitter (``relay_throughput.make_events``: 64 events each, same topic,
type and data) with every frame's seqs continuing the last: ``assign.resume_after + 1, + 2, ...``. To
make a new frame cost a few microseconds instead of a ``packb`` of 64 events, each seq is written
as a msgpack uint 64 (``0xcf`` + 8 bytes; a valid, if not minimal, encoding that every msgpack
decoder reads as the same int), so a frame is a fixed template with 64 eight-byte holes.

The orchestrator starts it as its child program through a wrapper script given as
``OrchestratorConfig.python`` (see ``relay_throughput.frames_wrapper``); the arguments meant for
``python -m orchestrator.child`` arrive here, and the ones this program does not use are ignored.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402
import zmq  # noqa: E402

from orchestrator import protocol  # noqa: E402
from orchestrator import transport as t  # noqa: E402
from orchestrator.process.pdeathsig import die_with_parent_from_env  # noqa: E402

DRAIN_EVERY = 16  # frames sent between two reads of what the parent sent (acks, heartbeats, commands)


class FrameMaker:
    """``next_frame()``: the next ``evt`` frame of ``node``, seqs continuing from ``after``."""

    def __init__(self, node: str, incarnation: int, events: list[list], after: int) -> None:
        pack = msgpack.Packer(use_bin_type=True).pack
        head = b"".join(
            pack(x) for x in ("k", "evt", "v", protocol.PROTOCOL_VERSION, "node", node, "incarnation")
        )
        head = b"\x85" + head + pack(incarnation) + pack("events")
        n = len(events)
        head += bytes([0x90 | n]) if n < 16 else b"\xdc" + n.to_bytes(2, "big")
        # parts: [head + event 1 up to its seq, seq 1, rest of event 1 + event 2 up to its seq, ...]
        parts = [head + b"\x95\xcf"]
        for i, (_, ts, topic, type_, data) in enumerate(events):
            parts.append(b"")  # the seq's 8 bytes, filled per frame
            tail = pack(ts) + pack(topic) + pack(type_) + pack(data)
            parts.append(tail + (b"\x95\xcf" if i + 1 < n else b""))
        self._parts = parts
        self._n = n
        self.next_seq = after + 1
        frame = self.next_frame()
        self.next_seq = after + 1
        decoded = protocol.decode(frame)  # the template makes valid frames, and these very events
        assert [e[1:] for e in decoded["events"]] == [e[1:] for e in events], "frame template is wrong"
        if len(frame) > protocol.MAX_FRAME_BYTES:
            raise ValueError(f"a frame of {n} events is {len(frame)} bytes, over MAX_FRAME_BYTES")

    def next_frame(self) -> bytes:
        first = self.next_seq
        self.next_seq = first + self._n
        parts = self._parts
        parts[1::2] = [seq.to_bytes(8, "big") for seq in range(first, first + self._n)]
        return b"".join(parts)


class FramesChild:
    def __init__(self, slot: str, endpoint: str, heartbeat_s: float, parent_timeout_s: float) -> None:
        self.slot = slot
        self.heartbeat_s = heartbeat_s
        self.parent_timeout_s = parent_timeout_s
        self.ctx = zmq.Context()
        self.sock = t.node_dealer(self.ctx, endpoint, slot)
        self.assignment: dict | None = None
        self.stopping: str | None = None  # the stop command's id
        self.parent_seen = time.monotonic()
        self.next_hb = 0.0
        self.frames_sent = 0
        self.acked = 0  # the parent's cumulative ack

    def send(self, msg: dict) -> None:
        self.sock.send(protocol.encode(msg))

    def drain(self) -> None:
        """Read and handle everything the parent sent so far (never waits)."""
        while True:
            try:
                frame = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                msg = protocol.decode(frame)
            except protocol.ProtocolError as exc:
                print(f"frames child: bad frame from the parent: {exc}", file=sys.stderr)
                continue
            self.parent_seen = time.monotonic()
            kind = msg["k"]
            if kind == "ack":
                self.acked = max(self.acked, msg["seq"])
            elif kind == "assign":
                self.assignment = msg
            elif kind == "cmd":
                if msg["name"] == "stop":
                    self.stopping = msg["id"]
                else:
                    self.send(
                        protocol.reply_error(msg["id"], f"the frames child has no command {msg['name']!r}")
                    )

    def tick(self) -> None:
        """Heartbeat when due; stop if the parent's heartbeat is gone."""
        now = time.monotonic()
        if now >= self.next_hb:
            state = "RUNNING" if self.assignment is not None else "SPARE"
            self.send(protocol.hb(time.time_ns(), state, {"frames": self.frames_sent}))
            self.next_hb = now + self.heartbeat_s
        if now - self.parent_seen > self.parent_timeout_s:
            raise SystemExit(
                f"frames child {self.slot}: no word from the parent for {self.parent_timeout_s} s"
            )

    def run(self, events: list[list]) -> int:
        self.send(protocol.hello(self.slot, os.getpid(), True))
        while self.assignment is None and self.stopping is None:
            if self.sock.poll(int(self.heartbeat_s * 1000), zmq.POLLIN):
                self.drain()
            if time.monotonic() - self.parent_seen > self.parent_timeout_s:
                return 1
        if self.assignment is not None:
            a = self.assignment
            maker = FrameMaker(a["node"], a["incarnation"], events, a["resume_after"])
            self.tick()  # the first RUNNING heartbeat: the parent marks the node RUNNING
            self._stream(maker)
            self._wait_acked(maker.next_seq - 1)
        self.send(protocol.reply_ok(self.stopping, {"frames_sent": self.frames_sent}))
        self.send(protocol.bye("stopped by command", 0))
        self.sock.close(linger=1000)
        self.ctx.term()
        return 0

    def _wait_acked(self, last_seq: int, timeout_s: float = 5.0) -> None:
        """Before leaving: wait until the parent acked (journaled) everything sent, or ``timeout_s``.

        Frames still queued in the parent when this process exits would reach it from a child
        that is gone (refused as ``unknown_peer``).
        """
        give_up = time.monotonic() + timeout_s
        while self.acked < last_seq and time.monotonic() < give_up:
            if self.sock.poll(10, zmq.POLLIN):
                self.drain()
            self.tick()

    def _stream(self, maker: FrameMaker) -> None:
        sock = self.sock
        send = sock.send
        while self.stopping is None:
            for _ in range(DRAIN_EVERY):
                frame = maker.next_frame()
                while True:
                    try:
                        send(frame, zmq.NOBLOCK)
                        break
                    except zmq.Again:  # the parent's queue is full: wait (not spin) for room
                        if sock.poll(5, zmq.POLLOUT | zmq.POLLIN) & zmq.POLLIN:
                            self.drain()
                        self.tick()
                self.frames_sent += 1
            self.drain()
            self.tick()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--slot", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--heartbeat-interval", type=float, default=0.05)
    parser.add_argument("--parent-timeout", type=float, default=1.0)
    args, _ignored = parser.parse_known_args()  # e.g. "-m orchestrator.child", --log-dir
    die_with_parent_from_env()
    from bench.relay_throughput import make_events

    child = FramesChild(args.slot, args.endpoint, args.heartbeat_interval, args.parent_timeout)
    sys.exit(child.run(make_events()))


if __name__ == "__main__":
    main()
