"""How a child words its node's end (``orchestrator.child.ending``): the cause, not the wrapper."""

from __future__ import annotations

from node.model.errors import InvalidValueError
from orchestrator.child.ending import describe, node_ending
from orchestrator.process.exit_codes import ChildExit


def test_a_failure_inside_a_task_group_is_named_by_what_failed():
    disk = OSError(28, "No space left on device")
    group = ExceptionGroup("Exceptions from Trio nursery (1 sub-exception)", [disk])
    ending = node_ending("n1", group, "")
    assert ending.code is ChildExit.FAILED
    assert ending.reason == "node 'n1' failed: OSError: [Errno 28] No space left on device"
    nested = BaseExceptionGroup("outer", [ValueError("a"), ExceptionGroup("inner", [KeyError("b")])])
    assert describe(nested) == "ValueError: a; KeyError: 'b'"
    assert describe(RuntimeError("plain")) == "RuntimeError: plain"


def test_invalid_data_inside_a_task_group_still_faults_the_node():
    try:
        try:
            raise InvalidValueError("price is NaN")
        except InvalidValueError as exc:
            raise RuntimeError("the data task stopped") from exc
    except RuntimeError as exc:
        wrapped = exc
    ending = node_ending("n1", ExceptionGroup("nursery", [KeyError("other"), wrapped]), "")
    assert ending.code is ChildExit.FAULTED
    assert (
        "faulted on invalid data" in ending.reason and "RuntimeError: the data task stopped" in ending.reason
    )
    assert node_ending("n1", None, "stop command 'c1'").code is ChildExit.OK
