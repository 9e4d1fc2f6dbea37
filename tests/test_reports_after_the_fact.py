"""Matomo's reports when Matomo's answers are not what a still picture suggests: labels that repeat within
one answer, through Meltano, the loader and dbt into `matomo_reports` (docs/reports.md)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import psycopg
import pytest
from matomo_simulator import MatomoSimulator, World
from matomo_simulator.reports import period_range
from tap_matomo import clock

from tests.conftest import TOKENS, project_meltano
from tests.helpers import TOKEN, run_tap
from tests.pipeline import query

REPORTS = json.dumps(
    [
        {"method": "Events.getCategory", "name": "report_event_categories", "periods": ["day"]},
        {"method": "UserCountry.getCountry", "name": "report_countries", "periods": ["day"]},
    ]
)
SHARED = "Video - Play - HD"


def rows_of_answer(database: str, report: str, day: object) -> tuple[int, int, int]:
    """(rows report_fetches says the answer had, rows in matomo_reports, rows in the raw table) for a day."""
    fetched = query(
        database,
        "SELECT rows FROM matomo_raw.report_fetches WHERE report = %s AND idsite = 1 AND period = 'day'"
        " AND period_start = %s",
        report,
        day,
    )
    marts = query(
        database,
        "SELECT count(*) FROM matomo_reports WHERE report = %s AND idsite = 1 AND period = 'day' AND period_start = %s",
        report,
        day,
    )
    raw = query(database, f"SELECT count(*) FROM matomo_raw.{report} WHERE idsite = 1 AND period_start = %s", day)  # noqa: S608
    return fetched[0][0], marts[0][0], raw[0][0]


def primary_key(database: str, table: str) -> list[str]:
    rows = query(
        database,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        table,
    )
    return [name for (name,) in rows]


def test_rows_with_one_label_are_all_kept_and_marked_and_an_older_warehouse_follows(
    simulator: MatomoSimulator, database: str, tmp_path: Path
) -> None:
    """Two events whose category and action join into one flat label, and one country under two codes
    (the simulator answers as real Matomo 5.0.2 did): every row of the answer reaches the raw table and
    `matomo_reports`, where `label_rows` says the label is shared. Then a warehouse loaded before the key
    held the row's position (the raw table keyed on the label, one of the two rows lost): the next load
    moves its primary key and holds both."""
    yesterday = (clock.utc_now() - timedelta(days=1)).date()
    simulator.world.add_shared_label_visits(1, int(datetime.combine(yesterday, time(12), UTC).timestamp()))
    meltano = project_meltano(simulator.url, database, tmp_path / "meltano.db")
    start = (clock.utc_now() - timedelta(days=2)).date().isoformat()
    meltano.env |= {"TAP_MATOMO_REPORTS": REPORTS, "STARTDATE": start, "MATOMO_SITE": "1"}
    meltano.env["TAP_MATOMO_REPORT_FINAL_AFTER_HOURS"] = "0"  # yesterday read at once, at any hour
    first = meltano.run("run", "matomo-to-postgres")
    assert first.returncode == 0, first.stderr[-3000:]

    for report in ("report_event_categories", "report_countries"):
        fetched, marts, raw = rows_of_answer(database, report, yesterday)
        assert fetched == marts == raw > 2, report
    shared = query(
        database,
        "SELECT label_path, label_rows FROM matomo_reports WHERE report = 'report_event_categories'"
        " AND period_start = %s AND label = %s ORDER BY row_index",
        yesterday,
        SHARED,
    )
    assert sorted(path for path, _ in shared) == [["Video", "Play - HD"], ["Video - Play", "HD"]]
    assert [rows for _, rows in shared] == [2, 2]
    codes = query(
        database,
        "SELECT label, array_agg(attributes->>'code' ORDER BY row_index) FROM matomo_raw.report_countries"
        " WHERE period_start = %s GROUP BY label HAVING count(*) > 1",
        yesterday,
    )
    assert len(codes) == 1
    upper, lower = sorted(codes[0][1])
    assert upper == lower.upper() != lower
    unshared = query(database, "SELECT count(*) FROM matomo_reports WHERE label_rows = 1 AND label <> %s", SHARED)
    assert unshared[0][0] > 0

    # The raw table as an earlier version left it: keyed on the label, one of the two rows never written.
    table = "matomo_raw.report_event_categories"
    with psycopg.connect(database) as conn:
        conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT report_event_categories_pkey")
        conn.execute(f"ALTER TABLE {table} ALTER COLUMN row_index DROP NOT NULL")
        last = f"SELECT max(row_index) FROM {table} WHERE label = %s"  # noqa: S608
        conn.execute(f"DELETE FROM {table} WHERE label = %s AND row_index = ({last})", (SHARED, SHARED))  # noqa: S608
        conn.execute(f"UPDATE {table} SET row_index = NULL")  # noqa: S608
        conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (idsite, period, period_start, segment, params, label)")
    assert primary_key(database, table)[-1] == "label"
    again = meltano.run("run", "--full-refresh", "matomo-to-postgres")
    assert again.returncode == 0, again.stderr[-3000:]
    assert primary_key(database, table) == ["idsite", "period", "period_start", "segment", "params", "row_index"]
    fetched, marts, raw = rows_of_answer(database, "report_event_categories", yesterday)
    assert fetched == marts == raw
    assert query(database, f"SELECT count(*) FROM {table} WHERE row_index IS NULL") == [(0,)]  # noqa: S608
    both = query(database, f"SELECT count(*) FROM {table} WHERE period_start = %s AND label = %s", yesterday, SHARED)  # noqa: S608
    assert both == [(2,)]


#: Requests about the whole Matomo, once a run.
RUN_WIDE = {"SitesManager.getSitesWithAtLeastViewAccess"}
#: Requests that are not reports of a period (the Live log, a site's configuration, Matomo-wide calls).
NOT_REPORTS = {
    "Live.getLastVisitsDetails",
    "Goals.getGoals",
    "CustomDimensions.getConfiguredCustomDimensions",
    "SitesManager.getSitesWithAtLeastViewAccess",
    "API.getReportMetadata",
}


def test_hourly_runs_never_archive_today_and_read_a_closed_day_once_when_it_can_be_final(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hourly job around a UTC site's midnight, with no new visit (the clock set for the tap and the
    simulator): no run asks for a period holding today (with browser archiving, Matomo's default, that
    re-archives today); the day that closed is not read until `report_final_after_hours` (3) have passed,
    then each of its reports once, and never again: its empty answers are final, as VisitsSummary.get
    has visits for it. The runs in between ask for the Live log only (the site's configuration and
    Matomo's daily totals are read with the day's reports)."""
    day = (clock.utc_now() - timedelta(days=3)).date()
    midnight = datetime.combine(day + timedelta(days=1), time(0), UTC)
    world = World(seed=11, max_actions_per_visit=20)
    world.generate(midnight - timedelta(days=3), midnight - timedelta(hours=1), visits_per_day=30)
    start = (day - timedelta(days=1)).isoformat()
    asked: dict[float, list[dict[str, str]]] = {}
    with MatomoSimulator(world, TOKENS) as simulator:
        config = {"url": simulator.url, "token_auth": TOKEN, "start_date": start, "site_ids": [1]}
        state = None
        for hours in (-0.5, 0.5, 1.5, 3.5, 4.5):  # the runs, in hours after the site's midnight
            monkeypatch.setenv("MATOMO_NOW", (midnight + timedelta(hours=hours)).isoformat())
            since = len(simulator.requests)
            run = run_tap(tmp_path, config, state)
            assert run.returncode == 0, run.stderr[-3000:]
            state = run.state
            asked[hours] = [r.params for r in simulator.requests[since:]]

    def reports(hours: float) -> list[dict[str, str]]:
        """The report streams' requests (flat; `visits_summary`'s daily totals are asked for unflattened)."""
        return [r for r in asked[hours] if r.get("flat") == "1"]

    for hours, params in asked.items():
        today = (midnight + timedelta(hours=hours)).date()
        holding_today = [
            r
            for r in params
            if r.get("method") not in NOT_REPORTS
            and period_range(r["period"], date.fromisoformat(r["date"]))[0] <= today
            and today <= period_range(r["period"], date.fromisoformat(r["date"]))[1]
        ]
        assert not holding_today, (hours, holding_today[:3])
        assert all(r.get("method") != "API.getBulkRequest" for r in params)
    assert reports(-0.5)  # the first run reads the closed days before `day`
    assert not [r for r in reports(-0.5) if r["date"] == day.isoformat() and r["period"] == "day"]
    assert not reports(0.5)
    assert not reports(1.5)
    for hours in (0.5, 1.5, 4.5):  # hours without a day to read: the Live log only
        assert {r["method"] for r in asked[hours]} <= {"Live.getLastVisitsDetails", *RUN_WIDE}, hours
    read = [(r["method"], r["period"], r["date"], r.get("idGoal", ""), r.get("filter_offset")) for r in reports(3.5)]
    assert len(read) == len(set(read))
    before = {r["method"] for r in reports(-0.5) if r["period"] == "day"}
    assert {m for m, p, d, *_ in read if p == "day" and d == day.isoformat()} == before  # every report of the day
    assert not reports(4.5)


