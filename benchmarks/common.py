"""What the benchmarks share: where the project's programs are, the simulator in its own process, a PostgreSQL
of their own with fresh databases, the tap's and Meltano's settings for a workload, and how a result names
the machine and the database it ran on and lands in its doc."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import typing as t
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
