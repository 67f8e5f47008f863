"""The component lifecycle: the transition table (exhaustively) and the public templates."""

from __future__ import annotations

import itertools

import pytest

from node.common.clock import TestClock
from node.common.component import (
    TRANSITIONS,
    Component,
    ComponentAlreadyRegistered,
    ComponentFSM,
    ComponentState,
    ComponentStateChanged,
    ComponentTrigger,
    InvalidStateTrigger,
)
from node.common.logging import Logger, LogLevel
from node.msgbus import MessageBus

# Written out by hand from DESIGN.md section 2, by name, independent of the module under test.
DESIGN_TABLE: dict[str, dict[str, str]] = {
    "PRE_INITIALIZED": {"INITIALIZE": "READY"},
    "READY": {"RESET": "RESETTING", "START": "STARTING", "DISPOSE": "DISPOSING"},
    "RESETTING": {"RESET_COMPLETED": "READY"},
    "STARTING": {"START_COMPLETED": "RUNNING", "STOP": "STOPPING", "FAULT": "FAULTING"},
    "RUNNING": {"STOP": "STOPPING", "DEGRADE": "DEGRADING", "FAULT": "FAULTING"},
    "RESUMING": {"RESUME_COMPLETED": "RUNNING", "STOP": "STOPPING", "FAULT": "FAULTING"},
    "STOPPING": {"STOP_COMPLETED": "STOPPED", "FAULT": "FAULTING"},
    "STOPPED": {"RESET": "RESETTING", "RESUME": "RESUMING", "DISPOSE": "DISPOSING", "FAULT": "FAULTING"},
    "DEGRADING": {"DEGRADE_COMPLETED": "DEGRADED"},
    "DEGRADED": {"RESUME": "RESUMING", "STOP": "STOPPING", "FAULT": "FAULTING"},
    "DISPOSING": {"DISPOSE_COMPLETED": "DISPOSED"},
    "DISPOSED": {},
    "FAULTING": {"FAULT_COMPLETED": "FAULTED"},
    "FAULTED": {},
}

STATE_NAMES = [
    "PRE_INITIALIZED", "READY", "STARTING", "RUNNING", "STOPPING", "STOPPED", "RESUMING",
    "RESETTING", "DISPOSING", "DISPOSED", "DEGRADING", "DEGRADED", "FAULTING", "FAULTED",
]  # fmt: skip
TRIGGER_NAMES = [
    "INITIALIZE", "START", "START_COMPLETED", "STOP", "STOP_COMPLETED", "RESUME", "RESUME_COMPLETED",
    "RESET", "RESET_COMPLETED", "DISPOSE", "DISPOSE_COMPLETED", "DEGRADE", "DEGRADE_COMPLETED",
    "FAULT", "FAULT_COMPLETED",
]  # fmt: skip


def test_enums_have_exactly_the_design_members():
    assert [s.name for s in ComponentState] == STATE_NAMES
    assert [t.name for t in ComponentTrigger] == TRIGGER_NAMES


@pytest.mark.parametrize(("state_name", "trigger_name"), list(itertools.product(STATE_NAMES, TRIGGER_NAMES)))
def test_every_state_trigger_pair_matches_design(state_name: str, trigger_name: str):
    fsm = ComponentFSM("X", ComponentState[state_name])
    trigger = ComponentTrigger[trigger_name]
    expected = DESIGN_TABLE[state_name].get(trigger_name)
    if expected is None:
        with pytest.raises(InvalidStateTrigger) as info:
            fsm.trigger(trigger)
        assert fsm.state.name == state_name  # a refused trigger changes nothing
        assert info.value.state.name == state_name and info.value.trigger is trigger
        assert not fsm.can_trigger(trigger)
    else:
        assert fsm.can_trigger(trigger)
        assert fsm.trigger(trigger).name == expected
        assert fsm.state.name == expected


def test_table_has_no_extra_entries_and_is_read_only():
    as_names = {(s.name, t.name): n.name for (s, t), n in TRANSITIONS.items()}
    expected = {(s, t): n for s, row in DESIGN_TABLE.items() for t, n in row.items()}
    assert as_names == expected
    with pytest.raises(TypeError):
        TRANSITIONS[(ComponentState.DISPOSED, ComponentTrigger.START)] = ComponentState.RUNNING  # type: ignore[index]


