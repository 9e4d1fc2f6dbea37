"""Benchmark: 6 sites through one Meltano job, or through Dagster in 1, 3 or 6 shards at once.

Against the simulator in its own process, 8 days x 500 visits per site, pages of 50: first with 300 ms
per Live answer (a busy Matomo: waiting dominates, as in a backfill of many sites), then answering at
once (what is left is the cycle's own cost), with the next hour's run that finds nothing new. Each
first run starts from an empty warehouse and an empty Meltano state; the report's column of actions
loaded shows each loaded them all. Results: docs/benchmarks-scale-out.md.

    .venv/bin/python -m benchmarks.scale_out        # about 15 minutes
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from matomo_orchestrate.shards import ShardPlan

from benchmarks.common import (
    BIN,
    ROOT,
    Databases,
    Load,
    Simulator,
    loaded,
    local_databases,
    machine,
    meltano_env,
    server_settings,
)

SITES = "1,2,3,4,5,6"
DAYS, VISITS, PAGE = 8, 500, 50
#: A busy Matomo (300 ms a Live answer), then one that answers at once: the cycle's own costs alone.
LATENCIES_MS = (300, 0)
ONE_SHARD = {"MATOMO_SHARD_SITES": SITES}  # the job's work, as one Dagster shard
#: One shard, balanced lists, one site per shard.
SHARDINGS = [ONE_SHARD, {"MATOMO_SHARD_SITES": "1,2;3,4;5,6"}, {"MATOMO_SHARD_SITES": "1;2;3;4;5;6"}]


@dataclass
class Row:
    label: str
    seconds: float
    actions: int
    steps: dict[str, float]
    parallel: int  # max_parallel_requests of each run
    latency_ms: int = 0
    quiet: bool = False  # a second run with nothing new, on the first one's warehouse and state

    @property
    def group(self) -> tuple[int, int, bool]:
        """The rows compared with one another: the same Matomo, requests in flight and run."""
        return self.latency_ms, self.parallel, self.quiet


def job_env(tmp: Path, sim: Simulator, database: str, parallel: int, name: str) -> dict[str, str]:
    env = {**meltano_env(tmp, sim, database, DAYS, name), "RESULTPERPAGE": str(PAGE)}
    return env | {"TAP_MATOMO_MAX_PARALLEL_REQUESTS": str(parallel), "DBT_TARGET_PATH": str(tmp / f"dbt-{name}")}


def one_job(env: dict[str, str], latency_ms: int, quiet: bool = False) -> Row:
    started = time.monotonic()
    subprocess.run(
        [str(BIN / "meltano"), "run", "matomo-to-postgres"],
        env={**os.environ, **env},
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parallel = int(env["TAP_MATOMO_MAX_PARALLEL_REQUESTS"])
    label = f"one job: `meltano run matomo-to-postgres`, max_parallel_requests {parallel}"
    seconds = time.monotonic() - started
    return Row(label, seconds, loaded(env["PGDATABASE"]), {}, parallel, latency_ms, quiet)


def hourly_job() -> dg.JobDefinition:
    """The code location's hourly job (for `reconstructable`: loaded again in each step's process)."""
    from matomo_orchestrate.definitions import defs

    return defs().resolve_job_def("matomo_hourly")


def dagster_cycle(env: dict[str, str]) -> Row:
    """One run of the hourly job (in this process's environment plus `env`), out of process as deployed."""
    os.environ.update(env)
    shards = ShardPlan.from_env(env).count
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": shards}}}) as instance:
        started = time.monotonic()
        result = dg.execute_job(dg.reconstructable(hourly_job), instance=instance)
        seconds = time.monotonic() - started
        if not result.success:
            msg = f"the {shards}-shard cycle failed"
            raise RuntimeError(msg)
        steps = {
            s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(result.run_id)
        }
    split = env["MATOMO_SHARD_SITES"]
    parallel = int(env["TAP_MATOMO_MAX_PARALLEL_REQUESTS"])
    label = f"Dagster, {shards} shard{'s' * (shards > 1)} at once ({split}), max_parallel_requests {parallel}"
    return Row(label, seconds, loaded(env["PGDATABASE"]), steps, parallel)


def run_in_child(env: dict[str, str], latency_ms: int, quiet: bool = False) -> Row:
    """A Dagster cycle in a fresh process, as a deployment's run worker: its steps' forkserver starts with
    the run, and with `env`."""
    command = [sys.executable, "-m", "benchmarks.scale_out", "--cycle", json.dumps(env)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return Row(**measured | {"latency_ms": latency_ms, "quiet": quiet})


def shard_env(tmp: Path, sim: Simulator, database: str, parallel: int, shards: dict[str, str]) -> dict[str, str]:
    name = f"shards-{len(list(tmp.glob('shards-*')))}"
    env = job_env(tmp, sim, database, parallel, name) | shards
    return env | {"MATOMO_SHARD_RUN_DIR": str(tmp / name)}


def rows_at(tmp: Path, dbs: Databases, latency_ms: int) -> list[Row]:
    """The runs against a Matomo answering each Live request in `latency_ms`."""
    sim = Simulator(DAYS, VISITS, latency_ms=latency_ms, seed=5, sites=SITES)
    try:
        job = job_env(tmp, sim, dbs.fresh(), 4, f"job-{latency_ms}")
        rows = [one_job(job, latency_ms)]
        one_shard = shard_env(tmp, sim, dbs.fresh(), 4, ONE_SHARD)
        rows.append(run_in_child(one_shard, latency_ms))
        rows += [run_in_child(shard_env(tmp, sim, dbs.fresh(), 4, s), latency_ms) for s in SHARDINGS[1:]]
        if latency_ms:  # a Matomo that must see one query at a time per run: waiting dominates
            slow = job_env(tmp, sim, dbs.fresh(), 1, f"job-{latency_ms}-1")
            slow_shards = shard_env(tmp, sim, dbs.fresh(), 1, SHARDINGS[1])
            rows += [one_job(slow, latency_ms), run_in_child(slow_shards, latency_ms)]
        else:  # the next hour, nothing new: what an hourly run costs by itself
            rows += [one_job(job, latency_ms, quiet=True), run_in_child(one_shard, latency_ms, quiet=True)]
        return rows
    finally:
        sim.stop()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="tap-matomo-scale-") as tmp_name:
        tmp = Path(tmp_name)
        with local_databases(tmp) as dbs:
            load = Load()
            load.sample()
            conditions = server_settings(dbs.server.url)
            rows = [row for latency in LATENCIES_MS for row in rows_at(tmp, dbs, latency)]
            load.sample()
    write_report(rows, f"{conditions}; {load}")
    return 0


def write_report(rows: list[Row], conditions: str) -> None:
    bases = {row.group: row.seconds for row in rows if not row.steps}  # the one-job rows
    lines = [
        "# Benchmark: many sites, one job or Dagster shards",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `python -m benchmarks.scale_out` (a script, not a test), one run.",
        f"Machine: {machine()}; {conditions}; simulator, Dagster, Meltano, PostgreSQL on this one machine.",
        "",
        f"Workload: 6 sites x {DAYS} days x {VISITS} visits ({rows[0].actions} actions), pages of {PAGE}; each "
        "first run from an empty warehouse and state; a quiet run is the next one, with nothing new. Each run "
        "is compared with the one job of its group (same Matomo latency, requests in flight, first or quiet).",
        "",
        "| Matomo latency | run | wall (s) | actions loaded | speed-up vs one job |",
        "|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        run = f"{row.label}{' (quiet: nothing new)' if row.quiet else ''}"
        speed = bases[row.group] / row.seconds
        lines.append(f"| {row.latency_ms} ms | {run} | {row.seconds:.1f} | {row.actions} | {speed:.2f}x |")
    for row in rows:
        if not row.steps:
            continue
        steps = ", ".join(f"{k} {v:.1f}" for k, v in sorted(row.steps.items()))
        lines += ["", f'Steps of "{row.label}" at {row.latency_ms} ms{" (quiet)" if row.quiet else ""} (s): {steps}']
    out = ROOT / "docs" / "benchmarks-scale-out.md"
    notes = ""
    if out.exists() and "<!-- notes -->" in out.read_text():
        notes = out.read_text().split("<!-- notes -->", 1)[1]
    out.write_text("\n".join(lines) + "\n\n<!-- notes -->" + (notes or "\n"))
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--cycle":
        print(json.dumps(asdict(dagster_cycle(json.loads(sys.argv[2])))))
        sys.exit(0)
    sys.exit(main())
