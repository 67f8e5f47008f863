"""The fleet: the orchestrator's view of its nodes (state, supervision, relay)."""
