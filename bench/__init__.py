"""Benchmarks (run from the repository root). A package so that ``bench.relay_emitter`` is importable by name."""