def test_error_message_names_component_state_trigger_and_valid_triggers():
    fsm = ComponentFSM("X", ComponentState.RUNNING)
    with pytest.raises(InvalidStateTrigger) as info:
        fsm.trigger(ComponentTrigger.RESET)
    assert str(info.value) == (
        "component 'X' in state RUNNING cannot take trigger RESET; valid triggers here: STOP, DEGRADE, FAULT"
    )


def test_error_message_in_terminal_state_says_there_is_no_way_out():
    with pytest.raises(InvalidStateTrigger, match="none .terminal state"):
        ComponentFSM("X", ComponentState.DISPOSED).trigger(ComponentTrigger.START)


# -- Component templates ---------------------------------------------------------------------------


class Recorder(Component):
    """Records hook calls; a hook named in ``fail`` raises."""

    def __init__(self, *args, fail: str | None = None, **kwargs):
        self.calls: list[str] = []
        self.fail = fail
        super().__init__(*args, **kwargs)

    def _hook(self, name: str) -> None:
        self.calls.append(name)
        if self.fail == name:
            raise RuntimeError(f"boom in {name}")

    def on_start(self):
        self._hook("on_start")

    def on_stop(self):
        self._hook("on_stop")

    def on_resume(self):
        self._hook("on_resume")

    def on_reset(self):
        self._hook("on_reset")

    def on_dispose(self):
        self._hook("on_dispose")

    def on_degrade(self):
        self._hook("on_degrade")

    def on_fault(self):
        self._hook("on_fault")


@pytest.fixture
def wiring():
    clock = TestClock(1_000)
    lines: list[str] = []
    logger = Logger("TRADER-001", level=LogLevel.DEBUG, sink=lines.append, clock=clock)
    bus = MessageBus("TRADER-001", clock)
    return clock, logger, bus, lines


def record_states(bus: MessageBus, component_id: str) -> list[ComponentStateChanged]:
    events: list[ComponentStateChanged] = []
    bus.subscribe(f"events.system.{component_id}", events.append)
    return events


def test_component_built_with_clock_and_bus_is_initialized_and_publishes_ready(wiring):
    clock, logger, bus, _ = wiring
    events = record_states(bus, "C-1")
    c = Recorder("C-1", clock=clock, logger=logger, msgbus=bus)
    assert c.state is ComponentState.READY and c.is_initialized
    assert events == [ComponentStateChanged("C-1", "Recorder", ComponentState.READY, 1_000)]


def test_full_lifecycle_publishes_every_transition_in_order_and_calls_each_hook(wiring):
    clock, logger, bus, _ = wiring
    c = Recorder("C-1", clock=clock, logger=logger, msgbus=bus)
    events = record_states(bus, "C-1")
    c.start()
    assert c.is_running and c.state is ComponentState.RUNNING
    c.degrade()
    assert c.is_degraded and not c.is_running
    c.resume()
    c.stop()
    assert c.is_stopped and not c.is_running
    c.reset()
    c.dispose()
    assert c.is_disposed
    assert [e.state.name for e in events] == [
        "STARTING", "RUNNING", "DEGRADING", "DEGRADED", "RESUMING", "RUNNING",
        "STOPPING", "STOPPED", "RESETTING", "READY", "DISPOSING", "DISPOSED",
    ]  # fmt: skip
    assert c.calls == ["on_start", "on_degrade", "on_resume", "on_stop", "on_reset", "on_dispose"]


def test_events_carry_clock_time_and_component_identity(wiring):
    clock, logger, bus, _ = wiring
    c = Recorder("C-1", clock=clock, logger=logger, msgbus=bus)
    events = record_states(bus, "C-1")
    clock.set_time(5_000)
    c.start()
    assert {(e.component_id, e.component_type, e.ts_event) for e in events} == {("C-1", "Recorder", 5_000)}


def test_is_running_attribute_follows_every_transition(wiring):
    clock, logger, bus, _ = wiring
    c = Recorder("C-1", clock=clock, logger=logger, msgbus=bus)
    seen: list[tuple[str, bool]] = []
    bus.subscribe("events.system.C-1", lambda e: seen.append((e.state.name, c.is_running)))
    c.start()
    c.stop()
    assert seen == [("STARTING", False), ("RUNNING", True), ("STOPPING", False), ("STOPPED", False)]


