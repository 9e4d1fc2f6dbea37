"""`make demo`: the whole pipeline on embedded defaults, then what landed.

With no configuration it starts the Matomo simulator (ten days of visits on four sites, so a
closed week is among the reports) and a local PostgreSQL in .local/, runs the Meltano job from
ten days back, prints what each mart holds and how to query it, and stops what it started.
MATOMO_URL or PGDATABASE/PGHOST (environment or .env) switch to a real Matomo or PostgreSQL.
With the simulator, whose data is generated anew each time, the demo starts from an empty demo
database and its own Meltano state.

    python -m devenv.demo          # `make demo`
    python -m devenv.demo psql     # `make psql`: psql on the demo database (its server started if stopped)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from dotenv import dotenv_values
from pgurl import libpq_environment
from psycopg import sql

from devenv.net import free_port
from devenv.postgres import LocalPostgres, PortInUseError, binaries

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
DEMO_TOKEN = "demo-token"  # noqa: S105 - the simulator's own token
DEMO_DB = "matomo_demo"
JOB = "matomo-to-postgres"
#: Days of simulated history, all read: more than a week, so a closed week is among the reports.
DAYS = 10


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
        str(DAYS),
        "--visits-per-day",
        "150",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    stack.callback(process.terminate)
    assert process.stdout is not None
    print(process.stdout.readline().strip(), flush=True)  # "Matomo simulator on http://..."
    return f"http://127.0.0.1:{port}"


def demo_server() -> LocalPostgres:
    return LocalPostgres(LOCAL / "pgdata", int(os.environ.get("DEMO_PG_PORT", "54329")))


def start_demo_server(server: LocalPostgres) -> LocalPostgres:
    """The demo's PostgreSQL started, or one line saying why not when its port is taken."""
    try:
        return server.start()
    except PortInUseError as exc:
        raise SystemExit(f"{exc} (another clone's demo? DEMO_PG_PORT sets another port)") from None


def start_postgres(stack: ExitStack) -> str:
    server = demo_server()
    was_running = server.is_running()
    start_demo_server(server)
    if not was_running:
        stack.callback(server.stop)
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DEMO_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DB)))
    print(f"PostgreSQL on 127.0.0.1:{server.port} (data in {server.data_dir})", flush=True)
    return server.url.rsplit("/", 1)[0] + f"/{DEMO_DB}"


#: What `make demo` says each mart holds: the mart, what a row is, a query giving (rows, a detail), its wording.
MARTS = [
    ("matomo", "actions", "SELECT count(*), count(DISTINCT idvisit) FROM {table}", "{} visits"),
    ("matomo_visits", "visits", "SELECT count(*), count(DISTINCT idsite) FROM matomo_visits", "{} sites"),
    ("matomo_daily", "site days", "SELECT count(*), sum(nb_visits) FROM matomo_daily", "{} visits"),
    (
        "matomo_reports",
        "report rows",
        "SELECT count(*), string_agg(DISTINCT period, ', ') FROM matomo_reports",
        "periods: {}",
    ),
    (
        "matomo_reconciliation",
        "site days beside Matomo's totals",
        "SELECT count(*), count(*) FILTER (WHERE differs) FROM matomo_reconciliation",
        "{} differ",
    ),
]


def report(env: dict[str, str], seconds: float, started_server: bool) -> None:
    """What each mart holds, the `matomo` table's weekly partitions, and how to look at the data.

    It connects like the loader and dbt: PGDATABASE (a URL or a name) and the PG* variables, read by pg-url.
    """
    libpq = {k: v for k, v in env.items() if k.startswith("PG")} | libpq_environment(env)
    os.environ.update(libpq)  # libpq reads them; connect("") uses nothing else
    table = os.environ.get("DESTINATION_TABLE", "matomo")
    schema = os.environ.get("DBT_SCHEMA", "public")
    with psycopg.connect("") as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        counts = [conn.execute(query.format(table=table)).fetchone() or (0, None) for _, _, query, _ in MARTS]
        (partitions,) = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass(%s)", (f"{schema}.{table}",)
        ).fetchone() or (0,)
    print(f"\n`meltano run {JOB}` took {seconds:.1f} s (extract, load and dbt build). In schema {schema}:")
    for (name, what, _, detail), (rows, value) in zip(MARTS, counts, strict=True):
        print(f"  {table if name == 'matomo' else name:<22} {rows:>8} {what} ({detail.format(value)})")
    print(f"  ({table} is partitioned by week: {partitions} partitions)")
    if started_server:
        print("\nLook at the data: `make psql` (starts the demo's PostgreSQL again and opens psql on it), e.g.")
        print("  SELECT site_day, nb_visits, nb_actions, revenue FROM matomo_daily ORDER BY 1;")
        print("or Matomo's dashboards on it in a local Superset: `make dashboards` (docs/dashboards.md).")


def psql() -> int:
    """psql on the demo database, its server started if stopped (left running: `make clean` removes it)."""
    server = start_demo_server(demo_server())
    server.wait_ready()
    url = server.url.rsplit("/", 1)[0] + f"/{DEMO_DB}"
    print(f"psql {url}", flush=True)
    return subprocess.run([str(binaries() / "psql"), url], check=False).returncode


def main() -> int:
    if sys.argv[1:] == ["psql"]:
        return psql()
    env = {**{k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}, **os.environ}
    meltano = shutil.which("meltano", path=str(Path(sys.executable).parent)) or "meltano"
    with ExitStack() as stack:
        if not env.get("MATOMO_URL"):
            env |= {"MATOMO_URL": start_simulator(stack), "MATOMO_KEY": DEMO_TOKEN}
            # Fresh data each time: a demo-only Meltano state, not the project's.
            demo_state = LOCAL / "demo-meltano.db"
            demo_state.unlink(missing_ok=True)
            env["MELTANO_DATABASE_URI"] = f"sqlite:///{demo_state}"
            env.setdefault("STARTDATE", (datetime.now(UTC) - timedelta(days=DAYS)).date().isoformat())
        started_server = not (env.get("PGDATABASE") or env.get("PGHOST"))
        if started_server:
            env["PGDATABASE"] = start_postgres(stack)
        started = time.monotonic()
        done = subprocess.run([meltano, "run", JOB], env=env, cwd=ROOT, check=False)
        elapsed = time.monotonic() - started
        if done.returncode != 0:
            print(f"`meltano run {JOB}` failed (exit {done.returncode}); see the log above.", file=sys.stderr)
            return done.returncode
        report(env, elapsed, started_server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