def test_after_an_erasure_the_reconciliation_blames_the_reports_copy_not_the_raw_log(
    simulator: MatomoSimulator, database: str, tmp_path: Path
) -> None:
    """A GDPR erasure on a day whose reports were read: the nightly reconcile deletes the erased visits from
    the raw side and fetches Matomo's new totals; `matomo_reconciliation` then says the warehouse's copy of
    that day's Actions.get is behind (not the raw log), and its check does not warn."""
    yesterday = (clock.utc_now() - timedelta(days=1)).date()
    meltano = project_meltano(simulator.url, database, tmp_path / "meltano.db")
    reports = [
        {"method": "VisitsSummary.get", "name": "report_visits_summary", "periods": ["day"]},
        {"method": "Actions.get", "name": "report_actions_summary", "periods": ["day"]},
    ]
    meltano.env |= {
        "TAP_MATOMO_REPORTS": json.dumps(reports),
        "TAP_MATOMO_REPORT_FINAL_AFTER_HOURS": "0",  # yesterday's reports final at once, at any hour
        "STARTDATE": (yesterday - timedelta(days=1)).isoformat(),
        "MATOMO_SITE": "1",
    }
    first = meltano.run("run", "matomo-to-postgres")
    assert first.returncode == 0, first.stderr[-3000:]
    day = "SELECT actions_final, differs, behind, pageviews_difference FROM matomo_reconciliation WHERE site_day = %s"
    assert query(database, day, yesterday) == [(True, False, None, 0)]

    lo, hi = simulator.world.site_day_bounds(1, yesterday)
    viewed = [
        v.idvisit
        for v in simulator.world.visits.values()
        if v.idsite == 1 and lo <= v.last_action < hi and any(a.kind == "action" for a in v.actions)
    ]
    assert simulator.delete_data_subjects(viewed[:3]) == 3
    reconcile = meltano.run("run", "matomo-reconcile")
    assert reconcile.returncode == 0, reconcile.stderr[-3000:]
    actions_final, differs, behind, pageviews_difference = query(database, day, yesterday)[0]
    assert pageviews_difference < 0  # the raw log lost the erased pageviews; the copy of Actions.get did not
    assert (actions_final, differs, behind) == (True, False, "reports")


