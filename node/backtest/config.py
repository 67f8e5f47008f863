"""Backtest run configuration, built from plain dicts (what ``tomllib`` gives).

Every key has a default here, in one place. Validation happens at construction and every
error names the key path, e.g. ``venues[0].oms_type: must be one of NETTING, HEDGING, got
'NET'``; the CLI adds the file name. Paths in data sources are relative to ``base_dir``
(the config file's folder).
"""

from __future__ import annotations

import importlib
import math
import traceback
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from node.model.enums import AccountType, OmsType
from node.model.errors import InvalidValueError
from node.model.identifiers import InstrumentId
from node.model.instruments import CryptoSpot, CurrencyPair, Equity
from node.model.objects import Currency, Money
from node.risk.engine import RiskConfig


class ConfigError(ValueError):
    """A config value that is missing, of the wrong type or impossible; ``key`` is its path."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class _Reader:
    """Reads one table, tracking the key path and refusing unknown keys."""

    def __init__(self, table, path: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(path or "<root>", f"must be a table, got {type(table).__name__}")
        self.table = table
        self.path = path
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, kind, default=..., choices=None):
        self.used.add(name)
        if name not in self.table:
            if default is ...:
                raise ConfigError(self.key(name), "is required")
            return default
        value = self.table[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise ConfigError(self.key(name), f"must be {_kind_names(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            raise ConfigError(
                self.key(name), f"must be {_kind_names(kinds)}, got {type(value).__name__} {value!r}"
            )
        if choices is not None and value not in choices:
            raise ConfigError(self.key(name), f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def positive(self, name: str, kind, default=...):
        value = self.get(name, kind, default)
        if value is not None and not (value > 0 and math.isfinite(value)):  # TOML has nan and inf
            raise ConfigError(self.key(name), f"must be a finite positive number, got {value}")
        return value

    def decimal(self, name: str, default: str = ...) -> Decimal:
        value = self.get(name, (str, int, float), default)
        try:
            dec = Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(self.key(name), f"must be a number, got {value!r}") from None
        if not dec.is_finite():
            raise ConfigError(self.key(name), f"must be finite, got {value!r}")
        return dec

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise ConfigError(
                self.key(unknown[0]), f"unknown key (known keys: {', '.join(sorted(self.used))})"
            )


def _kind_names(kinds) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        dict: "a table",
        list: "a list",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _tables(value, path: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(path, f"must be an array of tables ([[{path}]]), got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class VenueConfig:
    name: str
    starting_balances: tuple[Money, ...]
    oms_type: OmsType = OmsType.NETTING
    account_type: AccountType = AccountType.MARGIN
    base_currency: Currency | None = None
    bar_execution: str = "next_open"

    @classmethod
    def from_dict(cls, table, path: str) -> VenueConfig:
        r = _Reader(table, path)
        name = r.get("name", str)
        oms = r.get("oms_type", str, "NETTING", choices=("NETTING", "HEDGING"))
        account = r.get("account_type", str, "MARGIN", choices=("MARGIN", "CASH"))
        base = r.get("base_currency", str, None)
        balances = r.get("starting_balances", list)
        execution = r.get("bar_execution", str, "next_open", choices=("next_open", "close"))
        r.done()
        try:
            base_currency = Currency.from_str(base) if base else None
        except InvalidValueError as exc:
            raise ConfigError(r.key("base_currency"), str(exc)) from None
        parsed = []
        for i, text in enumerate(balances):
            try:
                parsed.append(Money.from_str(str(text)))
            except (InvalidValueError, ValueError) as exc:
                raise ConfigError(
                    f"{r.key('starting_balances')}[{i}]", f"{exc} (write e.g. '1000000 USD')"
                ) from None
            if parsed[-1].as_decimal() < 0:
                raise ConfigError(f"{r.key('starting_balances')}[{i}]", f"must not be negative, got {text!r}")
        if not parsed:
            raise ConfigError(r.key("starting_balances"), "needs at least one balance, e.g. ['1000000 USD']")
        if account == "MARGIN" and base_currency is None:
            base_currency = parsed[0].currency
        return cls(name, tuple(parsed), OmsType[oms], AccountType[account], base_currency, execution)


_INSTRUMENT_TYPES = ("fx", "crypto", "equity")


def build_instrument(table, path: str):
    r = _Reader(table, path)
    text = r.get("id", str)
    kind = r.get("type", str, "fx", choices=_INSTRUMENT_TYPES)
    price_precision = r.get("price_precision", int, 5)
    size_precision = r.get("size_precision", int, 0)
    fees = {
        "maker_fee": r.decimal("maker_fee", "0.00002"),
        "taker_fee": r.decimal("taker_fee", "0.00002"),
        "margin_init": r.decimal("margin_init", "0.03"),
        "margin_maint": r.decimal("margin_maint", "0.03"),
    }
    quote = r.get("quote_currency", str, None)
    r.done()
    try:
        iid = InstrumentId.from_str(text)
    except InvalidValueError as exc:
        raise ConfigError(r.key("id"), str(exc)) from None
    for name in ("price_precision", "size_precision"):
        value = price_precision if name == "price_precision" else size_precision
        if not 0 <= value <= 9:
            raise ConfigError(r.key(name), f"must be within 0..9, got {value}")
    kwargs = {"price_precision": price_precision, "size_precision": size_precision, **fees}
    try:
        if kind == "equity":
            return Equity(iid, Currency.from_str(quote or "USD"), **kwargs)
        base_code, sep, quote_code = iid.symbol.value.partition("/")
        if not sep:
            raise ConfigError(
                r.key("id"), f"an {kind} instrument symbol must look like 'BASE/QUOTE', got {iid.symbol}"
            )
        cls = CurrencyPair if kind == "fx" else CryptoSpot
        return cls(iid, Currency.from_str(base_code), Currency.from_str(quote_code), **kwargs)
    except InvalidValueError as exc:
        raise ConfigError(path, str(exc)) from None


@dataclass(frozen=True)
class DataConfig:
    """A data source: a CSV/Parquet file, or a seeded random-walk generator."""

    instrument_id: str
    kind: str = "quotes"
    path: Path | None = None
    bar_type: str | None = None
    generator: dict | None = None

    @classmethod
    def from_dict(cls, table, path: str, base_dir: Path) -> DataConfig:
        r = _Reader(table, path)
        iid = r.get("instrument_id", str)
        kind = r.get("kind", str, "quotes", choices=("quotes", "bars"))
        file = r.get("path", str, None)
        bar_type = r.get("bar_type", str, None)
        generator = r.get("generator", dict, None)
        r.done()
        if (file is None) == (generator is None):
            raise ConfigError(path, "give exactly one of 'path' (a data file) or a [generator] table")
        if kind == "bars" and bar_type is None:
            raise ConfigError(r.key("bar_type"), "is required for kind = 'bars'")
        if generator is not None:
            g = _Reader(generator, r.key("generator"))
            g.positive("count", int)
            g.get("seed", int, 42)
            g.positive("interval_s", (int, float), 1)
            g.get("start_price", (str, float, int), "1.10000")
            g.get("start", (str, int), "2024-01-01T00:00:00Z")
            g.done()
        resolved = None
        if file is not None:
            resolved = Path(file) if Path(file).is_absolute() else (base_dir / file)
            if not resolved.exists():
                raise ConfigError(r.key("path"), f"file not found: {resolved}")
            if resolved.is_dir():
                raise ConfigError(
                    r.key("path"), f"{resolved} is a directory; give a data file (.csv or .parquet)"
                )
        return cls(iid, kind, resolved, bar_type, generator)


@dataclass(frozen=True)
class StrategySpec:
    """A strategy by import path (``package.module:Class``) and its config table."""

    path: str
    config: dict = field(default_factory=dict)
    config_path: str | None = None

    @classmethod
    def from_dict(cls, table, path: str) -> StrategySpec:
        r = _Reader(table, path)
        spec = cls(r.get("path", str), dict(r.get("config", dict, {})), r.get("config_path", str, None))
        r.done()
        spec.load(path)  # fail at config time, not half-way into a run
        return spec

    def load(self, key: str = "strategies"):
        """Return (strategy class, built config)."""
        strategy_cls = import_path(self.path, f"{key}.path")
        config_path = self.config_path or f"{self.path}Config"
        config_cls = import_path(config_path, f"{key}.config_path")
        try:
            from_dict = getattr(config_cls, "from_dict", None)
            config = from_dict(self.config) if from_dict else config_cls(**self.config)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{key}.config", str(exc)) from None
        except Exception as exc:  # a bug in the user's config class: say where, as one line
            raise ConfigError(f"{key}.config", f"{config_path} raised {_raised(exc)}") from exc
        return strategy_cls, config

    def build(self, key: str = "strategies"):
        """A new strategy; its constructor raising is a :class:`ConfigError` (a restart won't fix it)."""
        strategy_cls, config = self.load(key)
        try:
            return strategy_cls(config)
        except Exception as exc:
            raise ConfigError(f"{key}.path", f"{self.path}(config) raised {_raised(exc)}") from exc


def import_path(dotted: str, key: str):
    module_name, sep, attr = dotted.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(key, f"must look like 'package.module:Name', got {dotted!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        hint = ""
        if exc.name is not None and module_name.partition(".")[0] == exc.name.partition(".")[0]:
            hint = (
                " (is the directory holding it on PYTHONPATH? modules are found by import, not by file path)"
            )
        raise ConfigError(key, f"cannot import module {module_name!r}: {exc}{hint}") from None
    except ImportError as exc:
        raise ConfigError(key, f"cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # the module raised while it was imported (a SyntaxError included)
        raise ConfigError(key, f"importing module {module_name!r} raised {_raised(exc)}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(key, f"module {module_name!r} has no attribute {attr!r}") from None


def _raised(exc: Exception) -> str:
    """``Type: message (file:line)``: the exception and the innermost place it came from."""
    if isinstance(exc, SyntaxError):  # where the code is wrong, not where the parser was
        return f"{type(exc).__name__}: {exc.msg} ({exc.filename}:{exc.lineno})"
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        text += f" ({frames[-1].filename}:{frames[-1].lineno})"
    return text


def build_risk(table, path: str) -> RiskConfig:
    r = _Reader(table, path)
    kwargs = {
        "bypass": r.get("bypass", bool, False),
        "max_order_quantity": dict(r.get("max_order_quantity", dict, {})),
        "max_notional_per_order": dict(r.get("max_notional_per_order", dict, {})),
        "price_band": r.get("price_band", (float, int, str), None),
        "max_submit_rate": r.positive("max_submit_rate", int, 100),
        "submit_rate_interval_s": r.positive("submit_rate_interval_s", (int, float), 1.0),
    }
    r.done()
    try:
        return RiskConfig(**kwargs)
    except (ValueError, InvalidOperation) as exc:
        raise ConfigError(path, str(exc)) from None


@dataclass(frozen=True)
class BacktestRunConfig:
    run_id: str
    venues: tuple[VenueConfig, ...]
    instruments: tuple
    data: tuple[DataConfig, ...]
    strategies: tuple[StrategySpec, ...]
    trader_id: str = "BACKTESTER-001"
    log_level: str = "WARNING"
    equity_sample_interval_s: float = 3600.0
    risk: RiskConfig = field(default_factory=RiskConfig)

    @classmethod
    def from_dict(cls, doc: dict, base_dir: Path | str = ".") -> BacktestRunConfig:
        base_dir = Path(base_dir)
        root = _Reader(doc, "")
        bt = _Reader(root.get("backtest", dict, {}), "backtest")
        run_id = bt.get("run_id", str, "backtest")
        trader_id = bt.get("trader_id", str, "BACKTESTER-001")
        log_level = bt.get("log_level", str, "WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR", "OFF"))
        interval = bt.positive("equity_sample_interval_s", (int, float), 3600.0)
        bt.done()
        venues = tuple(
            VenueConfig.from_dict(t, f"venues[{i}]")
            for i, t in enumerate(_tables(root.get("venues", list), "venues"))
        )
        instruments = tuple(
            build_instrument(t, f"instruments[{i}]")
            for i, t in enumerate(_tables(root.get("instruments", list), "instruments"))
        )
        data = tuple(
            DataConfig.from_dict(t, f"data[{i}]", base_dir)
            for i, t in enumerate(_tables(root.get("data", list), "data"))
        )
        strategies = tuple(
            StrategySpec.from_dict(t, f"strategies[{i}]")
            for i, t in enumerate(_tables(root.get("strategies", list), "strategies"))
        )
        risk = build_risk(root.get("risk", dict, {}), "risk")
        root.done()
        venue_names = [v.name for v in venues]
        if len(set(venue_names)) != len(venue_names):
            raise ConfigError("venues", f"duplicate venue names: {venue_names}")
        known = {str(i.id) for i in instruments}
        for i, instrument in enumerate(instruments):
            if str(instrument.id.venue) not in venue_names:
                raise ConfigError(f"instruments[{i}].id", f"venue {instrument.id.venue} is not in [[venues]]")
        for i, d in enumerate(data):
            if d.instrument_id not in known:
                raise ConfigError(f"data[{i}].instrument_id", f"{d.instrument_id} is not in [[instruments]]")
        if not strategies:
            raise ConfigError("strategies", "at least one [[strategies]] table is required")
        return cls(run_id, venues, instruments, data, strategies, trader_id, log_level, float(interval), risk)
