"""What a shard step reads from its Meltano run's JSON log, and what it shows of it (run_report.py), and
the rows a dbt model's statement affected (dbt_models.rows_affected)."""

from __future__ import annotations

import json
import typing as t

import pytest
from matomo_orchestrate.dbt_models import rows_affected
from matomo_orchestrate.run_report import RunReport

pytestmark = pytest.mark.unit


def log_line(plugin: str | None, event: str, **fields: t.Any) -> str:
    """One line of `meltano --log-format=json` (the fields Meltano 4.4 writes, a few of them)."""
    entry = {"event": event, "level": "info", "timestamp": "2026-12-03T16:59:05.402507Z", **fields}
    if plugin:
        entry |= {"string_id": plugin, "cmd_type": "elb", "job_name": "dev:tap-matomo-to-target-postgres"}
    return json.dumps(entry) + "\n"


def metric(plugin: str, name: str, value: int, stream: str | None = None, site: int = 1, **extra: str) -> str:
    tags = {"stream": stream, "context": {"idsite": site}, **extra} if stream else {}
    info = {"type": "counter", "metric": name, "value": value, "tags": tags}
    return log_line(plugin, "METRIC", metric_info=info, plugin_logger="singer_sdk.metrics")


def test_the_taps_counts_per_stream_and_site_not_the_loaders() -> None:
    report = RunReport()
    lines = [
        log_line(None, "Running job with name 'dev:tap-matomo-to-target-postgres'"),
        log_line("tap-matomo", "site 1 2026-12-02: 11 visits, 45 actions emitted"),  # wording: not read
        metric("tap-matomo", "http_request_count", 3),
        metric("tap-matomo", "http_request_count", 2),
        metric("tap-matomo", "record_count", 83, "visits_actions"),
        metric("tap-matomo", "record_count", 2, "visits_actions", site=2),
        metric("tap-matomo", "record_count", 20, "visits_actions", count_of="visits"),
        metric("tap-matomo", "record_count", 1, "visits_actions", site=2, count_of="visits"),
        metric("tap-matomo", "record_count", 2, "sites"),
        metric("target-postgres", "record_count", 87, "visits_actions"),
    ]
    shown = [report.feed(line) for line in lines]
    assert report.to_message() == {
        "records": {"visits_actions": 85, "sites": 2},
        "requests": 5,
        "visits": {"1": 20, "2": 1},
        "actions": {"1": 83, "2": 2},
    }
    assert report.last_error == ""
    # Shown as Meltano's console shows it, a metric with its stream; no JSON in the step's logs.
    assert shown[1] == "2026-12-03T16:59:05.402507Z [info] tap-matomo site 1 2026-12-02: 11 visits, 45 actions emitted"
    assert shown[4].endswith("tap-matomo METRIC record_count=83 stream=visits_actions")
    assert shown[0].startswith("2026-12-03T16:59:05.402507Z [info] meltano Running job")


def test_the_last_error_line_is_kept_with_its_fields_and_other_lines_pass_as_they_are() -> None:
    report = RunReport()
    report.feed(log_line("tap-matomo", "tap-matomo failed: Matomo refused token_auth for site 3"))
    report.feed("Traceback (most recent call last):\n")  # not an error line by itself
    assert report.last_error.endswith("tap-matomo tap-matomo failed: Matomo refused token_auth for site 3")
    report = RunReport()
    report.feed("a plugin's own print\n")
    shown = report.feed(log_line(None, "Block run failed", level="error", exit_code=1, err="Extractor failed"))
    assert report.last_error == shown == report.error
    for part in ("Block run failed", "exit_code=1", "err=Extractor failed"):
        assert part in shown


@pytest.mark.parametrize(
    ("status", "rows"),
    [
        *[("INSERT 0 1059", 1059), ("UPDATE 3", 3), ("DELETE 0", 0), ("MERGE 12", 12), ("SELECT 40", 40)],
        *[("CREATE VIEW", None), ("OK", None), ("", None), ("INSERT 0", None)],
    ],
)
def test_rows_affected_from_a_models_status(status: str, rows: int | None) -> None:
    assert rows_affected(status) == rows


def test_the_plugins_own_error_is_the_one_said_not_meltanos_summary() -> None:
    report = RunReport()
    report.feed(log_line("tap-matomo", "Giving up send_page(...) after 6 tries", level="error"))
    said = report.feed(
        log_line(
            "tap-matomo", "tap-matomo failed: Matomo Live.getLastVisitsDetails for site 4: HTTP 503", level="error"
        )
    )
    report.feed(log_line(None, "Block run completed", level="error", success=False, err="Extractor failed"))
    assert report.error == said
    assert "Block run completed" in report.last_error
