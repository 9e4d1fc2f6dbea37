"""Report rows from real Matomo 5.0.2 answers (tests/fixtures/matomo-5.0.2-reports/): the tap's records
hold every metric and every label path of each answer, value for value, and match their schemas."""

from __future__ import annotations

import functools
import json
import typing as t
from datetime import date

import jsonschema
import pytest
from tap_matomo.coerce import number
from tap_matomo.reports.periods import PeriodWindow, period_end, period_start
from tap_matomo.reports.rows import is_empty, map_row, rows_of
from tap_matomo.reports.specs import DEFAULT_REPORTS, ReportMetadata, ReportSpec, default_name, report_schema

from tests.pipeline import ROOT

pytestmark = pytest.mark.unit

FIXTURES = ROOT / "tests" / "fixtures" / "matomo-5.0.2-reports"
INDEX = [json.loads(line) for line in (FIXTURES / "index.jsonl").read_text().splitlines()]


@functools.cache
def metadata_of(site: int) -> ReportMetadata:
    metadata = ReportMetadata()
    metadata.add(json.loads((FIXTURES / f"site{site}" / "API.getReportMetadata.json").read_text()))
    return metadata


def flat_answers() -> list[dict[str, t.Any]]:
    """Every captured flat answer of a report (not the metadata, not an error)."""
    return [
        entry
        for entry in INDEX
        if str(entry["params"].get("flat")) == "1"
        and not entry["params"]["method"].startswith("API.")
        and isinstance(json.loads((FIXTURES / entry["file"]).read_text()), list)
    ]


def expected_value(value: t.Any) -> t.Any:
    """A metric as the record must hold it: a number (Matomo writes some as strings), or null."""
    return value if value is None else number(value)


def test_records_hold_every_metric_and_label_path_of_the_real_answers() -> None:
    """Every field of every row is in its record: label, dimension values (the label path), each metric as
    a number (a declared column or `other_metrics`), per-goal metrics, and the rest as attributes."""
    answers = flat_answers()
    reports, rows_compared, metrics_compared = set(), 0, 0
    validators: dict[tuple[int, str], jsonschema.Draft7Validator] = {}
    for entry in answers:
        params = entry["params"]
        site, method = int(params["idSite"]), params["method"]
        metadata = metadata_of(site)
        if (site, method) not in validators:
            schema = report_schema(ReportSpec(default_name(method, {}), method), metadata)
            validators[site, method] = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
        declared = frozenset(metadata.metrics.get(method, {}))
        for index, row in enumerate(rows_of(json.loads((FIXTURES / entry["file"]).read_text())), 1):
            record = map_row(row, declared)
            keys = {"idsite": site, "period": params["period"], "period_start": params["date"], "segment": ""}
            keys["row_index"] = index
            full = {**keys, "params": "", "is_final": True, "fetched_at": "2026-12-03T12:30:00+00:00", **record}
            validators[site, method].validate(full)
            path_keys = [k for k, v in row.items() if k[:1].isupper() and "_" in k and isinstance(v, str)]
            metrics = {k: v for k, v in record.items() if k in declared} | (record["other_metrics"] or {})
            attributes = record["attributes"] or {}
            assert record["label"] == row.get("label", "")
            assert record["label_path"] == ([row[k] for k in path_keys] or ([row["label"]] if row.get("label") else []))
            for key, value in row.items():
                if key == "label" or key in path_keys:
                    continue
                if key == "goals":
                    goals = {goal: {m: expected_value(v) for m, v in ms.items()} for goal, ms in value.items()}
                    assert record["goals"] == goals, (entry["file"], key)
                elif key in metrics:
                    assert metrics[key] == expected_value(value), (entry["file"], key)
                    metrics_compared += 1
                else:
                    assert attributes[key] == value, (entry["file"], key)
            rows_compared += 1
        reports.add(method)
    assert len(answers) >= 400
    assert len(reports) == 34
    assert metrics_compared > 50_000
    print(f"\n{len(answers)} answers of {len(reports)} reports: {rows_compared} rows, {metrics_compared} metrics")


def load(path: str) -> t.Any:
    return json.loads((FIXTURES / path).read_text())


def test_one_row_reports_are_one_object_or_a_list_of_one() -> None:
    flat = load("site1/day-2026-11-24/VisitsSummary.get.json")
    assert isinstance(flat, list)
    assert len(flat) == 1
    assert rows_of(flat) == rows_of(flat[0]) == flat
    assert map_row(flat[0], {"nb_visits"})["label"] == ""
    assert map_row(flat[0], {"nb_visits"})["nb_visits"] == 227


