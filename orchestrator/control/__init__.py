"""The control socket: how CLI commands reach a running orchestrator (DESIGN §3, §4).

- ``messages``: the request/reply maps (msgpack, versioned, strictly validated);
- ``history``: the bounded in-memory event history the orchestrator keeps per node, which is
  what ``events --since`` can replay until the durable journal (issue #5) lands;
- ``server``: the control ROUTER task served beside the Orchestrator by ``up``;
- ``client``: a synchronous, always bounded client for one-shot CLI commands.
"""
