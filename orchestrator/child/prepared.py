"""Nodes a spare builds ahead, from the fleet's configs, before it knows which one it will run.

Why: parsing a node's config, constructing the node and creating its clients and strategies
(``TradingNode.build_components``) took ~1.8 ms of a restart's ~10 ms of child work in
bench/restart_latency.py (3 nodes on 2 cores), and none of it depends on the node's state or
incarnation. So the parent writes, once, a ``prepare`` message with the config of each node of
the fleet (each exactly as an ``assign`` carries it) to a file in its runtime dir
(``orchestrator.fleet.prepare_file``), and gives its path to each spare (``--prepare``), which
builds them all before its hello: a spare that is ready has prepared. An ``assign`` whose
config is equal to a prepared one takes that node; what is left for it is the state store
(open, check, restore) and the start. The others are disposed of once the assigned node runs,
off the restart's critical path.

What a prepared node has done is what ``build()`` does before it opens the store: no I/O, no
state, nothing started. A node that cannot be prepared (a bad config, a failing factory), or a
file that cannot be read, is reported in the spare's log and left to the ``assign``, which
builds the node as it always does (and reports its failure). A spare prepares at most
``MAX_PREPARED_NODES`` nodes (~45 KB each).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from node.live.config import TradingNodeConfig
from node.live.node import TradingNode
from orchestrator.child.assignment import node_config
from orchestrator.protocol import ProtocolError, decode, kinds
from orchestrator.protocol.limits import MAX_PREPARED_NODES


class PreparedNodes:
    """The nodes this spare has built ahead, by node id; see the module docstring."""

    def __init__(self, heartbeat_interval_s: float, warn: Callable[[str], None]) -> None:
        self._heartbeat_interval_s = heartbeat_interval_s
        self._warn = warn
        self._nodes: dict[str, tuple[Mapping, TradingNodeConfig, TradingNode]] = {}
        self.used = False  # the assigned node was one of them

    def __len__(self) -> int:
        return len(self._nodes)

    def prepare_file(self, path: str) -> None:
        """Prepare the nodes of the ``prepare`` message in the file at ``path``; never raises."""
        try:
            with open(path, "rb") as fh:
                msg = decode(fh.read())
        except (OSError, ProtocolError) as exc:
            self._warn(f"no node prepared ahead: cannot read {path}: {exc}")
            return
        if msg["k"] != kinds.PREPARE:
            self._warn(f"no node prepared ahead: {path} holds a {msg['k']!r} message, not 'prepare'")
            return
        self.prepare(msg["nodes"])

    def prepare(self, configs: Mapping[str, Mapping]) -> None:
        """Build each node of ``configs`` (node id -> ``assign.config``), up to ``MAX_PREPARED_NODES``."""
        for node_id, envelope in list(configs.items())[:MAX_PREPARED_NODES]:
            if node_id in self._nodes:
                continue
            try:
                config = node_config(envelope, self._heartbeat_interval_s)
                node = TradingNode(config)
                node.build_components()
            except Exception as exc:  # the assign builds it again, and reports the failure then
                self._warn(f"node {node_id!r} not prepared ahead: {type(exc).__name__}: {exc}")
                continue
            self._nodes[node_id] = (envelope, config, node)

    def take(self, node_id: str, envelope: Mapping) -> tuple[TradingNodeConfig, TradingNode] | None:
        """The node prepared for ``node_id`` from this very ``assign.config``, or None."""
        prepared = self._nodes.pop(node_id, None)
        if prepared is None:
            return None
        if prepared[0] != envelope:  # not the config it was prepared from: it must not be used
            self._dispose(node_id, prepared[2])
            return None
        self.used = True
        return prepared[1], prepared[2]

    def discard(self) -> None:
        """Dispose of every node still prepared (the spare runs another one, or ends)."""
        nodes, self._nodes = self._nodes, {}
        for node_id, (_envelope, _config, node) in nodes.items():
            self._dispose(node_id, node)

    def _dispose(self, node_id: str, node: TradingNode) -> None:
        try:
            node.dispose()
        except Exception as exc:  # nothing was acquired; say so rather than fail the spare
            self._warn(f"disposing prepared node {node_id!r} failed: {type(exc).__name__}: {exc}")


__all__ = ["PreparedNodes"]
