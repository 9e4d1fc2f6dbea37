"""Benchmark: the tap, the loader path and the full job against a bare fetch+COPY loop, in one run.

Workload (issue #9): one UTC site, 3 days x 20,000 visits (about 270,000 actions), pages of 500,
served by the Matomo simulator in its own process. Rows, each the median of REPEATS runs:
- bare reference (benchmarks/bare.py): requests + json + flatten + psycopg COPY into a table with
  the `matomo` table's columns and indexes, one process: the yardstick;
- the tap alone, RECORD messages and the project's BATCH files, with its rate per CPU second;
- EL (`meltano run tap-matomo target-postgres`) and the full job (EL + dbt build);
then a backfill against a slow Matomo (300 ms per Live answer, 8 days x 1,500 visits, pages of
100) at max_parallel_requests 1, 2, 4, 8; the peak RSS of tap and loader for a 5,000-visit and a
50,000-visit day; and cProfile's top entries for tap and loader. Results: docs/benchmarks.md.

    .venv/bin/python -m benchmarks.run            # about 15 minutes on 2 cores
"""

from __future__ import annotations

import io
import json
import pstats
import re
import subprocess
import sys
import tempfile
import typing as t
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import (
    BIN,
    LOADER_BIN,
    ROOT,
    TAP_BIN,
    TOKEN,
    Databases,
    Load,
    Simulator,
    create_like_matomo,
    loaded,
    local_databases,
    meltano_env,
    project_env,
    server_settings,
    tap_config,
)
from benchmarks.processes import sample
from benchmarks.run_report import write_report
from devenv.net import free_port
from devenv.postgres import LocalPostgres

REPEATS = 3
ROLES = ("target-postgres", "tap-matomo", "benchmarks.bare", "dbt", "meltano")


@dataclass
class Measure:
    label: str
    seconds: float
    actions: int
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.actions / self.seconds


def _role(command: list[str]) -> str | None:
    line = " ".join(command)
    return next((role for role in ROLES if role in line), None)


def measured(label: str, command: list[str], actions: int, env: dict[str, str] | None = None) -> Measure:
    """Run a command (stdout discarded), sampling RSS and CPU time of it and its children every 50 ms."""
    run = sample(command, _role, env)
    return Measure(label, run.seconds, actions, run.peak_rss_mb(), run.cpu_seconds())


def median_of(runs: list[Measure]) -> Measure:
    """The run of median wall time; peaks are the highest seen."""
    middle = sorted(runs, key=lambda m: m.seconds)[len(runs) // 2]
    peaks = {role: max(m.peak_rss_mb.get(role, 0.0) for m in runs) for role in middle.peak_rss_mb}
    return Measure(middle.label, middle.seconds, middle.actions, peaks, middle.cpu_seconds)


def main_workload(tmp: Path, dbs: Databases) -> tuple[list[Measure], int]:
    sim = Simulator(3, 20_000)
    print(f"workload: {sim.visits} visits, {sim.actions} actions", flush=True)
    try:
        runs: dict[str, list[Measure]] = {}
        for repeat in range(REPEATS):
            _one_repeat(tmp, dbs, sim, repeat, runs)
            print(
                f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1].seconds:.1f} s" for k, v in runs.items()), flush=True
            )
        rows = [median_of(runs[key]) for key in ("bare", "tap-records", "tap-batch", "el", "job")]
    finally:
        sim.stop()
    return rows, sim.actions


def _one_repeat(tmp: Path, dbs: Databases, sim: Simulator, repeat: int, runs: dict[str, list[Measure]]) -> None:
    """One run of each row, added to `runs`: the full job, EL, the tap alone (RECORDs, BATCH files), the bare loop."""
    actions, meltano = sim.actions, str(BIN / "meltano")
    # As a user's project: one warehouse database (emptied before each run here), one dbt target.
    job_database = dbs.fresh("job")
    env = project_env(tmp, sim, job_database, 3, f"job-{repeat}", tmp / "dbt-target-job")
    job = measured("full job: meltano run matomo-to-postgres", [meltano, "run", "matomo-to-postgres"], actions, env)
    assert loaded(job_database, "public.matomo") == actions
    runs.setdefault("job", []).append(job)

    database = dbs.fresh()
    env = meltano_env(tmp, sim, database, 3, f"el-{repeat}")
    el_command = [meltano, "run", "tap-matomo", "target-postgres"]
    runs.setdefault("el", []).append(measured("EL: meltano run tap-matomo target-postgres", el_command, actions, env))
    assert loaded(database) == actions

    tap = [str(TAP_BIN / "tap-matomo"), "--config", str(tap_config(tmp, sim, 3))]
    runs.setdefault("tap-records", []).append(measured("tap alone > /dev/null, RECORD messages", tap, actions))
    batches = tmp / "batches"
    batch_config = {"encoding": {"format": "jsonl-plain"}, "storage": {"root": batches.as_uri()}}
    tap = [str(TAP_BIN / "tap-matomo"), "--config", str(tap_config(tmp, sim, 3, batch_config=batch_config))]
    runs.setdefault("tap-batch", []).append(
        measured("tap alone > /dev/null, BATCH files (project default)", tap, actions)
    )
    for leftover in batches.glob("*.jsonl"):
        leftover.unlink()

    table = f"bare_{repeat}"
    create_like_matomo(job_database, table)
    first = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    last = datetime.now(UTC).date().isoformat()
    bare = [sys.executable, "-m", "benchmarks.bare", sim.url, TOKEN, job_database, table, first, last]
    runs.setdefault("bare", []).append(measured("bare reference: requests + json + flatten + COPY", bare, actions))
    assert loaded(job_database, table) == actions


