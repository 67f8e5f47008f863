"""The ``cmd`` names a child understands, and how each maps onto the node.

Three kinds of command:

- answered by the child itself, at once: ``ping`` (-> ``"pong"``, proves the loop turns) and
  ``status`` (-> ``TradingNode.stats()`` plus the child's own counters; for a spare, the child's
  counters only). ``stats()`` is safe from any thread and needs no kernel step.
- ``stop``: the node stops gracefully; the reply comes once it has stopped, just before ``bye``.
  A spare replies at once and leaves.
- node commands, executed on the kernel loop through ``TradingNode.inject`` and replied to when
  the node has carried them out: ``start_strategy`` / ``stop_strategy`` (args: ``strategy_id``)
  and ``strategy_command`` (args: ``strategy_id``, ``name``, optional ``payload``).

Argument checking is the node's (``node.live.commands.parse_command`` refuses missing and
unknown fields with a message naming them); this module only renames and refuses ``kind``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

PING = "ping"
STATUS = "status"
STOP = "stop"

NODE_COMMANDS: Mapping[str, str] = MappingProxyType(
    {
        "start_strategy": "start_strategy",
        "stop_strategy": "stop_strategy",
        "strategy_command": "strategy",
    }
)
"""Wire name -> the node's command kind (``node.live.commands.COMMAND_KINDS``)."""

KNOWN_COMMANDS = (PING, STATUS, STOP, *NODE_COMMANDS)


class UnknownCommand(ValueError):
    """A ``cmd`` whose name is not one of :data:`KNOWN_COMMANDS`."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown command {name!r}; known commands: {', '.join(KNOWN_COMMANDS)}")


class InvalidArguments(ValueError):
    """A ``cmd``'s args cannot become a node command."""


def node_command(name: str, args: Mapping) -> dict:
    """The dict form ``TradingNode.inject`` accepts for the node command ``name``.

    Strategy commands use ``name`` for the strategy's own command name: ``{"strategy_id": "X",
    "name": "flatten", "payload": {...}}``.
    """
    kind = NODE_COMMANDS.get(name)
    if kind is None:
        raise UnknownCommand(name)
    if "kind" in args:
        raise InvalidArguments(f"command {name!r}: 'kind' is not an argument; the command name is {name!r}")
    return {"kind": kind, **args}


__all__ = [
    "KNOWN_COMMANDS",
    "NODE_COMMANDS",
    "PING",
    "STATUS",
    "STOP",
    "InvalidArguments",
    "UnknownCommand",
    "node_command",
]
