"""An ``assign`` message -> the TradingNodeConfig the child builds its node from.

``assign.config`` is ``{"doc": <the node's TOML document as a map>, "base_dir": <str>}``: the
parent has already read the file (so a child never needs the parent's working directory or file
access), and ``base_dir`` is where relative paths in it (a replay's data file) are resolved. The
node's own reader, ``node.live.config.load_node_config``, checks the document and raises
``ConfigError`` naming the key; the two envelope keys are checked here the same way, with key
paths starting at ``assign.config``.

One adjustment: the node's liveness tick drives the child's heartbeat, so it must tick at least
as often as the heartbeat interval. A config asking for a slower tick (the default is 1 s) gets
``liveness_interval_s = heartbeat interval``; a faster one is kept (the heartbeat pacer then
sends on every n-th tick).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from node.backtest.config import ConfigError
from node.live.config import TradingNodeConfig, load_node_config

_ENVELOPE_KEYS = frozenset({"doc", "base_dir"})


@dataclass(frozen=True, slots=True)
class Assignment:
    """What an ``assign`` message asks for, as the session uses it."""

    node: str
    incarnation: int
    resume_after: int
    config: Mapping
    after_pid: int = 0  # the hung or crashed process it replaces (see ``predecessor``); 0: none

    @classmethod
    def from_message(cls, msg: Mapping) -> Assignment:
        """From a decoded (already validated) ``assign`` message."""
        return cls(msg["node"], msg["incarnation"], msg["resume_after"], msg["config"], msg["after_pid"])


def node_config(envelope: Mapping, heartbeat_interval_s: float) -> TradingNodeConfig:
    """Build the node's config from ``assign.config``; raise ``ConfigError`` naming the key."""
    extra = sorted(set(envelope) - _ENVELOPE_KEYS)
    if extra:
        raise ConfigError(
            f"assign.config.{extra[0]}", "unknown key; assign.config has exactly 'doc' and 'base_dir'"
        )
    doc = envelope.get("doc")
    if type(doc) is not dict:
        raise ConfigError("assign.config.doc", f"must be the node's TOML document as a map, got {doc!r:.40}")
    base_dir = envelope.get("base_dir", ".")
    if type(base_dir) is not str or not base_dir:
        raise ConfigError(
            "assign.config.base_dir", f"must be a non-empty directory path, got {base_dir!r:.40}"
        )
    config = load_node_config(doc, base_dir)
    if config.liveness_interval_s > heartbeat_interval_s:
        config = dataclasses.replace(config, liveness_interval_s=heartbeat_interval_s)
    return config


__all__ = ["Assignment", "node_config"]
