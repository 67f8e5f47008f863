"""The exceptions a (nested) exception group holds: what actually failed under a task group.

trio's nurseries and anyio's task groups wrap every failure in a group, so a message built from
the group itself says nothing ("ExceptionGroup: Exceptions from Trio nursery (1 sub-exception)").
Everything that words a failure for a person (a child's ``bye``, ``up``'s errors, the benches)
takes the leaves from here.
"""

from __future__ import annotations

LEAVES_LIMIT = 32
"""At most this many leaves are collected (a group of thousands is reported by its first ones)."""


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions ``exc`` holds, in order, however nested (``[exc]`` for one that is no group)."""
    out: list[BaseException] = []
    pending = [exc]
    while pending and len(out) < LEAVES_LIMIT:
        item = pending.pop(0)
        if isinstance(item, BaseExceptionGroup):
            pending[:0] = item.exceptions
        else:
            out.append(item)
    return out


__all__ = ["LEAVES_LIMIT", "leaves"]
