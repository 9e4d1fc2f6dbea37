"""Soak: live traffic, faults and restarts while the pipeline runs again and again; then the warehouse
must equal the simulator's truth (no action lost, none duplicated, no visit with stale fields).

The normal suite runs a short form; `SOAK_CYCLES=30 pytest -m soak -s` runs a long one and prints
the report recorded in docs/reliability.md. A cycle stands for ten minutes of a live site: new
visits, open visits growing, late hits up to 24 h back; the pipeline (`meltano run
matomo-to-postgres`: tap, target-postgres, dbt) then runs, sometimes under a fault.
"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path

import psycopg
import pytest
from matomo_simulator import Fault, MatomoSimulator, World
from matomo_simulator.render import render_visit
from tap_matomo import clock

from devenv.postgres import LocalPostgres
from tests.helpers import TOKEN
from tests.pipeline import Meltano, small_batches

CYCLES = int(os.environ.get("SOAK_CYCLES", "6"))
# Late hits arrive up to 24 h back, so the lookback must cover them (SOAK_LOOKBACK_MINUTES=60 shows the losses).
LOOKBACK_MINUTES = int(os.environ.get("SOAK_LOOKBACK_MINUTES", str(25 * 60)))
JOB = ("run", "matomo-to-postgres")


def last_fall_back_in_new_york(today: date) -> date:
    """The latest first Sunday of November (01:00-02:00 happens twice in New York) before today.

    Relative to the clock, so the soak's window stays within a year instead of growing daily.
    """
    for year in (today.year, today.year - 1):
        first = date(year, 11, 1)
        sunday = first + timedelta(days=(6 - first.weekday()) % 7)
        if sunday < today:
            return sunday
    msg = "no first Sunday of November in the last two years"
    raise AssertionError(msg)


DST_DAY = last_fall_back_in_new_york(clock.utc_now().date())


@dataclass
class Report:
    expected: int
    landed: int
    lost: int
    duplicated: int
    stale_visits: int
    cycles: int
    faults: list[str]

    def lines(self) -> str:
        return (
            f"cycles {self.cycles}, faults {', '.join(self.faults)}\n"
            f"actions expected {self.expected}, landed {self.landed}, lost {self.lost}, "
            f"duplicated {self.duplicated}, visits with stale fields {self.stale_visits}"
        )


@pytest.fixture
def world() -> World:
    world = World(seed=31)
    world.sites = {i: world.sites[i] for i in (1, 2, 3)}
    now = clock.utc_now()
    world.generate(now - timedelta(days=2), now - timedelta(minutes=5), visits_per_day=60)
    new_york, kolkata = world.sites[2].tz, world.sites[3].tz
    for minute in (10, 40):  # both 01:xx of the DST day, first in EDT then in EST
        first = datetime.combine(DST_DAY, time_of_day(1, minute), tzinfo=new_york)
        world.add_visit(2, int(first.timestamp()), n_actions=3)
        world.add_visit(2, int(first.timestamp()) + 3600, n_actions=3)
    midnight = datetime.combine(now.astimezone(kolkata).date(), time_of_day(0), tzinfo=kolkata)
    world.add_visit(3, int(midnight.timestamp()), n_actions=1)  # ends exactly at local midnight
    return world


def live_traffic(world: World, rng: random.Random) -> None:
    """Ten minutes of a live site, compressed: new visits, open visits growing or pinged, late hits."""
    now = int(clock.utc_now().timestamp())
    for idsite in world.sites:
        for _ in range(rng.randint(2, 5)):
            world.add_visit(idsite, now - rng.randint(1, 60))
        open_visits = [
            v for v in world.visits.values() if v.idsite == idsite and now - 1800 < v.last_action < now - 200
        ]
        for visit in rng.sample(open_visits, min(3, len(open_visits))):
            world.grow_visit(visit.idvisit, now - 100, n_actions=1)  # hits 5-90 s apart: still in the past
        for visit in rng.sample(open_visits, min(2, len(open_visits))):  # heartbeat pings, one with a user id
            world.ping_visit(visit.idvisit, rng.randint(5, 60), rng.choice([None, f"user-{rng.randint(1, 9)}"]))
        world.add_visit(idsite, now - rng.randint(3600, 24 * 3600 - 600))  # a late hit, up to 24 h back


def raw_rows(database: str) -> int:
    with psycopg.connect(database) as conn:
        return conn.execute("SELECT count(*) FROM matomo_raw.visits_actions").fetchone()[0]


def kill_mid_load(meltano: Meltano, simulator: MatomoSimulator, database: str, batches: Path) -> bool:
    """Start the job, `kill -9` it once it has committed some new rows; whether it was killed mid-load."""
    before = raw_rows(database)

    def slow(sim: MatomoSimulator, params: dict[str, str]) -> None:
        time.sleep(0.2)  # keeps the run going long enough to be caught mid-load

    simulator.before_live_request.append(slow)
    process = meltano.popen(*JOB, "--force", env=small_batches(batches, 10))
    landed = before
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None and landed <= before:
        time.sleep(0.1)
        try:
            landed = raw_rows(database)
        except psycopg.Error:
            continue
    killed = process.poll() is None and landed > before
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    simulator.before_live_request.remove(slow)
    return killed


def compare(world: World, database: str) -> tuple[int, int, int, int, int]:
    truth = world.truth()
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT action_id, idvisit, actions, visitduration, userid FROM matomo").fetchall()
    landed = {r[0] for r in rows}
    duplicated = len(rows) - len(landed)
    lost = len(set(truth) - landed)
    by_visit: dict[int, set[tuple[int, int, str | None]]] = {}
    for _, idvisit, actions, duration, userid in rows:
        by_visit.setdefault(idvisit, set()).add((actions, duration, userid))
    stale = 0
    for visit in world.visits.values():
        rendered = render_visit(world, visit)
        if by_visit.get(visit.idvisit) != {(rendered["actions"], rendered["visitDuration"], rendered["userId"])}:
            stale += 1
    return len(truth), len(landed & set(truth)), lost, duplicated, stale


@pytest.mark.soak
def test_soak_nothing_lost_duplicated_or_stale(
    meltano: Meltano, simulator: MatomoSimulator, database: str, postgres: LocalPostgres, tmp_path: Path
) -> None:
    rng = random.Random(8)  # noqa: S311 - test traffic
    meltano.env |= {
        "STARTDATE": (DST_DAY - timedelta(days=1)).isoformat(),
        "TAP_MATOMO_LOOKBACK_MINUTES": str(LOOKBACK_MINUTES),
        "TAP_MATOMO_REQUEST_TIMEOUT": "2",
        "TAP_MATOMO_PAGE_SIZE": "20",
        "TAP_MATOMO_MAX_PARALLEL_REQUESTS": "4",  # the default, written down: days read at once
        **small_batches(tmp_path / "batches", 300),
    }
    kills: list[bool] = []
    faults = [
        ("http-500", lambda: simulator.inject(Fault("status", times=2, status=500))),
        ("slow-past-timeout", lambda: simulator.inject(Fault("slow", times=1, delay=3))),
        ("truncated-json", lambda: simulator.inject(Fault("truncated", times=2))),
        ("query-timeout", lambda: simulator.inject(Fault("query_timeout", times=2))),
        ("kill-9-mid-load", lambda: kills.append(kill_mid_load(meltano, simulator, database, tmp_path / "b"))),
        ("postgres-restart", lambda: (postgres.kill(), postgres.start(), postgres.wait_ready())),
    ]
    done = meltano.run(*JOB)
    assert done.returncode == 0, done.stderr[-3000:]
    used = []
    for cycle in range(CYCLES):
        live_traffic(simulator.world, rng)
        name, inject = faults[cycle % len(faults)]
        used.append(name)
        inject()
        if name != "kill-9-mid-load":
            run = meltano.run(*JOB, "--force")
            assert run.returncode == 0, (name, run.stderr[-3000:])
    final = meltano.run(*JOB, "--force")
    assert final.returncode == 0, final.stderr[-3000:]

    expected, landed, lost, duplicated, stale = compare(simulator.world, database)
    report = Report(expected, landed, lost, duplicated, stale, CYCLES, sorted(set(used)))
    assert kills, "the kill fault never ran"
    assert all(kills), "a run ended before it could be killed mid-load"
    print("\n" + report.lines())
    assert (lost, duplicated, stale) == (0, 0, 0), report.lines()
    assert landed == expected > 0
    assert not simulator.token_in_url
    assert all(TOKEN not in r.raw_url for r in simulator.requests)
    assert TOKEN not in final.stdout + final.stderr
    assert TOKEN not in str(meltano.state())
