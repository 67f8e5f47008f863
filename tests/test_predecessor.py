"""``wait_for_predecessor``: a replacement waits for the process it replaces, on a real pidfd."""

from __future__ import annotations

import signal
import subprocess

import pytest
import trio
import trio.testing

from orchestrator.child.predecessor import wait_for_predecessor


@pytest.mark.trio
async def test_a_reaped_process_or_none_is_no_wait():
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid names nothing any more
    with trio.fail_after(5):
        assert await wait_for_predecessor(gone.pid) is True
        assert await wait_for_predecessor(0) is True


@pytest.mark.trio
async def test_the_wait_ends_when_the_process_dies_and_gives_up_after_its_bound():
    alive = subprocess.Popen(["sleep", "60"])
    try:
        with trio.fail_after(5):
            assert await wait_for_predecessor(alive.pid, timeout_s=0.05) is False  # still alive
            async with trio.open_nursery() as nursery:
                result = []

                async def wait() -> None:
                    result.append(await wait_for_predecessor(alive.pid))

                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
                assert result == []  # parked on the pidfd while the process lives
                alive.send_signal(signal.SIGKILL)  # a zombie until reaped: dead is enough
            assert result == [True]
    finally:
        alive.kill()
        alive.wait()
