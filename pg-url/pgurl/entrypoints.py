"""libpq's variables from PGDATABASE, for the loader (target-postgres-matomo/) and dbt's executable."""

from __future__ import annotations

import os
import sys
from typing import Any

from pgurl.parse import ConnectionURLError, libpq_environment

# dbt commands that replace relations: two at once on one warehouse would swap the same views and
# partitions under each other (dbt's view materialization renames through a fixed backup name).
WRITING_COMMANDS = frozenset({"build", "run", "seed", "snapshot", "run-operation"})
# The advisory lock those commands hold for their whole run (PostgreSQL scopes it to the database).
DBT_LOCK_KEY = "tap-matomo dbt"


def apply_to_environment() -> None:
    """Set libpq's variables from PGDATABASE in this process (inherited by what it starts)."""
    try:
        os.environ.update(libpq_environment(os.environ))
    except ConnectionURLError as exc:
        sys.stderr.write(f"{exc}\n")
        raise SystemExit(2) from None


def hold_dbt_lock() -> Any:
    """Wait for, then hold until this process ends, the warehouse's one-dbt-run-at-a-time lock.

    Runs started together (the hourly job and the nightly reconcile, a retried Dagster step) queue
    instead of failing. A session lock on its own connection: released when the process ends, even
    on kill -9 (the server drops a closed connection's locks). None when no connection can be made:
    dbt then reports why itself.
    """
    import psycopg2  # type: ignore[import-untyped,unused-ignore]  # dbt-postgres' driver, in dbt's venv only

    try:
        connection = psycopg2.connect("", application_name="dbt lock (tap-matomo)")
    except psycopg2.Error:
        return None
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("select pg_try_advisory_lock(hashtext(%s))", (DBT_LOCK_KEY,))
        if not cursor.fetchone()[0]:
            sys.stderr.write("waiting for another dbt run on this database to finish\n")
            sys.stderr.flush()
            cursor.execute("select pg_advisory_lock(hashtext(%s))", (DBT_LOCK_KEY,))
    return connection


def dbt() -> None:
    """dbt, whose profile (transform/profiles.yml) reads libpq's variables; one writing run at a time."""
    apply_to_environment()
    from dbt.cli.main import cli  # imported here: the loader's venv also holds this package, without dbt

    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    lock = hold_dbt_lock() if command in WRITING_COMMANDS else None
    try:
        cli()
    finally:
        if lock is not None:
            lock.close()
