"""Record mapping from the real Matomo 5.0.2 samples: every contract column, every action type."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from matomo_simulator.render import stringify_numbers
from tap_matomo import schemas
from tap_matomo.coerce import integer
from tap_matomo.raw.records import InvalidVisitError, visit_to_records
from tap_matomo.timezones import local_wall_clock_to_utc, site_timezone

from tests.conftest import REPO, load_sample

pytestmark = pytest.mark.unit

KOLKATA = {"idsite": 3, "timezone": "Asia/Kolkata", "currency": "INR"}
UTC_SITE = {"idsite": 1, "timezone": "UTC", "currency": "USD"}


def records_of(sample: str, site: dict, **kwargs: object) -> list[dict]:
    tz = site_timezone(site["timezone"])
    return [r for visit in load_sample(sample) for r in visit_to_records(visit, tz, site, **kwargs)]


@pytest.fixture(scope="module")
def site3() -> dict[str, dict]:
    rows = records_of("live_getLastVisitsDetails_site3_asia_kolkata_2026-11-27.json", KOLKATA)
    rows += records_of("live_getLastVisitsDetails_site3_asia_kolkata_2026-07-01.json", KOLKATA)
    return {r["action_id"]: r for r in rows}


@pytest.fixture(scope="module")
def site1() -> dict[str, dict]:
    return {r["action_id"]: r for r in records_of("live_getLastVisitsDetails_site1_utc.json", UTC_SITE)}


def test_kolkata_actions_get_the_true_utc_instants_of_the_samples_readme(site3: dict[str, dict]) -> None:
    assert site3["8_0"]["action_timestamp"] == "2026-11-26T21:00:00+00:00"
    assert site3["6_0"]["action_timestamp"] == "2026-11-26T20:00:00+00:00"
    assert site3["6_5"]["action_timestamp"] == "2026-11-26T20:01:30+00:00"
    assert site3["7_0"]["action_timestamp"] == "2026-06-30T18:45:00+00:00"
    # The first action's local day in Kolkata is the 27th, although it is the 26th in UTC.
    assert site3["8_0"]["serverdateprettyfirstaction"] == "2026-11-27"
    assert site3["8_0"]["visit_first_action_at"] == "2026-11-26T21:00:00+00:00"
    assert site3["8_5"]["visit_last_action_at"] == "2026-11-26T21:01:30+00:00"


def test_one_record_per_action_in_order_keyed_by_visit_and_position(site3: dict[str, dict]) -> None:
    assert sorted(k for k in site3 if k.startswith("8_")) == [f"8_{i}" for i in range(6)]
    types = [site3[f"8_{i}"]["action_type"] for i in range(6)]
    assert types == ["action", "content", "content", "action", "goal", "ecommerceOrder"]
    assert [site3[f"7_{i}"]["action_type"] for i in range(3)] == ["action", "ecommerceAbandonedCart", "event"]
    assert site3["8_1"]["content_interaction"] is None
    assert site3["8_2"]["content_interaction"] == "click"
    assert site3["8_1"]["content_name"] == "Banner"
    assert site3["8_1"]["content_piece"] == "banner.png"


def test_custom_dimensions_visit_and_action_scope(site3: dict[str, dict]) -> None:
    assert all(site3[f"8_{i}"]["dimension1"] == "gold" for i in range(6))
    assert site3["8_0"]["dimension2"] == "shoes"
    assert site3["8_3"]["dimension2"] == "bags"
    assert site3["8_1"]["dimension2"] is None
    assert site3["8_0"]["usercustomdimensions"] == {"dimension1": "gold", "dimension2": "shoes"}
    assert site3["6_0"]["usercustomdimensions"] is None
    assert site3["6_0"]["dimension1"] is None


def test_goal_order_and_cart_columns(site3: dict[str, dict]) -> None:
    goal, order, cart = site3["8_4"], site3["8_5"], site3["7_1"]
    assert (goal["goal_id"], goal["goal_name"], goal["revenue"]) == (1, "Newsletter", 2)
    assert goal["goal_page_idlink_va"] == site3["8_3"]["action_idlink_va"] == 26
    assert order["order_id"] == "IN-78"
    assert order["revenue"] == 123.45
    assert (order["revenue_subtotal"], order["revenue_tax"], order["revenue_shipping"], order["revenue_discount"]) == (
        110,
        10,
        5,
        1.55,
    )
    assert order["items_count"] == 3
    assert order["items"][1] == {
        "sku": "SKU-2",
        "name": "Fins",
        "category": "Diving",
        "categories": ["Diving", "Accessories"],
        "price": 13.45,
        "quantity": 1,
    }
    assert cart["revenue"] == 13.45
    assert cart["items_count"] == 1
    assert cart["order_id"] is None
    product = site3["7_0"]
    assert (product["product_view_sku"], product["product_view_name"], product["product_view_price"]) == (
        "SKU-2",
        "Fins",
        13.45,
    )
    assert site3["7_2"]["action_eventvalue"] == 1
    assert site3["7_2"]["action_eventname"] == "added - Fins"


def test_site1_events_searches_downloads_outlinks(site1: dict[str, dict]) -> None:
    by_type: dict[str, list[dict]] = {}
    for row in site1.values():
        by_type.setdefault(row["action_type"], []).append(row)
    assert set(by_type) == {"action", "event", "search", "download", "outlink"}
    video = next(r for r in by_type["event"] if r["action_eventcategory"] == "Video")
    assert (video["action_eventaction"], video["action_eventname"], video["action_eventvalue"]) == (
        "Play",
        "Intro video",
        42.5,
    )
    no_value = next(r for r in by_type["event"] if r["action_eventaction"] == "Submit")
    no_name = next(r for r in by_type["event"] if r["action_eventaction"] == "Error")
    assert no_value["action_eventvalue"] is None
    assert no_value["action_eventname"] == "Newsletter signup"
    assert no_name["action_eventname"] is None
    assert no_name["action_eventvalue"] == 1
    search = by_type["search"][0]
    assert (search["sitesearchkeyword"], search["sitesearchcategory"], search["sitesearchcount"]) == (
        "shoes",
        "catalog",
        7,
    )
    assert search["action_url"] is None
    assert by_type["download"][0]["action_url"] == "https://example.org/files/brochure.pdf"
    assert by_type["outlink"][0]["action_url"] == "https://partner.example.com/offer"
    user = next(r for r in site1.values() if r["idvisit"] == 2)
    assert (user["userid"], user["referrertype"], user["referrername"], user["language_code"]) == (
        "user-42",
        "campaign",
        "spring",
        "de",
    )


def test_empty_strings_become_null_never_invented(site1: dict[str, dict], site3: dict[str, dict]) -> None:
    direct = site3["8_0"]
    assert direct["referrername"] is None
    assert direct["referrerkeyword"] is None
    assert direct["language_code"] is None
    assert direct["operatingsystemversion"] is None
    assert site1["3_0"]["action_idpageview"] is None  # "" in the API
    assert site3["8_0"]["action_idpageview"] == "pvD001"
    for row in [*site1.values(), *site3.values()]:
        assert "" not in row.values()


def test_visit_columns(site3: dict[str, dict]) -> None:
    row = site3["8_3"]
    assert (row["idsite"], row["idvisit"], row["actions"], row["visitduration"]) == (3, 8, 2, 93)
    assert (row["visitorid"], row["fingerprint"], row["visitcount"], row["visitortype"]) == (
        "b8b8d4d4d4d4d4d4",
        "63f17cb5eaa0a4a9",
        1,
        "new",
    )
    assert (row["visitconverted"], row["visitecommercestatus"], row["goalconversions"]) == (1, "ordered", 1)
    assert (row["site_timezone"], row["site_currency"], row["sitename"]) == ("Asia/Kolkata", "INR", "Shop IN")
    assert (row["browsername"], row["browserversion"], row["devicetype"], row["countrycode"]) == (
        "Chrome",
        "120.0",
        "Desktop",
        "xx",
    )
    assert row["truncated_actions_count"] is None
    assert "visitip" not in row


def test_records_match_the_schema_exactly(site1: dict[str, dict], site3: dict[str, dict]) -> None:
    properties = set(schemas.VISITS_ACTIONS["properties"]) - {"visitip"}
    for row in [*site1.values(), *site3.values()]:
        assert set(row) == properties
        jsonschema.validate(row, schemas.VISITS_ACTIONS)


def test_every_contract_column_is_in_the_schema() -> None:
    contract = (REPO / "docs" / "data-contract.md").read_text()
    stream_section = contract.split("## Loading")[0]
    cells = re.findall(r"^\| ([a-z_0-9., ]+?) \|", stream_section, flags=re.M)
    table_columns = [c for cell in cells for c in cell.split(", ")]
    named = re.findall(r"`([a-z_0-9]+)`", stream_section.split("### Columns added")[1])
    columns = {c for c in table_columns if c != "column"} | set(named)
    columns.discard("dimension1 .. dimension10")
    columns |= {f"dimension{n}" for n in range(1, 11)}
    missing = columns - set(schemas.VISITS_ACTIONS["properties"])
    assert len(columns) > 90
    assert not missing, missing


def test_numeric_strings_from_older_stacks_map_to_the_same_records() -> None:
    tz = site_timezone("Asia/Kolkata")
    for visit in load_sample("live_getLastVisitsDetails_site3_asia_kolkata_2026-11-27.json"):
        as_numbers = list(visit_to_records(visit, tz, KOLKATA))
        as_strings = list(visit_to_records(stringify_numbers(visit), tz, KOLKATA))
        assert as_strings == as_numbers


def test_visitor_ip_only_when_asked() -> None:
    rows = records_of("live_getLastVisitsDetails_site1_utc.json", UTC_SITE, include_ip=True)
    assert {r["visitip"] for r in rows} == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}


def test_truncated_visit_is_flagged_on_its_rows() -> None:
    visit = dict(load_sample("live_getLastVisitsDetails_site1_utc.json")[0], truncatedActionsCount=7)
    rows = list(visit_to_records(visit, UTC, UTC_SITE))
    assert rows
    assert all(r["truncated_actions_count"] == 7 for r in rows)


@pytest.mark.parametrize("broken", [{"idVisit": "abc", "actionDetails": []}, {"idVisit": 5}])
def test_unmappable_visits_raise_a_clear_error(broken: dict) -> None:
    with pytest.raises(InvalidVisitError, match=r"idVisit|actionDetails"):
        list(visit_to_records(broken, UTC, UTC_SITE))


def test_unknown_action_type_is_kept_as_given() -> None:
    visit = load_sample("live_getLastVisitsDetails_site1_utc.json")[0]
    visit = {**visit, "actionDetails": [{**visit["actionDetails"][0], "type": "mediaPlay"}]}
    assert next(visit_to_records(visit, UTC, UTC_SITE))["action_type"] == "mediaPlay"


@pytest.mark.parametrize(
    ("name", "offset"),
    [
        ("UTC", timedelta(0)),
        ("UTC+5.5", timedelta(hours=5, minutes=30)),
        ("UTC-3", timedelta(hours=-3)),
        ("Asia/Kolkata", timedelta(hours=5, minutes=30)),
    ],
)
def test_fixed_offsets_and_iana_zones(name: str, offset: timedelta) -> None:
    instant = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    localised = int((instant + offset).replace(tzinfo=UTC).timestamp())
    assert local_wall_clock_to_utc(localised, site_timezone(name)) == instant


def test_dst_summer_offset_and_the_repeated_autumn_hour() -> None:
    new_york = ZoneInfo("America/New_York")
    july = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # 12:00 EDT (UTC-4)
    assert local_wall_clock_to_utc(int(datetime(2026, 7, 1, 12, 0, tzinfo=UTC).timestamp()), new_york) == july
    # 2026-11-01 01:30 happens twice in New York: 05:30Z (EDT) and 06:30Z (EST).
    wall = int(datetime(2026, 11, 1, 1, 30, tzinfo=UTC).timestamp())
    first, second = datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    bounds_second = (int(second.timestamp()) - 60, int(second.timestamp()) + 60)
    assert local_wall_clock_to_utc(wall, new_york) == first
    assert local_wall_clock_to_utc(wall, new_york, *bounds_second) == second


def test_unknown_timezone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown site timezone 'Mars/Olympus'"):
        site_timezone("Mars/Olympus")


def test_custom_variables_of_visit_and_page_scope() -> None:
    visit = load_sample("live_getLastVisitsDetails_site1_utc.json")[0]
    page_vars = {
        "1": {"customVariablePageName1": "lang", "customVariablePageValue1": "en"},
        "2": {"customVariablePageName2": "", "customVariablePageValue2": "dropped"},
    }
    visit = {
        **visit,
        "customVariables": {"1": {"customVariableName1": "plan", "customVariableValue1": "pro"}},
        "actionDetails": [{**visit["actionDetails"][0], "customVariables": page_vars}],
    }
    row = next(visit_to_records(visit, UTC, UTC_SITE))
    assert row["usercustomproperties"] == {"lang": "en"}
    assert row["visit_custom_variables"] == {"plan": "pro"}


def test_json_booleans_become_integers_in_integer_columns() -> None:
    """Some stacks answer `true` for a flag (visitConverted): an integer column gets 1, never JSON true."""
    assert (integer(True), integer(False), integer("3"), integer(2.0)) == (1, 0, 3, 2)
    assert type(integer(True)) is int
