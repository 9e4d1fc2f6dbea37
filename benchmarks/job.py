"""Benchmark: the whole job (`meltano run matomo-to-postgres`: EL + dbt) against the bare loop, on a
PostgreSQL as users run it (fsync, synchronous_commit and full_page_writes on: the server's defaults),
and where the job's time goes. The same with fsync off stands beside, never alone.

Workloads: one UTC site, 3 days x 5,000 visits (about 60,000 actions) and 3 days x 20,000 visits (about
240,000), pages of 500, the simulator in its own process. Per workload, in one run, each row the median
of REPEATS runs on an empty database: the bare reference (benchmarks/bare.py), the tap alone, EL, the job,
and dbt's step alone (`meltano run dbt-postgres:build` after an EL). For the job: each process's span (tap,
loader, dbt), dbt's own timing of each model and test (run_results.json), WAL bytes per action and
commits; then an hourly run with no new data, in parts. Results: docs/benchmarks-job.md.

    .venv/bin/python -m benchmarks.job                  # about 20 minutes on 2 cores
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import psycopg

from benchmarks.run import (
    BIN,
    LOADER_BIN,
    ROOT,
    TAP_BIN,
    TOKEN,
    Databases,
    Simulator,
    create_like_matomo,
    loaded,
    machine,
    project_env,
    server_settings,
    tap_config,
)
from devenv.net import free_port
from devenv.postgres import LocalPostgres

REPEATS = 3
WORKLOADS = ((3, 5_000), (3, 20_000))
DBT_BIN = ROOT / ".meltano/utilities/dbt-postgres/venv/bin"
#: Each process's role, by the program it runs (a Python script's name, after the interpreter).
ROLES = {"tap-matomo": "tap", "target-postgres-matomo": "loader", "dbt-pgurl": "dbt", "meltano": "meltano"}


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


def _role(process: psutil.Process) -> str | None:
    try:
        command = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
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
    first_seen: dict[int, tuple[str, float]] = {}
    last_seen: dict[int, float] = {}
    cpu: dict[int, float] = {}
    started = time.monotonic()
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    root = psutil.Process(process.pid)
    while process.poll() is None:
        for proc in [root, *root.children(recursive=True)]:
            role = _role(proc)
            if role is None:
                continue
            now = time.monotonic()
            first_seen.setdefault(proc.pid, (role, now))
            last_seen[proc.pid] = now
            try:
                times = proc.cpu_times()
                cpu[proc.pid] = times.user + times.system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        time.sleep(0.02)
    seconds = time.monotonic() - started
    stderr = process.stderr.read() if process.stderr else ""
    if process.returncode != 0:
        msg = f"{command[:3]}: exit {process.returncode}: {stderr[-2000:]}"
        raise RuntimeError(msg)
    spans: dict[str, float] = {}
    cpu_by_role: dict[str, float] = {}
    for pid, (role, seen) in first_seen.items():
        spans[role] = max(spans.get(role, 0.0), last_seen[pid] - seen)
        cpu_by_role[role] = cpu_by_role.get(role, 0.0) + cpu.get(pid, 0.0)
    after = server_counters(server, database) if server else (0, 0)
    return Run(seconds, spans, cpu_by_role, after[0] - before[0], after[1] - before[1])


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


def workload(tmp: Path, dbs: Databases, server: LocalPostgres, days: int, per_day: int) -> dict[str, t.Any]:
    sim = Simulator(days, per_day)
    runs: dict[str, list[Run]] = {}
    hourly: list[Run] = []
    try:
        # As in a user's project: one warehouse database (emptied before each run here) and one dbt
        # target folder kept between runs (project_env), so dbt parses partially.
        target = tmp / f"dbt-target-{server.port}-{per_day}"
        el_target = tmp / f"dbt-el-{server.port}-{per_day}"
        for repeat in range(REPEATS):
            name = f"{server.port}-{per_day}-{repeat}"  # the Meltano state of this run only: a first load
            job_db = dbs.fresh(f"job_{per_day}")
            env = project_env(tmp, sim, job_db, days, f"job-{name}", target)
            job = run(
                [str(BIN / "meltano"), "run", "matomo-to-postgres"],
                env,
                server=server.url,
                database=job_db.rsplit("/", 1)[1],
            )
            runs.setdefault("job", []).append(with_dbt_timings(job, target))
            assert loaded(job_db, "public.matomo") == sim.actions
            again = run(
                [str(BIN / "meltano"), "run", "matomo-to-postgres"],
                env,
                server=server.url,
                database=job_db.rsplit("/", 1)[1],
            )
            hourly.append(with_dbt_timings(again, target))

            el_db = dbs.fresh(f"el_{per_day}")
            env = project_env(tmp, sim, el_db, days, f"el-{name}", el_target)
            el = run(
                [str(BIN / "meltano"), "run", "tap-matomo", "target-postgres"],
                env,
                server=server.url,
                database=el_db.rsplit("/", 1)[1],
            )
            runs.setdefault("el", []).append(el)
            dbt = run(
                [str(BIN / "meltano"), "run", "dbt-postgres:build"],
                env,
                server=server.url,
                database=el_db.rsplit("/", 1)[1],
            )
            runs.setdefault("dbt", []).append(with_dbt_timings(dbt, el_target))

            tap = [str(TAP_BIN / "tap-matomo"), "--config", str(tap_config(tmp, sim, days))]
            runs.setdefault("tap", []).append(run(tap))

            table = f"bare_{repeat}"
            create_like_matomo(job_db, table)
            first = (datetime.now(UTC) - timedelta(days=days)).date().isoformat()
            last = datetime.now(UTC).date().isoformat()
            bare = [sys.executable, "-m", "benchmarks.bare", sim.url, TOKEN, job_db, table, first, last]
            runs.setdefault("bare", []).append(run(bare, server=server.url, database=job_db.rsplit("/", 1)[1]))
            assert loaded(job_db, table) == sim.actions
            print(
                f"{per_day}/day repeat {repeat + 1}: "
                + ", ".join(f"{k} {v[-1].seconds:.1f} s" for k, v in runs.items()),
                flush=True,
            )
    finally:
        sim.stop()
    return {
        "actions": sim.actions,
        "visits": sim.visits,
        "rows": {k: median(v) for k, v in runs.items()},
        "hourly": median(hourly),
    }


def main() -> int:
    results: dict[str, dict[str, t.Any]] = {}
    load = []
    with tempfile.TemporaryDirectory(prefix="tap-matomo-job-") as folder:
        tmp = Path(folder)
        starts = process_starts()
        for durable in (True, False):
            server = LocalPostgres(tmp / f"pg-{durable}", free_port(), durable=durable).start()
            server.wait_ready()
            try:
                label = server_settings(server.url)
                databases = Databases(server)
                for days, per_day in WORKLOADS:
                    load.append(os.getloadavg()[0])
                    results[f"{label}|{per_day}"] = workload(tmp, databases, server, days, per_day)
                    load.append(os.getloadavg()[0])
                    write_report(results, starts, load)  # so far: a failure later keeps what was measured
            finally:
                server.remove()
    return 0


def write_report(results: dict[str, dict[str, t.Any]], starts: dict[str, float], load: list[float]) -> None:
    lines = [
        "# Benchmark: the whole job against the bare loop, on a durable PostgreSQL",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m benchmarks.job` (a script, not a test), "
        f"all in one run, on {machine()}; load average (1 min) during the run {min(load):.1f} to {max(load):.1f}. "
        f"Each row is the median of {REPEATS} runs on an empty database; the simulator, the tap, the loader, dbt "
        "and PostgreSQL share the machine.",
        "",
        "Process starts (each program started and stopped doing nothing, median of 3): "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in starts.items())
        + ".",
        "",
    ]
    for key, result in results.items():
        server, per_day = key.split("|")
        rows: dict[str, Run] = result["rows"]
        actions = result["actions"]
        bare = rows["bare"].seconds
        lines += [
            f"## {server}: 3 days x {int(per_day):,} visits = {actions:,} actions",
            "",
            "| run | wall s | actions/s | of bare | WAL bytes per action | commits |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        names = {
            "bare": "bare reference (requests + json + flatten + COPY)",
            "tap": "tap alone > /dev/null (RECORD messages)",
            "el": "EL: meltano run tap-matomo target-postgres",
            "job": "job: meltano run matomo-to-postgres",
            "dbt": "dbt step alone: meltano run dbt-postgres:build, after an EL",
        }
        for key_name in ("bare", "tap", "el", "job", "dbt"):
            r = rows[key_name]
            wal = f"{r.wal_bytes / actions:,.0f}" if r.wal_bytes else "-"
            commits = f"{r.commits:,}" if r.commits else "-"
            rate = f"{actions / r.seconds:,.0f}" if key_name != "dbt" else "-"
            share = f"{bare / r.seconds:.0%}" if key_name != "dbt" else "-"
            lines.append(f"| {names[key_name]} | {r.seconds:.1f} | {rate} | {share} | {wal} | {commits} |")
        job, hourly = rows["job"], result["hourly"]
        spans = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(job.spans.items()))
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(job.cpu.items()))
        slowest = sorted(job.dbt_nodes.items(), key=lambda item: -item[1])[:8]
        lines += [
            "",
            f"Where the job's {job.seconds:.1f} s go: processes alive {spans} (CPU s: {cpu}); dbt's own "
            f"execution phase {job.dbt_elapsed:.1f} s of its {job.spans.get('dbt', 0):.1f} s (the rest: start, "
            "import, parse, exit); "
            "its slowest nodes: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in slowest) + ".",
            "",
            f"An hourly run with no new data: {hourly.seconds:.1f} s; processes alive "
            + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(hourly.spans.items()))
            + f"; dbt's execution phase {hourly.dbt_elapsed:.1f} s; {hourly.commits:,} commits, "
            f"{hourly.wal_bytes:,} WAL bytes; its slowest nodes: "
            + ", ".join(
                f"{name} {seconds:.2f} s" for name, seconds in sorted(hourly.dbt_nodes.items(), key=lambda i: -i[1])[:6]
            )
            + ".",
            "",
        ]
    path = ROOT / "docs" / "benchmarks-job.md"
    notes = (
        path.read_text().split("<!-- notes -->", 1)[1]
        if path.exists() and "<!-- notes -->" in path.read_text()
        else "\n"
    )
    path.write_text("\n".join(lines) + "\n<!-- notes -->" + notes)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
