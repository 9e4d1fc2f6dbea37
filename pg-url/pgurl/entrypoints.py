"""libpq's variables from PGDATABASE, for the loader (target-postgres-matomo/) and dbt's executable."""

from __future__ import annotations

import os
import sys
import typing as t

from pgurl.environment import libpq_environment
from pgurl.parse import ConnectionURLError

if t.TYPE_CHECKING:
    import click
    import psycopg

#: dbt commands that cannot change the warehouse; every other command (build, run, test with
#: stored failures, snapshot, seed, run-operation, retry, clone, and any new one) takes the lock.
READ_ONLY_COMMANDS = frozenset(
    {"clean", "compile", "debug", "deps", "docs", "init", "list", "ls", "parse", "show", "source"}
)
# The advisory lock writing commands hold for their whole run (PostgreSQL scopes it to the database):
# two at once on one warehouse would swap the same views and partitions under each other (dbt's view
# materialization renames through a fixed backup name).
DBT_LOCK_KEY = "tap-matomo dbt"
#: Where the connection comes from, named in the one line a connection failure prints.
CONNECTION_SETTINGS = "PGDATABASE, or PGHOST, PGPORT, PGUSER, PGPASSWORD"
#: How long a writing dbt command waits for another one to finish, in seconds.
LOCK_TIMEOUT_VAR = "MATOMO_DBT_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 3600


def apply_to_environment() -> None:
    """Set libpq's variables from PGDATABASE in this process (inherited by what it starts)."""
    try:
        os.environ.update(libpq_environment(os.environ))
    except ConnectionURLError as exc:
        sys.stderr.write(f"{exc}\n")
        raise SystemExit(2) from None


def one_line(error: BaseException) -> str:
    """A driver's connection error as one line: libpq's message spreads over several, and SQLAlchemy adds
    a link to its docs. libpq's messages never hold the password."""
    reason = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(reason).splitlines() if line.strip()]
    return " ".join(line for line in lines if not line.startswith("(Background on this error"))


def dbt_subcommand(cli: click.Group, args: t.Sequence[str]) -> str | None:
    """The command dbt runs for `args`, found as dbt's own CLI finds it: global options (and the value
    of those that take one, by dbt's own option definitions) come before it."""
    takes_value = {
        name
        for param in cli.params
        if param.param_type_name == "option"
        and not getattr(param, "is_flag", False)
        and not getattr(param, "count", False)
        for name in (*param.opts, *param.secondary_opts)
    }
    words = iter(args)
    for word in words:
        if word == "--":
            return next(words, None)
        if not word.startswith("-"):
            return word
        if "=" not in word and word in takes_value:
            next(words, None)  # the option's value
    return None


def lock_timeout() -> float:
    """Seconds a writing command waits for the lock (MATOMO_DBT_LOCK_TIMEOUT, default an hour)."""
    raw = os.environ.get(LOCK_TIMEOUT_VAR, "").strip()
    try:
        seconds = float(raw) if raw else DEFAULT_LOCK_TIMEOUT
    except ValueError:
        seconds = -1
    if seconds <= 0:
        sys.stderr.write(f"{LOCK_TIMEOUT_VAR}: {raw!r} is not a number of seconds above 0\n")
        raise SystemExit(2)
    return seconds


def hold_dbt_lock(timeout: float) -> psycopg.Connection[t.Any]:
    """Wait up to `timeout` seconds for, then hold until this process ends, the warehouse's
    one-writing-dbt-run-at-a-time lock.

    Runs started together (the hourly job and the nightly reconcile, a retried Dagster step) queue
    instead of failing. A session lock on its own connection: released when the process ends, even
    on kill -9 (the server drops a closed connection's locks). A warehouse that cannot be reached or
    refuses the connection stops the command with one line: dbt never runs without the lock.
    """
    import psycopg  # imported when a lock is needed only

    try:
        connection = psycopg.connect("", autocommit=True, application_name="dbt lock (tap-matomo)")
    except psycopg.Error as exc:
        sys.stderr.write(f"dbt: cannot connect to PostgreSQL ({CONNECTION_SETTINGS}): {one_line(exc)}\n")
        raise SystemExit(2) from None
    if connection.execute("select pg_try_advisory_lock(hashtext(%s))", (DBT_LOCK_KEY,)).fetchone() == (True,):
        return connection
    sys.stderr.write("waiting for another dbt run on this database to finish\n")
    sys.stderr.flush()
    try:
        connection.execute(f"set lock_timeout = {int(timeout * 1000)}")
        connection.execute("select pg_advisory_lock(hashtext(%s))", (DBT_LOCK_KEY,))
    except psycopg.errors.LockNotAvailable:
        connection.close()
        sys.stderr.write(
            f"dbt: another dbt run on this database still holds the warehouse lock after {timeout:g} s "
            f"({LOCK_TIMEOUT_VAR}); nothing was run. See pg_stat_activity for 'dbt lock (tap-matomo)'.\n"
        )
        raise SystemExit(3) from None
    return connection


def dbt() -> None:
    """dbt, whose profile (transform/profiles.yml) reads libpq's variables; one writing run at a time."""
    apply_to_environment()
    from dbt.cli.main import cli  # here: the loader's venv also holds this package, without dbt

    command = dbt_subcommand(cli, sys.argv[1:])
    lock = hold_dbt_lock(lock_timeout()) if command is not None and command not in READ_ONLY_COMMANDS else None
    try:
        cli()
    finally:
        if lock is not None:
            lock.close()
