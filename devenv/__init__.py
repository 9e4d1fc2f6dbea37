"""Local services for the demo, tests and benchmarks (never used by the tap itself)."""
