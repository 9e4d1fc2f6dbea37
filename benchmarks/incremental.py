"""Benchmark: an hourly run's dbt step must cost what is new, not what the warehouse stores.

A real load (simulator -> `meltano run matomo-to-postgres`) seeds raw; raw then grows by SQL to
100k, 1M and 5M rows (copies of the real rows with other visit ids, older load times and
instants spread over many weekly partitions), rebuilt with `dbt build --full-refresh` (timed:
the full-refresh path, with the database's temp-file bytes). At each size the same increment is
loaded (about 5,000 new actions and a few hundred visits extracted again), then the job's dbt
step (`meltano invoke dbt-postgres:build`: the incremental models and the hourly tests) is timed.
At the largest size, EXPLAIN (ANALYZE) of the incremental statement goes in the report. Also:
the tap's recent-visit state size for 10k and 100k visits in the lookback window.

    .venv/bin/python -m benchmarks.incremental [--sizes 100000,1000000,5000000]

Results go to docs/benchmarks-incremental.md (with the machine), never into tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from matomo_simulator import MatomoSimulator, World
from tap_matomo.raw.recent_visits import CAP, RecentVisits, visit_digest

from benchmarks.common import ROOT, TOKEN, Load, server_settings
from benchmarks.incremental_report import write_report
from devenv.net import free_port
from devenv.postgres import LocalPostgres

MELTANO = str(Path(sys.executable).parent / "meltano")
SEED_DAYS = 3
SEED_VISITS_PER_DAY = 1500  # per site, 4 sites: about 100k actions in the seed load
NEW_VISITS = 950  # about 5,000 new actions per increment
REEXTRACTED_VISITS = 300
COPY_OFFSET = 1_000_000_000  # visit ids of the synthetic copies start here


@dataclass
class Step:
    size: int
    full_refresh_s: float
    full_refresh_temp_mb: float
    increment_actions: int
    dbt_step_s: float
    models: str  # the incremental models' own times in that step


def run(command: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        msg = f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        raise RuntimeError(msg)
    return time.monotonic() - started


def scalar(url: str, statement: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(statement).fetchall()[0][0])


def grow_raw(url: str, target_rows: int, seed_rows: int) -> None:
    """Copies of the seed rows until raw holds `target_rows`: other visit ids, older loads and instants."""
    with psycopg.connect(url, autocommit=True) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'matomo_raw' AND table_name = 'visits_actions' ORDER BY ordinal_position"
            ).fetchall()
        ]
        shifted = {
            "action_id": "(idvisit + {offset})::text || '_' || action_position",
            "idvisit": "idvisit + {offset}",
            "action_timestamp": "action_timestamp - {weeks} * interval '1 week' - {days} * interval '1 day'",
            "visit_first_action_at": "visit_first_action_at - {weeks} * interval '1 week' - {days} * interval '1 day'",
            "visit_last_action_at": "visit_last_action_at - {weeks} * interval '1 week' - {days} * interval '1 day'",
            "_sdc_batched_at": "_sdc_batched_at - {weeks} * interval '1 week' - {days} * interval '1 day'",
        }
        copies = f"SELECT count(DISTINCT idvisit / {COPY_OFFSET}) FROM matomo_raw.visits_actions"  # noqa: S608
        copy = 1 + int(scalar(url, copies))
        while (rows := int(scalar(url, "SELECT count(*) FROM matomo_raw.visits_actions"))) < target_rows:
            # About 100k actions a week of history: a mid-size site's year at 5M rows.
            weeks, days = divmod(copy * seed_rows * 7 // 100_000, 7)
            values = ", ".join(
                shifted.get(c, c).format(offset=copy * COPY_OFFSET, weeks=weeks + 1, days=days) for c in columns
            )
            limit = min(seed_rows, target_rows - rows)
            conn.execute(
                f"INSERT INTO matomo_raw.visits_actions ({', '.join(columns)}) "  # noqa: S608 - our own columns
                f"SELECT {values} FROM matomo_raw.visits_actions WHERE idvisit < {COPY_OFFSET} LIMIT {limit}"
            )
            copy += 1
        conn.execute("VACUUM ANALYZE matomo_raw.visits_actions")


def age_earlier_loads(url: str, keep_since: datetime | None) -> None:
    """Make this benchmark's loads before `keep_since` (all, if None) a day old.

    An hourly run finds the previous hour's load just before its watermark and older loads long
    before; the benchmark loads all of them within minutes, so without this the reload overlap
    (15 minutes) would read the seed and every earlier increment again.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE matomo_raw.visits_actions SET _sdc_batched_at = _sdc_batched_at - interval '1 day' "
            "WHERE _sdc_batched_at > (now() at time zone 'UTC') - interval '12 hours' "
            "AND _sdc_batched_at < coalesce(%s::timestamptz at time zone 'UTC', 'infinity')",
            (keep_since,),
        )


