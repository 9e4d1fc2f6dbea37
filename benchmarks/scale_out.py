"""Benchmark: 6 sites through one Meltano job, or through Dagster in 3 or 6 shards at once.

Against the simulator in its own process with 300 ms per Live answer (a busy Matomo), 8 days x
500 visits per site, pages of 50: waiting for Matomo, not parsing, dominates, as in a backfill of
many sites. Each run starts from an empty warehouse and an empty Meltano state; each loads the
same actions (checked). Results: docs/benchmarks-scale-out.md.

    .venv/bin/python -m benchmarks.scale_out        # about 9 minutes
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

from benchmarks.run import BIN, ROOT, Load, Simulator, loaded, local_databases, machine, meltano_env, server_settings

SITES = "1,2,3,4,5,6"
DAYS, VISITS, PAGE, LATENCY_MS = 8, 500, 50, 300
#: Balanced lists, the hash split (uneven for so few sites), one site per shard.
SHARDINGS = [
    {"MATOMO_SHARD_SITES": "1,2;3,4;5,6"},
    {"MATOMO_SHARDS": "3"},
    {"MATOMO_SHARD_SITES": "1;2;3;4;5;6"},
]


@dataclass
class Row:
    label: str
    seconds: float
    actions: int
    steps: dict[str, float]
    parallel: int  # max_parallel_requests of each run


def one_job(tmp: Path, sim: Simulator, database: str, parallel: int) -> Row:
    env = {**os.environ, **meltano_env(tmp, sim, database, DAYS, f"one-job-{parallel}"), "RESULTPERPAGE": str(PAGE)}
    env["TAP_MATOMO_MAX_PARALLEL_REQUESTS"] = str(parallel)
    started = time.monotonic()
    subprocess.run(
        [str(BIN / "meltano"), "run", "matomo-to-postgres"],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    label = f"one job: `meltano run matomo-to-postgres`, max_parallel_requests {parallel}"
    return Row(label, time.monotonic() - started, loaded(database), {}, parallel)


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
    split = env.get("MATOMO_SHARD_SITES") or "by hash"
    parallel = int(env["TAP_MATOMO_MAX_PARALLEL_REQUESTS"])
    label = f"Dagster, {shards} shards at once ({split}), max_parallel_requests {parallel}: plan, shards, dbt build"
    return Row(label, seconds, loaded(env["PGDATABASE"]), steps, parallel)


def run_in_child(shards: dict[str, str], tmp: Path, sim: Simulator, database: str, parallel: int) -> Row:
    """A Dagster cycle in a fresh process: the code location reads its shard settings when it loads."""
    name = f"shards-{len(list(tmp.glob('shards-*')))}"
    env = {**meltano_env(tmp, sim, database, DAYS, name), "RESULTPERPAGE": str(PAGE), **shards}
    env["TAP_MATOMO_MAX_PARALLEL_REQUESTS"] = str(parallel)
    env["MATOMO_SHARD_RUN_DIR"] = str(tmp / name)
    command = [sys.executable, "-m", "benchmarks.scale_out", "--cycle", json.dumps(env)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return Row(**json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    sim = Simulator(DAYS, VISITS, latency_ms=LATENCY_MS, seed=5, sites=SITES)
    try:
        with tempfile.TemporaryDirectory(prefix="tap-matomo-scale-") as tmp_name:
            tmp = Path(tmp_name)
            with local_databases(tmp) as dbs:
                load = Load()
                load.sample()
                conditions = server_settings(dbs.server.url)
                # A code location reads its shard settings once: one process per setting.
                rows = [one_job(tmp, sim, dbs.fresh(), 4)]
                rows += [run_in_child(shards, tmp, sim, dbs.fresh(), 4) for shards in SHARDINGS]
                # A Matomo that must see one query at a time per run: waiting dominates.
                rows += [one_job(tmp, sim, dbs.fresh(), 1), run_in_child(SHARDINGS[0], tmp, sim, dbs.fresh(), 1)]
                load.sample()
    finally:
        sim.stop()
    write_report(rows, sim, f"{conditions}; {load}")
    return 0


def write_report(rows: list[Row], sim: Simulator, conditions: str) -> None:
    bases = {row.parallel: row.seconds for row in rows if not row.steps}  # the one-job rows
    lines = [
        "# Benchmark: many sites, one job or Dagster shards",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `python -m benchmarks.scale_out` (a script, not a test), one run.",
        f"Machine: {machine()}; {conditions}; simulator, Dagster, Meltano, PostgreSQL on this one machine.",
        "",
        f"Workload: 6 sites x {DAYS} days x {VISITS} visits ({sim.visits} visits, {sim.actions} actions), pages of "
        f"{PAGE}, {LATENCY_MS} ms per Live answer; each run from an empty warehouse and state.",
        "",
        "| run | wall (s) | actions loaded | speed-up vs one job |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row.label} | {row.seconds:.1f} | {row.actions} | {bases[row.parallel] / row.seconds:.1f}x |")
    for row in rows:
        if not row.steps:
            continue
        lines += ["", f'Steps of "{row.label}" (s): ' + ", ".join(f"{k} {v:.1f}" for k, v in sorted(row.steps.items()))]
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
