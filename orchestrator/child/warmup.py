"""The imports a child pays *before* it says hello, so that an ``assign`` pays none.

A warm spare exists to take the interpreter start and the imports off the restart's critical
path (DESIGN §5: ~130 ms of imports against a restart target of 10 ms). Whatever ``assign`` would
import lazily therefore has to be listed here: the live node, its config reader, the sandbox
clients and the simulated venue behind them, the replay's file loaders, every example strategy,
and anyio's trio backend (anyio imports it on its first call inside a trio loop, i.e. inside
``TradingNode.run_async``, ~15 ms). The list was made by running a sandbox node after importing
only what the child itself needs and printing ``set(sys.modules)`` grown during the run;
:func:`warm_up` records how long it took and how many modules it imported, and the session
reports modules that still arrive after hello as ``late_imports`` in ``status``, so a gap shows
up in a test rather than as a slow restart.

Strategies are found by walking the ``node.strategies`` package, so a strategy added there is
warmed without editing this list. A strategy loaded from another package is imported when the
node is built (that cost is then visible as ``late_imports``).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from dataclasses import dataclass

WARM_MODULES = (
    "trio",
    "zmq",
    "msgpack",
    "anyio",
    "anyio.from_thread",
    "anyio._backends._trio",
    "node.live.node",
    "node.live.config",
    "node.live.commands",
    "node.live.sandbox",
    "node.live.random_walk",
    "node.live.replay",
    "node.persistence.loaders",
    "node.persistence.store",
    "node.backtest.config",
    "node.backtest.exchange",
    "node.model.errors",
    "node.strategies",
    "orchestrator.protocol",
    "orchestrator.transport.options",
    "orchestrator.transport.sockets",
    "orchestrator.transport.trio_socket",
    "orchestrator.child.session",
)
"""Modules imported before hello; see the module docstring for how the list was made."""

STRATEGY_PACKAGE = "node.strategies"


@dataclass(frozen=True, slots=True)
class WarmUpReport:
    """What the warm-up cost: wall time and how many modules it brought in."""

    seconds: float
    modules_imported: int


def _strategy_modules() -> list[str]:
    package = importlib.import_module(STRATEGY_PACKAGE)
    return [
        f"{STRATEGY_PACKAGE}.{info.name}"
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    ]


def _first_uses() -> None:
    """What a module does once, on first use, that a restart would otherwise pay for.

    Every restart of a node with a state store is a recovery: it opens SQLite and rebuilds events
    from the store. SQLite initialises itself on the first connection, each event class compiles
    its field checks on its first instance (``node.model.events.compile_field_checks``), and the
    store's decoder its plan per event type on its first decode (``codec.compile_plans``; the
    rehearsal does not reach them all: a restored node decodes only its open orders).
    """
    import sqlite3

    from node.model.events import compile_field_checks
    from node.persistence.store.codec import compile_plans

    sqlite3.connect(":memory:").close()
    compile_field_checks()
    compile_plans()


def warm_up() -> WarmUpReport:
    """Import :data:`WARM_MODULES` and every module of ``node.strategies``; report the cost.

    An import that fails here is a broken installation, and raising (the child exits 1 before
    hello) is better than a spare that fails on every ``assign``.
    """
    before = len(sys.modules)
    started = time.perf_counter()
    for name in WARM_MODULES:
        importlib.import_module(name)
    for name in _strategy_modules():
        importlib.import_module(name)
    _first_uses()
    seconds = time.perf_counter() - started
    return WarmUpReport(seconds, len(sys.modules) - before)


__all__ = ["STRATEGY_PACKAGE", "WARM_MODULES", "WarmUpReport", "warm_up"]