def increment(world: World, rng: random.Random) -> int:
    """About 5,000 new actions and a few hundred visits that grew; the number of actions added."""
    before = len(world.truth())
    now = int(time.time())
    for _ in range(NEW_VISITS):
        world.add_visit(rng.choice(list(world.sites)), now - rng.randint(5, 1800))
    recent = [v for v in world.visits.values() if now - 3000 < v.last_action < now - 60]
    for visit in rng.sample(recent, min(REEXTRACTED_VISITS, len(recent))):
        world.grow_visit(visit.idvisit, now - 30, n_actions=1)
    return len(world.truth()) - before


def fold_empty_partition_scans(plan: str) -> str:
    """The plan with consecutive partition scans that found no row folded into one line: at a year of
    weekly partitions each index probe of an empty range is five lines, the same but for its name."""
    lines = plan.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        folded, buffers, indent = 0, 0, ""
        while i < len(lines) and (
            m := re.match(r"(\s*->\s+)Index Scan using \S+ on \S+ .*rows=0\.00 loops=1\)$", lines[i])
        ):
            indent = m.group(1)
            detail_indent = len(indent) + 2
            i += 1
            while i < len(lines) and len(lines[i]) - len(lines[i].lstrip()) >= detail_indent:
                if hit := re.search(r"shared hit=(\d+)", lines[i]):
                    buffers += int(hit.group(1))
                i += 1
            folded += 1
        if folded:
            scans = f"Index Scans of {folded} more partitions, each through its own index"
            out.append(f"{indent}{scans}: no row ({buffers} buffers in all)")
        if i < len(lines):
            out.append(lines[i])
            i += 1
    return "\n".join(out)


def explain_incremental(url: str) -> str:
    """EXPLAIN (ANALYZE) of the select that stages the incremental `matomo` run, as dbt compiled it."""
    compiled = (ROOT / "transform/target/compiled/matomo/models/marts/matomo.sql").read_text()
    with psycopg.connect(url) as conn:
        plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {compiled}").fetchall()
        conn.rollback()
    return fold_empty_partition_scans("\n".join(r[0] for r in plan))


