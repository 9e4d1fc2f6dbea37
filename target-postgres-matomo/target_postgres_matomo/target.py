"""The loader: MeltanoLabs' TargetPostgres with msgspec's message reader and the faster sink.

Everything a user configures (settings, upsert on the key, schema evolution, state) is upstream's;
this class only swaps two documented parts: the message reader and the sink class.
"""

from __future__ import annotations

from pgurl.entrypoints import apply_to_environment
from singer_sdk.contrib.msgspec import MsgSpecReader
from target_postgres.target import TargetPostgres

from target_postgres_matomo.sink import MatomoPostgresSink


class TargetPostgresMatomo(TargetPostgres):
    """target-postgres, reading messages with msgspec and loading through MatomoPostgresSink."""

    message_reader_class = MsgSpecReader  # the SDK's msgspec reader: JSON lines decoded 3x faster
    default_sink_class = MatomoPostgresSink


def main() -> None:
    """`target-postgres-matomo`: libpq's variables from PGDATABASE, then the target's CLI."""
    apply_to_environment()
    TargetPostgresMatomo.cli()
