"""Backtest failures that are config mistakes, told apart from failures of the job itself.

Why: a ``trade_size`` that the instrument's size precision cannot hold is found only by the
strategy's ``on_start`` (StrategyConfigError), once the node holds the instrument. It used to
end a ``backtest`` with exit 1 and a traceback, as if the backtest had broken while running.
It is bad config: ``backtest`` exits 2 with one line naming the key, as for any config error,
and a sweep records the run as failed with that line, with no traceback on stderr (the
traceback stays in the store's ``attempts`` table). Mistakes the config parser can see
(negative starting balances, a data ``path`` that is a directory) are refused there.

The node logs a failed ``on_start`` with its traceback before the exception reaches us;
``HeldTracebacks`` keeps such log records back until the run's end, then prints them unless the
run ended in the config error they report.
"""

from __future__ import annotations

from node.backtest.config import ConfigError
from node.strategies import StrategyConfigError

_QUIET = (StrategyConfigError,)


def as_config_error(exc: BaseException, config) -> ConfigError | None:
    """``exc`` as a ConfigError naming the key when it is a config mistake, else None."""
    if isinstance(exc, ConfigError):
        return exc
    if isinstance(exc, StrategyConfigError):
        reason = str(exc).split(": ", 1)[-1]
        return ConfigError(_strategy_key(config, exc.field), reason)
    return None


def _strategy_key(config, field: str) -> str:
    """``strategies[i].config.<field>`` when exactly one strategy sets the field, else the field."""
    having = [i for i, spec in enumerate(config.strategies) if field in spec.config]
    if len(having) == 1:
        return f"strategies[{having[0]}].config.{field}"
    if len(config.strategies) == 1:
        return f"strategies[0].config.{field}"
    return f"strategies[*].config.{field}"


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
