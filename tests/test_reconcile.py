"""GDPR erasures, anonymisation and purges: the nightly reconcile makes the warehouse follow Matomo, and proves it.

One scenario through the project's real jobs (Meltano, target-postgres-matomo, dbt, PostgreSQL):
load, then in Matomo erase visits (on closed days, one in the hourly lookback, one on a day then
purged), anonymise a day, purge old raw logs; the hourly job deletes nothing; an interrupted
reconcile deletes nothing; the reconcile job deletes the erased visits everywhere, takes the
anonymised values, keeps and reports the purged days, and `matomo_reconciliation` then differs only
where it should: on the purged day whose report the erasure invalidated. Opting in deletes the
purged days.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from matomo_simulator import Fault, MatomoSimulator, World
from tap_matomo import clock

from tests.conftest import TOKENS, project_meltano
from tests.pipeline import Meltano, query

#: Days, weeks and site-local calendars: run again at four UTC times (`make test-clock`).
pytestmark = pytest.mark.clock

JOB = ("run", "matomo-to-postgres")
RECONCILE = ("run", "matomo-reconcile")
DAYS = 4


def visit_ids(database: str, table: str) -> set[int]:
    return {r[0] for r in query(database, f"SELECT DISTINCT idvisit FROM {table}")}  # noqa: S608 - fixed names


def on_day(world: World, idsite: int, day: object) -> list[int]:
    lo, hi = world.site_day_bounds(idsite, day)  # type: ignore[arg-type]
    return sorted(v.idvisit for v in world.visits.values() if v.idsite == idsite and lo <= v.last_action < hi)


def test_reconcile_follows_erasures_anonymisation_and_purges(database: str, tmp_path: Path) -> None:
    world = World(seed=21)
    world.sites = {1: world.sites[1], 2: world.sites[2]}  # UTC and America/New_York
    now = clock.utc_now()
    world.generate(now - timedelta(days=DAYS), now - timedelta(minutes=5), visits_per_day=40)
    today = now.date()  # site 1's (UTC)
    closed, purged_day = today - timedelta(days=2), today - timedelta(days=3)
    yesterday_ny = clock.utc_now().astimezone(world.sites[2].tz).date() - timedelta(days=1)  # site 2's last closed day

    with MatomoSimulator(world, TOKENS) as sim:
        meltano: Meltano = project_meltano(sim.url, database, tmp_path / "meltano.db")
        meltano.env |= {
            "STARTDATE": (today - timedelta(days=DAYS + 1)).isoformat(),
            "TAP_MATOMO_LOOKBACK_MINUTES": "1500",  # yesterday is in the hourly lookback
            "TAP_MATOMO_RECONCILE_RECONCILE_DAYS": str(DAYS),
            "TAP_MATOMO_RECONCILE_MAX_RETRIES": "0",
        }
        first = meltano.run(*JOB)
        assert first.returncode == 0, first.stderr[-3000:]
        held_before = visit_ids(database, "matomo")
        assert held_before == set(world.visits)

        # In Matomo: erase, anonymise, purge.
        erased = on_day(world, 1, closed)[:3] + on_day(world, 2, yesterday_ny)[-1:]  # the last: in the lookback
        kept_purged = on_day(world, 1, purged_day)  # all held; one is erased, then the whole day purged
        erased_then_purged = kept_purged[:1]
        assert sim.delete_data_subjects(erased + erased_then_purged) == len(erased) + 1 == 5
        anonymised = world.anonymise(2, closed, closed)
        start_of_closed = world.site_day_bounds(1, closed)[0]
        purged = {v.idvisit for v in world.visits.values() if v.idsite == 1 and v.last_action < start_of_closed}
        purged |= set(erased_then_purged)  # every visit the warehouse holds on the days purged
        world.purge_before(1, closed)  # site 1's days before `closed` are emptied (raw logs only)
        assert kept_purged
        assert not on_day(world, 1, purged_day)

        hourly = meltano.run(*JOB)
        assert hourly.returncode == 0, hourly.stderr[-3000:]
        assert set(erased) <= visit_ids(database, "matomo")  # an incremental run deletes nothing

        # A reconcile that fails part way (Matomo starts failing after a few Live requests) deletes nothing.
        live_requests = 0

        def fail_soon(simulator: MatomoSimulator, params: dict[str, str]) -> None:
            nonlocal live_requests
            live_requests += 1
            if live_requests == 3:
                simulator.inject(Fault("status", times=10_000, status=500))

        sim.before_live_request.append(fail_soon)
        interrupted = meltano.run(*RECONCILE)
        sim.before_live_request.remove(fail_soon)
        sim.faults.clear()
        assert interrupted.returncode != 0
        rebuilt = meltano.run("run", "dbt-postgres:build")  # dbt on whatever the failed run loaded
        assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
        assert visit_ids(database, "matomo") == held_before
        assert query(database, "SELECT count(*) FROM matomo_reconcile_log WHERE outcome = 'deleted'") == [(0,)]

        reconcile = meltano.run(*RECONCILE)
        assert reconcile.returncode == 0, reconcile.stderr[-3000:]
        decided = query(database, "SELECT count(*) FROM matomo_reconcile_log")
        again = meltano.run("run", "dbt-postgres:build")  # within the reload overlap: reads the listing again
        assert again.returncode == 0, again.stderr[-3000:]
        assert query(database, "SELECT count(*) FROM matomo_reconcile_log") == decided  # decided once

        # A reconcile that would delete most of a day stops, deleting nothing, until told otherwise.
        most = on_day(world, 1, closed)[: len(on_day(world, 1, closed)) * 3 // 4]
        sim.delete_data_subjects(most)
        held = visit_ids(database, "matomo")
        stopped = meltano.run(*RECONCILE)
        assert stopped.returncode != 0
        assert "more than reconcile_max_delete_share (0.5): nothing was deleted" in stopped.stderr
        assert visit_ids(database, "matomo") == held
        allowed = meltano.run("invoke", "dbt-postgres", "build", "--vars", "{reconcile_max_delete_share: 1}")
        assert allowed.returncode == 0, allowed.stderr[-3000:]
        assert visit_ids(database, "matomo") == held - set(most)
        erased += most

        expected = held_before - set(erased)  # the GDPR erasures, and the large deletion allowed above
        for table in ("matomo", "matomo_visits"):
            assert visit_ids(database, table) == expected, table
        assert set(erased_then_purged) <= expected  # Matomo lists nothing on its day: kept with the day
        daily = dict(query(database, "SELECT idsite || ' ' || site_day, nb_visits FROM matomo_daily"))
        assert daily[f"1 {closed}"] == len(on_day(world, 1, closed))  # recomputed without the erased visits
        assert daily[f"1 {purged_day}"] == len(kept_purged)  # the purged day is kept

        rows = query(
            database,
            "SELECT DISTINCT country, city, userid FROM matomo_visits WHERE idvisit = ANY(%s)",
            anonymised,
        )
        assert rows == [("Unknown", None, None)]  # every anonymised visit carries Matomo's new values

        log = query(database, "SELECT idsite, site_day::text, outcome, visits_gone FROM matomo_reconcile_log")
        assert (1, str(purged_day), "reported", len(kept_purged)) in log  # kept, and said so
        assert (1, str(closed), "deleted", 3) in log
        assert (1, str(closed), "deleted", len(most)) in log
        assert (2, str(yesterday_ny), "deleted", 1) in log

        # The erasure made Matomo archive the purged day again, from no raw data: only that day differs.
        differing = (
            "SELECT idsite, site_day, visits_difference FROM matomo_reconciliation "
            "WHERE archived AND (visits_difference <> 0 OR actions_difference <> 0)"
        )
        assert query(database, differing) == [(1, purged_day, len(kept_purged))]

        # Opting in to deleting purged days: a reconcile whose dbt build sets the variable.
        extracted = meltano.run("run", "tap-matomo-reconcile", "target-postgres")
        assert extracted.returncode == 0, extracted.stderr[-3000:]
        opted_in = meltano.run("invoke", "dbt-postgres", "build", "--vars", "{reconcile_delete_purged_days: true}")
        assert opted_in.returncode == 0, opted_in.stderr[-3000:]
        for table in ("matomo", "matomo_visits"):
            assert visit_ids(database, table) == expected - purged, table
        latest = query(
            database,
            "SELECT outcome, visits_gone FROM matomo_reconcile_log WHERE idsite = 1 AND site_day = %s "
            "ORDER BY checked_at DESC LIMIT 1",
            purged_day,
        )
        assert latest == [("deleted", len(kept_purged))]
        # Now the day before differs the other way: Matomo keeps the reports of a purged day.
        differences = query(database, differing)
        archived = query(database, "SELECT count(*) FROM matomo_reconciliation WHERE archived")[0][0]
        older = purged - set(kept_purged)  # none when the generated history starts late on its first day
        assert differences == ([(1, purged_day - timedelta(days=1), -len(older))] if older else [])
        assert archived >= 4  # site 1 and 2, at least the two oldest closed days

    print(
        f"\nerased {len(erased) + 1} (of which {len(most)} in one large deletion and 1 on a day then purged), "
        f"anonymised {len(anonymised)}, kept on the purged day {len(kept_purged)} (reported, then deleted on "
        f"opt-in), archived days compared {archived}"
    )


def test_an_erasure_of_today_applies_at_once(database: str, tmp_path: Path) -> None:
    """A one-off reconcile may end today: a visit erased today leaves the warehouse now, not a night later."""
    world = World(seed=22)
    world.sites = {1: world.sites[1]}  # UTC
    now = clock.utc_now()
    world.generate(now - timedelta(days=1), now - timedelta(minutes=5), visits_per_day=40)
    today = now.date()
    today_start = world.site_day_bounds(1, today)[0]
    erased = world.add_visit(1, max(int(now.timestamp()) - 60, today_start + 1), n_actions=3)
    # Another visit today, which stays: just after midnight the erased one may be the day's only visit, and a
    # day Matomo then lists empty reads as a purge (reported, kept), not an erasure.
    world.add_visit(1, max(int(now.timestamp()) - 120, today_start + 1), n_actions=2)
    with MatomoSimulator(world, TOKENS) as sim:
        meltano = project_meltano(sim.url, database, tmp_path / "meltano.db")
        meltano.env["STARTDATE"] = (today - timedelta(days=1)).isoformat()
        assert meltano.run(*JOB).returncode == 0
        assert erased.idvisit in visit_ids(database, "matomo")
        held_today = query(database, "SELECT nb_visits FROM matomo_daily WHERE idsite = 1 AND site_day = %s", today)

        assert sim.delete_data_subjects([erased.idvisit]) == 1
        assert meltano.run(*JOB).returncode == 0
        assert erased.idvisit in visit_ids(database, "matomo")  # the hourly job never deletes

        meltano.env |= {"RECONCILE_FROM": today.isoformat(), "RECONCILE_TO": today.isoformat()}
        done = meltano.run(*RECONCILE)
        assert done.returncode == 0, done.stderr[-3000:]
        for table in ("matomo_raw.visits_actions", "matomo", "matomo_visits"):
            assert erased.idvisit not in visit_ids(database, table), table
        assert query(database, "SELECT nb_visits FROM matomo_daily WHERE idsite = 1 AND site_day = %s", today) == [
            (held_today[0][0] - 1,)
        ]
        log = query(database, "SELECT site_day, outcome, gone_idvisits FROM matomo_reconcile_log")
        assert log == [(today, "deleted", [erased.idvisit])]
