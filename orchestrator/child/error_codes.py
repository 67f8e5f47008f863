"""The ``error.code`` values a child sends besides the protocol's own (``protocol.ERROR_CODES``).

The protocol's codes say a frame was not a valid message. A child also refuses valid messages
that make no sense to it, and the parent should be able to tell those apart without parsing
the text:

- ``config``: the ``assign``'s config cannot be used; the message names the key. Sent just
  before ``bye`` with exit code CONFIG.
- ``state``: the node's state store cannot be used (corrupt, locked by another process, older
  than the parent's journal); the message names the file and what to do. Sent just before
  ``bye`` with exit code CONFIG: a restart would meet the same file.
- ``unexpected``: a valid message this child does not take in its current state (a second
  ``assign``, an ``ack`` for a node it does not run, a kind only a child sends).
- ``invalid_field`` (the protocol's own): an ``ack`` for a seq that was never sent.
"""

from __future__ import annotations

from orchestrator.protocol.errors import INVALID_FIELD

CONFIG = "config"
STATE = "state"
UNEXPECTED = "unexpected"

__all__ = ["CONFIG", "INVALID_FIELD", "STATE", "UNEXPECTED"]
