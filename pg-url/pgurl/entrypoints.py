"""The loader's and dbt's executables in meltano.yml: libpq's variables from PGDATABASE, then the real CLI."""

from __future__ import annotations

import os
import sys

from pgurl.parse import ConnectionURLError, libpq_environment


def apply_to_environment() -> None:
    """Set libpq's variables from PGDATABASE in this process (inherited by what it starts)."""
    try:
        os.environ.update(libpq_environment(os.environ))
    except ConnectionURLError as exc:
        sys.stderr.write(f"{exc}\n")
        raise SystemExit(2) from None


# Each tool is imported only by its own entry point: a plugin venv holds one of them, not both.


def target_postgres() -> None:
    """MeltanoLabs' target-postgres, connected through libpq's variables."""
    apply_to_environment()
    from target_postgres.target import TargetPostgres

    TargetPostgres.cli()


def dbt() -> None:
    """dbt, whose profile (transform/profiles.yml) reads libpq's variables."""
    apply_to_environment()
    from dbt.cli.main import cli

    cli()
