"""`make demo`: the whole pipeline on embedded defaults, then what landed.

With no configuration it starts the Matomo simulator (three days of visits on four sites)
and a local PostgreSQL in .local/, runs the Meltano job, prints rows per site and day, and
stops what it started. MATOMO_URL or PGDATABASE/PGHOST (environment or .env) switch to a
real Matomo or PostgreSQL. With the simulator, whose data is generated anew each time, the
demo starts from an empty demo database and its own Meltano state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg
from dotenv import dotenv_values
from pgurl import libpq_environment
from psycopg import sql

from devenv.net import free_port
from devenv.postgres import LocalPostgres

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
DEMO_TOKEN = "demo-token"  # noqa: S105 - the simulator's own token
DEMO_DB = "matomo_demo"
JOB = "matomo-to-postgres"


def start_simulator(stack: ExitStack) -> str:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "matomo_simulator",
        "--port",
        str(port),
        "--token",
        DEMO_TOKEN,
        "--days",
        "3",
        "--visits-per-day",
        "500",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    stack.callback(process.terminate)
    assert process.stdout is not None
    print(process.stdout.readline().strip(), flush=True)  # "Matomo simulator on http://..."
    return f"http://127.0.0.1:{port}"


def start_postgres(stack: ExitStack) -> str:
    server = LocalPostgres(LOCAL / "pgdata", int(os.environ.get("DEMO_PG_PORT", "54329")))
    was_running = server.is_running()
    server.start()
    if not was_running:
        stack.callback(server.stop)
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DEMO_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DB)))
    print(f"PostgreSQL on 127.0.0.1:{server.port} (data in {server.data_dir})", flush=True)
    return server.url.rsplit("/", 1)[0] + f"/{DEMO_DB}"


def report(env: dict[str, str], seconds: float) -> None:
    """Rows per site and day in the raw load, and the partitions and indexes of the `matomo` table.

    It connects like the loader and dbt: PGDATABASE (a URL or a name) and the PG* variables, read by pg-url.
    """
    libpq = {k: v for k, v in env.items() if k.startswith("PG")} | libpq_environment(env)
    os.environ.update(libpq)  # libpq reads them; connect("") uses nothing else
    table = os.environ.get("DESTINATION_TABLE", "matomo")
    schema = os.environ.get("DBT_SCHEMA", "public")
    with psycopg.connect("") as conn:
        rows = conn.execute(
            """
            SELECT idsite, site_timezone, (action_timestamp AT TIME ZONE 'UTC')::date AS utc_day,
                   count(*) AS actions, count(DISTINCT idvisit) AS visits
            FROM matomo_raw.visits_actions GROUP BY 1, 2, 3 ORDER BY 1, 3
            """
        ).fetchall()
        partitions = conn.execute(
            """
            SELECT c.relname, c.reltuples::bigint, (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid)
            FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
            WHERE h.inhparent = to_regclass(%s) ORDER BY 1
            """,
            (f"{schema}.{table}",),
        ).fetchall()
        (main_rows,) = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        ).fetchall()[0]
    total = sum(r[3] for r in rows)
    print(f"\n{'site':>4}  {'timezone':<18} {'day (UTC)':<10} {'visits':>7} {'actions':>8}")
    for idsite, tz, day, actions, visits in rows:
        print(f"{idsite:>4}  {tz:<18} {day!s:<10} {visits:>7} {actions:>8}")
    rate = total / seconds if seconds else 0
    print(
        f"\n{total} actions in matomo_raw.visits_actions; "
        f"`meltano run {JOB}` took {seconds:.1f} s ({rate:,.0f} actions/s, extract, load and dbt build)"
    )
    print(f"{schema}.{table}: {main_rows} rows in {len(partitions)} weekly partitions")
    for name, _estimate, indexes in partitions:
        print(f"  {name}: {indexes} indexes")


def main() -> int:
    env = {**{k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}, **os.environ}
    meltano = shutil.which("meltano", path=str(Path(sys.executable).parent)) or "meltano"
    with ExitStack() as stack:
        if not env.get("MATOMO_URL"):
            env |= {"MATOMO_URL": start_simulator(stack), "MATOMO_KEY": DEMO_TOKEN}
            # Fresh data each time: a demo-only Meltano state, not the project's.
            demo_state = LOCAL / "demo-meltano.db"
            demo_state.unlink(missing_ok=True)
            env["MELTANO_DATABASE_URI"] = f"sqlite:///{demo_state}"
        if not (env.get("PGDATABASE") or env.get("PGHOST")):
            env["PGDATABASE"] = start_postgres(stack)
        started = time.monotonic()
        done = subprocess.run([meltano, "run", JOB], env=env, cwd=ROOT, check=False)
        elapsed = time.monotonic() - started
        if done.returncode != 0:
            print(f"`meltano run {JOB}` failed (exit {done.returncode}); see the log above.", file=sys.stderr)
            return done.returncode
        report(env, elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
