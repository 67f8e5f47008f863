"""One trader instance in the style of NautilusTrader.

The package knows nothing of processes, sockets or the orchestrator; it exposes ports
(data/execution clients, an external streaming sink) that a host plugs into. Importing
``node`` must stay cheap: a restarted child pays for every import on its critical path,
so subpackages are imported by the code that needs them, never from here.
"""

__version__ = "0.1.0"
