"""Supervision: deciding what to do when a node ends, and noticing when it hangs.

- ``exit_reason``: how a node ended (clean, abnormal, faulted, hung...), from its exit status
  and what the supervisor had asked of it.
- ``policy``: per-node restart type, restart intensity and backoff; pure logic, time passed in.
- ``heartbeat``: one deadline per node, and one trio task that wakes when the earliest passes.

Pure modules (``exit_reason``, ``policy``) do no I/O and never read a clock, so every decision
is reproducible in a test from the times given to it.
"""