def test_invalid_template_call_raises_without_running_hook_or_publishing(wiring):
    clock, logger, bus, _ = wiring
    c = Recorder("C-1", clock=clock, logger=logger, msgbus=bus)
    c.start()
    events = record_states(bus, "C-1")
    with pytest.raises(InvalidStateTrigger, match="state RUNNING cannot take trigger RESET"):
        c.reset()
    assert c.calls == ["on_start"] and c.state is ComponentState.RUNNING and events == []


def test_hook_raising_faults_the_component_logs_and_reraises(wiring):
    clock, logger, bus, lines = wiring
    c = Recorder("C-1", clock=clock, logger=logger, msgbus=bus, fail="on_start")
    events = record_states(bus, "C-1")
    with pytest.raises(RuntimeError, match="boom in on_start"):
        c.start()
    assert [e.state.name for e in events] == ["STARTING", "FAULTING", "FAULTED"]
    assert c.is_faulted and not c.is_running
    assert c.calls == ["on_start"]  # on_fault is not run after a failed hook
    assert len(lines) == 1 and "[ERROR] TRADER-001.C-1: on_start failed" in lines[0]
    assert "RuntimeError: boom in on_start" in lines[0]


def test_stop_hook_raising_faults_the_component(wiring):
    clock, logger, bus, _ = wiring
    c = Recorder("C-1", clock=clock, logger=logger, msgbus=bus, fail="on_stop")
    c.start()
    with pytest.raises(RuntimeError):
        c.stop()
    assert c.state is ComponentState.FAULTED


def test_hook_raising_where_table_has_no_fault_leaves_the_transitory_state(wiring):
    clock, logger, bus, _ = wiring
    c = Recorder("C-1", clock=clock, logger=logger, msgbus=bus, fail="on_reset")
    events = record_states(bus, "C-1")
    with pytest.raises(RuntimeError):
        c.reset()
    assert c.state is ComponentState.RESETTING
    assert [e.state.name for e in events] == ["RESETTING"]


def test_on_fault_raising_still_ends_faulted(wiring):
    clock, logger, bus, _ = wiring
    c = Recorder("C-1", clock=clock, logger=logger, msgbus=bus, fail="on_fault")
    c.start()
    events = record_states(bus, "C-1")
    with pytest.raises(RuntimeError, match="boom in on_fault"):
        c.fault()
    assert [e.state.name for e in events] == ["FAULTING", "FAULTED"]


def test_hook_that_moves_the_component_itself_is_not_overridden():
    class StopsAtOnce(Component):
        def on_start(self):
            self.stop()

    clock = TestClock()
    bus = MessageBus("T", clock)
    c = StopsAtOnce("S", clock=clock, msgbus=bus)
    events = record_states(bus, "S")
    c.start()
    assert c.state is ComponentState.STOPPED
    assert [e.state.name for e in events] == ["STARTING", "STOPPING", "STOPPED"]


def test_component_created_bare_is_initialized_by_register_base(wiring):
    clock, logger, bus, _ = wiring
    c = Recorder("S-1")
    assert c.state is ComponentState.PRE_INITIALIZED and not c.is_initialized
    with pytest.raises(InvalidStateTrigger):
        c.start()
    events = record_states(bus, "S-1")
    c.register_base(clock, logger, bus)
    assert c.state is ComponentState.READY
    assert c.clock is clock and c.msgbus is bus and c.log.name == "TRADER-001.S-1"
    assert [e.state for e in events] == [ComponentState.READY]
    with pytest.raises(ComponentAlreadyRegistered, match="create a new instance"):
        c.register_base(clock, logger, bus)


def test_component_without_bus_still_follows_the_table():
    c = Recorder("C-1", clock=TestClock())
    assert c.state is ComponentState.PRE_INITIALIZED  # not wired to a bus yet
    c.initialize()
    c.start()
    assert c.is_running and c.calls == ["on_start"]


def test_state_cannot_be_assigned_by_a_subclass():
    c = Recorder("C-1")
    with pytest.raises(AttributeError):
        c.state = ComponentState.RUNNING  # type: ignore[misc]


def test_components_publish_only_on_their_own_topic(wiring):
    clock, logger, bus, _ = wiring
    a_events = record_states(bus, "A")
    Recorder("A", clock=clock, logger=logger, msgbus=bus)
    b = Recorder("B", clock=clock, logger=logger, msgbus=bus)
    b.start()
    assert [e.component_id for e in a_events] == ["A"]


def test_empty_component_id_is_refused():
    with pytest.raises(ValueError, match="non-empty"):
        Component("")
