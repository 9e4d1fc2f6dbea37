"""The token is a secret everywhere: never in a URL, stdout, stderr or state."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from matomo_simulator import Fault, MatomoSimulator
from tap_matomo.tap import TapMatomo

from tests.helpers import TOKEN, run_tap

pytestmark = pytest.mark.unit


def test_token_only_in_post_bodies_never_in_output(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    simulator.inject(Fault("status", times=1, status=500))
    simulator.inject(Fault("query_timeout", times=1))
    run = run_tap(tmp_path, tap_config)
    assert run.returncode == 0
    assert len(simulator.requests) > 10
    assert all(r.http_method == "POST" and r.token_in_body for r in simulator.requests)
    assert not any(TOKEN in r.raw_url for r in simulator.requests)
    assert not simulator.token_in_url
    assert TOKEN not in run.stdout  # records and state
    assert TOKEN not in run.stderr  # logs, metrics and retry messages


def test_token_not_echoed_when_the_run_fails(simulator: MatomoSimulator, tap_config: dict, tmp_path: Path) -> None:
    simulator.inject(Fault("status", times=99, status=500))
    run = run_tap(tmp_path, {**tap_config, "max_retries": 1})
    assert run.returncode != 0
    assert TOKEN not in run.stdout + run.stderr
    assert (tmp_path / "config.json").read_text().count(TOKEN) == 1  # the test did pass it


def test_a_body_that_quotes_the_request_is_shown_without_the_token(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path
) -> None:
    simulator.inject(Fault("echo", times=99, status=502))
    run = run_tap(tmp_path, {**tap_config, "max_retries": 1})
    assert run.returncode != 0
    assert "Bad gateway" in run.stderr
    assert TOKEN not in run.stdout + run.stderr
    assert "'token_auth': '***'" in run.stderr


def test_user_info_in_the_url_is_never_printed(tmp_path: Path) -> None:
    run = run_tap(tmp_path, {"url": "http://matomo:pa55word@127.0.0.1:9", "token_auth": TOKEN, "max_retries": 0})
    assert run.returncode != 0
    assert "cannot reach Matomo at http://127.0.0.1:9" in run.stderr
    assert "pa55word" not in run.stdout + run.stderr


def test_plain_http_to_another_machine_warns_loopback_does_not(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        TapMatomo(config={"url": "http://matomo.example.org", "token_auth": TOKEN})
        TapMatomo(config={"url": "https://matomo.example.org", "token_auth": TOKEN})
        TapMatomo(config={"url": "http://127.0.0.1:8765", "token_auth": TOKEN})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "url: http://matomo.example.org is plain http://: token_auth crosses the network unencrypted; use https://"
    ]
