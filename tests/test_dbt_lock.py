"""dbt-pgurl, dbt's executable: writing commands wait for one another on the warehouse's lock, found as
dbt's own CLI reads its arguments, and give up after MATOMO_DBT_LOCK_TIMEOUT with one clear line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import click
import psycopg
import pytest
from pgurl.entrypoints import DBT_LOCK_KEY, dbt_subcommand

from devenv.postgres import LocalPostgres
from tests.pipeline import ROOT

DBT_PGURL = ROOT / ".meltano" / "utilities" / "dbt-postgres" / "venv" / "bin" / "dbt-pgurl"


def toy_dbt() -> click.Group:
    """A CLI shaped like dbt's: global options with and without a value, then the command."""

    @click.group()
    @click.option("--log-level")
    @click.option("--target", "-t")
    @click.option("--debug/--no-debug", "-d")
    def cli(**_: object) -> None:
        """dbt."""

    for name in ("build", "debug", "run"):
        cli.command(name)(lambda: None)
    return cli


@pytest.mark.unit
@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["build"], "build"),
        (["--log-level", "debug", "build"], "build"),  # read as `debug` before: the build ran unlocked
        (["--log-level=debug", "run", "--select", "x"], "run"),
        (["-t", "prod", "--debug", "debug"], "debug"),
        (["--no-debug", "--", "run"], "run"),
        (["--debug"], None),
    ],
)
def test_the_command_is_found_past_global_options_and_their_values(args: list[str], command: str | None) -> None:
    assert dbt_subcommand(toy_dbt(), args) == command


def dbt_pgurl(database: str, tmp_path: Path, *args: str, timeout: str = "2") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {
        "PGDATABASE": database,
        "MATOMO_DBT_LOCK_TIMEOUT": timeout,
        "DBT_PROJECT_DIR": str(ROOT / "transform"),
        "DBT_PROFILES_DIR": str(ROOT / "transform"),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return subprocess.run(
        [str(DBT_PGURL), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_writing_command_behind_global_options_waits_then_gives_up_with_one_line(
    postgres: LocalPostgres, database: str, tmp_path: Path
) -> None:
    with psycopg.connect(database, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(hashtext(%s))", (DBT_LOCK_KEY,))  # another dbt run, say
        blocked = dbt_pgurl(database, tmp_path, "--log-level", "debug", "build")
        assert blocked.returncode == 3, blocked.stderr[-2000:]
        last = blocked.stderr.strip().splitlines()[-1]
        assert last.startswith("dbt: another dbt run on this database still holds the warehouse lock after 2 s")
        assert "MATOMO_DBT_LOCK_TIMEOUT" in last
        # A read-only command does not wait for the lock.
        read_only = dbt_pgurl(database, tmp_path, "--log-level", "info", "debug")
        assert read_only.returncode == 0, read_only.stdout[-2000:]
        assert "waiting for another dbt run" not in read_only.stderr
        holder.execute("select pg_advisory_unlock(hashtext(%s))", (DBT_LOCK_KEY,))
    bad = dbt_pgurl(database, tmp_path, "build", timeout="soon")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "MATOMO_DBT_LOCK_TIMEOUT: 'soon' is not a number of seconds above 0"


def test_a_writing_command_that_cannot_take_the_lock_stops_with_one_line(database: str, tmp_path: Path) -> None:
    """dbt never runs unlocked: a warehouse that refuses the lock's connection stops the command."""
    refused = database.replace("://postgres@", "://no_such_role:wrong-secret@", 1)
    done = dbt_pgurl(refused, tmp_path, "build")
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        "dbt: cannot connect to PostgreSQL (PGDATABASE, or PGHOST, PGPORT, PGUSER, PGPASSWORD): "
    )
    assert "no_such_role" in lines[0]
    assert "wrong-secret" not in done.stderr + done.stdout
    assert not (tmp_path / "logs").exists()  # dbt itself never started
