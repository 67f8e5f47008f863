"""The message bus: the only way components talk to each other inside a node."""

from node.msgbus.bus import MessageBus

__all__ = ["MessageBus"]
