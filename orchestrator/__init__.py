"""The orchestrator: one trading node per process, supervised, relayed over ZeroMQ.

Imports stay lazy so that ``orchestrator --help`` and child start-up pay only for what
they use.
"""

__version__ = "0.1.0"
