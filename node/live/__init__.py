"""The live side of a node: TradingNode, its queues, the sandbox environment and the streaming port.

Start with :class:`node.live.node.TradingNode` (lifecycle and tasks), whose phases are mixins in
``node_build``, ``node_run``, ``node_stop`` and ``node_dispose``; the other modules each hold
one idea: ``states`` (lifecycle table), ``queues`` (bounded queues and overflow policies),
``bridge`` (engines behind queues), ``loop_tasks`` (timers, liveness), ``commands`` (host
commands), ``streaming`` (external stream), ``clients`` (live ports), ``sandbox``/``random_walk``/
``replay`` (sandbox clients), ``config`` (TOML) and ``cli`` (``python -m node.live``).

Nothing is imported here, so ``import node.live.queues`` stays as light as that module.
"""
