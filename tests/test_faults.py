"""Faults from Matomo: retried with backoff and then loaded in full, or failing with one clear message."""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from matomo_simulator import Fault, MatomoSimulator
from tap_matomo import clock
from tap_matomo.answers import retry_after

from tests.helpers import TOKEN, run_tap

TRANSIENT = [
    Fault("status", times=2, status=500),
    Fault("status", times=2, status=503),
    Fault("rate_limit", times=1, retry_after=1),
    Fault("slow", times=2, delay=2.5),
    Fault("reset", times=2),
    Fault("truncated", times=2),
    Fault("empty", times=2),
    Fault("query_timeout", times=2),
    Fault("status", times=1, status=502, method="SitesManager.getSitesWithAtLeastViewAccess"),
]


@pytest.mark.parametrize("fault", TRANSIENT, ids=lambda f: f"{f.kind}-{f.status}-{f.method}")
def test_transient_faults_are_retried_and_nothing_is_lost(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path, fault: Fault
) -> None:
    simulator.inject(fault)
    started = time.monotonic()
    run = run_tap(tmp_path, {**tap_config, "site_ids": [3], "request_timeout": 1})
    assert run.returncode == 0, run.stderr[-3000:]
    assert simulator.faults == [], "the fault was never served"
    if fault.kind == "query_timeout":  # answered at once with a smaller page, not by waiting
        assert "asking for 12 visits per page instead of 25" in run.stderr
    else:
        assert "Retrying in" in run.stderr
    assert {r["action_id"] for r in run.records()} == set(simulator.world.truth(3))
    if fault.kind == "rate_limit":
        assert time.monotonic() - started >= fault.retry_after  # Retry-After was honoured
    if fault.kind == "query_timeout":  # smaller pages after "Could not run the query in time"
        requests = [(r.params["date"], int(r.params["filter_limit"])) for r in simulator.live_requests()]
        by_day = {day: [limit for d, limit in requests if d == day] for day, _ in requests}
        assert any(12 in limits for limits in by_day.values())
        for day, limits in by_day.items():  # days are read in parallel; each day's size never grows back
            assert limits == sorted(limits, reverse=True), (day, limits)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault("status", times=99, status=500), "HTTP 500"),
        (Fault("query_timeout", times=99), "Could not run the query in time"),
        (Fault("html", times=99), "body is not JSON"),
        (Fault("envelope", times=99, message="Visitor log is disabled (mysql error)"), "Visitor log is disabled"),
    ],
    ids=["500", "query-timeout", "html", "error-envelope"],
)
def test_persistent_faults_fail_with_one_clear_message(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path, fault: Fault, expected: str
) -> None:
    simulator.inject(fault)
    run = run_tap(tmp_path, {**tap_config, "site_ids": [3], "max_retries": 2})
    assert run.returncode != 0
    errors = run.error_lines()
    assert any(expected in line and "site 3" in line for line in errors), run.stderr[-3000:]
    assert 3 not in {k for k, v in run.bookmarks().items() if v}, "no bookmark may advance for the failed site"


