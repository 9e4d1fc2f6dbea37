"""The extraction invariant under a live site: nothing lost, nothing twice, the rest seen next run.

While the tap pages, the simulator receives new visits and grows open visits before every
Live request. The same churn breaks a plain offset loop (the Node tool's way), which shows the
test can tell the difference.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from matomo_simulator import MatomoSimulator, World
from tap_matomo import clock

from tests.helpers import TOKEN, latest_versions, run_tap

#: Days, weeks and site-local calendars: run again at four UTC times (`make test-clock`).
pytestmark = pytest.mark.clock


def _busy_world(timezone: str = "UTC") -> World:
    world = World(seed=21)
    world.sites = {1: replace(world.sites[1], timezone=timezone)}
    now = clock.utc_now()
    world.generate(now - timedelta(hours=30), now - timedelta(minutes=2), visits_per_day=300)
    return world


class Churn:
    """Before each Live request: two new visits, and two visits of the last hours get a new hit."""

    def __init__(self, world: World, seed: int = 4) -> None:
        self.world = world
        self.rng = random.Random(seed)  # noqa: S311 - test data
        self.calls = 0
        self.grown: set[int] = set()

    def __call__(self, sim: MatomoSimulator, params: dict[str, str]) -> None:
        self.calls += 1
        now = int(sim.now())
        for _ in range(2):
            self.world.add_visit(1, now - 1, n_actions=1)
        recent = [v for v in self.world.visits.values() if v.last_action > now - 6 * 3600 and v.last_action < now - 2]
        for visit in self.rng.sample(recent, min(2, len(recent))):
            self.world.grow_visit(visit.idvisit, now - 1, n_actions=1)
            self.grown.add(visit.idvisit)


def _just_after_midnight() -> str:
    """A Matomo offset timezone (`UTC+10`) whose local time is now between 00:00 and 01:00."""
    hour = clock.utc_now().hour
    return f"UTC{-hour if hour <= 11 else 24 - hour:+d}"


@pytest.mark.parametrize(
    "timezone",
    [
        "UTC",
        # Visits of the evening before get hits after midnight (create_new_visit_after_midnight=0):
        # they move from an earlier day into the last one while both are read at once. A fixed id:
        # the pytest workers collect at slightly different instants.
        pytest.param(_just_after_midnight(), id="just-after-midnight"),
    ],
)
def test_no_visit_lost_or_repeated_while_the_site_changes_under_paging(tmp_path: Path, timezone: str) -> None:
    world = _busy_world(timezone)
    before = set(world.visits)
    churn = Churn(world)
    config = {
        "token_auth": TOKEN,
        "page_size": 7,
        "max_parallel_requests": 4,  # days read at once while the site changes
        "start_date": (clock.utc_now() - timedelta(days=2)).date().isoformat(),
    }
    with MatomoSimulator(world, {TOKEN: None}) as sim:
        sim.before_live_request.append(churn)
        first = run_tap(tmp_path, {**config, "url": sim.url})
        assert first.returncode == 0, first.stderr[-2000:]
        sim.before_live_request.clear()
        second = run_tap(tmp_path, {**config, "url": sim.url}, first.state)
        assert second.returncode == 0, second.stderr[-2000:]

    assert churn.calls > 30
    assert len(churn.grown) > 30
    ids = [r["action_id"] for r in first.records()]
    assert len(ids) == len(set(ids)), "an action was emitted twice in one run"
    emitted = latest_versions(first)
    assert before <= set(emitted), f"visits lost by the run: {sorted(before - set(emitted))[:10]}"
    for idvisit, rows in emitted.items():  # every visit whole: positions 0..n-1
        assert sorted(r["action_position"] for r in rows) == list(range(len(rows))), idvisit
    stale = [v for v in churn.grown if v in emitted and len(emitted[v]) < len(world.visits[v].actions)]
    assert stale, "no visit grew after the tap had read it: the scenario did not happen"

    final = latest_versions(first, second)
    truth = world.truth()
    got = {r["action_id"] for rows in final.values() for r in rows}
    assert got == set(truth), f"lost {len(set(truth) - got)}, unexpected {len(got - set(truth))}"


def _offset_loop(sim: MatomoSimulator, day: str, page_size: int) -> set[int]:
    """What the Node tool did: offsets over one day, newest first, on a live server."""
    seen: set[int] = set()
    offset = 0
    while True:
        page = requests.post(
            f"{sim.url}/index.php",
            params={
                "module": "API",
                "method": "Live.getLastVisitsDetails",
                "format": "JSON",
                "idSite": 1,
                "period": "day",
                "date": day,
                "filter_limit": page_size,
                "filter_offset": offset,
            },
            data={"token_auth": TOKEN},
            timeout=10,
        ).json()
        seen |= {v["idVisit"] for v in page}
        if len(page) < page_size:
            return seen
        offset += page_size


@pytest.mark.parametrize("page_size", [7])
def test_the_same_churn_makes_a_plain_offset_loop_lose_visits(page_size: int) -> None:
    world = _busy_world()
    churn = Churn(world)
    with MatomoSimulator(world, {TOKEN: None}) as sim:
        today = clock.utc_now().date().isoformat()
        before = {
            v.idvisit
            for v in world.visits.values()
            if v.last_action >= int(datetime.fromisoformat(today).replace(tzinfo=UTC).timestamp()) - 86400
        }
        sim.before_live_request.append(churn)
        seen = _offset_loop(sim, today, page_size)
    assert before - seen, "the offset loop lost nothing: the churn is too weak to prove anything"


def test_visits_leaving_a_crowded_second_while_it_is_read_by_offset(tmp_path: Path) -> None:
    """More visits share one second than a page holds, and some of them grow while the tap steps through it."""
    world = World(seed=5)
    world.sites = {1: world.sites[1]}
    day = clock.utc_now().date() - timedelta(days=1)
    second = int(datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp()) + 12 * 3600
    burst = world.add_burst(1, second, 40)
    rng = random.Random(3)  # noqa: S311 - test data
    moved: list[int] = []

    def grow_two_still_in_the_second(sim: MatomoSimulator, params: dict[str, str]) -> None:
        if params.get("filter_offset", "0") == "0" and not moved:
            return  # let the tap reach the second first
        still = [v for v in burst if v.last_action == second]
        for visit in rng.sample(still, min(2, len(still))):
            # Later the same day: Matomo starts a new visit after local midnight (docs/matomo-api.md).
            world.grow_visit(visit.idvisit, second + 60 * (len(moved) + 1), n_actions=1)
            moved.append(visit.idvisit)

    config = {
        "token_auth": TOKEN,
        "page_size": 7,
        "max_parallel_requests": 4,
        "site_ids": [1],
        "start_date": day.isoformat(),
    }
    with MatomoSimulator(world, {TOKEN: None}) as sim:
        sim.before_live_request.append(grow_two_still_in_the_second)
        run = run_tap(tmp_path, {**config, "url": sim.url})
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(moved) >= 6
    emitted = {r["idvisit"] for r in run.records()}
    assert {v.idvisit for v in burst} <= emitted, sorted({v.idvisit for v in burst} - emitted)
    ids = [r["action_id"] for r in run.records()]
    assert len(ids) == len(set(ids))
