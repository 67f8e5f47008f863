"""Child processes of the orchestrator: how they are started, watched, stopped and how they end.

Modules, one idea each (imported on demand; this package re-exports nothing so that the child
entry point pays only for what it uses):

- ``exit_codes``: the exit codes a child uses to say *why* it ended.
- ``exit_status``: the value that records how a child ended (exit code or signal).
- ``pdeathsig``: the child side of "no orphans": die when the parent dies.
- ``spawn``: the parent side: start a child by fork+exec and wait for / stop it.
"""
