"""SIGINT/SIGTERM in the sweep parent: a flag and a byte on a socket, never an exception.

Why not let Ctrl-C raise KeyboardInterrupt: it could land between sending a task and noting it
as sent, or in the middle of bookkeeping after a commit, and leave the parent's view of the
workers wrong while it shuts them down. Here a signal only records its number and writes a byte
(``signal.set_wakeup_fd``) to a socket that the parent's ``wait()`` watches, so the loop wakes
at once and stops at a point of its choosing. Outside the main thread (where Python allows no
signal handlers) the catcher is inert and the caller keeps the default behaviour.
"""

from __future__ import annotations

import signal
import socket
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalCatcher:
    def __init__(self) -> None:
        self.received: list[int] = []
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous: dict = {}
        self._previous_fd: int | None = None
        self.active = False

    def __enter__(self) -> SignalCatcher:
        if threading.current_thread() is threading.main_thread():
            self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
            self.active = True
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(self._previous_fd if self._previous_fd is not None else -1)
            self.active = False
        self._reader.close()
        self._writer.close()

    def _handle(self, signum, _frame) -> None:
        self.received.append(signum)

    def fileno(self) -> int:
        return self._reader.fileno()

    def drain(self) -> None:
        try:
            while self._reader.recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    @property
    def name(self) -> str | None:
        return signal.Signals(self.received[0]).name if self.received else None
