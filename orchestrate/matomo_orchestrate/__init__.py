"""Runs the Meltano project under Dagster, sites split into shards that extract in parallel (docs/scale-out.md)."""
