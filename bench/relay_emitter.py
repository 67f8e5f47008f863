"""The event source of ``bench/relay_throughput.py``: a strategy that only publishes bench events.

Loaded by the child from the node doc (run the bench from the repository root, so that the child,
which inherits the orchestrator's cwd, can import ``bench``)::

    [[strategies]]
    path = "bench.relay_emitter:RelayEmitter"
    config = {mode = "max", topic = "events.bench.relay"}     # or mode = "rate", rate = 10000

    [streaming]
    patterns = ["events.bench.*"]

Every event is a :class:`BenchEvent` published with ``self.msgbus.publish`` on ``topic``; the
node's streaming port hands ``to_dict()`` to the child's outbox, which batches it into ``evt``
frames. ``ts_event`` is ``time.time_ns()`` at the publish call, so a subscriber can compute the
end-to-end latency (the outbox also copies ``ts_event`` into the wire event's ``ts``).

Two modes, both driven by one repeating clock timer (``interval_ms``, default 1 ms):

- ``max``: as fast as the pipeline drains. A kernel step must never publish more than the
  stream buffer holds (the node would stop with ``StreamOverflow``), and a long step would delay
  the heartbeat, so each firing tops the node's stream buffer up to ``backlog`` events (at most
  ``batch`` per firing). The emitter is then never the bottleneck while the buffer is non-empty.
- ``rate``: a steady ``rate`` events/s. Each firing publishes what the schedule says is due
  since the start (``rate * elapsed - emitted``, capped at ``batch``), so a late timer is made
  up on the next firing instead of lowering the rate.

Finding the stream buffer (``max`` only): the node's ``StreamingBus`` taps publishes into its
``StreamingPort`` (``bus._tap`` is the port's bound ``_on_publish``); the port's public
``stats()["buffered"]`` is the backlog. Bench code only; a strategy has no business doing this.
"""

from __future__ import annotations

import time

from node.trading.strategy import Strategy, StrategyConfig

MODES = ("max", "rate")
TIMER = "relay-bench-emit"


class BenchEvent:
    """A small event: what the bench streams (``to_dict`` is what goes on the wire)."""

    __slots__ = ("i", "ts_event")

    def __init__(self, i: int, ts_event: int) -> None:
        self.i = i
        self.ts_event = ts_event

    def to_dict(self) -> dict:
        return {"i": self.i, "ts_event": self.ts_event, "bid": "1.10001", "ask": "1.10003"}


class RelayEmitterConfig(StrategyConfig):
    def __init__(
        self,
        mode: str = "max",
        topic: str = "events.bench.relay",
        rate: int = 10_000,
        interval_ms: float = 1.0,
        batch: int = 2048,
        backlog: int = 4096,
        **kwargs,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        for name, value in (("rate", rate), ("batch", batch), ("backlog", backlog)):
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(interval_ms, int | float) or not interval_ms > 0:
            raise ValueError(f"interval_ms must be > 0, got {interval_ms!r}")
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"topic must be a non-empty string, got {topic!r}")
        super().__init__(**kwargs)
        self.mode = mode
        self.topic = topic
        self.rate = rate
        self.interval_ms = float(interval_ms)
        self.batch = batch
        self.backlog = backlog


class RelayEmitter(Strategy):
    """Publishes :class:`BenchEvent` on a timer (see module docstring)."""

    def __init__(self, config: RelayEmitterConfig | None = None) -> None:
        super().__init__(config or RelayEmitterConfig())
        self.emitted = 0
        self._t0_ns = 0
        self._port = None

    def on_start(self) -> None:
        cfg = self.config
        if cfg.mode == "max":
            tap = getattr(self.msgbus, "_tap", None)
            port = getattr(tap, "__self__", None)
            if port is None or not hasattr(port, "stats"):
                raise RuntimeError(
                    "relay emitter: the node's streaming port was not found on the message bus "
                    "(mode 'max' needs a node with a stream sink, i.e. run by the orchestrator)"
                )
            self._port = port
        self._t0_ns = time.time_ns()
        self.clock.set_timer(TIMER, int(cfg.interval_ms * 1_000_000), self._on_timer)

    def on_stop(self) -> None:
        if TIMER in self.clock.timer_names:
            self.clock.cancel_timer(TIMER)

    def _on_timer(self, _event) -> None:
        if not self.is_running:
            return
        cfg = self.config
        if cfg.mode == "max":
            count = min(cfg.batch, cfg.backlog - self._port.stats()["buffered"])
        else:
            due = (time.time_ns() - self._t0_ns) * cfg.rate // 1_000_000_000
            count = min(cfg.batch, due - self.emitted)
        if count <= 0:
            return
        publish = self.msgbus.publish
        topic = cfg.topic
        now = time.time_ns
        first = self.emitted + 1
        for i in range(first, first + count):
            publish(topic, BenchEvent(i, now()))
        self.emitted += count


__all__ = ["BenchEvent", "RelayEmitter", "RelayEmitterConfig"]
