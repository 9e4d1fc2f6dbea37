"""The Matomo simulator answers like the real Matomo 5.0.2 of the samples, and by matomo-api.md's rules."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import requests
from matomo_simulator import MatomoSimulator, World
from matomo_simulator.render import render_visit
from tap_matomo import clock

from tests.conftest import load_sample
from tests.helpers import TOKEN

pytestmark = pytest.mark.unit

LIVE_SAMPLES = [
    "live_getLastVisitsDetails_site1_utc.json",
    "live_getLastVisitsDetails_site1_limit1_offset1_asc.json",
    "live_getLastVisitsDetails_site3_asia_kolkata_2026-11-27.json",
    "live_getLastVisitsDetails_site3_asia_kolkata_2026-07-01.json",
]
QUIRKY_COUNTS = ("totalEcommerceItems", "totalAbandonedCartsItems")
OPTIONAL_ACTION_KEYS = {"eventName", "eventValue", "productViewPrice", "productViewName", "productViewSku"}
DOCUMENTED_ACTION_KEYS = {"customVariables"}  # page-scope custom variables, per matomo-api.md (not in the samples)


def kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"  # PHP writes 5.0 as 5
    return type(value).__name__


def action_type(action: dict) -> str:
    return str(action["type"])


def call(sim: MatomoSimulator, method: str, token: str | None = TOKEN, **params: object) -> requests.Response:
    data = {"token_auth": token} if token is not None else {}
    return requests.post(
        f"{sim.url}/index.php",
        params={"module": "API", "method": method, "format": "JSON", **params},
        data=data,
        timeout=10,
    )


@pytest.fixture
def rendered(world: World) -> list[dict]:
    return [render_visit(world, v) for v in world.visits.values()]


def test_action_keys_and_types_match_the_real_samples(rendered: list[dict]) -> None:
    real: dict[str, list[dict]] = {}
    for name in LIVE_SAMPLES:
        for visit in load_sample(name):
            for action in visit["actionDetails"]:
                real.setdefault(action_type(action), []).append(action)
    simulated: dict[str, list[dict]] = {}
    for visit in rendered:
        for action in visit["actionDetails"]:
            simulated.setdefault(action_type(action), []).append(action)
    assert set(real) <= set(simulated), f"types the simulator never produces: {set(real) - set(simulated)}"
    for type_name, real_actions in real.items():
        real_keys = {
            frozenset(k for k in a if not k.startswith("dimension")) - OPTIONAL_ACTION_KEYS for a in real_actions
        }
        allowed_optional = {k for a in real_actions for k in a} & OPTIONAL_ACTION_KEYS
        for action in simulated[type_name]:
            keys = {k for k in action if not k.startswith("dimension")} - DOCUMENTED_ACTION_KEYS
            assert frozenset(keys - OPTIONAL_ACTION_KEYS) in real_keys, (type_name, sorted(keys))
            assert keys & OPTIONAL_ACTION_KEYS <= allowed_optional, type_name
            for key, value in action.items():
                samples = [a[key] for a in real_actions if a.get(key) is not None]
                if value is not None and samples:
                    assert kind(value) == kind(samples[0]), (type_name, key, value, samples[0])


def test_visit_keys_and_types_match_the_real_samples(rendered: list[dict]) -> None:
    real = {
        True: load_sample(LIVE_SAMPLES[2])[0],  # ecommerce site
        False: load_sample(LIVE_SAMPLES[0])[0],
    }
    for visit in rendered:
        sample = real["totalEcommerceRevenue" in visit]
        keys = [
            k for k in visit if not k.startswith("dimension") and k not in ("customVariables", "truncatedActionsCount")
        ]
        assert keys == [k for k in sample if not k.startswith("dimension")]
        for key in keys:
            if visit[key] is not None and sample[key] is not None and key not in QUIRKY_COUNTS:
                assert kind(visit[key]) == kind(sample[key]), key
        for key in QUIRKY_COUNTS:  # a string unless zero, as in the samples
            assert visit.get(key, 0) == 0 or isinstance(visit[key], str)


def test_sites_custom_dimensions_and_goals_look_like_the_samples(simulator: MatomoSimulator) -> None:
    sites = call(simulator, "SitesManager.getSitesWithAtLeastViewAccess").json()
    real_site = load_sample("sitesmanager_getSitesWithAtLeastViewAccess.json")[0]
    assert all(list(s) == list(real_site) for s in sites)
    assert {s["timezone"] for s in sites} == {"UTC", "America/New_York", "Asia/Kolkata", "UTC-3"}
    dims = call(simulator, "CustomDimensions.getConfiguredCustomDimensions", idSite=3).json()
    assert dims == load_sample("customdimensions_getConfiguredCustomDimensions_site3.json")
    goals = call(simulator, "Goals.getGoals", idSite=3).json()
    real_goals = load_sample("goals_getGoals_site3.json")
    assert [list(g) for g in goals] == [list(g) for g in real_goals]
    assert goals[0]["name"] == real_goals[0]["name"]
    assert call(simulator, "API.getMatomoVersion").json() == load_sample("api_getMatomoVersion.json")


@pytest.mark.parametrize(
    ("case", "request_args"),
    [
        ("badtoken", {"method": "Live.getLastVisitsDetails", "token": "wrong", "idSite": 1}),
        ("notoken", {"method": "Live.getLastVisitsDetails", "token": None, "idSite": 1}),
        ("unknown_method", {"method": "Live.nonexistentMethod", "idSite": 1}),
        ("unknown_site", {"method": "Live.getLastVisitsDetails", "idSite": 99}),
        ("bad_date", {"method": "Live.getLastVisitsDetails", "idSite": 1, "period": "day", "date": "nonsense"}),
    ],
)
def test_error_envelopes_and_statuses_match_the_samples(
    simulator: MatomoSimulator, case: str, request_args: dict
) -> None:
    expected = load_sample("errors.json")[case]
    args = dict(request_args)
    response = call(simulator, args.pop("method"), args.pop("token", TOKEN), **args)
    assert response.status_code == expected["http_status"]
    assert response.json() == expected["body"]


def test_token_in_the_url_is_refused_and_remembered(simulator: MatomoSimulator) -> None:
    response = requests.post(
        f"{simulator.url}/index.php",
        params={"module": "API", "method": "API.getMatomoVersion", "format": "JSON", "token_auth": TOKEN},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["result"] == "error"
    assert simulator.token_in_url


def test_a_form_sent_in_chunks_is_read_as_matomo_reads_it(simulator: MatomoSimulator) -> None:
    """An HTTP/1.1 client may send its form without a length, in chunks (Node's http.request does, as the seed
    tool sends its token): Apache in front of Matomo reads it, so does the simulator."""
    form = f"token_auth={TOKEN}".encode()
    chunks = iter([form[:5], form[5:]])  # a generator body: requests sends it chunked
    response = requests.post(
        f"{simulator.url}/index.php",
        params={"module": "API", "method": "API.getMatomoVersion", "format": "JSON"},
        data=chunks,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.json() == {"value": "5.0.2"}
    assert simulator.requests[-1].token_in_body


def test_binds_to_loopback_only(simulator: MatomoSimulator) -> None:
    assert simulator.url.startswith("http://127.0.0.1:")


def _two_site_world() -> World:
    """Sites 1 (UTC) and 3 (Kolkata), no visits yet."""
    world = World(seed=3)
    world.sites = {k: v for k, v in world.sites.items() if k in (1, 3)}
    return world


def test_day_window_in_site_timezone_with_inclusive_end_and_strict_min_timestamp() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    world = _two_site_world()
    kolkata = world.sites[3].tz
    day = date(2026, 11, 25)
    midnight_after = int(datetime.combine(day + timedelta(days=1), time(0), tzinfo=kolkata).timestamp())
    inside = world.add_visit(3, midnight_after - 3600)
    at_midnight = world.add_visit(3, midnight_after, n_actions=1)
    utc_same_day = world.add_visit(3, int(datetime(2026, 11, 25, 20, 0, tzinfo=UTC).timestamp()))  # 26th in Kolkata
    with MatomoSimulator(world, {TOKEN: None}, now=now.timestamp) as sim:
        ids = [
            v["idVisit"]
            for v in call(
                sim, "Live.getLastVisitsDetails", idSite=3, period="day", date=day.isoformat(), filter_sort_order="asc"
            ).json()
        ]
        assert ids == [inside.idvisit, at_midnight.idvisit]
        next_day = [
            v["idVisit"]
            for v in call(
                sim, "Live.getLastVisitsDetails", idSite=3, period="day", date=(day + timedelta(days=1)).isoformat()
            ).json()
        ]
        assert at_midnight.idvisit in next_day
        assert utc_same_day.idvisit in next_day
        after = call(
            sim,
            "Live.getLastVisitsDetails",
            idSite=3,
            period="day",
            date=day.isoformat(),
            minTimestamp=inside.last_action,
        ).json()
        assert [v["idVisit"] for v in after] == [at_midnight.idvisit]


def test_today_starts_yesterday_with_no_end_and_default_limit_is_ten() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    world = _two_site_world()
    yesterday = [world.add_visit(1, int(datetime(2026, 11, 26, 10, i, tzinfo=UTC).timestamp())) for i in range(8)]
    today = [world.add_visit(1, int(datetime(2026, 11, 27, 9, i, tzinfo=UTC).timestamp())) for i in range(8)]
    with MatomoSimulator(world, {TOKEN: None}, now=now.timestamp) as sim:
        page = call(sim, "Live.getLastVisitsDetails", idSite=1, period="day", date="2026-11-27").json()
        assert len(page) == 10  # Matomo's default filter_limit
        assert [v["idVisit"] for v in page] == [v.idvisit for v in reversed(yesterday + today)][:10]  # desc
        everything = call(
            sim,
            "Live.getLastVisitsDetails",
            idSite=1,
            period="day",
            date="today",
            filter_limit=-1,
            filter_sort_order="asc",
        ).json()
        assert [v["idVisit"] for v in everything] == [v.idvisit for v in yesterday + today]


def test_ties_on_last_action_are_ordered_by_idvisit_both_ways() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    world = _two_site_world()
    same = world.add_burst(1, int(datetime(2026, 11, 26, 10, 0, tzinfo=UTC).timestamp()), 5)
    with MatomoSimulator(world, {TOKEN: None}, now=now.timestamp) as sim:
        args = {"idSite": 1, "period": "day", "date": "2026-11-26"}
        asc = call(sim, "Live.getLastVisitsDetails", filter_sort_order="asc", **args).json()
        desc = call(sim, "Live.getLastVisitsDetails", **args).json()
        assert [v["idVisit"] for v in asc] == [v.idvisit for v in same]
        assert [v["idVisit"] for v in desc] == [v.idvisit for v in reversed(same)]
        page = call(sim, "Live.getLastVisitsDetails", filter_sort_order="asc", filter_limit=2, filter_offset=2, **args)
        assert [v["idVisit"] for v in page.json()] == [same[2].idvisit, same[3].idvisit]


def test_action_timestamps_are_localised_and_visits_are_capped() -> None:
    world = World(seed=5, max_actions_per_visit=10)
    visit = world.add_long_visit(3, int(datetime(2026, 11, 26, 10, 0, tzinfo=UTC).timestamp()))
    rendered = render_visit(world, visit)
    assert len(rendered["actionDetails"]) == 10
    assert rendered["truncatedActionsCount"] == len(visit.actions) - 10 >= 5
    first = rendered["actionDetails"][0]
    assert first["timestamp"] - visit.actions[0].at == 5.5 * 3600  # Kolkata wall clock read as UTC
    assert rendered["firstActionTimestamp"] == visit.actions[0].at


REPORT_FIXTURES = Path(__file__).parent / "fixtures" / "matomo-5.0.2-reports"
#: The default report set's methods, and the real answer each simulator answer is compared with.
SHAPED_REPORTS = [
    "VisitsSummary.get",
    "Actions.get",
    "Goals.get",
    "Actions.getPageUrls",
    "Actions.getPageTitles",
    "Actions.getEntryPageUrls",
    "Actions.getExitPageUrls",
    "Actions.getSiteSearchKeywords",
    "Actions.getDownloads",
    "Actions.getOutlinks",
    "Referrers.getReferrerType",
    "Referrers.getAll",
    "Referrers.getWebsites",
    "Referrers.getSearchEngines",
    "Referrers.getKeywords",
    "Referrers.getCampaigns",
    "Referrers.getSocials",
    "UserCountry.getCountry",
    "UserCountry.getCity",
    "DevicesDetection.getType",
    "DevicesDetection.getBrowsers",
    "DevicesDetection.getOsFamilies",
    "Events.getCategory",
    "Events.getAction",
    "Events.getName",
    "Goals.getItemsName",
    "Goals.getItemsSku",
    "VisitTime.getVisitInformationPerServerTime",
]


def real_report(method: str, period: str = "day-2026-11-24") -> list[dict]:
    return json.loads((REPORT_FIXTURES / "site3" / period / f"{method}.json").read_text())


def path_fields(row: dict) -> list[str]:
    return [k for k, v in row.items() if k[:1].isupper() and "_" in k and isinstance(v, str)]


@pytest.mark.parametrize("method", SHAPED_REPORTS)
def test_report_answers_have_the_real_shape(simulator: MatomoSimulator, method: str) -> None:
    """flat=1&format_metrics=0: the real answer's kind (a list, of one for one-row reports), its label and
    dimension fields, metric names among the real ones."""
    yesterday = (clock.utc_now() - timedelta(days=1)).date().isoformat()
    answer = call(simulator, method, idSite=2, period="day", date=yesterday, flat=1, format_metrics=0).json()
    real = real_report(method)
    assert isinstance(answer, list)
    assert answer, method
    if method.endswith(".get"):
        assert len(answer) == 1
        assert "label" not in answer[0]
        assert set(answer[0]) <= set(real[0])
        return
    real_fields = path_fields(real[0])
    for row in answer:
        assert isinstance(row["label"], str)
        assert path_fields(row) == real_fields, method
        real_keys = {k for r in real for k in r}
        assert set(row) <= real_keys | {"url"}, (method, set(row) - real_keys)


def test_day_answers_mix_strings_and_numbers_weeks_do_not(simulator: MatomoSimulator) -> None:
    day = (clock.utc_now() - timedelta(days=1)).date().isoformat()
    rows = call(simulator, "DevicesDetection.getBrowsers", idSite=2, period="day", date=day, flat=1, format_metrics=0)
    kinds = {type(row["nb_actions"]) for row in rows.json()}
    assert kinds == {int, str}
    week = call(simulator, "DevicesDetection.getBrowsers", idSite=2, period="week", date=day, flat=1, format_metrics=0)
    assert {type(row["nb_actions"]) for row in week.json()} == {int}


def test_one_row_reports_are_an_object_unless_flat_and_rates_are_formatted_by_default(
    simulator: MatomoSimulator,
) -> None:
    day = (clock.utc_now() - timedelta(days=1)).date().isoformat()
    plain = call(simulator, "VisitsSummary.get", idSite=1, period="day", date=day).json()
    assert isinstance(plain, dict)
    assert str(plain["bounce_rate"]).endswith("%")  # as the real default form: "24%"
    real_plain = json.loads((REPORT_FIXTURES / "site1" / "day-2026-11-24" / "VisitsSummary.get.json").read_text())
    assert set(plain) == set(real_plain[0])


def test_reports_of_a_purged_day_stay_and_an_erasure_invalidates_them(simulator: MatomoSimulator) -> None:
    site = simulator.world.sites[1]
    day = clock.utc_now().astimezone(site.tz).date() - timedelta(days=2)
    before = call(simulator, "VisitsSummary.get", idSite=1, period="day", date=day.isoformat(), flat=1).json()
    simulator.world.purge_before(1, day + timedelta(days=1))
    assert call(simulator, "Live.getLastVisitsDetails", idSite=1, period="day", date=day.isoformat()).json() == []
    assert call(simulator, "VisitsSummary.get", idSite=1, period="day", date=day.isoformat(), flat=1).json() == before
    assert before[0]["nb_visits"] > 0


def test_unarchived_days_segments_and_dates_before_the_site_answer_zeros_or_nothing(simulator: MatomoSimulator) -> None:
    simulator.browser_archiving = False
    day = (clock.utc_now() - timedelta(days=1)).date().isoformat()
    summary = call(simulator, "VisitsSummary.get", idSite=1, period="day", date=day, flat=1).json()
    assert summary[0]["nb_visits"] == 0
    assert call(simulator, "Referrers.getReferrerType", idSite=1, period="day", date=day, flat=1).json() == []
    simulator.archive(1, date.fromisoformat(day))
    assert call(simulator, "VisitsSummary.get", idSite=1, period="day", date=day, flat=1).json()[0]["nb_visits"] > 0
    segmented = call(
        simulator, "VisitsSummary.get", idSite=1, period="day", date=day, flat=1, segment="deviceType==smartphone"
    )
    assert segmented.json()[0]["nb_visits"] == 0  # a segment core:archive has not processed
    simulator.processed_segments.add("deviceType==smartphone")
    segmented = call(
        simulator, "VisitsSummary.get", idSite=1, period="day", date=day, flat=1, segment="deviceType==smartphone"
    )
    assert 0 < segmented.json()[0]["nb_visits"] < summary[0]["nb_visits"] + 10_000


def test_a_disabled_plugin_and_bulk_requests(simulator: MatomoSimulator) -> None:
    simulator.disabled_plugins.add("Resolution")
    real = json.loads(
        (REPORT_FIXTURES / "special/site1-day-2026-11-25/plugin-deactivated/Resolution.getResolution.json").read_text()
    )
    day = (clock.utc_now() - timedelta(days=1)).date().isoformat()
    simulator.disabled_plugins.add("Events")
    answer = call(simulator, "Events.getCategory", idSite=1, period="day", date=day, flat=1).json()
    assert answer == {**real, "message": real["message"].replace("Resolution", "Events")}
    urls = {
        "urls[0]": f"method=VisitsSummary.get&idSite=1&period=day&date={day}&flat=1",
        "urls[1]": f"method=Events.getCategory&idSite=1&period=day&date={day}&flat=1",
    }
    bulk = call(simulator, "API.getBulkRequest", **urls).json()
    assert bulk[0] == call(simulator, "VisitsSummary.get", idSite=1, period="day", date=day, flat=1).json()
    assert bulk[1]["result"] == "error"
