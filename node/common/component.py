"""The lifecycle every engine, actor and strategy shares.

Why one finite-state machine for all of them: the kernel, the orchestrator (through the events
published here) and the tests all reason about "is this thing running / stopped / faulted" in the
same vocabulary, and an illegal request (say, resetting a running strategy) is refused in one place
with one error instead of being half-handled by each subclass.

The legal moves live in exactly one table, ``TRANSITIONS``, copied from DESIGN.md section 2. Nothing
else in this module decides which move is legal; the templates (``start()``, ``stop()``, ...) only
say which trigger to fire before and after the user's hook.

Layering: ``common`` sits below ``msgbus``, so this module never imports the bus. It only needs
something with ``publish(topic, msg)``, a clock with ``timestamp_ns()`` and a logger with
``child(name)`` / ``exception(msg, exc)``; any object offering those will do.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


class ComponentState(enum.IntEnum):
    """Where a component is in its life. Names and meaning fixed by DESIGN.md section 2."""

    PRE_INITIALIZED = 0
    READY = 1
    STARTING = 2
    RUNNING = 3
    STOPPING = 4
    STOPPED = 5
    RESUMING = 6
    RESETTING = 7
    DISPOSING = 8
    DISPOSED = 9
    DEGRADING = 10
    DEGRADED = 11
    FAULTING = 12
    FAULTED = 13


class ComponentTrigger(enum.IntEnum):
    """What can be asked of a component. ``*_COMPLETED`` ends a transitory state."""

    INITIALIZE = 0
    START = 1
    START_COMPLETED = 2
    STOP = 3
    STOP_COMPLETED = 4
    RESUME = 5
    RESUME_COMPLETED = 6
    RESET = 7
    RESET_COMPLETED = 8
    DISPOSE = 9
    DISPOSE_COMPLETED = 10
    DEGRADE = 11
    DEGRADE_COMPLETED = 12
    FAULT = 13
    FAULT_COMPLETED = 14


_S = ComponentState
_T = ComponentTrigger

TRANSITIONS: Mapping[tuple[ComponentState, ComponentTrigger], ComponentState] = MappingProxyType(
    {
        (_S.PRE_INITIALIZED, _T.INITIALIZE): _S.READY,
        (_S.READY, _T.RESET): _S.RESETTING,
        (_S.READY, _T.START): _S.STARTING,
        (_S.READY, _T.DISPOSE): _S.DISPOSING,
        (_S.RESETTING, _T.RESET_COMPLETED): _S.READY,
        (_S.STARTING, _T.START_COMPLETED): _S.RUNNING,
        (_S.STARTING, _T.STOP): _S.STOPPING,
        (_S.STARTING, _T.FAULT): _S.FAULTING,
        (_S.RUNNING, _T.STOP): _S.STOPPING,
        (_S.RUNNING, _T.DEGRADE): _S.DEGRADING,
        (_S.RUNNING, _T.FAULT): _S.FAULTING,
        (_S.RESUMING, _T.RESUME_COMPLETED): _S.RUNNING,
        (_S.RESUMING, _T.STOP): _S.STOPPING,
        (_S.RESUMING, _T.FAULT): _S.FAULTING,
        (_S.STOPPING, _T.STOP_COMPLETED): _S.STOPPED,
        (_S.STOPPING, _T.FAULT): _S.FAULTING,
        (_S.STOPPED, _T.RESET): _S.RESETTING,
        (_S.STOPPED, _T.RESUME): _S.RESUMING,
        (_S.STOPPED, _T.DISPOSE): _S.DISPOSING,
        (_S.STOPPED, _T.FAULT): _S.FAULTING,
        (_S.DEGRADING, _T.DEGRADE_COMPLETED): _S.DEGRADED,
        (_S.DEGRADED, _T.RESUME): _S.RESUMING,
        (_S.DEGRADED, _T.STOP): _S.STOPPING,
        (_S.DEGRADED, _T.FAULT): _S.FAULTING,
        (_S.DISPOSING, _T.DISPOSE_COMPLETED): _S.DISPOSED,
        (_S.FAULTING, _T.FAULT_COMPLETED): _S.FAULTED,
    }
)
"""The only statement of which (state, trigger) moves are legal. Read-only on purpose."""

# Derived from TRANSITIONS (never written by hand) so error messages can list what *is* allowed.
_VALID_TRIGGERS: Mapping[ComponentState, tuple[ComponentTrigger, ...]] = MappingProxyType(
    {s: tuple(t for (st, t) in TRANSITIONS if st is s) for s in ComponentState}
)


class ComponentError(Exception):
    """Base class for lifecycle errors, so a caller can catch them as a family."""


class InvalidStateTrigger(ComponentError):
    """A trigger was fired that the transition table does not allow from the current state."""

    def __init__(self, component_id: str, state: ComponentState, trigger: ComponentTrigger) -> None:
        self.component_id = component_id
        self.state = state
        self.trigger = trigger
        valid = _VALID_TRIGGERS[state]
        allowed = (
            ", ".join(t.name for t in valid) if valid else "none (terminal state; create a new instance)"
        )
        super().__init__(
            f"component '{component_id}' in state {state.name} cannot take trigger {trigger.name}; "
            f"valid triggers here: {allowed}"
        )


class ComponentAlreadyRegistered(ComponentError):
    """``register_base`` was called on a component that has already been wired and initialized."""


class ComponentFSM:
    """Holds one state and moves it only along ``TRANSITIONS``.

    Kept separate from :class:`Component` so the table can be tested exhaustively without any
    clock, bus or hook getting in the way.
    """

    __slots__ = ("state", "_name")

    def __init__(self, name: str = "component", state: ComponentState = ComponentState.PRE_INITIALIZED):
        self._name = name
        self.state = ComponentState(state)

    def can_trigger(self, trigger: ComponentTrigger) -> bool:
        """True if ``trigger`` is legal from the current state (no state change)."""
        return (self.state, trigger) in TRANSITIONS

    def trigger(self, trigger: ComponentTrigger) -> ComponentState:
        """Apply ``trigger`` and return the new state, or raise :class:`InvalidStateTrigger`."""
        new_state = TRANSITIONS.get((self.state, trigger))
        if new_state is None:
            raise InvalidStateTrigger(self._name, self.state, ComponentTrigger(trigger))
        self.state = new_state
        return new_state


@dataclass(frozen=True, slots=True)
class ComponentStateChanged:
    """Published on ``events.system.<component_id>`` after every transition, transitory ones included."""

    component_id: str
    component_type: str
    state: ComponentState
    ts_event: int  # UNIX nanoseconds, from the component's clock (simulated time in a backtest)


# Each public template = (trigger that begins it, hook name, trigger that completes it).
_TEMPLATES: Mapping[str, tuple[ComponentTrigger, str, ComponentTrigger]] = MappingProxyType(
    {
        "start": (_T.START, "on_start", _T.START_COMPLETED),
        "stop": (_T.STOP, "on_stop", _T.STOP_COMPLETED),
        "resume": (_T.RESUME, "on_resume", _T.RESUME_COMPLETED),
        "reset": (_T.RESET, "on_reset", _T.RESET_COMPLETED),
        "dispose": (_T.DISPOSE, "on_dispose", _T.DISPOSE_COMPLETED),
        "degrade": (_T.DEGRADE, "on_degrade", _T.DEGRADE_COMPLETED),
        "fault": (_T.FAULT, "on_fault", _T.FAULT_COMPLETED),
    }
)


class Component:
    """Base for engines, actors and strategies: identity, wiring and the lifecycle templates.

    A component built with both ``clock`` and ``msgbus`` is initialized (READY) at once. One built
    bare (a user's strategy, say) stays PRE_INITIALIZED until the kernel calls :meth:`register_base`.

    Reading the state is on hot paths (an engine may check it per tick), so ``is_running`` is a
    plain bool attribute refreshed on each transition; treat it as read-only. ``state`` is a
    property, which costs a little more but makes an accidental ``self.state = ...`` in a subclass
    fail loudly instead of silently corrupting the lifecycle.
    """

    def __init__(
        self,
        component_id: str,
        clock: Any = None,
        logger: Any = None,
        msgbus: Any = None,
    ) -> None:
        if not isinstance(component_id, str) or not component_id:
            raise ValueError(f"component_id must be a non-empty str, got {component_id!r}")
        self._component_id = component_id
        self._component_type = type(self).__name__
        self._topic = f"events.system.{component_id}"
        self._fsm = ComponentFSM(component_id)
        self._state = ComponentState.PRE_INITIALIZED
        self.is_running = False
        self._clock = None
        self._log = None
        self._msgbus = None
        self._wire(clock, logger, msgbus)
        if clock is not None and msgbus is not None:
            self.initialize()

    # -- wiring ---------------------------------------------------------------------------------

    def _wire(self, clock: Any, logger: Any, msgbus: Any) -> None:
        self._clock = clock
        # The component logs under its own name, e.g. "TRADER-001.DataEngine".
        self._log = logger.child(self._component_id) if logger is not None else None
        self._msgbus = msgbus

    def register_base(self, clock: Any, logger: Any, msgbus: Any) -> None:
        """Wire a component created before the kernel existed, then initialize it (-> READY).

        Raises :class:`ComponentAlreadyRegistered` if it has already left PRE_INITIALIZED: a
        component belongs to one kernel; make a new instance for another.
        """
        if self._state is not ComponentState.PRE_INITIALIZED:
            raise ComponentAlreadyRegistered(
                f"component '{self._component_id}' is already registered (state {self._state.name}); "
                "create a new instance to use it in another kernel"
            )
        self._wire(clock, logger, msgbus)
        self.initialize()

    def initialize(self) -> None:
        """Fire INITIALIZE (PRE_INITIALIZED -> READY)."""
        self._transition(ComponentTrigger.INITIALIZE)

    # -- read-only views ------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._component_id

    @property
    def component_type(self) -> str:
        return self._component_type

    @property
    def state(self) -> ComponentState:
        return self._state

    @property
    def clock(self) -> Any:
        return self._clock

    @property
    def log(self) -> Any:
        """This component's child logger (None until wired with a logger)."""
        return self._log

    @property
    def msgbus(self) -> Any:
        return self._msgbus

    @property
    def is_initialized(self) -> bool:
        """True once the component has left PRE_INITIALIZED (it stays true after disposal)."""
        return self._state is not ComponentState.PRE_INITIALIZED

    @property
    def is_stopped(self) -> bool:
        return self._state is ComponentState.STOPPED

    @property
    def is_disposed(self) -> bool:
        return self._state is ComponentState.DISPOSED

    @property
    def is_degraded(self) -> bool:
        return self._state is ComponentState.DEGRADED

    @property
    def is_faulted(self) -> bool:
        return self._state is ComponentState.FAULTED

    # -- transitions ----------------------------------------------------------------------------

    def _transition(self, trigger: ComponentTrigger) -> ComponentState:
        """Move along the table, refresh the cached views and announce the new state."""
        state = self._fsm.trigger(trigger)
        self._state = state
        self.is_running = state is ComponentState.RUNNING
        bus = self._msgbus
        if bus is not None:
            clock = self._clock
            ts = clock.timestamp_ns() if clock is not None else 0
            bus.publish(
                self._topic,
                ComponentStateChanged(self._component_id, self._component_type, state, ts),
            )
        return state

    def _run_template(self, action: str) -> None:
        begin, hook_name, complete = _TEMPLATES[action]
        # An illegal request raises here, before any user code runs or any state changes.
        entered = self._transition(begin)
        try:
            getattr(self, hook_name)()
        except Exception as exc:
            if self._log is not None:
                self._log.exception(f"{hook_name} failed in state {self._state.name}", exc)
            self._fault_after_failed_hook()
            raise
        # A hook may itself move the component on (on_start deciding to stop(), say); then the
        # transitory state it began in is already over and there is nothing left to complete.
        if self._state is entered:
            self._transition(complete)

    def _fault_after_failed_hook(self) -> None:
        """Drive to FAULTED as far as the table allows, without running more user code.

        The on_fault hook is deliberately not called here: the object is in an unknown state after
        its own hook failed, and a second failure would hide the first. From RESETTING, DISPOSING or
        DEGRADING the table offers no FAULT, so the component stays where the failed hook left it.
        """
        if self._fsm.can_trigger(ComponentTrigger.FAULT):
            self._transition(ComponentTrigger.FAULT)
        if self._fsm.can_trigger(ComponentTrigger.FAULT_COMPLETED):
            self._transition(ComponentTrigger.FAULT_COMPLETED)

    def start(self) -> None:
        """READY -> STARTING -> (on_start) -> RUNNING."""
        self._run_template("start")

    def stop(self) -> None:
        """RUNNING/STARTING/RESUMING/DEGRADED -> STOPPING -> (on_stop) -> STOPPED."""
        self._run_template("stop")

    def resume(self) -> None:
        """STOPPED/DEGRADED -> RESUMING -> (on_resume) -> RUNNING."""
        self._run_template("resume")

    def reset(self) -> None:
        """READY/STOPPED -> RESETTING -> (on_reset) -> READY."""
        self._run_template("reset")

    def dispose(self) -> None:
        """READY/STOPPED -> DISPOSING -> (on_dispose) -> DISPOSED (terminal)."""
        self._run_template("dispose")

    def degrade(self) -> None:
        """RUNNING -> DEGRADING -> (on_degrade) -> DEGRADED."""
        self._run_template("degrade")

    def fault(self) -> None:
        """STARTING/RUNNING/RESUMING/STOPPING/STOPPED/DEGRADED -> FAULTING -> (on_fault) -> FAULTED."""
        self._run_template("fault")

    # -- hooks for subclasses (no-ops by default) ------------------------------------------------

    def on_start(self) -> None:
        """Override to acquire resources and subscribe; runs in STARTING."""

    def on_stop(self) -> None:
        """Override to unsubscribe and cancel work; runs in STOPPING."""

    def on_resume(self) -> None:
        """Override to continue after a stop or degradation; runs in RESUMING."""

    def on_reset(self) -> None:
        """Override to clear state so the component can start afresh; runs in RESETTING."""

    def on_dispose(self) -> None:
        """Override to release everything for good; runs in DISPOSING."""

    def on_degrade(self) -> None:
        """Override to switch to a reduced mode of operation; runs in DEGRADING."""

    def on_fault(self) -> None:
        """Override to clean up after an unrecoverable error; runs in FAULTING."""

    def __repr__(self) -> str:
        return f"{self._component_type}(id={self._component_id!r}, state={self._state.name})"
