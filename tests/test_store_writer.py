"""The state store's writer thread (``node.live.store_writer``), on both loops a node runs on."""

from __future__ import annotations

import threading

import anyio
import pytest

from node.live.store_writer import StoreWriter

BACKENDS = ["asyncio", "trio"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_writes_run_in_order_on_one_other_thread_and_return_their_result(backend):
    writer = StoreWriter()
    threads: list[int] = []

    def write(i: int) -> int:
        threads.append(threading.get_ident())
        return i * 10

    async def main() -> list[int]:
        with anyio.fail_after(5):
            return [await writer.run(write, i) for i in range(5)]

    try:
        assert anyio.run(main, backend=backend) == [0, 10, 20, 30, 40]
    finally:
        writer.close()
    assert len(set(threads)) == 1 and threads[0] != threading.get_ident()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failed_write_raises_in_the_caller_and_the_writer_goes_on(backend):
    writer = StoreWriter()

    def fail() -> None:
        raise OSError(28, "No space left on device")

    async def main() -> int:
        with anyio.fail_after(5):
            with pytest.raises(OSError, match="No space left"):
                await writer.run(fail)
            return await writer.run(lambda: 7)

    try:
        assert anyio.run(main, backend=backend) == 7
    finally:
        writer.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cancelled_caller_still_waits_for_its_write_to_finish(backend):
    writer = StoreWriter()
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow_write() -> None:
        started.set()
        release.wait(5)
        finished.append("written")

    async def main() -> None:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:

                async def commit() -> None:
                    await writer.run(slow_write)
                    finished.append("caller resumed")

                group.start_soon(commit)
                await anyio.to_thread.run_sync(started.wait)
                group.cancel_scope.cancel()  # the write is under way: the caller must not leave it
                release.set()
        finished.append("group closed")

    try:
        anyio.run(main, backend=backend)
    finally:
        writer.close()
    # The caller waited for the write and resumed; its cancellation waits for its next checkpoint.
    assert finished == ["written", "caller resumed", "group closed"]


def test_close_ends_the_thread_after_the_writes_handed_over_and_is_idempotent():
    writer = StoreWriter(name="test-writer")

    async def main() -> None:
        await writer.run(lambda: None)

    anyio.run(main, backend="trio")
    thread = next(t for t in threading.enumerate() if t.name == "test-writer")
    writer.close()
    assert not thread.is_alive()
    writer.close()
