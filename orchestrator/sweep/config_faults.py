"""Backtest failures that are config mistakes, told apart from failures of the job itself.

Why: some bad values can only be found once the node holds them. A ``trade_size`` that the
instrument's size precision cannot hold is found by the strategy's ``on_start``
(StrategyConfigError), negative starting balances by the simulated account
(AccountConfigError), and a data ``path`` that names a directory by the loader. They used to
end a ``backtest`` with exit 1 and a traceback, as if the backtest had broken while running.
They are bad config: ``backtest`` exits 2 with one line naming the key, as for any config
error, and a sweep records the run as failed with that line, with no traceback on stderr (the
traceback stays in the store's ``attempts`` table).

The node logs a failed ``on_start`` with its traceback before the exception reaches us;
``HeldTracebacks`` keeps such log records back until the run's end, then prints them unless the
run ended in the config error they report.
"""

from __future__ import annotations

from pathlib import Path

from node.backtest.account import AccountConfigError
from node.backtest.config import ConfigError
from node.persistence.load_errors import DataLoadError
from node.strategies import StrategyConfigError

_QUIET = (StrategyConfigError, AccountConfigError)


def check_data_paths(config) -> None:
    """Refuse a data ``path`` that is a directory, as a ConfigError naming its key."""
    for i, data in enumerate(config.data):
        if data.path is not None and Path(data.path).is_dir():
            raise ConfigError(
                f"data[{i}].path", f"{data.path} is a directory; give a data file (.csv or .parquet)"
            )


def as_config_error(exc: BaseException, config) -> ConfigError | None:
    """``exc`` as a ConfigError naming the key when it is a config mistake, else None."""
    if isinstance(exc, ConfigError):
        return exc
    if isinstance(exc, StrategyConfigError):
        reason = str(exc).split(": ", 1)[-1]
        return ConfigError(_strategy_key(config, exc.field), reason)
    if isinstance(exc, AccountConfigError):
        return ConfigError(_venue_key(config, str(exc)), str(exc))
    if isinstance(exc, DataLoadError) and Path(exc.file).is_dir():
        for i, data in enumerate(config.data):
            if data.path is not None and str(data.path) == exc.file:
                return ConfigError(f"data[{i}].path", f"{exc.file} is a directory; give a data file")
    return None


def _strategy_key(config, field: str) -> str:
    """``strategies[i].config.<field>`` when exactly one strategy sets the field, else the field."""
    having = [i for i, spec in enumerate(config.strategies) if field in spec.config]
    if len(having) == 1:
        return f"strategies[{having[0]}].config.{field}"
    if len(config.strategies) == 1:
        return f"strategies[0].config.{field}"
    return f"strategies[*].config.{field}"


def _venue_key(config, message: str) -> str:
    """``venues[i]`` of the venue whose account the message names (``account SIM-001: ...``)."""
    for i, venue in enumerate(config.venues):
        if f"account {venue.name}-" in message or f"account {venue.name}:" in message:
            balances = "starting balances" in message or "starting_balances" in message
            return f"venues[{i}].starting_balances" if balances else f"venues[{i}]"
    return "venues"


class HeldTracebacks:
    """A log sink that holds back records carrying a config error's traceback (module docstring)."""

    def __init__(self, sink) -> None:
        self._sink = sink
        self._held: list[str] = []

    def __call__(self, line: str) -> None:
        first = line.split("\n", 1)[0]
        if "\n" in line and any(f"{cls.__name__}:" in first for cls in _QUIET):
            self._held.append(line)
        else:
            self._sink(line)

    def release(self) -> None:
        """The run did not end in a config error: print what was held, in order."""
        held, self._held = self._held, []
        for line in held:
            self._sink(line)

    def drop(self) -> None:
        self._held = []
