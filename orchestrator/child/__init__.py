"""The child side of the orchestrator: the program that runs inside one node's process.

``python -m orchestrator.child --slot SLOT --endpoint ENDPOINT`` asks the kernel to kill it with
its parent, imports everything a node needs, connects a DEALER to the parent's ROUTER, says
``hello`` and waits as a warm spare. An ``assign`` turns it into one TradingNode, whose events it
relays in ``evt`` batches, whose liveness tick it turns into ``hb`` messages and whose commands it
executes; when the node ends it says ``bye`` and exits with a code from
``orchestrator.process.exit_codes``.

Modules, one idea each:

- ``__main__``: the entry point; arms the parent-death signal before anything else.
- ``cli``: the command line and its validation.
- ``warmup``: the imports paid before ``hello`` so that an ``assign`` pays none.
- ``rehearsal``: a spare's throwaway node run before ``hello`` (``--rehearse``), so that the
  assigned node does not pay a first run's costs.
- ``zygote``: the warm process that forks children (``python -m orchestrator.child.zygote``).
- ``session``: the state machine (spare -> node -> ending) and the socket's use.
- ``assignment``: an ``assign`` message -> a TradingNodeConfig.
- ``outbox``: the node's stream -> ``evt`` batches, kept until acked.
- ``heartbeat``: the parent's heartbeat watchdog and the child's heartbeat pacer.
- ``commands``: ``cmd`` names -> node commands.
- ``ending``: how the node's end becomes an exit code and a readable reason.
- ``error_codes``: the ``error.code`` values a child adds to the protocol's.
- ``futures``: waiting in trio for a node command's ``concurrent.futures.Future``.
- ``log``: one-line diagnostics on stderr.

Nothing is imported here: ``python -m orchestrator.child`` must reach ``prctl`` first.
"""