def test_wrong_token_names_token_auth_never_the_token(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    wrong = "not-the-right-token-77x"
    run = run_tap(tmp_path, {**tap_config, "token_auth": wrong})
    assert run.returncode != 0
    assert any("token_auth" in line and "Unable to authenticate" in line for line in run.error_lines()), run.stderr
    assert wrong not in run.stderr + run.stdout
    assert len(simulator.requests) == 1  # auth errors are not retried


@pytest.mark.parametrize("site", [2, 99])
def test_site_without_access_or_unknown(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path, site: int
) -> None:
    run = run_tap(tmp_path, {**tap_config, "token_auth": "tok-only-site-1", "site_ids": [1, site]})
    assert run.returncode != 0
    assert any(
        f"site_ids: site {site} is unknown or token_auth has no view access" in line for line in run.error_lines()
    )
    assert run.records() == []
    assert simulator.live_requests() == []


def test_bad_token_answered_with_status_200_like_matomo_4(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    message = "Unable to authenticate with the provided token. It is either invalid or expired."
    simulator.inject(Fault("envelope", times=99, method=None, status=200, message=message))
    run = run_tap(tmp_path, tap_config)
    assert run.returncode != 0
    assert any("Matomo rejected token_auth (HTTP 200)" in line for line in run.error_lines()), run.stderr[-2000:]
    assert len(simulator.requests) == 1


def test_access_revoked_mid_run_names_the_site(simulator: MatomoSimulator, tap_config: dict, tmp_path: Path) -> None:
    simulator.inject(
        Fault(
            "envelope",
            status=401,
            message="You can't access this resource as it requires 'view' access for the website id = 3.",
        )
    )
    run = run_tap(tmp_path, {**tap_config, "site_ids": [3]})
    assert run.returncode != 0
    assert any("site 3" in line and "token_auth" in line for line in run.error_lines()), run.stderr[-2000:]


def test_unreachable_url_fails_after_retries(tmp_path: Path) -> None:
    run = run_tap(
        tmp_path, {"url": "http://127.0.0.1:9", "token_auth": TOKEN, "max_retries": 1, "retry_backoff_ms": 50}
    )
    assert run.returncode != 0
    assert any("Connection" in line or "connect" in line for line in run.error_lines()), run.stderr[-2000:]


@pytest.mark.unit
def test_retry_after_is_read_in_seconds_and_as_an_http_date() -> None:
    now = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert retry_after("7", now) == 7.0
    assert retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0  # already past
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


def test_every_attempt_keeps_the_rate_limit_and_retry_after_is_obeyed_in_both_forms_up_to_its_cap(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    """429s under 4 parallel requests: the retries go through the limiter like any request, so the server
    never sees two requests closer than 60 / max_requests_per_minute seconds; a Retry-After an hour away
    waits only max_retry_after_seconds."""
    per_minute = 150  # a request every 0.4 s
    in_an_hour = format_datetime(clock.utc_now() + timedelta(hours=1), usegmt=True)
    simulator.inject(Fault("rate_limit", times=3, retry_after=1))
    simulator.inject(Fault("rate_limit", times=2, retry_after=in_an_hour))
    started = time.monotonic()
    config = {**tap_config, "site_ids": [3], "max_requests_per_minute": per_minute, "max_retry_after_seconds": 2}
    run = run_tap(tmp_path, config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert simulator.faults == [], "the faults were never served"
    assert time.monotonic() - started < 120  # the hour-long Retry-After was capped
    assert "Retrying in 2." in run.stderr  # the cap, plus jitter
    assert {r["action_id"] for r in run.records()} == set(simulator.world.truth(3))
    arrivals = sorted(r.at for r in simulator.requests)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(arrivals) >= 10
    assert min(gaps) >= 60 / per_minute - 0.05, sorted(gaps)[:5]


@pytest.mark.parametrize("method", ["Live.getLastVisitsDetails", "Referrers.getReferrerType"])
def test_a_live_page_and_a_report_request_are_retried_limited_and_measured_alike(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path, method: str
) -> None:
    """One request path (client.MatomoStream.send) for the raw log's pages and the reports' periods: the same
    faults get the same retries (503s with backoff, a 429's Retry-After), every attempt keeps the run's rate
    limit, and each attempt is timed in the SDK's http_request_duration, failed ones as failed."""
    per_minute = 600  # a request every 0.1 s
    simulator.inject(Fault("status", times=2, status=503, method=method))
    simulator.inject(Fault("rate_limit", times=1, retry_after=1, method=method))
    reports = [{"method": "Referrers.getReferrerType", "periods": ["day"]}]
    config = {**tap_config, "site_ids": [3], "max_requests_per_minute": per_minute, "log_metrics": True}
    run = run_tap(tmp_path, {**config, "reports": reports, "max_parallel_requests": 1})  # one request takes them all
    assert run.returncode == 0, run.stderr[-3000:]
    assert simulator.faults == [], "the faults were never served"
    retries = [line for line in run.stderr.splitlines() if "Retrying in" in line and f"Matomo {method} " in line]
    assert [re.findall(r"\(try (\d) of 6\)", line) for line in retries] == [["1"], ["2"], ["3"]], retries
    assert ["HTTP 503" in line for line in retries] == [True, True, False], retries
    assert "HTTP 429" in retries[2], retries
    assert "Retrying in 1." in retries[2], retries  # the Retry-After, plus jitter
    arrivals = sorted(r.at for r in simulator.requests)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 60 / per_minute - 0.02, sorted(gaps)[:5]
    timers = run.metrics("http_request_duration")
    failed = [p["tags"]["http_status_code"] for p in timers if p["tags"]["status"] == "failed"]
    assert sorted(failed) == [429, 503, 503], failed
    assert {r["action_id"] for r in run.records() if "action_id" in r} == set(simulator.world.truth(3))