def test_day_answers_mix_strings_and_numbers_records_have_numbers() -> None:
    rows = load("site1/day-2026-11-24/Events.getCategory.json")
    kinds = {type(row["nb_visits"]) for row in rows}
    assert kinds == {int, str}, "the real answer mixes both"
    records = [map_row(row, {"nb_visits", "nb_events"}) for row in rows]
    assert all(isinstance(r["nb_visits"], int) for r in records)
    assert records[0]["label_path"] == ["Forms", "Submit"]
    week = load("site1/week-2026-11-23/Events.getCategory.json")
    assert {type(row["nb_visits"]) for row in week} == {int}


def test_format_metrics_0_gives_rates_as_numbers() -> None:
    summary = load("site1/day-2026-11-24/VisitsSummary.get.json")[0]
    assert summary["bounce_rate"] == 0.26
    assert map_row(summary, {"bounce_rate"})["bounce_rate"] == 0.26


def test_flat_labels_are_paths_and_referrer_types_are_not_expanded() -> None:
    pages = load("site1/day-2026-11-24/Actions.getPageUrls.json")
    assert all(row["label"].startswith("/") for row in pages)
    assert "/" in {row["label"] for row in pages}  # `/index` in the nested form
    types = load("site1/day-2026-11-24/Referrers.getReferrerType.json")
    assert len(types) == 5
    assert all(" - " not in row["label"] for row in types)
    keywords = load("site1/day-2026-11-24/Referrers.getKeywords.json")
    assert all(len(map_row(row, set())["label_path"]) == 2 for row in keywords)


@pytest.mark.parametrize(
    "path",
    [
        "special/site1-day-2026-10-01/before-site-creation/VisitsSummary.get.json",
        "special/site1-day-2026-10-01/before-site-creation/Actions.getPageUrls.json",
        "special/site1-day-2026-12-03/today-unarchived-raw-data-present/VisitsSummary.get.json",
        "special/site1-day-2026-12-03/today-unarchived-raw-data-present/Referrers.getReferrerType.json",
        "special/site1-day-2026-11-25/segment-before-core-archive/VisitsSummary.get.json",
        "special/site1-day-2026-11-25/segment-before-core-archive/DevicesDetection.getType.json",
    ],
)
def test_unarchived_answers_are_empty_never_errors(path: str) -> None:
    """Zeros or [] with HTTP 200: such an answer is never final."""
    assert is_empty(rows_of(load(path)))


def test_archived_answers_are_not_empty() -> None:
    assert not is_empty(rows_of(load("special/site1-day-2026-11-25/segment-after-core-archive/VisitsSummary.get.json")))
    assert not is_empty(rows_of(load("site1/day-2026-11-24/Referrers.getReferrerType.json")))


def test_paging_continues_the_same_rows() -> None:
    every = load("special/site1-day-2026-11-25/Actions.getPageUrls.all-rows.json")
    page = load("special/site1-day-2026-11-25/Actions.getPageUrls.filter_limit-5.filter_offset-5.json")
    assert page == every[5:10]


def test_the_default_set_has_a_schema_from_matomo_5s_metadata() -> None:
    built_in = ReportMetadata.built_in()
    real = metadata_of(3)
    for spec in DEFAULT_REPORTS:
        assert spec.method in built_in.metrics, spec.method
        assert set(report_schema(spec, built_in)["properties"]) == set(report_schema(spec, real)["properties"])
    page_urls = report_schema(next(s for s in DEFAULT_REPORTS if s.name == "report_page_urls"), built_in)
    assert {"nb_hits", "nb_visits", "bounce_rate", "exit_rate"} <= set(page_urls["properties"])


@pytest.mark.parametrize(
    ("period", "day", "start", "end"),
    [
        ("day", "2026-11-25", "2026-11-25", "2026-11-25"),
        ("week", "2026-11-25", "2026-11-23", "2026-11-29"),
        ("month", "2026-11-25", "2026-11-01", "2026-11-30"),
        ("month", "2028-02-10", "2028-02-01", "2028-02-29"),
        ("year", "2026-11-25", "2026-01-01", "2026-12-31"),
    ],
)
def test_periods_in_the_sites_calendar(period: t.Any, day: str, start: str, end: str) -> None:
    assert period_start(period, date.fromisoformat(day)).isoformat() == start
    assert period_end(period, date.fromisoformat(start)).isoformat() == end


def test_closed_and_trailing_periods() -> None:
    window = PeriodWindow("week", date(2026, 12, 3))  # a Thursday
    assert window.current == date(2026, 11, 30)
    assert window.last_closed == date(2026, 11, 23)
    assert window.trailing(2) == [date(2026, 11, 16), date(2026, 11, 23)]
    assert window.closed_since(date(2026, 11, 20)) == [date(2026, 11, 16), date(2026, 11, 23)]
