"""TradingNode configuration: the dataclasses, their defaults (in one place), and the TOML reader.

Parsing reuses the backtest's pieces (``VenueConfig``, ``build_instrument``, ``StrategySpec``,
``build_risk``, ``ConfigError`` and its table reader), so a venue, instrument, strategy or risk
table means exactly the same in a sandbox config as in a backtest config, and every error names
its key path (``data_clients[0].rate: must be positive, got -1``). The CLI adds the file name.

A config file looks like ``configs/sandbox.toml``::

    [node]                      # trader_id, environment, log_level, liveness_interval_s, backend
    [node.timeouts]             # connection, reconciliation, portfolio, strategies,
                                # disconnection, post_stop, shutdown (seconds)
    [node.queues]               # capacity, data_capacity, data_overflow, stream_capacity
    [streaming]                 # patterns = [...]
    [state]                     # path = "state/node.sqlite", synchronous = "full" | "normal"
    [[venues]]                  # sandbox: one simulated exchange each (as in a backtest)
    [[instruments]]
    [[data_clients]]            # type = "random_walk" | "replay" | a factory the host registered
    [[exec_clients]]            # live adapters: type = a registered factory
    [[strategies]]
    [risk]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.backtest.config import (
    ConfigError,
    StrategySpec,
    VenueConfig,
    _Reader,
    _tables,
    build_instrument,
    build_risk,
)
from node.live.queues import OverflowPolicy
from node.live.random_walk import RandomWalkConfig
from node.live.replay import ReplayConfig
from node.live.streaming import DEFAULT_STREAM_PATTERNS, MIN_STREAM_CAPACITY
from node.risk.engine import RiskConfig
from node.system.kernel import Environment

BACKENDS = ("asyncio", "trio")


@dataclass(frozen=True)
class NodeTimeouts:
    """Seconds each step may take. Start-up steps that overrun end the node with StartupTimeout."""

    connection: float = 10.0  # every client connected
    reconciliation: float = 10.0  # venues reported their state
    portfolio: float = 10.0  # every venue's account is in the cache
    strategies: float = 10.0  # strategies started and their subscriptions applied
    disconnection: float = 10.0  # every client disconnected (on stop)
    post_stop: float = 5.0  # residual commands/events applied and streamed (on stop)
    shutdown: float = 30.0  # dispose() waits this long for a running node to stop

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(
                    f"node.timeouts.{name}", f"must be a positive number of seconds, got {value!r}"
                )


@dataclass(frozen=True)
class QueueConfig:
    """Capacities of the engine queues; see node.live.queues for what happens when one is full."""

    capacity: int = 100_000  # each command/event queue (never drops)
    data_capacity: int = 100_000  # market data
    data_overflow: OverflowPolicy = OverflowPolicy.DROP_OLDEST
    stream_capacity: int = 100_000  # messages buffered for the external stream's sink

    def __post_init__(self) -> None:
        for name in ("capacity", "data_capacity", "stream_capacity"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"node.queues.{name}", f"must be an integer >= 1, got {value!r}")
        object.__setattr__(self, "data_overflow", OverflowPolicy(self.data_overflow))


STATE_SYNCHRONOUS = ("full", "normal", "extra")
STATE_REQUIRED_PATTERNS = ("events.order.*", "events.account.*")
"""Topics the state store is built from: a node with a store must stream them."""


@dataclass(frozen=True)
class StateConfig:
    """Where the node keeps its durable state (``node.persistence.store``), and how safely.

    ``synchronous``: "full" (default) fsyncs every commit and survives a power cut; "normal"
    survives a crash of the process (kill -9) but may lose the last commits on power loss.
    """

    path: Path
    synchronous: str = "full"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.synchronous not in STATE_SYNCHRONOUS:
            raise ConfigError(
                "state.synchronous",
                f"must be one of {', '.join(STATE_SYNCHRONOUS)}, got {self.synchronous!r}",
            )


@dataclass(frozen=True)
class ClientSpec:
    """One client to build: the factory registered under ``factory`` is called with (name, config)."""

    factory: str
    name: str
    config: Any = None


@dataclass(frozen=True)
class TradingNodeConfig:
    trader_id: str = "TRADER-001"
    environment: Environment = Environment.SANDBOX
    log_level: str = "INFO"
    risk: RiskConfig = field(default_factory=RiskConfig)
    instruments: tuple = ()
    data_clients: tuple[ClientSpec, ...] = ()
    exec_clients: tuple[ClientSpec, ...] = ()
    strategies: tuple[StrategySpec, ...] = ()
    timeouts: NodeTimeouts = field(default_factory=NodeTimeouts)
    queues: QueueConfig = field(default_factory=QueueConfig)
    stream_patterns: tuple[str, ...] = DEFAULT_STREAM_PATTERNS
    liveness_interval_s: float = 1.0
    backend: str = "asyncio"  # the event loop run() starts (run_async uses the host's)
    state: StateConfig | None = None  # None: nothing survives the process (tests, throwaway runs)

    def __post_init__(self) -> None:
        object.__setattr__(self, "environment", Environment(self.environment))
        if self.environment is Environment.BACKTEST:
            raise ConfigError(
                "node.environment", "a TradingNode runs 'sandbox' or 'live'; use the backtest CLI"
            )
        if self.backend not in BACKENDS:
            raise ConfigError("node.backend", f"must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if not self.liveness_interval_s > 0:
            raise ConfigError(
                "node.liveness_interval_s", f"must be positive, got {self.liveness_interval_s!r}"
            )
        if self.state is not None:
            if not isinstance(self.state, StateConfig):
                raise ConfigError("state", f"must be a StateConfig, got {type(self.state).__name__}")
            missing = [p for p in STATE_REQUIRED_PATTERNS if p not in self.stream_patterns]
            if missing:
                raise ConfigError(
                    "streaming.patterns",
                    f"a node with a [state] store is rebuilt from its order and account events: add {missing}",
                )


def sandbox_exec_clients(venues) -> tuple[ClientSpec, ...]:
    """One simulated-exchange client per venue (what [[venues]] means in a sandbox config)."""
    return tuple(ClientSpec("sandbox", v.name, v) for v in venues)


def _client_specs(root: _Reader, key: str, base_dir: Path) -> tuple[ClientSpec, ...]:
    specs = []
    for i, table in enumerate(_tables(root.get(key, list, []), key)):
        path = f"{key}[{i}]"
        if not isinstance(table, dict):
            raise ConfigError(path, f"must be a table, got {type(table).__name__}")
        rest = dict(table)
        kind = rest.pop("type", None)
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"{path}.type", "is required (e.g. 'random_walk', 'replay')")
        name = rest.pop("name", kind.upper())
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{path}.name", f"must be a non-empty string, got {name!r}")
        if key == "data_clients" and kind == "random_walk":
            config = RandomWalkConfig.from_dict(rest, path)
        elif key == "data_clients" and kind == "replay":
            config = ReplayConfig.from_dict(rest, path, base_dir)
        else:
            config = rest  # a host-registered factory validates its own table
        specs.append(ClientSpec(kind, name, config))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(key, f"client names must be unique, got {names}")
    return tuple(specs)


def _float(r: _Reader, name: str, default: float) -> float:
    return float(r.positive(name, (int, float), default))


def load_node_config(doc: dict, base_dir: Path | str = ".") -> TradingNodeConfig:
    """Build a TradingNodeConfig from a parsed TOML document; raises ConfigError naming the key."""
    base_dir = Path(base_dir)
    root = _Reader(doc, "")
    n = _Reader(root.get("node", dict, {}), "node")
    trader_id = n.get("trader_id", str, "TRADER-001")
    environment = n.get("environment", str, "sandbox", choices=("sandbox", "live"))
    log_level = n.get("log_level", str, "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "OFF"))
    liveness = _float(n, "liveness_interval_s", 1.0)
    backend = n.get("backend", str, "asyncio", choices=BACKENDS)
    t = _Reader(n.get("timeouts", dict, {}), "node.timeouts")
    defaults = NodeTimeouts()
    timeouts = NodeTimeouts(**{name: _float(t, name, getattr(defaults, name)) for name in defaults.__dict__})
    t.done()
    q = _Reader(n.get("queues", dict, {}), "node.queues")
    queues = QueueConfig(
        capacity=q.positive("capacity", int, 100_000),
        data_capacity=q.positive("data_capacity", int, 100_000),
        data_overflow=OverflowPolicy(
            q.get("data_overflow", str, "drop_oldest", choices=tuple(p.value for p in OverflowPolicy))
        ),
        stream_capacity=q.positive("stream_capacity", int, 100_000),
    )
    if queues.stream_capacity < MIN_STREAM_CAPACITY:  # see there: what a start publishes at once
        raise ConfigError(
            q.key("stream_capacity"),
            f"must be at least {MIN_STREAM_CAPACITY}, got {queues.stream_capacity}: a node's start "
            "publishes several messages at once (2 per strategy), more than a smaller buffer holds",
        )
    q.done()
    n.done()
    s = _Reader(root.get("streaming", dict, {}), "streaming")
    patterns = s.get("patterns", list, list(DEFAULT_STREAM_PATTERNS))
    s.done()
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(f"streaming.patterns[{i}]", f"must be a non-empty string, got {pattern!r}")
    state = _state_config(root.get("state", dict, None), base_dir)
    venues = tuple(
        VenueConfig.from_dict(v, f"venues[{i}]")
        for i, v in enumerate(_tables(root.get("venues", list, []), "venues"))
    )
    instruments = tuple(
        build_instrument(v, f"instruments[{i}]")
        for i, v in enumerate(_tables(root.get("instruments", list, []), "instruments"))
    )
    data_clients = _client_specs(root, "data_clients", base_dir)
    exec_clients = _client_specs(root, "exec_clients", base_dir)
    strategies = tuple(
        StrategySpec.from_dict(v, f"strategies[{i}]")
        for i, v in enumerate(_tables(root.get("strategies", list, []), "strategies"))
    )
    risk = build_risk(root.get("risk", dict, {}), "risk")
    root.done()
    venue_names = [v.name for v in venues]
    if len(set(venue_names)) != len(venue_names):
        raise ConfigError("venues", f"duplicate venue names: {venue_names}")
    if environment == "sandbox":
        if exec_clients:
            raise ConfigError(
                "exec_clients", "a sandbox node trades on simulated [[venues]]; remove [[exec_clients]]"
            )
        exec_clients = sandbox_exec_clients(venues)
    elif venues:
        raise ConfigError(
            "venues", "simulated [[venues]] are for environment = 'sandbox'; use [[exec_clients]]"
        )
    known = {str(i.id) for i in instruments}
    for i, instrument in enumerate(instruments):
        if environment == "sandbox" and str(instrument.id.venue) not in venue_names:
            raise ConfigError(f"instruments[{i}].id", f"venue {instrument.id.venue} is not in [[venues]]")
    for i, spec in enumerate(data_clients):
        ids = getattr(spec.config, "instruments", None) or ()
        single = getattr(spec.config, "instrument_id", None)
        for iid in (*ids, *((single,) if single else ())):
            if iid not in known:
                raise ConfigError(f"data_clients[{i}]", f"instrument {iid} is not in [[instruments]]")
    if not strategies:
        raise ConfigError("strategies", "at least one [[strategies]] table is required")
    for i, spec in enumerate(strategies):
        key = f"strategies[{i}]"
        for iid in _strategy_instruments(spec.load(key)[1]):
            if iid not in known:
                raise ConfigError(
                    f"{key}.config.instrument_id",
                    f"instrument {iid} is not in [[instruments]] (known: {', '.join(sorted(known)) or 'none'})",
                )
    return TradingNodeConfig(
        trader_id=trader_id,
        environment=Environment(environment),
        log_level=log_level,
        risk=risk,
        instruments=instruments,
        data_clients=data_clients,
        exec_clients=exec_clients,
        strategies=strategies,
        timeouts=timeouts,
        queues=queues,
        stream_patterns=tuple(patterns),
        liveness_interval_s=liveness,
        backend=backend,
        state=state,
    )


def _strategy_instruments(config) -> tuple[str, ...]:
    """The instruments a strategy's config names by the usual fields (``instrument_id``,
    ``instrument_ids``): checked at load, so `validate` finds a typo that would otherwise fail
    every start of the node at its 'strategies' step, restart after restart."""
    single = getattr(config, "instrument_id", None)
    many = getattr(config, "instrument_ids", None) or ()
    return tuple(str(i) for i in (*((single,) if single is not None else ()), *many))


def _state_config(table: dict | None, base_dir: Path) -> StateConfig | None:
    if table is None:
        return None
    r = _Reader(table, "state")
    path = r.get("path", str)
    synchronous = r.get("synchronous", str, "full", choices=STATE_SYNCHRONOUS)
    r.done()
    if not path.strip():
        raise ConfigError("state.path", "must name the node's state file, e.g. 'state/node.sqlite'")
    full = Path(path)
    return StateConfig(full if full.is_absolute() else base_dir / full, synchronous)


def load_node_config_file(path: str | Path) -> TradingNodeConfig:
    """Read and parse a TOML file; TOML syntax errors become ConfigError too."""
    import tomllib

    path = Path(path)
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("<file>", f"{path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("<toml>", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "<file>", f"not valid UTF-8 (byte offset {exc.start}): a TOML file is UTF-8 text"
        ) from None
    except OSError as exc:  # a directory, no permission, a file where a directory should be
        raise ConfigError("<file>", f"cannot read {path}: {exc.strerror}") from None
    return load_node_config(doc, path.parent)


__all__ = [
    "ClientSpec",
    "NodeTimeouts",
    "QueueConfig",
    "StateConfig",
    "TradingNodeConfig",
    "load_node_config",
    "load_node_config_file",
    "sandbox_exec_clients",
]
