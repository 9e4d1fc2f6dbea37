"""Benchmark: the whole job (`meltano run matomo-to-postgres`: EL + dbt) against the bare loop, on a
PostgreSQL as users run it (fsync, synchronous_commit and full_page_writes on: the server's defaults),
and where the job's time goes. The same with fsync off stands beside, never alone.

Workloads: one UTC site, 3 days x 5,000 visits (about 60,000 actions) and 3 days x 20,000 visits (about
240,000), pages of 500, the simulator in its own process. Per workload, in one run, each row the median
of REPEATS runs on an empty database: the bare reference (benchmarks/bare.py), the tap alone, EL, the job,
and dbt's step alone (`meltano run dbt-postgres:build` after an EL). For the job: each process's span (tap,
loader, dbt), dbt's own timing of each model and test (run_results.json), WAL bytes per action and
commits; then an hourly run with no new data, in parts. With `--seed-tool PATH` (a checkout of the tool
we replace, github.com/SocialGouv/matomo-postgres, built: `corepack pnpm install --frozen-lockfile &&
corepack pnpm build`, node 20), the seed tool loads the same workload into a database of its own, in the
same run. Results: docs/benchmarks-job.md.

    .venv/bin/python -m benchmarks.job [--seed-tool PATH] [--repeats N] [--durable-only]   # 20-40 min, 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from benchmarks.common import (
    BIN,
    LOADER_BIN,
    ROOT,
    TAP_BIN,
    TOKEN,
    Databases,
    Simulator,
    create_like_matomo,
    loaded,
    project_env,
    server_settings,
    tap_config,
)
from benchmarks.job_report import write_report
from benchmarks.processes import sample
from devenv.net import free_port
from devenv.postgres import LocalPostgres

REPEATS = 3
WORKLOADS = ((3, 5_000), (3, 20_000))
DBT_BIN = ROOT / ".meltano/utilities/dbt-postgres/venv/bin"
#: Each process's role, by the program it runs (a Python script's name, after the interpreter).
ROLES = {"tap-matomo": "tap", "target-postgres-matomo": "loader", "dbt-pgurl": "dbt", "meltano": "meltano"}
ROLES |= {"node": "seed tool"}


@dataclass
class Run:
    """One run: its wall time, each process's span and CPU, and what it cost the database."""

    seconds: float
    spans: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    wal_bytes: int = 0
    commits: int = 0
    dbt_nodes: dict[str, float] = field(default_factory=dict)
    dbt_elapsed: float = 0.0
    rows_loaded: int = 0  # the seed tool's rows


def _role(command: list[str]) -> str | None:
    programs = [Path(part).name for part in command[:2]]  # `python script` or the script itself
    return next((ROLES[name] for name in programs if name in ROLES), None)


def server_counters(server_url: str, database: str) -> tuple[int, int]:
    """(WAL position in bytes, commits of `database`): their differences are a run's cost."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        time.sleep(1.1)  # cumulative statistics reach pg_stat_database within a second
        lsn = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").fetchone()
        commits = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)).fetchone()
    return int(lsn[0] if lsn else 0), int(commits[0] if commits else 0)


def run(command: list[str], env: dict[str, str] | None = None, *, server: str = "", database: str = "") -> Run:
    """Run a command (its output dropped), sampling its processes every 20 ms for their spans and CPU."""
    before = server_counters(server, database) if server else (0, 0)
    sampled = sample(command, _role, env, interval=0.02)
    after = server_counters(server, database) if server else (0, 0)
    return Run(sampled.seconds, sampled.spans(), sampled.cpu_seconds(), after[0] - before[0], after[1] - before[1])


def with_dbt_timings(result: Run, target: Path) -> Run:
    """dbt's own timing of the build: its execution phase and each node's (run_results.json)."""
    results = json.loads((target / "run_results.json").read_text())
    result.dbt_elapsed = float(results["elapsed_time"])
    result.dbt_nodes = {r["unique_id"].split(".", 2)[-1]: float(r["execution_time"]) for r in results["results"]}
    return result


def median(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def process_starts() -> dict[str, float]:
    """Seconds each program takes to start and exit doing nothing (its imports): the job's fixed costs."""
    programs = {
        "meltano --version": [str(BIN / "meltano"), "--version"],
        "tap-matomo --about": [str(TAP_BIN / "tap-matomo"), "--about"],
        "target-postgres-matomo --about": [str(LOADER_BIN / "target-postgres-matomo"), "--about"],
        "dbt (import, --version)": [str(DBT_BIN / "dbt"), "--version"],
    }
    return {name: statistics.median(run(command).seconds for _ in range(3)) for name, command in programs.items()}


def workload(
    tmp: Path, dbs: Databases, server: LocalPostgres, which: tuple[int, int], options: argparse.Namespace
) -> dict[str, t.Any]:
    days, per_day = which
    sim = Simulator(days, per_day)
    runs: dict[str, list[Run]] = {}
    try:
        for repeat in range(options.repeats):
            _one_repeat(tmp, dbs, server, sim, (days, per_day, repeat), runs)
            if options.seed_tool:
                runs.setdefault("seed", []).append(_seed_tool(options.seed_tool, dbs, server, sim, days))
            print(
                f"{per_day}/day repeat {repeat + 1}: "
                + ", ".join(f"{k} {v[-1].seconds:.1f} s" for k, v in runs.items()),
                flush=True,
            )
    finally:
        sim.stop()
    hourly = runs.pop("hourly")
    return {
        "days": days,
        "actions": sim.actions,
        "visits": sim.visits,
        "rows": {k: median(v) for k, v in runs.items()},
        "hourly": median(hourly),
    }


