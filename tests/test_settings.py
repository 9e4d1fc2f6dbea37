"""Bad settings: one clear line naming the setting, exit != 0, and no request sent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from matomo_simulator import MatomoSimulator
from tap_matomo import settings

from tests.helpers import TAP, TOKEN, run_tap

pytestmark = pytest.mark.unit

BAD = [
    ({"url": None}, "url"),
    ({"url": "matomo.example.org"}, "url: 'matomo.example.org' must start with https:// (or http://)"),
    ({"url": "ftp://matomo.example.org"}, "must start with https:// (or http://)"),
    ({"url": "https://matomo.example.org/?token_auth=x"}, "url: must not carry token_auth"),
    ({"token_auth": None}, "token_auth"),
    ({"token_auth": ""}, "'' should be non-empty in config['token_auth']"),
    ({"page_size": 0}, "0 is less than the minimum of 1 in config['page_size']"),
    ({"request_timeout": 0}, "0 is less than the minimum of 1 in config['request_timeout']"),
    ({"site_ids": ["abc"]}, "site_ids"),
    ({"site_ids": [1.5]}, "site_ids"),
    ({"site_ids": "1,x"}, "site_ids: '1,x' is not a site id"),
    ({"site_ids": "0"}, "site_ids: '0' is not a site id"),
    ({"start_date": "2026-11-20", "end_date": "2026-11-10"}, "end_date: 2026-11-10 is before start_date 2026-11-20"),
    ({"start_date": "yesterday-ish"}, "start_date: 'yesterday-ish' is not a date"),
    ({"start_date": "2999-01-01"}, "start_date: 2999-01-01 is in the future"),
    ({"lookback_minutes": -1}, "-1 is less than the minimum of 0 in config['lookback_minutes']"),
    ({"max_parallel_requests": 0}, "0 is less than the minimum of 1 in config['max_parallel_requests']"),
    ({"mode": "full"}, "'full' is not one of ['incremental', 'reconcile']"),
    ({"reconcile_end_date": "2026-11-10"}, "reconcile_end_date: set reconcile_start_date too"),
    (
        {"reconcile_start_date": "2026-11-20", "reconcile_end_date": "2026-11-10"},
        "reconcile_end_date: 2026-11-10 is before reconcile_start_date 2026-11-20",
    ),
    ({"batch_config": {"encoding": {"format": "csv"}}}, "'csv' is not one of ['jsonl', 'parquet', 'jsonl-plain']"),
    ({"reports": [{"method": "Nope"}]}, "reports[0]: method 'Nope' is not a Reporting API method"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_setting_fails_before_any_request(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path, change: dict, message: str
) -> None:
    config = {k: v for k, v in {**tap_config, **change}.items() if v is not None}
    run = run_tap(tmp_path, config)
    assert run.returncode != 0
    assert any(message in line for line in run.error_lines()), run.stderr[-2000:]
    assert "Traceback" not in run.stderr, run.stderr[-2000:]  # one line per problem, as the SDK's own checks
    assert simulator.requests == []
    assert TOKEN not in run.stderr


def test_discovery_with_a_bad_reports_entry_lists_no_report_and_leaves_the_error_to_the_sync(
    tap_config: dict, tmp_path: Path
) -> None:
    """Meltano discovers before it syncs and prints a failed discovery's output a second time, raw: discovery
    (which validates nothing) lists the streams without reports, and the sync fails with the one line above."""
    run = run_tap(tmp_path, {**tap_config, "reports": [{"method": "Nope"}]}, None, "--discover")
    assert run.returncode == 0, run.stderr[-2000:]
    streams = {entry["tap_stream_id"] for entry in json.loads(run.stdout)["streams"]}
    assert "visits_actions" in streams
    assert not [name for name in streams if name.startswith("report_")]


def test_about_lists_every_setting_and_hides_nothing_secret() -> None:
    about = subprocess.run([TAP, "--about", "--format=markdown"], capture_output=True, text=True, check=True).stdout
    for name in (
        "url",
        "token_auth",
        "site_ids",
        "start_date",
        "end_date",
        "page_size",
        "lookback_minutes",
        "request_timeout",
        "max_parallel_requests",
        "max_requests_per_minute",
        "mode",
        "reconcile_days",
        "reconcile_start_date",
        "reconcile_end_date",
        "include_visitor_ip",
        "batch_config",
    ):
        assert f"| {name} |" in about
    about_json = json.loads(
        subprocess.run([TAP, "--about", "--format=json"], capture_output=True, text=True, check=True).stdout
    )
    assert about_json["settings"]["properties"]["token_auth"]["secret"] is True
    assert about_json["settings"]["properties"]["token_auth"]["writeOnly"] is True


def test_discover_shows_the_key_and_replication_key(tmp_path: Path, tap_config: dict) -> None:
    run = run_tap(tmp_path, tap_config, None, "--discover")
    catalog = json.loads(run.stdout)
    entry = next(s for s in catalog["streams"] if s["tap_stream_id"] == "visits_actions")
    assert entry["key_properties"] == ["action_id"]
    assert entry["replication_key"] == "action_timestamp"
    assert entry["replication_method"] == "INCREMENTAL"
    assert {s["tap_stream_id"] for s in catalog["streams"]} == {
        "sites",
        "visits_actions",
        "visits_summary",
        "custom_dimensions",
        "goals",
    }
    # Whole days listed are reported in reconcile mode only: an incremental run makes no empty table.
    reconcile = run_tap(tmp_path, {**tap_config, "mode": "reconcile"}, None, "--discover")
    assert "reconciled_days" in {s["tap_stream_id"] for s in json.loads(reconcile.stdout)["streams"]}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "ids"), [("[]", []), ("[ ]", []), ("", []), (None, []), ("[1, 3]", [1, 3]), (3, [3])]
)
def test_site_ids_empty_in_every_form_means_every_site(value: object, ids: list[int]) -> None:
    assert settings.site_ids({"site_ids": value}) == ids
