"""The token is a secret everywhere: never in a URL, stdout, stderr or state."""

from __future__ import annotations

from pathlib import Path

from matomo_simulator import Fault, MatomoSimulator

from tests.helpers import TOKEN, run_tap


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
