"""The per-node logger: levels, sink, child naming, simulated time, no global state."""

from __future__ import annotations

import logging as stdlib_logging
import re

import pytest

from node.common.clock import TestClock
from node.common.logging import InvalidLogLevel, Logger, LogLevel, format_timestamp

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z \[(\w+)\] (\S+): (.*)$", re.S)


def test_line_format_uses_simulated_time_from_the_clock():
    clock = TestClock(1_704_067_200_000_000_001)  # 2024-01-01T00:00:00.000000001Z
    lines: list[str] = []
    log = Logger("TRADER-001", sink=lines.append, clock=clock).child("DataEngine")
    log.info("message")
    clock.set_time(1_704_153_600_500_000_000)
    log.warning("later")
    assert lines == [
        "2024-01-01T00:00:00.000000001Z [INFO] TRADER-001.DataEngine: message",
        "2024-01-02T00:00:00.500000000Z [WARNING] TRADER-001.DataEngine: later",
    ]


def test_level_filters_lower_levels():
    lines: list[str] = []
    log = Logger("N", level=LogLevel.WARNING, sink=lines.append)
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [LINE.match(line).group(1, 3) for line in lines] == [("WARNING", "w"), ("ERROR", "e")]


def test_off_logs_nothing_and_debug_logs_everything():
    off: list[str] = []
    log = Logger("N", level=LogLevel.OFF, sink=off.append)
    log.error("e")
    log.exception("x", ValueError("v"))
    assert off == []
    assert not log.is_enabled(LogLevel.ERROR)

    everything: list[str] = []
    log = Logger("N", level="debug", sink=everything.append)
    for method in (log.debug, log.info, log.warning, log.error):
        method("m")
    assert [LINE.match(line).group(1) for line in everything] == ["DEBUG", "INFO", "WARNING", "ERROR"]


def test_is_enabled():
    log = Logger("N", level=LogLevel.INFO, sink=lambda line: None)
    assert not log.is_enabled(LogLevel.DEBUG)
    assert log.is_enabled(LogLevel.INFO) and log.is_enabled(LogLevel.ERROR)
    assert not log.is_enabled(LogLevel.OFF)


def test_child_shares_sink_and_level_and_is_reused():
    lines: list[str] = []
    root = Logger("TRADER-001", level=LogLevel.INFO, sink=lines.append)
    child = root.child("RiskEngine")
    assert child.name == "TRADER-001.RiskEngine"
    assert root.child("RiskEngine") is child
    assert child.child("sub").name == "TRADER-001.RiskEngine.sub"
    child.debug("hidden")
    root.set_level(LogLevel.DEBUG)  # applies to descendants made earlier
    child.debug("shown")
    child.child("sub").debug("deep")
    assert [LINE.match(line).group(2, 3) for line in lines] == [
        ("TRADER-001.RiskEngine", "shown"),
        ("TRADER-001.RiskEngine.sub", "deep"),
    ]


def test_exception_includes_type_message_and_traceback():
    lines: list[str] = []
    log = Logger("N", sink=lines.append)
    try:
        raise KeyError("missing")
    except KeyError as exc:
        log.exception("lookup failed", exc)
    (line,) = lines
    level, name, msg = LINE.match(line).groups()
    assert level == "ERROR" and name == "N"
    assert msg.startswith("lookup failed: KeyError: 'missing'")
    assert "Traceback (most recent call last)" in msg and "test_exception_includes" in msg


def test_default_sink_writes_to_current_stderr(capsys):
    Logger("N").info("to stderr")
    err = capsys.readouterr().err
    assert err.endswith("[INFO] N: to stderr\n")


def test_invalid_level_names_the_valid_ones():
    with pytest.raises(InvalidLogLevel, match="DEBUG, INFO, WARNING, ERROR, OFF"):
        Logger("N", level="verbose")
    with pytest.raises(InvalidLogLevel):
        Logger("N", level=15)


def test_two_loggers_are_independent_and_stdlib_logging_is_untouched():
    root_handlers = list(stdlib_logging.getLogger().handlers)
    a_lines: list[str] = []
    b_lines: list[str] = []
    a = Logger("A", level=LogLevel.ERROR, sink=a_lines.append)
    b = Logger("B", level=LogLevel.DEBUG, sink=b_lines.append)
    a.info("a")
    b.info("b")
    assert a_lines == [] and len(b_lines) == 1
    assert stdlib_logging.getLogger().handlers == root_handlers


def test_format_timestamp_epoch():
    assert format_timestamp(0) == "1970-01-01T00:00:00.000000000Z"