def _one_repeat(
    tmp: Path,
    dbs: Databases,
    server: LocalPostgres,
    sim: Simulator,
    which: tuple[int, int, int],
    runs: dict[str, list[Run]],
) -> None:
    """One run of each row into `runs`: the job and its next hour, EL then the dbt step alone, the tap, the bare loop.

    As in a user's project: one warehouse database (emptied before each run here) and one dbt target folder
    kept between runs (project_env), so dbt parses partially."""
    days, per_day, repeat = which
    meltano = str(BIN / "meltano")
    name = f"{server.port}-{per_day}-{repeat}"  # the Meltano state of this run only: a first load
    job_db = dbs.fresh(f"job_{per_day}")
    target = tmp / f"dbt-target-{server.port}-{per_day}"
    env = project_env(tmp, sim, job_db, days, f"job-{name}", target)
    on_job_db = {"server": server.url, "database": job_db.rsplit("/", 1)[1]}
    runs.setdefault("job", []).append(
        with_dbt_timings(run([meltano, "run", "matomo-to-postgres"], env, **on_job_db), target)
    )
    assert loaded(job_db, "public.matomo") == sim.actions
    again = run([meltano, "run", "matomo-to-postgres"], env, **on_job_db)
    runs.setdefault("hourly", []).append(with_dbt_timings(again, target))

    el_db = dbs.fresh(f"el_{per_day}")
    el_target = tmp / f"dbt-el-{server.port}-{per_day}"
    env = project_env(tmp, sim, el_db, days, f"el-{name}", el_target)
    on_el_db = {"server": server.url, "database": el_db.rsplit("/", 1)[1]}
    runs.setdefault("el", []).append(run([meltano, "run", "tap-matomo", "target-postgres"], env, **on_el_db))
    dbt = run([meltano, "run", "dbt-postgres:build"], env, **on_el_db)
    runs.setdefault("dbt", []).append(with_dbt_timings(dbt, el_target))

    tap = [str(TAP_BIN / "tap-matomo"), "--config", str(tap_config(tmp, sim, days))]
    runs.setdefault("tap", []).append(run(tap))

    table = f"bare_{repeat}"
    create_like_matomo(job_db, table)
    first = (datetime.now(UTC) - timedelta(days=days)).date().isoformat()
    last = datetime.now(UTC).date().isoformat()
    bare = [sys.executable, "-m", "benchmarks.bare", sim.url, TOKEN, job_db, table, first, last]
    runs.setdefault("bare", []).append(run(bare, **on_job_db))
    assert loaded(job_db, table) == sim.actions


def _seed_tool(checkout: Path, dbs: Databases, server: LocalPostgres, sim: Simulator, days: int) -> Run:
    """The tool we replace, loading the workload's days into a database of its own (its `matomo` table); the
    rows it loaded are noted (it loses some actions, docs/benchmarks-job.md)."""
    database = dbs.fresh("seed_tool")
    env = {
        "MATOMO_URL": sim.url + "/",
        "MATOMO_KEY": TOKEN,
        "MATOMO_SITE": "1",
        "PGDATABASE": f"{database}?sslmode=disable",  # it asks for TLS, which the benchmark's own server has not
        "STARTDATE": (datetime.now(UTC) - timedelta(days=days)).date().isoformat(),
        "RESULTPERPAGE": "500",
    }
    result = run(["node", str(checkout / "bin" / "index.js")], env, server=server.url, database="seed_tool")
    result.rows_loaded = loaded(database, "public.matomo")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.job", description=__doc__.splitlines()[0])
    parser.add_argument("--seed-tool", type=Path, help="a built checkout of SocialGouv/matomo-postgres, run beside")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs of each row (the median is shown)")
    parser.add_argument("--durable-only", action="store_true", help="without the fsync-off server beside")
    options = parser.parse_args()
    if options.seed_tool and not (options.seed_tool / "dist" / "index.js").exists():
        parser.error(f"--seed-tool: {options.seed_tool} has no dist/index.js (build it: corepack pnpm build)")
    results: dict[str, dict[str, t.Any]] = {}
    load = []
    with tempfile.TemporaryDirectory(prefix="tap-matomo-job-") as folder:
        tmp = Path(folder)
        starts = process_starts()
        for durable in (True,) if options.durable_only else (True, False):
            server = LocalPostgres(tmp / f"pg-{durable}", free_port(), durable=durable).start()
            server.wait_ready()
            try:
                label = server_settings(server.url)
                databases = Databases(server)
                for days, per_day in WORKLOADS:
                    load.append(os.getloadavg()[0])
                    results[f"{label}|{per_day}"] = workload(tmp, databases, server, (days, per_day), options)
                    load.append(os.getloadavg()[0])
                    # So far: a failure later keeps what was measured.
                    write_report(results, starts, load, options.repeats)
            finally:
                server.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
