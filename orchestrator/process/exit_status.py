"""How a child process ended: an exit code or a signal, recorded as a value.

Kept apart from the process handle so that pure code (the restart policy) can classify an
ending without depending on processes, and so that tests can build statuses directly.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from orchestrator.process.exit_codes import exit_code_name


def signal_name(signum: int) -> str:
    """``SIGKILL`` for 9; ``signal 64`` for a number the platform does not name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """The end of a process, in the ``subprocess`` convention.

    ``returncode`` >= 0 is the exit code; a negative value ``-N`` means the process was killed by
    signal N. Exactly one of :attr:`exit_code` and :attr:`signal` is not None.
    """

    returncode: int

    @property
    def exit_code(self) -> int | None:
        """The code passed to ``exit()``, or None if a signal ended the process."""
        return self.returncode if self.returncode >= 0 else None

    @property
    def signal(self) -> int | None:
        """The number of the signal that ended the process, or None if it exited."""
        return -self.returncode if self.returncode < 0 else None

    def describe(self) -> str:
        """Human-readable: ``exit code 3 (FAULTED)``, ``exit code 17``, ``killed by SIGKILL``."""
        if self.signal is not None:
            return f"killed by {signal_name(self.signal)}"
        name = exit_code_name(self.returncode)
        return f"exit code {self.returncode}" + (f" ({name})" if name else "")
