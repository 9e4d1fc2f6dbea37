"""libpq's variables from PGDATABASE, for the loader (target-postgres-matomo/) and dbt's executable."""

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


def dbt() -> None:
    """dbt, whose profile (transform/profiles.yml) reads libpq's variables."""
    apply_to_environment()
    from dbt.cli.main import cli  # imported here: the loader's venv also holds this package, without dbt

    cli()
