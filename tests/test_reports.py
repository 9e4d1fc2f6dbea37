"""Matomo's reports as streams, through the tap's CLI against the simulator: what they hold, which periods
each run reads, what is final, and what a purge, an erasure or a disabled plugin does."""

from __future__ import annotations

import json
import typing as t
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from matomo_simulator import Fault, MatomoSimulator, World
from matomo_simulator.reports import metadata as report_metadata
from matomo_simulator.reports import report_methods
from tap_matomo import clock
from tap_matomo.reports.specs import ReportMetadata, declared_metrics, report_schema, specs_from_setting

from tests.conftest import project_meltano
from tests.helpers import TapRun, run_tap
from tests.pipeline import STATE_ID, query

#: Days, weeks and site-local calendars: run again at four UTC times (`make test-clock`).
pytestmark = pytest.mark.clock

REPORT_CALLS = report_methods() | {"API.getBulkRequest"}


@pytest.fixture
def world() -> World:
    """Ten days of visits up to a minute ago on the four built-in sites (two ecommerce)."""
    world = World(seed=41, max_actions_per_visit=30)
    now = clock.utc_now()
    world.generate(now - timedelta(days=10), now - timedelta(minutes=1), visits_per_day=24)
    return world


@pytest.fixture
def report_config(tap_config: dict) -> dict:
    """The default report set, from a start date 8 days back; the Live stream off (only its parent runs)."""
    start = (clock.utc_now() - timedelta(days=8)).date().isoformat()
    config = {k: v for k, v in tap_config.items() if k != "reports"}
    return config | {"start_date": start, "site_ids": [2, 3]}


def records(run: TapRun, stream: str) -> list[dict[str, t.Any]]:
    return run.records(stream)


def report_requests(simulator: MatomoSimulator, since: int = 0) -> list[dict[str, str]]:
    return [r.params for r in simulator.requests[since:] if r.params.get("method") in REPORT_CALLS]


def site_day_truth(world: World, idsite: int, day: t.Any) -> tuple[int, int]:
    """(visits, pageviews) of the visits whose last action is on the site-local day: what reports count."""
    lo, hi = world.site_day_bounds(idsite, day)
    visits = [v for v in world.visits.values() if v.idsite == idsite and lo <= v.last_action < hi]
    return len(visits), sum(1 for v in visits for a in world.returned_actions(v) if a.kind == "action")


def by_key(rows: list[dict[str, t.Any]], *keys: str) -> dict[tuple[t.Any, ...], dict[str, t.Any]]:
    return {tuple(row[k] for k in keys): row for row in rows}