def backfill(tmp: Path) -> list[tuple[int, Measure]]:
    """The tap alone against a Matomo that takes 300 ms per Live answer."""
    sim = Simulator(8, 1_500, latency_ms=300, seed=7)
    results = []
    try:
        for parallel in (1, 2, 4, 8):
            config = tap_config(tmp, sim, 8, page_size=100, max_parallel_requests=parallel)
            command = [str(TAP_BIN / "tap-matomo"), "--config", str(config)]
            results.append((parallel, measured(f"max_parallel_requests {parallel}", command, sim.actions)))
            print(f"backfill, {parallel} in parallel: {results[-1][1].seconds:.1f} s", flush=True)
    finally:
        sim.stop()
    return results


def memory(tmp: Path, dbs: Databases) -> list[tuple[int, Measure]]:
    """Peak RSS of tap and loader for one small and one large day, max_parallel_requests 4."""
    results = []
    for per_day in (5_000, 50_000):
        sim = Simulator(1, per_day, seed=5)
        try:
            database = dbs.fresh()
            env = meltano_env(tmp, sim, database, 1, f"memory-{per_day}")
            command = [str(BIN / "meltano"), "run", "tap-matomo", "target-postgres"]
            results.append((per_day, measured(f"{per_day} visits", command, sim.actions, env)))
            assert loaded(database) == sim.actions
        finally:
            sim.stop()
    return results


def profiles(tmp: Path) -> dict[str, list[str]]:
    """cProfile's top entries (own time) for the tap and for the loader on one 20,000-visit day."""
    sim = Simulator(1, 20_000, seed=3)
    batches = tmp / "profile-batches"
    config = tap_config(
        tmp, sim, 1, batch_config={"encoding": {"format": "jsonl-plain"}, "storage": {"root": batches.as_uri()}}
    )
    out: dict[str, list[str]] = {}
    try:
        messages = tmp / "messages.jsonl"
        with messages.open("w") as sink:
            _profiled(TAP_BIN, "tap-matomo", config, tmp / "tap.prof", stdout=sink)
    finally:
        sim.stop()
    out["tap-matomo"] = _top(tmp / "tap.prof")
    server = LocalPostgres(tmp / "pg-profile", free_port()).start()
    server.wait_ready()
    try:
        target = tmp / "target.json"
        target.write_text(
            json.dumps(
                {
                    "sqlalchemy_url": server.url.replace("postgresql://", "postgresql+psycopg://"),
                    "default_target_schema": "matomo_raw",
                    "load_method": "upsert",
                    "add_record_metadata": True,
                    "use_copy": True,
                    "validate_records": False,
                }
            )
        )
        with messages.open() as source:
            _profiled(LOADER_BIN, "target-postgres-matomo", target, tmp / "target.prof", stdin=source)
    finally:
        server.stop()
    out["target-postgres-matomo"] = _top(tmp / "target.prof")
    return out


def _profiled(venv_bin: Path, command: str, config: Path, output: Path, **streams: t.Any) -> None:
    """Run a plugin's command under cProfile, its profile written to `output`."""
    arguments = ["-m", "cProfile", "-o", str(output), str(venv_bin / command), "--config", str(config)]
    streams.setdefault("stdout", subprocess.DEVNULL)
    subprocess.run([str(venv_bin / "python"), *arguments], stderr=subprocess.DEVNULL, check=True, **streams)


def _top(path: Path, count: int = 10) -> list[str]:
    stream = io.StringIO()
    stats = pstats.Stats(str(path), stream=stream)
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:count]  # type: ignore[attr-defined]
    lines = []
    for (filename, line, function), (_, calls, own, cumulative, _) in entries:
        where = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", filename)
        where = where.replace(str(ROOT) + "/", "")
        lines.append(f"| {own / total:.0%} | {cumulative / total:.0%} | `{function}` ({where}:{line}) | {calls:,} |")
    return lines


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="tap-matomo-bench-") as tmp_name:
        tmp = Path(tmp_name)
        load = Load()
        load.sample()
        with local_databases(tmp) as dbs:
            settings = server_settings(dbs.server.url)
            rows, actions = main_workload(tmp, dbs)
            load.sample()
            mem = memory(tmp, dbs)
        fill = backfill(tmp)
        load.sample()
        prof = profiles(tmp)
        load.sample()
    write_report(rows, actions, fill, mem, prof, f"{settings}; {load}", REPEATS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
