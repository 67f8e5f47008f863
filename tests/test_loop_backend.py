"""What the node needs of its loop (``node.live.loop_backend``) behaves alike on trio and asyncio."""

from __future__ import annotations

import threading

import anyio
import pytest
import trio

from node.live.loop_backend import current_backend, open_task_group, thread_waker

BACKENDS = ["asyncio", "trio"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_tasks_start_run_and_are_cancelled_as_the_node_uses_them(backend):
    ran: list[str] = []

    async def worker(label: str) -> None:
        ran.append(label)
        await anyio.sleep_forever()

    async def started(*, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started("ready")
        await anyio.sleep_forever()

    async def main() -> str:
        with anyio.fail_after(5):
            async with open_task_group() as group:
                group.start_soon(worker, "a", name="node:a")
                value = await group.start(started, name="node:started")
                await anyio.wait_all_tasks_blocked()
                group.cancel_scope.cancel()
        return value

    assert anyio.run(main, backend=backend) == "ready"
    assert ran == ["a"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_task_comes_out_as_an_exception_group(backend):
    async def boom() -> None:
        raise ValueError("boom")

    async def main() -> None:
        async with open_task_group() as group:
            group.start_soon(boom, name="node:boom")
            await anyio.sleep_forever()

    with pytest.raises(ExceptionGroup) as info:
        anyio.run(main, backend=backend)
    assert info.group_contains(ValueError, match="boom")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_thread_waker_runs_a_call_on_the_loop_from_another_thread(backend):
    async def main() -> tuple[int, int]:
        loop_thread = threading.get_ident()
        waker = thread_waker()
        called = anyio.Event()
        ran_on: list[int] = []

        def on_loop() -> None:
            ran_on.append(threading.get_ident())
            called.set()

        thread = threading.Thread(target=waker, args=(on_loop,))
        thread.start()
        with anyio.fail_after(5):
            await called.wait()
        thread.join()
        return loop_thread, ran_on[0]

    loop_thread, ran_on = anyio.run(main, backend=backend)
    assert ran_on == loop_thread


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_thread_waker_raises_once_its_loop_has_ended(backend):
    async def main():
        return thread_waker()

    waker = anyio.run(main, backend=backend)
    with pytest.raises(trio.RunFinishedError if backend == "trio" else RuntimeError):
        waker(lambda: None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_backend_is_named_as_the_node_reports_it(backend):
    async def main() -> str:
        return current_backend()

    assert anyio.run(main, backend=backend) == backend