def test_late_hits_and_erasures_beyond_the_trailing_window_reach_the_day_its_week_and_month(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Matomo changes two closed days older than the trailing window (3 days) but within the nightly
    reconcile's reach (7): a late visit tracked into one, an erasure in the other. The next site-local day's
    first run finds their totals changed (VisitsSummary.get, against those the days were read with) and
    reads every report of those days again, with the closed week and month holding them; a day whose totals
    did not change is asked for VisitsSummary.get only, and the run after reads none of it again."""
    day_one = clock.utc_now().date()  # the first run's site-local day (site 1 is in UTC)
    runs = [datetime.combine(day_one, time(4), UTC) + timedelta(days=d, hours=h) for d, h in ((0, 0), (1, 0), (1, 1))]
    day_two = runs[1].date()
    late_day, erased_day, unchanged_day = (day_two - timedelta(days=n) for n in (6, 5, 4))
    world = World(seed=5, max_actions_per_visit=8)
    world.generate(runs[0] - timedelta(days=12), runs[0] - timedelta(hours=5), visits_per_day=20)
    periods = ["day", "week", "month"]
    reports = [
        {"method": "VisitsSummary.get", "name": "report_visits_summary", "periods": periods},
        {"method": "Actions.get", "name": "report_actions_summary", "periods": periods},
    ]
    config = {
        "url": "",
        "token_auth": TOKEN,
        "start_date": (day_one - timedelta(days=10)).isoformat(),
        "site_ids": [1],
        "reports": reports,
    }
    asked: list[list[tuple[str, str, str]]] = []
    totals: list[dict[tuple[str, str], int]] = []
    with MatomoSimulator(world, TOKENS) as simulator:
        config["url"] = simulator.url
        state = None
        for number, at in enumerate(runs):
            if number == 1:  # Matomo changes after the first run
                simulator.track_late_visit(1, int(datetime.combine(late_day, time(12), UTC).timestamp()))
                lo, hi = world.site_day_bounds(1, erased_day)
                erased = [v.idvisit for v in world.visits.values() if v.idsite == 1 and lo <= v.last_action < hi]
                assert simulator.delete_data_subjects(erased[:2]) == 2
            monkeypatch.setenv("MATOMO_NOW", at.isoformat())
            since = len(simulator.requests)
            run = run_tap(tmp_path, config, state)
            assert run.returncode == 0, run.stderr[-3000:]
            state = run.state
            asked.append(
                [
                    (r.params["method"], r.params["period"], r.params["date"])
                    for r in simulator.requests[since:]
                    if r.params.get("flat") == "1"
                ]
            )
            totals.append(
                {(r["period"], r["period_start"]): r["nb_visits"] for r in run.records("report_visits_summary")}
            )

    def holding(day: date) -> set[tuple[str, str]]:
        """The closed periods (as of the second run) holding `day`."""
        found = set()
        for period in periods:
            start, end = period_range(period, day)
            if end < day_two:
                found.add((period, start.isoformat()))
        return found

    second = set(asked[1])
    for day in (late_day, erased_day):
        for method in ("VisitsSummary.get", "Actions.get"):
            assert {(method, *p) for p in holding(day)} <= second, (method, day)
    late, gone = (("day", d.isoformat()) for d in (late_day, erased_day))
    assert totals[1][late] == totals[0][late] + 1
    assert totals[1][gone] == totals[0][gone] - 2
    assert ("VisitsSummary.get", "day", unchanged_day.isoformat()) in second  # checked...
    assert ("Actions.get", "day", unchanged_day.isoformat()) not in second  # ...and not read again
    assert len(asked[1]) == len(second)  # each once
    for day in (late_day, erased_day, unchanged_day):
        assert not [a for a in asked[2] if a[2] == day.isoformat()], day  # the next run: done


def test_requests_in_flight_never_wait_for_each_others_archive(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    """Matomo archives a period under a lock per site, period, dates, segment and plugin (browser archiving,
    its default; the simulator keeps that lock and records each request that waited on it). The default
    reports of a site with two goals and a custom dimension, read with Matomo taking 50 ms an answer: the
    reports read once per goal or dimension never have two requests for one period in flight, and every
    goal's rows arrive."""
    simulator.report_latency = 0.05
    start = (clock.utc_now() - timedelta(days=3)).date().isoformat()
    config = {k: v for k, v in tap_config.items() if k != "reports"} | {"site_ids": [2], "start_date": start}
    run = run_tap(tmp_path, config)
    assert run.returncode == 0, run.stderr[-3000:]
    per_goal = [r for r in simulator.requests if r.params.get("method") == "Goals.get" and "idGoal" in r.params]
    assert {r.params["idGoal"] for r in per_goal} >= {"1", "2"}
    assert {r["params"] for r in run.records("report_goals_by_goal")} == {"idGoal=1", "idGoal=2"}
    assert simulator.archive_lock_waits == []
