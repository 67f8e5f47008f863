"""What the Orchestrator's Python API raises for a request it cannot carry out."""

from __future__ import annotations


class OrchestratorError(Exception):
    """A request the orchestrator cannot carry out (unknown node, node not running...)."""


class CommandTimeout(OrchestratorError):
    """A node did not answer a command in time."""


class CommandFailed(OrchestratorError):
    """A node answered a command with an error."""


__all__ = ["CommandFailed", "CommandTimeout", "OrchestratorError"]
