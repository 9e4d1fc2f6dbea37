"""The tap's CLI against the simulator: full and incremental syncs land exactly the simulator's truth."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from matomo_simulator import Fault, MatomoSimulator, World
from matomo_simulator.render import render_visit
from tap_matomo import clock

from tests.helpers import TAP, TOKEN, action_ids, latest_versions, run_tap


def test_full_sync_emits_exactly_the_truth_for_every_site(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    run = run_tap(tmp_path, tap_config)
    assert run.returncode == 0, run.stderr[-2000:]
    records = run.records()
    truth = simulator.world.truth()
    by_site = Counter(r["idsite"] for r in records)
    assert set(by_site) == {1, 2, 3, 4}
    for idsite in (1, 2, 3, 4):
        site_truth = simulator.world.truth(idsite)
        site_ids = [r["action_id"] for r in records if r["idsite"] == idsite]
        assert len(site_ids) == len(site_truth) > 0
        assert set(site_ids) == set(site_truth)
    # True UTC instants and types, per action.
    for record in records:
        expected = truth[record["action_id"]]
        assert record["action_timestamp"] == expected["action_timestamp"]
        assert record["action_type"] == expected["action_type"]
    assert set(run.bookmarks()) == {1, 2, 3, 4}
    # Paging used explicit site-local days, ascending, our page size, and never an offset loop.
    live = simulator.live_requests()
    assert all(r.params["period"] == "day" and len(r.params["date"]) == 10 for r in live)
    assert all(r.params["filter_sort_order"] == "asc" and r.params["filter_limit"] == "25" for r in live)
    assert len(live) > 4 * 3


def test_metadata_streams(simulator: MatomoSimulator, tap_config: dict, tmp_path: Path) -> None:
    run = run_tap(tmp_path, tap_config)
    sites = run.records("sites")
    assert [s["idsite"] for s in sites] == [1, 2, 3, 4]
    assert {s["idsite"]: s["timezone"] for s in sites}[3] == "Asia/Kolkata"
    dims = {(d["idsite"], d["idcustomdimension"]): (d["name"], d["scope"]) for d in run.records("custom_dimensions")}
    assert dims[(3, 1)] == ("Segment", "visit")
    assert dims[(2, 1)] == ("Channel", "action")
    goals = {(g["idsite"], g["idgoal"]): g["name"] for g in run.records("goals")}
    assert goals == {(2, 1): "Signup", (2, 2): "Contact", (3, 1): "Newsletter"}


@pytest.mark.parametrize("site_ids", [[3], 3, "3", " 3 ", "[3]"])
def test_site_ids_narrow_the_extraction(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path, site_ids: object
) -> None:
    run = run_tap(tmp_path, {**tap_config, "site_ids": site_ids})
    assert run.returncode == 0
    assert {r["idsite"] for r in run.records()} == {3}
    assert {r["action_id"] for r in run.records()} == set(simulator.world.truth(3))
    assert {r.params.get("idSite") for r in simulator.live_requests()} == {"3"}


def test_incremental_run_emits_only_new_and_grown_visits_whole(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    first = run_tap(tmp_path, tap_config)
    assert first.returncode == 0
    world = simulator.world
    now = int(clock.utc_now().timestamp())
    new = world.add_visit(2, now - 5)
    open_visit = max((v for v in world.visits.values() if v.idsite == 3), key=lambda v: v.last_action)
    world.grow_visit(open_visit.idvisit, now - 200, n_actions=2)

    second = run_tap(tmp_path, tap_config, first.state)
    assert second.returncode == 0, second.stderr[-2000:]
    emitted = latest_versions(second)
    assert set(emitted) == {new.idvisit, open_visit.idvisit}
    for idvisit, rows in emitted.items():
        expected = {k for k, v in world.truth().items() if v["idvisit"] == idvisit}
        assert {r["action_id"] for r in rows} == expected  # whole visit, grown actions included
    assert action_ids(latest_versions(first, second)) == set(world.truth())
    assert second.bookmarks()[3] > first.bookmarks()[3]

    third = run_tap(tmp_path, tap_config, second.state)
    assert third.returncode == 0
    assert third.records() == []  # nothing new: nothing emitted
    assert third.bookmarks() == second.bookmarks()


def test_late_hit_within_the_lookback_is_caught(simulator: MatomoSimulator, tap_config: dict, tmp_path: Path) -> None:
    first = run_tap(tmp_path, {**tap_config, "site_ids": [1]})
    bookmark = datetime.fromisoformat(first.bookmarks()[1])
    late = simulator.world.add_visit(1, int((bookmark - timedelta(minutes=20)).timestamp()))
    too_late = simulator.world.add_visit(1, int((bookmark - timedelta(minutes=90)).timestamp()))
    second = run_tap(tmp_path, {**tap_config, "site_ids": [1]}, first.state)
    ids = {r["idvisit"] for r in second.records()}
    assert late.idvisit in ids
    assert too_late.idvisit not in ids  # older than lookback_minutes: documented limit
    wider = run_tap(tmp_path, {**tap_config, "site_ids": [1], "lookback_minutes": 120}, first.state)
    assert too_late.idvisit in {r["idvisit"] for r in wider.records()}


def test_more_visits_in_one_second_than_a_page_holds(tmp_path: Path) -> None:
    world = World(seed=11)
    day = clock.utc_now().date() - timedelta(days=1)
    at = int(datetime.combine(day, time(12), tzinfo=UTC).timestamp())
    burst = world.add_burst(1, at, 23)
    others = [world.add_visit(1, at + s) for s in (-1, 1, 2)]
    with MatomoSimulator(world, {TOKEN: None}) as sim:
        run = run_tap(
            tmp_path,
            {"url": sim.url, "token_auth": TOKEN, "site_ids": [1], "page_size": 5, "start_date": day.isoformat()},
        )
    assert run.returncode == 0, run.stderr[-2000:]
    ids = [r["action_id"] for r in run.records()]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(world.truth(1))
    assert {r["idvisit"] for r in run.records()} == {v.idvisit for v in burst + others}


def test_dst_day_in_new_york_and_numeric_strings(tmp_path: Path) -> None:
    """2026-11-01 has 25 hours in New York; an older PHP stack sends every number as a string."""
    world = World(seed=5)
    world.sites = {2: world.sites[2]}
    tz = world.sites[2].tz
    start = datetime.combine(date(2026, 10, 31), time(0), tzinfo=tz)
    end = datetime.combine(date(2026, 11, 2), time(0), tzinfo=tz)
    world.generate(start, end, visits_per_day=120)
    repeated_hour = int(datetime(2026, 11, 1, 6, 15, tzinfo=UTC).timestamp())  # 01:15 EST, the second one
    world.add_visit(2, repeated_hour, n_actions=1)
    with MatomoSimulator(world, {TOKEN: None}, numeric_strings=True) as sim:
        run = run_tap(
            tmp_path,
            {
                "url": sim.url,
                "token_auth": TOKEN,
                "start_date": "2026-10-31",
                "end_date": "2026-11-01",
                "page_size": 50,
            },
        )
    assert run.returncode == 0, run.stderr[-2000:]
    truth = world.truth()
    got = {r["action_id"]: r for r in run.records()}
    expected = {k for k, v in truth.items() if datetime.fromisoformat(v["action_timestamp"]) < end}
    assert set(got) == expected
    assert all(got[k]["action_timestamp"] == truth[k]["action_timestamp"] for k in got)
    assert all(isinstance(r["idvisit"], int) and isinstance(r["visitduration"], int) for r in got.values())


def test_truncated_visits_are_warned_about_and_flagged(tmp_path: Path) -> None:
    world = World(seed=2, max_actions_per_visit=12)
    yesterday = clock.utc_now() - timedelta(days=1)
    long_visit = world.add_long_visit(1, int(yesterday.timestamp()))
    with MatomoSimulator(world, {TOKEN: None}) as sim:
        run = run_tap(tmp_path, {"url": sim.url, "token_auth": TOKEN, "site_ids": [1]})
    rows = run.records()
    assert len(rows) == 12
    assert all(r["truncated_actions_count"] == len(long_visit.actions) - 12 for r in rows)
    assert f"visit {long_visit.idvisit} was cut by Matomo" in run.stderr


def test_goals_as_an_object_keyed_by_id_like_other_matomo_versions(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    simulator.inject(
        Fault("mangle", times=99, method="Goals.getGoals", transform=lambda goals: {str(g["idgoal"]): g for g in goals})
    )
    run = run_tap(tmp_path, {**tap_config, "site_ids": [2]})
    assert run.returncode == 0, run.stderr[-2000:]
    assert {(g["idgoal"], g["name"]) for g in run.records("goals")} == {(1, "Signup"), (2, "Contact")}


def test_a_start_date_is_site_local_midnight(tmp_path: Path) -> None:
    world = World(seed=4)
    kolkata = world.sites[3].tz
    day = clock.utc_now().date() - timedelta(days=2)
    after_local_midnight = world.add_visit(3, int(datetime.combine(day, time(1), tzinfo=kolkata).timestamp()), 1)
    before = world.add_visit(3, int(datetime.combine(day - timedelta(days=1), time(23), tzinfo=kolkata).timestamp()), 1)
    with MatomoSimulator(world, {TOKEN: None}) as sim:
        run = run_tap(tmp_path, {"url": sim.url, "token_auth": TOKEN, "site_ids": [3], "start_date": day.isoformat()})
    visits = {r["idvisit"] for r in run.records()}
    assert after_local_midnight.idvisit in visits  # 01:00 in Kolkata is still the day before in UTC
    assert before.idvisit not in visits


def test_deactivated_optional_plugins_are_skipped_with_a_warning(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    simulator.disabled_plugins.add("CustomDimensions")
    missing_method = (
        "The method 'getGoals' does not exist or is not available in the module '\\Piwik\\Plugins\\Goals\\API'."
    )
    simulator.inject(Fault("envelope", times=99, method="Goals.getGoals", message=missing_method))
    run = run_tap(tmp_path, tap_config)
    assert run.returncode == 0, run.stderr[-2000:]
    assert {r["action_id"] for r in run.records()} == set(simulator.world.truth())
    assert run.records("custom_dimensions") == run.records("goals") == []
    warnings = [line for line in run.stderr.splitlines() if "| WARNING" in line and "skipped" in line]
    assert len(warnings) == 2, warnings  # one per stream, not one per site
    assert "custom_dimensions skipped: Matomo's CustomDimensions plugin is not available" in warnings[0]
    assert "goals skipped: Matomo's Goals plugin is not available" in warnings[1]


def test_a_pinged_visit_is_extracted_again_with_its_new_duration_and_user(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    """A heartbeat ping moves neither the last action nor the action list (Matomo 5.0.2), yet changes the visit."""
    first = run_tap(tmp_path, tap_config)
    world = simulator.world
    pinged = max((v for v in world.visits.values() if v.idsite == 1), key=lambda v: v.last_action)
    world.ping_visit(pinged.idvisit, seconds=45, user_id="jane@example.org")
    second = run_tap(tmp_path, tap_config, first.state)
    assert second.returncode == 0, second.stderr[-2000:]
    emitted = latest_versions(second)
    assert set(emitted) == {pinged.idvisit}  # nothing else changed
    expected = render_visit(world, pinged)
    rows = emitted[pinged.idvisit]
    assert len(rows) == len(expected["actionDetails"])
    assert {(r["visitduration"], r["userid"], r["visitorid"]) for r in rows} == {
        (expected["visitDuration"], "jane@example.org", expected["visitorId"])
    }
    assert expected["visitDuration"] > latest_versions(first)[pinged.idvisit][0]["visitduration"]


def test_days_read_in_parallel_emit_what_one_at_a_time_emits(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages arrive in any order with several days in flight; the records and the state do not change (both
    runs at one instant: the state says when the log was read)."""
    monkeypatch.setenv("MATOMO_NOW", clock.utc_now().isoformat())
    runs = {}
    for parallel in (1, 4):
        folder = tmp_path / str(parallel)
        folder.mkdir()
        runs[parallel] = run_tap(folder, {**tap_config, "max_parallel_requests": parallel})
        assert runs[parallel].returncode == 0, runs[parallel].stderr[-2000:]
    one, four = runs[1], runs[4]
    assert Counter(map(str, four.records())) == Counter(map(str, one.records()))
    assert four.state["bookmarks"]["visits_actions"] == one.state["bookmarks"]["visits_actions"]
    for site in simulator.world.sites:  # and each site's records stay whole visits, in position order
        rows = [r for r in four.records() if r["idsite"] == site]
        for idvisit in {r["idvisit"] for r in rows}:
            positions = [r["action_position"] for r in rows if r["idvisit"] == idvisit]
            assert positions == list(range(len(positions)))