def state_sizes() -> list[tuple[int, int, int, float]]:
    """(visits in the lookback window, visits kept, bytes of the state entry, ms to encode it)."""
    sizes = []
    for visits in (10_000, 100_000):
        recent = RecentVisits()
        for idvisit in range(5_000_000, 5_000_000 + visits):
            recent.remember(idvisit, 1_800_000_000 + idvisit % 90_000, visit_digest([{"idvisit": idvisit}]))
        started = time.perf_counter()
        encoded = json.dumps(recent.kept(horizon=0).encode())
        sizes.append((visits, min(visits, CAP), len(encoded), (time.perf_counter() - started) * 1000))
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,5000000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="tap-matomo-incr-") as tmp_name:
        tmp = Path(tmp_name)
        server = LocalPostgres(tmp / "pg", free_port()).start()
        server.wait_ready()
        load = Load()
        settings = server_settings(server.url)
        world = World(seed=42)
        now = datetime.now(UTC)
        world.generate(now - timedelta(days=SEED_DAYS), now - timedelta(minutes=40), SEED_VISITS_PER_DAY)
        try:
            with psycopg.connect(server.url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            url = server.url.rsplit("/", 1)[0] + "/bench"
            with MatomoSimulator(world, {TOKEN: None}) as sim:
                env = {
                    **os.environ,
                    "MATOMO_URL": sim.url,
                    "MATOMO_KEY": TOKEN,
                    "RESULTPERPAGE": "500",
                    "STARTDATE": (now - timedelta(days=SEED_DAYS + 1)).date().isoformat(),
                    "PGDATABASE": url,
                    "MELTANO_DATABASE_URI": f"sqlite:///{tmp / 'meltano.db'}",
                    "TAP_MATOMO_REPORTS": "[]",  # the raw log's models (reports: benchmarks/reports.py)
                }
                steps, plan = _steps(url, env, world, sizes, load)
        finally:
            server.stop()
    write_report(steps, plan, state_sizes(), f"{settings}; {load}", (NEW_VISITS, REEXTRACTED_VISITS))
    return 0


def _steps(url: str, env: dict[str, str], world: World, sizes: list[int], load: Load) -> tuple[list[Step], str]:
    """The seed load, then per size: raw grown to it, a full refresh, an increment loaded and the dbt step timed;
    and the incremental statement's plan at the largest size."""
    rng = random.Random(3)  # noqa: S311 - benchmark data
    run([MELTANO, "run", "matomo-to-postgres"], env)
    seed_rows = int(scalar(url, "SELECT count(*) FROM matomo_raw.visits_actions"))
    print(f"seed load: {seed_rows:,} raw rows", flush=True)
    steps, plan = [], ""
    # A first, unmeasured increment, so that every measured step finds one increment
    # as the previous load (the seed load, aged, is then history like the rest).
    age_earlier_loads(url, None)
    keep_since = datetime.now(UTC)
    increment(world, rng)
    run([MELTANO, "run", "matomo-to-postgres"], env)
    for size in sizes:
        grow_raw(url, size, seed_rows)
        age_earlier_loads(url, keep_since)
        temp_before = int(scalar(url, "SELECT temp_bytes FROM pg_stat_database WHERE datname = 'bench'"))
        full = run([MELTANO, "invoke", "dbt-postgres:full-refresh"], env)
        temp = int(scalar(url, "SELECT temp_bytes FROM pg_stat_database WHERE datname = 'bench'"))
        with psycopg.connect(url, autocommit=True) as conn:
            # What autovacuum and the checkpointer do after a rebuild; measured together
            # with the hourly step they made it 3x slower at 5M rows in one run out of four.
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
        added = increment(world, rng)
        keep_since = datetime.now(UTC)
        run([MELTANO, "run", "tap-matomo", "target-postgres"], env)
        if size == sizes[-1]:
            run([MELTANO, "invoke", "dbt-postgres", "compile", "--select", "matomo"], env)
            plan = explain_incremental(url)
        dbt_step = run([MELTANO, "invoke", "dbt-postgres:build"], env)
        raw = int(scalar(url, "SELECT count(*) FROM matomo_raw.visits_actions"))
        steps.append(Step(raw, full, (temp - temp_before) / 2**20, added, dbt_step, _model_times()))
        load.sample()
        print(steps[-1], flush=True)
    return steps, plan


def _model_times() -> str:
    """The last dbt run's models (not staging) and their seconds, from its run_results.json."""
    nodes = json.loads((ROOT / "transform/target/run_results.json").read_text())["results"]
    return ", ".join(
        f"{n['unique_id'].rsplit('.', 1)[1]} {n['execution_time']:.1f}"
        for n in nodes
        if n["unique_id"].startswith("model.") and "stg_" not in n["unique_id"]
    )


if __name__ == "__main__":
    sys.exit(main())