def without_fetch_times(rows: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    return sorted(
        ({k: v for k, v in row.items() if k not in ("fetched_at", "is_final")} for row in rows),
        key=lambda row: json.dumps(row, sort_keys=True),
    )


def test_reports_equal_what_the_raw_visits_give(
    simulator: MatomoSimulator, report_config: dict, tmp_path: Path
) -> None:
    run = run_tap(tmp_path, report_config | {"log_metrics": True})  # the request counts are read below
    assert run.returncode == 0, run.stderr[-3000:]
    summaries = [r for r in records(run, "report_visits_summary") if r["period"] == "day"]
    actions = by_key(
        [r for r in records(run, "report_actions_summary") if r["period"] == "day"], "idsite", "period_start"
    )
    # Each site's closed days since the start date, in its own calendar (New York's today starts 5 hours
    # after UTC's, Kolkata's 5.5 hours before), once report_final_after_hours (3) have passed since their end.
    start = date.fromisoformat(report_config["start_date"])
    ready = clock.utc_now() - timedelta(hours=3)
    closed = {site: (ready.astimezone(simulator.world.sites[site].tz).date() - start).days for site in (2, 3)}
    assert Counter(r["idsite"] for r in summaries) == closed
    for summary in summaries:
        day = datetime.fromisoformat(summary["period_start"]).date()
        visits, pageviews = site_day_truth(simulator.world, summary["idsite"], day)
        assert summary["nb_visits"] == visits > 0
        assert actions[summary["idsite"], summary["period_start"]]["nb_pageviews"] == pageviews
    pages = Counter()
    for row in records(run, "report_page_urls"):
        if row["period"] == "day":
            pages[row["idsite"], row["period_start"]] += row["nb_hits"]
    assert {key: hits for key, hits in pages.items()} == {k: r["nb_pageviews"] for k, r in actions.items()}
    weeks = [r for r in records(run, "report_visits_summary") if r["period"] == "week"]
    assert weeks
    assert all(
        r["period_end"] == (datetime.fromisoformat(r["period_start"]) + timedelta(days=6)).date().isoformat()
        for r in weeks
    )
    # Ecommerce reports only for ecommerce sites, goals read per goal, custom dimensions per dimension.
    assert {r["idsite"] for r in records(run, "report_product_names")} <= {2, 3}
    assert {r["params"] for r in records(run, "report_goals_by_goal")} == {"idGoal=1", "idGoal=2"}
    assert {r["params"] for r in records(run, "report_custom_dimensions")} == {
        "idDimension=1",
        "idDimension=2",
        "idDimension=3",
    }
    # Every answer read is reported, with its rows.
    fetches = records(run, "report_fetches")
    counted = Counter((f["report"], f["idsite"], f["period"], f["period_start"], f["params"]) for f in fetches)
    assert max(counted.values()) == 1
    page_fetches = {
        (f["idsite"], f["period"], f["period_start"]): f["rows"] for f in fetches if f["report"] == "report_page_urls"
    }
    assert sum(page_fetches.values()) == len(records(run, "report_page_urls"))
    assert "WARNING" not in run.stderr
    # The SDK's request metrics, as for its own paging: one count per request, per site.
    counted_requests = sum(
        point["value"] for point in run.metrics("http_request_count") if point["tags"]["stream"].startswith("report_")
    )
    flat = [r for r in report_requests(simulator) if r.get("flat") == "1"]
    assert counted_requests == len(flat) + 2 * 2  # and each site's goals and dimensions, read per goal/dimension


def a_day_earlier(state: dict[str, t.Any]) -> dict[str, t.Any]:
    """The state as a run of the previous site-local day left it: the trailing windows are due again."""
    moved = json.loads(json.dumps(state))
    for stream, bookmark in moved["bookmarks"].items():
        if not stream.startswith("report_"):
            continue
        for partition in bookmark.get("partitions", []):
            for period in partition.get("periods", {}).values():
                refreshed = datetime.fromisoformat(period["refreshed_on"]).date()
                period["refreshed_on"] = (refreshed - timedelta(days=1)).isoformat()
    return moved


def test_a_second_run_the_same_day_reads_no_report(
    simulator: MatomoSimulator, report_config: dict, tmp_path: Path
) -> None:
    """An hourly run after the one that read the day asks for no report, not even one whose answer was not
    final: the next site-local day's trailing window reads those again, once a day rather than every hour
    (`test_unarchived_periods_are_never_final_until_archived`)."""
    first = run_tap(tmp_path, report_config)
    assert first.returncode == 0, first.stderr[-3000:]
    report_partitions = [
        p
        for stream, bookmark in first.state["bookmarks"].items()
        if stream.startswith("report_")
        for p in bookmark.get("partitions", [])
    ]
    assert report_partitions
    assert not [p for p in report_partitions if "replication_key_value" in p]  # one bookmark: the periods
    since = len(simulator.requests)
    second = run_tap(tmp_path, report_config, first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    assert not [r for r in report_requests(simulator, since) if r.get("flat") == "1"]


def test_the_trailing_window_is_read_again_once_a_day_and_takes_a_late_change(
    simulator: MatomoSimulator, report_config: dict, tmp_path: Path
) -> None:
    report_config = report_config | {"report_final_after_hours": 0}  # yesterday read at once, at any hour
    first = run_tap(tmp_path, report_config)
    assert first.returncode == 0
    yesterday = (clock.utc_now().astimezone(simulator.world.sites[2].tz) - timedelta(days=1)).date()
    before = by_key(records(first, "report_visits_summary"), "idsite", "period", "period_start")
    lo, hi = simulator.world.site_day_bounds(2, yesterday)
    erased = [v.idvisit for v in simulator.world.visits.values() if v.idsite == 2 and lo <= v.last_action < hi][:3]
    assert simulator.delete_data_subjects(erased) == 3  # Matomo invalidates the day's (and week's) archives

    same_day = run_tap(tmp_path, report_config, first.state)
    changed = by_key(records(same_day, "report_visits_summary"), "idsite", "period", "period_start")
    assert (2, "day", yesterday.isoformat()) not in changed or not before[2, "day", yesterday.isoformat()]["is_final"]

    next_day = run_tap(tmp_path, report_config, a_day_earlier(first.state))
    assert next_day.returncode == 0, next_day.stderr[-3000:]
    reread = by_key(records(next_day, "report_visits_summary"), "idsite", "period", "period_start")
    key = (2, "day", yesterday.isoformat())
    assert reread[key]["nb_visits"] == before[key]["nb_visits"] - 3
    actions = by_key(records(next_day, "report_actions_summary"), "idsite", "period", "period_start")
    days = sorted(start for site, period, start in actions if site == 2 and period == "day")
    assert len(days) == int(report_config.get("report_trailing_days", 3))  # the last 3 closed days, again
    # VisitsSummary.get also checks the totals of the days the nightly reconcile reaches (7): unchanged ones
    # are not read again by the other reports (tests/test_reports_after_the_fact.py).
    days = sorted(start for site, period, start in reread if site == 2 and period == "day")
    assert len(days) == int(report_config.get("reconcile_days", 7))


def test_a_purged_raw_day_keeps_its_reports(simulator: MatomoSimulator, report_config: dict, tmp_path: Path) -> None:
    """Matomo's purge of old raw logs keeps the reports: a backfill after it still has those days."""
    first = run_tap(tmp_path, report_config)
    assert first.returncode == 0
    today = clock.utc_now().astimezone(simulator.world.sites[3].tz).date()
    simulator.world.purge_before(3, today - timedelta(days=2))
    later = run_tap(tmp_path, report_config)  # a new backfill, no state
    assert later.returncode == 0, later.stderr[-3000:]
    purged_day = (today - timedelta(days=4)).isoformat()
    assert not [r for r in later.records() if r["idsite"] == 3 and r["action_timestamp"][:10] < purged_day]
    kept = [r for r in records(later, "report_visits_summary") if r["idsite"] == 3 and r["period_start"] == purged_day]
    earlier = [
        r for r in records(first, "report_visits_summary") if r["idsite"] == 3 and r["period_start"] == purged_day
    ]
    assert without_fetch_times(kept) == without_fetch_times(earlier)
    assert kept[0]["nb_visits"] > 0


def test_a_disabled_plugin_is_skipped_with_one_warning(
    simulator: MatomoSimulator, report_config: dict, tmp_path: Path
) -> None:
    simulator.disabled_plugins.add("Events")
    run = run_tap(tmp_path, report_config)
    assert run.returncode == 0, run.stderr[-3000:]
    warnings = [line for line in run.stderr.splitlines() if "| WARNING" in line]
    assert len(warnings) == 3  # one per Events report, not one per site or period
    assert all("plugin is not available (The plugin Events is not enabled." in w for w in warnings)
    assert not records(run, "report_event_categories")
    assert records(run, "report_page_urls")
    assert not [
        s for s in run.state["bookmarks"].get("report_event_names", {}).get("partitions", []) if s.get("periods")
    ]


def test_discovery_types_the_servers_metrics_and_a_sync_follows_its_catalog(
    simulator: MatomoSimulator, report_config: dict, tmp_path: Path
) -> None:
    """`--discover` makes a column of each metric Matomo's own metadata declares; a sync asks Matomo for
    no metadata, and a metric its catalog has no column for is kept in `other_metrics`."""
    config = report_config | {"reports": [{"method": "VisitsSummary.get"}]}
    (spec,) = specs_from_setting(config["reports"])
    discovered = run_tap(tmp_path, config, None, "--discover")
    assert discovered.returncode == 0, discovered.stderr[-3000:]
    assert "API.getReportMetadata" in [r.params.get("method") for r in simulator.requests]
    catalog = json.loads(discovered.stdout)
    entry = next(s for s in catalog["streams"] if s["tap_stream_id"] == spec.name)
    served = {
        metric
        for report in report_metadata(simulator.world.sites[2])
        if report["module"] == "VisitsSummary"
        for metric in report["metrics"]
    }
    assert declared_metrics(entry["schema"]) == served
    assert declared_metrics(entry["schema"]) != declared_metrics(
        report_schema(spec, ReportMetadata.built_in())
    )  # the simulator declares fewer than Matomo 5: the server's metadata was read

    del entry["schema"]["properties"]["bounce_rate"]
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    since = len(simulator.requests)
    run = run_tap(tmp_path, config, None, "--catalog", str(tmp_path / "catalog.json"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "API.getReportMetadata" not in [r.params.get("method") for r in simulator.requests[since:]]
    rows = records(run, spec.name)
    assert rows
    assert all("bounce_rate" not in row and "bounce_rate" in row["other_metrics"] for row in rows)
    assert all(isinstance(row["nb_visits"], int | float) for row in rows)


def test_bulk_and_paged_requests_give_the_same_records(
    simulator: MatomoSimulator, report_config: dict, tmp_path: Path
) -> None:
    config = report_config | {"reports": [{"method": "Referrers.getReferrerType"}, {"method": "Actions.getPageUrls"}]}
    # The two reports' requests, bulked or not (VisitsSummary.get, a day's visits for the ledger, is asked
    # the same either way: counted, the ratio fell to 2 on days when a plan split into 7 days and 1).
    reports_asked = {"Referrers.getReferrerType", "Actions.getPageUrls", "API.getBulkRequest"}
    one_by_one = run_tap(tmp_path, config)
    single = sum(r["method"] in reports_asked for r in report_requests(simulator))
    since = len(simulator.requests)
    bulk = run_tap(tmp_path, config | {"report_bulk_size": 7})
    bulked = sum(r["method"] in reports_asked for r in report_requests(simulator, since))
    since = len(simulator.requests)
    paged = run_tap(tmp_path, config | {"report_page_size": 3})
    pages = report_requests(simulator, since)
    for stream in ("report_referrers_get_referrer_type", "report_actions_get_page_urls"):
        assert without_fetch_times(records(one_by_one, stream))
        assert without_fetch_times(records(bulk, stream)) == without_fetch_times(records(one_by_one, stream))
        assert without_fetch_times(records(paged, stream)) == without_fetch_times(records(one_by_one, stream))
    assert bulked * 2 < single
    assert any(r.get("filter_offset") for r in pages)
    assert all(r["flat"] == "1" and r["format_metrics"] == "0" for r in report_requests(simulator) if "flat" in r)


def test_unarchived_periods_are_never_final_until_archived(
    simulator: MatomoSimulator, report_config: dict, tmp_path: Path
) -> None:
    """With core:archive by cron and not yet run, Matomo answers zeros and []: read again until archived."""
    simulator.browser_archiving = False
    config = report_config | {"reports": [{"method": "VisitsSummary.get", "periods": ["day"]}], "site_ids": [2]}
    config["report_final_after_hours"] = 0  # every day of the window read at once, also just after midnight
    first = run_tap(tmp_path, config)
    assert first.returncode == 0
    rows = records(first, "report_visits_summary_get")
    assert rows
    assert all(r["nb_visits"] == 0 and not r["is_final"] for r in rows)
    today = clock.utc_now().astimezone(simulator.world.sites[2].tz).date()
    for n in range(1, 10):
        simulator.archive(2, today - timedelta(days=n))
    since = len(simulator.requests)
    assert run_tap(tmp_path, config, first.state).returncode == 0
    assert not [r for r in report_requests(simulator, since) if r.get("flat") == "1"]  # not every hour...
    second = run_tap(tmp_path, config, a_day_earlier(first.state))  # ...but with the next day's window
    reread = records(second, "report_visits_summary_get")
    window = int(config.get("reconcile_days", 7))  # VisitsSummary.get checks the reconcile's days
    assert len(reread) == min(window, len(rows))
    for row in reread:
        visits, _ = site_day_truth(simulator.world, 2, datetime.fromisoformat(row["period_start"]).date())
        assert row["nb_visits"] == visits > 0
        assert row["is_final"]


def test_the_current_period_only_when_asked_and_never_final(
    simulator: MatomoSimulator, report_config: dict, tmp_path: Path
) -> None:
    config = report_config | {"reports": [{"method": "VisitsSummary.get", "periods": ["day", "month"]}]}
    config |= {"report_include_current_period": True, "site_ids": [3], "report_final_after_hours": 0}
    run = run_tap(tmp_path, config)
    today = clock.utc_now().astimezone(simulator.world.sites[3].tz).date()
    current_starts = {("day", today.isoformat()), ("month", today.replace(day=1).isoformat())}
    current = [
        r for r in records(run, "report_visits_summary_get") if (r["period"], r["period_start"]) in current_starts
    ]
    assert {(r["period"], r["is_final"]) for r in current} == {("day", False), ("month", False)}
    periods = run.state["bookmarks"]["report_visits_summary_get"]["partitions"][0]["periods"]
    assert periods["day"]["through"] == (today - timedelta(days=1)).isoformat()  # never the unfinished day


def test_a_segment_and_a_name_of_ones_own(simulator: MatomoSimulator, report_config: dict, tmp_path: Path) -> None:
    config = report_config | {
        "reports": [
            {
                "method": "DevicesDetection.getType",
                "segment": "deviceType==smartphone",
                "name": "phones",
                "periods": ["week"],
            }
        ]
    }
    run = run_tap(tmp_path, config)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = records(run, "phones")
    assert {r["segment"] for r in rows} == {"deviceType==smartphone"}
    assert {r["label"] for r in rows if r["nb_visits"]} == {"Smartphone"}
    bad = run_tap(tmp_path, report_config | {"reports": [{"method": "Referrers.getReferrerType", "periods": ["hour"]}]})
    assert bad.returncode != 0
    assert "'hour' is not one of ['day', 'week', 'month', 'year']" in bad.stderr
    no_method = run_tap(tmp_path, report_config | {"reports": [{"method": "Referrers"}]})
    assert "reports[0]: method 'Referrers' is not a Reporting API method such as 'Referrers.getReferrerType'" in (
        no_method.stderr
    )


REPORTS = json.dumps(
    [
        {"method": "VisitsSummary.get", "name": "report_visits_summary"},
        {"method": "Actions.get", "name": "report_actions_summary", "periods": ["day"]},
        {"method": "UserCountry.getCountry", "name": "report_countries", "periods": ["day"]},
        {"method": "Goals.get", "name": "report_goals_by_goal", "params": {"idGoal": "1"}, "periods": ["day"]},
    ]
)


def test_the_warehouse_keeps_each_periods_latest_answer_and_reconciles_actions(
    simulator: MatomoSimulator, database: str, tmp_path: Path
) -> None:
    """Through Meltano and dbt: matomo_reports equals Matomo's reports, a label a later answer no longer has
    leaves with it, and matomo_reconciliation compares Actions.get with the raw actions."""
    meltano = project_meltano(simulator.url, database, tmp_path / "meltano.db")
    start = (clock.utc_now() - timedelta(days=4)).date().isoformat()
    meltano.env |= {"TAP_MATOMO_REPORTS": REPORTS, "STARTDATE": start, "MATOMO_SITE": "1"}
    # Yesterday is read at once, also just after midnight (by default a day is first read once final).
    meltano.env["TAP_MATOMO_REPORT_FINAL_AFTER_HOURS"] = "0"
    first = meltano.run("run", "matomo-to-postgres")
    assert first.returncode == 0, first.stderr[-3000:]
    compared = query(
        database,
        "SELECT r.period_start, r.visits, d.nb_visits FROM matomo_reports r "
        "JOIN matomo_daily d ON d.idsite = r.idsite AND d.site_day = r.period_start "
        "WHERE r.report = 'report_visits_summary' AND r.period = 'day' AND r.is_final",
    )
    assert len(compared) >= 3
    assert all(report == warehouse for _, report, warehouse in compared)
    differences = query(
        database,
        "SELECT count(*), count(*) FILTER (WHERE pageviews_difference <> 0 OR downloads_difference <> 0 "
        "OR outlinks_difference <> 0 OR searches_difference <> 0) FROM matomo_reconciliation WHERE actions_final",
    )
    assert differences[0][0] >= 3
    assert differences[0][1] == 0
    # Rows name their site, and those of a report read per goal their goal (Matomo's label is empty there).
    # The simulator's site 1 has no goal: one as a Matomo with it would have it loaded by the goals stream.
    with psycopg.connect(database) as conn:
        conn.execute("INSERT INTO matomo_raw.goals (idsite, idgoal, name) VALUES (1, 1, 'Newsletter sign-up')")
    named = query(
        database, "SELECT DISTINCT label, goal_name FROM matomo_reports WHERE report = 'report_goals_by_goal'"
    )
    assert named == [("", "Newsletter sign-up")]
    assert query(database, "SELECT count(*) FROM matomo_reports WHERE sitename IS NULL") == [(0,)]

    # Every visit from one country on yesterday is erased: that day's country report loses the label.
    yesterday = (clock.utc_now() - timedelta(days=1)).date()
    lo, hi = simulator.world.site_day_bounds(1, yesterday)
    on_day = [v for v in simulator.world.visits.values() if v.idsite == 1 and lo <= v.last_action < hi]
    country = Counter(v.attrs["country"] for v in on_day).most_common()[-1][0]
    assert simulator.delete_data_subjects([v.idvisit for v in on_day if v.attrs["country"] == country])
    labels = "SELECT label FROM matomo_reports WHERE report = 'report_countries' AND period_start = %s"
    assert (country,) in query(database, labels, yesterday)
    state = meltano.state()
    state["singer_state"] = a_day_earlier(state["singer_state"])
    (tmp_path / "state.json").write_text(json.dumps(state))
    moved = meltano.run("state", "set", "--force", "--input-file", str(tmp_path / "state.json"), STATE_ID)
    assert moved.returncode == 0, moved.stderr[-2000:]
    second = meltano.run("run", "matomo-to-postgres")
    assert second.returncode == 0, second.stderr[-3000:]
    assert (country,) not in query(database, labels, yesterday)
    rows_now = query(
        database,
        "SELECT count(*) FROM matomo_reports WHERE report = 'report_countries' AND period_start = %s",
        yesterday,
    )
    raw_rows = query(database, "SELECT count(*) FROM matomo_raw.report_countries WHERE period_start = %s", yesterday)
    assert rows_now[0][0] < raw_rows[0][0]  # the gone label's row stays in the raw table, outside the model


def test_a_report_request_that_fails_for_good_stops_the_read_at_once(
    simulator: MatomoSimulator, report_config: dict, tmp_path: Path
) -> None:
    """Requests are sent as the reader takes answers: when one fails for good, those in flight make no further
    attempt and nothing more is sent (a whole backfill's requests used to be queued, then all sent)."""
    simulator.inject(Fault("status", times=999, status=500, method="Referrers.getReferrerType"))
    start = (clock.utc_now() - timedelta(days=40)).date().isoformat()
    config = report_config | {"start_date": start, "site_ids": [3], "max_retries": 1, "retry_backoff_ms": 50}
    config["reports"] = [{"method": "Referrers.getReferrerType", "periods": ["day"]}]
    run = run_tap(tmp_path, config)
    assert run.returncode != 0
    assert any("Referrers.getReferrerType" in line and "HTTP 500" in line for line in run.error_lines()), run.stderr[
        -2000:
    ]
    asked = [r for r in report_requests(simulator) if r.get("method") == "Referrers.getReferrerType"]
    parallel = config["max_parallel_requests"]
    assert len(asked) <= 2 * parallel, len(asked)  # 40 days x 2 tries before
