"""A small per-node logger that never touches process-global state.

Why not the stdlib ``logging`` module: its configuration is global to the process, so two kernels
in one process (a sweep worker, a test) would share handlers and levels, and its machinery is too
slow for a hot path that may call ``debug()`` per tick. This logger is an ordinary object owned by
one node: a level, a sink (any ``callable(str)``) and optionally a clock, so that a backtest stamps
its lines with simulated time.

A call below the level costs one integer comparison: levels are stored as plain ints and each
method starts with ``if self._level <= <constant>``.
"""

from __future__ import annotations

import enum
import sys
import time
from collections.abc import Callable
from typing import Any


class LogLevel(enum.IntEnum):
    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40
    OFF = 100  # as a logger's level: log nothing


# Plain-int copies so the level check does not go through enum attribute lookups.
_DEBUG = 10
_INFO = 20
_WARNING = 30
_ERROR = 40
_OFF = 100

Sink = Callable[[str], object]


class InvalidLogLevel(ValueError):
    """A level was given that is not one of LogLevel's names or values."""


def parse_level(level: LogLevel | int | str) -> LogLevel:
    """Accept a LogLevel, its int value or its name in any case (configs give strings)."""
    try:
        if isinstance(level, str):
            return LogLevel[level.strip().upper()]
        return LogLevel(level)
    except (KeyError, ValueError):
        names = ", ".join(lvl.name for lvl in LogLevel)
        raise InvalidLogLevel(f"unknown log level {level!r}; use one of {names}") from None


def stderr_sink(line: str) -> None:
    """Default sink. Looks up ``sys.stderr`` on every call so redirection (tests, daemons) works."""
    sys.stderr.write(line + "\n")


def format_timestamp(ts_ns: int) -> str:
    """UNIX nanoseconds -> ``2024-01-01T00:00:00.000000000Z``."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{nanos:09d}Z"


class Logger:
    """Writes ``<timestamp> [LEVEL] <name>: <message>`` lines to a sink.

    ``child(name)`` returns a logger named ``"<this name>.<name>"`` that shares the sink, clock and
    level; :meth:`set_level` on a logger applies to it and to all its descendants.
    """

    __slots__ = ("_name", "_level", "_sink", "_now", "_children")

    def __init__(
        self,
        name: str,
        level: LogLevel | int | str = LogLevel.INFO,
        sink: Sink | None = None,
        clock: Any = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"logger name must be a non-empty str, got {name!r}")
        if sink is not None and not callable(sink):
            raise TypeError(f"sink must be a callable taking one str, got {sink!r}")
        self._name = name
        self._level: int = int(parse_level(level))
        self._sink: Sink = stderr_sink if sink is None else sink
        # Bound once: the clock (if any) is fixed for the logger's life.
        self._now: Callable[[], int] = time.time_ns if clock is None else clock.timestamp_ns
        self._children: dict[str, Logger] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def level(self) -> LogLevel:
        return LogLevel(self._level)

    def set_level(self, level: LogLevel | int | str) -> None:
        """Change the level of this logger and every child made from it."""
        value = int(parse_level(level))
        self._apply_level(value)

    def _apply_level(self, value: int) -> None:
        self._level = value
        for child in self._children.values():
            child._apply_level(value)

    def is_enabled(self, level: LogLevel | int) -> bool:
        """True if a message at ``level`` would be written."""
        return self._level <= level < _OFF

    def child(self, component_name: str) -> Logger:
        """Logger for a component; the same object is returned for the same name."""
        existing = self._children.get(component_name)
        if existing is not None:
            return existing
        if not isinstance(component_name, str) or not component_name:
            raise ValueError(f"child logger name must be a non-empty str, got {component_name!r}")
        child = Logger.__new__(Logger)  # skip re-validating what the parent already checked
        child._name = f"{self._name}.{component_name}"
        child._level = self._level
        child._sink = self._sink
        child._now = self._now
        child._children = {}
        self._children[component_name] = child
        return child

    def _write(self, label: str, msg: str) -> None:
        self._sink(f"{format_timestamp(self._now())} [{label}] {self._name}: {msg}")

    def debug(self, msg: str) -> None:
        if self._level <= _DEBUG:
            self._write("DEBUG", msg)

    def info(self, msg: str) -> None:
        if self._level <= _INFO:
            self._write("INFO", msg)

    def warning(self, msg: str) -> None:
        if self._level <= _WARNING:
            self._write("WARNING", msg)

    def error(self, msg: str) -> None:
        if self._level <= _ERROR:
            self._write("ERROR", msg)

    def exception(self, msg: str, exc: BaseException) -> None:
        """Log ``msg`` at ERROR with the exception and its traceback (one multi-line record)."""
        if self._level <= _ERROR:
            import traceback  # only paid for when an error is actually logged

            detail = "".join(traceback.format_exception(exc)).rstrip("\n")
            self._write("ERROR", f"{msg}: {type(exc).__name__}: {exc}\n{detail}")

    def __repr__(self) -> str:
        return f"Logger(name={self._name!r}, level={LogLevel(self._level).name})"
