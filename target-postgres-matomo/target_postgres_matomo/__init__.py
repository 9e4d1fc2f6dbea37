"""MeltanoLabs' target-postgres, subclassed where the time goes (see sink.py and docs/benchmarks.md)."""
