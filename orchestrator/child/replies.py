"""Replies by command id: a command sent twice is carried out once, and both get the first reply.

Why: the parent (or a tool behind it) may resend a command whose reply it did not see (a timeout,
a reconnect). Executing ``stop_strategy`` or a strategy's own command twice is at best noise and
at worst a second trade, so the child keeps the reply of every command it answered, by id, and
answers a repeat from there; a repeat that arrives while the first is still being carried out
waits for the same reply.

Bounded: the last ``capacity`` replies are kept (oldest forgotten first), per child process. A
node restarted after a crash starts with none: its commands' effects on strategies are not part
of the durable state either (strategies start again on every start).
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_CAPACITY = 1024


class ReplyCache:
    """What the child answered, by command id (see module docstring)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if type(capacity) is not int or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        self.capacity = capacity
        self._done: OrderedDict[str, dict] = OrderedDict()
        self._waiting: dict[str, int] = {}  # id -> repeats that arrived while it was carried out
        self.repeats = 0

    def reply_for(self, cmd_id: str) -> dict | None:
        """The reply already sent for ``cmd_id``, or None."""
        return self._done.get(cmd_id)

    def is_pending(self, cmd_id: str) -> bool:
        return cmd_id in self._waiting

    def begin(self, cmd_id: str) -> None:
        """``cmd_id`` is being carried out; a repeat from now on waits for its reply."""
        self._waiting.setdefault(cmd_id, 0)

    def repeat(self, cmd_id: str) -> dict | None:
        """A repeat of ``cmd_id``: its reply if there is one; else it is counted as waiting."""
        self.repeats += 1
        reply = self._done.get(cmd_id)
        if reply is None:
            self._waiting[cmd_id] += 1
        return reply

    def done(self, reply: dict) -> int:
        """Keep ``reply``; return how many repeats wait for it (send it that many more times)."""
        cmd_id = reply["id"]
        waiting = self._waiting.pop(cmd_id, 0)
        self._done[cmd_id] = reply
        self._done.move_to_end(cmd_id)
        while len(self._done) > self.capacity:
            self._done.popitem(last=False)
        return waiting


__all__ = ["DEFAULT_CAPACITY", "ReplyCache"]