def test_a_site_without_new_visits_reads_only_since_its_last_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle site's bookmark (its newest visit) stays days back; its runs read from the last run's start
    (`listed_through`, minus the lookback), not from that visit: one Live request an hour; two in the hours
    whose lookback reaches the day before, one day after the other (both at once read today again); and the
    days missed while no run came. A visit that arrives later is emitted once; the bookmark moves to it."""
    midnight = datetime.combine(clock.utc_now().date() - timedelta(days=5), time(0), UTC)
    world = World(seed=11)
    world.generate(midnight - timedelta(days=2), midnight - timedelta(hours=2), visits_per_day=20)
    config = {"url": "", "token_auth": TOKEN, "site_ids": [1], "reports": [], "start_date": "", "page_size": 500}
    config["start_date"] = (midnight - timedelta(days=2)).date().isoformat()
    live: dict[float, list[str]] = {}
    runs = {}
    with MatomoSimulator(world, {TOKEN: None}) as simulator:
        config["url"] = simulator.url
        state = None
        for hours in (10, 11, 24.5, 25.5, 26.5, 72):  # after `midnight`: the first run, hourly runs, three days later
            if hours == 72:
                late = world.add_visit(1, int((midnight + timedelta(hours=71.5)).timestamp()))
            monkeypatch.setenv("MATOMO_NOW", (midnight + timedelta(hours=hours)).isoformat())
            since = len(simulator.requests)
            runs[hours] = run = run_tap(tmp_path, config, state)
            assert run.returncode == 0, run.stderr[-2000:]
            state = run.state
            live[hours] = [
                r.params["date"]
                for r in simulator.requests[since:]
                if r.params.get("method") == "Live.getLastVisitsDetails"
            ]
    day = midnight.date()
    assert len(runs[10].records()) > 0
    assert live[11] == [day.isoformat()]
    assert live[24.5] == [day.isoformat(), (day + timedelta(days=1)).isoformat()]  # one after the other
    assert live[25.5] == live[24.5]  # the lookback of the run before still reaches the day before
    assert live[26.5] == [(day + timedelta(days=1)).isoformat()]
    assert sorted(set(live[72])) == [(day + timedelta(days=n)).isoformat() for n in (1, 2, 3)]
    assert [r for hours in (11, 24.5, 25.5, 26.5) for r in runs[hours].records()] == []
    assert {r["idvisit"] for r in runs[72].records()} == {late.idvisit}
    assert runs[72].bookmarks()[1] > runs[25.5].bookmarks()[1] == runs[10].bookmarks()[1]


def test_every_live_request_has_the_sdks_duration_metric(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    """Meltano users read request timings from the SDK's metric lines: the tap's own page sender writes them too."""
    run = run_tap(tmp_path, {**tap_config, "site_ids": [1], "log_metrics": True})
    assert run.returncode == 0, run.stderr[-2000:]
    points = run.metrics("http_request_duration")
    live = [p for p in points if p["tags"]["stream"] == "visits_actions"]
    assert len(live) == len(simulator.live_requests()) > 0
    assert all(p["type"] == "timer" and p["value"] > 0 for p in live)
    assert all(p["tags"]["status"] == "succeeded" and p["tags"]["context"]["idsite"] == 1 for p in live)
    assert any(p["tags"]["stream"] == "sites" for p in points)


def test_an_empty_state_file_is_a_first_run(simulator: MatomoSimulator, tap_config: dict, tmp_path: Path) -> None:
    """`target ... | tail -1 > state.json` leaves an empty file when no state was committed: no state yet."""
    (tmp_path / "state.json").write_text("")
    (tmp_path / "config.json").write_text(json.dumps({**tap_config, "site_ids": [1]}))
    done = subprocess.run(
        [TAP, "--config", str(tmp_path / "config.json"), "--state", str(tmp_path / "state.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sum('"type":"RECORD","stream":"visits_actions"' in line for line in done.stdout.splitlines()) == len(
        simulator.world.truth(1)
    )


def test_a_run_logs_its_progress_not_the_sdks_metrics_unless_asked(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    """The SDK's METRIC lines (two thirds of a demo's log) only with `log_metrics`; no line per child stream or
    per report and site; each site's raw log and reports in a few lines."""
    reports = [{"method": "VisitsSummary.get", "periods": ["day"]}, {"method": "Actions.get", "periods": ["day"]}]
    config = {**tap_config, "site_ids": [1, 2], "reports": reports, "report_final_after_hours": 0}
    quiet = run_tap(tmp_path, config)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    lines = quiet.stderr.splitlines()
    assert not [line for line in lines if "METRIC" in line or "as child stream" in line]
    assert not [line for line in lines if "Beginning sync of 'report_" in line and "report_fetches" not in line]
    assert len([line for line in lines if "report periods read" in line]) == 2  # a line per site
    assert len(lines) < 60, len(lines)
    counted = run_tap(tmp_path, {**config, "log_metrics": True})
    assert counted.returncode == 0, counted.stderr[-2000:]
    assert len([line for line in counted.stderr.splitlines() if "METRIC" in line]) > 50
