"""When the journal calls ``fdatasync``: the durability / throughput trade-off, made explicit.

Whatever the policy, a record is in the file (visible to ``read_from`` and to other processes)
as soon as ``append`` returns, and survives a crash of the orchestrator process itself (kill -9):
the kernel holds the written pages. The policies differ only in what survives a crash of the
*machine* (power loss, kernel panic, a VM killed by its host):

``always`` (the default)
    ``append`` / ``append_batch`` return only after ``fdatasync``. Everything appended — and so
    everything acknowledged to a node — survives a machine crash: exactly-once holds end to end.
    Cost: one ``fdatasync`` per call (tens of microseconds on an NVMe drive, milliseconds on a
    spinning disk or some cloud volumes). It is paid per *call*, not per event, which is why
    ``append_batch`` exists: journal a whole relayed batch with one call.

``batch`` (``batch:<ms>``)
    ``fdatasync`` at most every ``interval_ms``: on the append that finds the interval elapsed, on
    ``sync_if_due()`` (the owner calls it from a timer so an idle journal does not stay unsynced),
    on ``sync()`` and on ``close()``. A machine crash can lose the last ``interval_ms`` of
    appended events (longer if nobody calls ``sync_if_due``). Those events may already have been
    acknowledged, so the node will not resend them: to keep exactly-once even then, acknowledge only
    up to ``Journal.durable_seq``.

``never``
    No ``fdatasync`` at all (not even on close): the kernel writes the pages back when it likes
    (about 30 s on Linux by default). For tests and benchmarks only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class FsyncMode(StrEnum):
    ALWAYS = "always"
    BATCH = "batch"
    NEVER = "never"


DEFAULT_BATCH_INTERVAL_MS = 20.0


@dataclass(frozen=True)
class FsyncPolicy:
    """A mode and, for ``batch``, the longest time appended data may stay unsynced."""

    mode: FsyncMode = FsyncMode.ALWAYS
    interval_ms: float = DEFAULT_BATCH_INTERVAL_MS

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", FsyncMode(self.mode))
        if isinstance(self.interval_ms, bool) or not isinstance(self.interval_ms, int | float):
            raise TypeError(f"interval_ms must be a number, got {self.interval_ms!r}")
        if not math.isfinite(self.interval_ms) or self.interval_ms <= 0:
            raise ValueError(f"interval_ms must be a finite number > 0, got {self.interval_ms!r}")

    @classmethod
    def always(cls) -> FsyncPolicy:
        return cls(FsyncMode.ALWAYS)

    @classmethod
    def batch(cls, interval_ms: float = DEFAULT_BATCH_INTERVAL_MS) -> FsyncPolicy:
        return cls(FsyncMode.BATCH, interval_ms)

    @classmethod
    def never(cls) -> FsyncPolicy:
        return cls(FsyncMode.NEVER)

    @classmethod
    def parse(cls, text: str | FsyncPolicy) -> FsyncPolicy:
        """``"always"``, ``"never"``, ``"batch"`` or ``"batch:<ms>"`` (e.g. ``"batch:5"``); a policy passes through."""
        if isinstance(text, FsyncPolicy):
            return text
        if not isinstance(text, str):
            raise TypeError(f"fsync policy must be a string or FsyncPolicy, got {text!r}")
        mode, sep, interval = text.strip().partition(":")
        try:
            parsed_mode = FsyncMode(mode.strip().lower())
        except ValueError:
            raise ValueError(
                f"unknown fsync policy {text!r}; use 'always', 'batch', 'batch:<ms>' or 'never'"
            ) from None
        if not sep:
            return cls(parsed_mode)
        if parsed_mode is not FsyncMode.BATCH:
            raise ValueError(f"fsync policy {text!r}: only 'batch' takes an interval")
        value = interval.strip().removesuffix("ms").strip()
        try:
            ms = float(value)
        except ValueError:
            raise ValueError(f"fsync policy {text!r}: interval {interval!r} is not a number of ms") from None
        return cls(FsyncMode.BATCH, ms)

    def __str__(self) -> str:
        return f"batch:{self.interval_ms:g}" if self.mode is FsyncMode.BATCH else self.mode.value
