"""The tap reads the time only through tap_matomo.clock, so tests can inject it (here: a day in 2031), in
process or through MATOMO_NOW, which the simulator reads alike."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from matomo_simulator import MatomoSimulator, World
from matomo_simulator import clock as simulator_clock
from singer_sdk.exceptions import ConfigValidationError
from tap_matomo import clock
from tap_matomo.tap import TapMatomo

from tests.helpers import TOKEN, run_tap

pytestmark = [pytest.mark.unit, pytest.mark.clock]

FAKE_NOW = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)


def test_the_default_window_and_today_follow_the_injected_clock(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(clock, "utc_now", lambda: FAKE_NOW)
    world = World(seed=3)
    world.sites = {1: world.sites[1]}
    inside = world.add_visit(1, int((FAKE_NOW - timedelta(days=2)).timestamp()))
    world.add_visit(1, int((FAKE_NOW - timedelta(days=5)).timestamp()))  # before the default 3-day window
    with MatomoSimulator(world, {TOKEN: None}, now=FAKE_NOW.timestamp) as sim:
        TapMatomo(config={"url": sim.url, "token_auth": TOKEN, "site_ids": [1]}).sync_all()
        days = sorted({r.params["date"] for r in sim.live_requests()})
    assert days == ["2031-03-01", "2031-03-02", "2031-03-03", "2031-03-04"]  # 3 days back to "today"
    out = capsys.readouterr().out
    assert f'"idvisit":{inside.idvisit},' in out
    assert out.count('"type":"RECORD","stream":"visits_actions"') == len(world.returned_actions(inside))


def test_a_start_date_in_the_future_is_judged_by_the_injected_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"url": "https://matomo.example.org", "token_auth": TOKEN, "start_date": "2031-03-01"}
    monkeypatch.setattr(clock, "utc_now", lambda: FAKE_NOW)
    TapMatomo(config=config)  # in the past of the injected clock (in the future of the real one): accepted
    monkeypatch.setattr(clock, "utc_now", lambda: FAKE_NOW - timedelta(days=30))
    with pytest.raises(ConfigValidationError) as caught:
        TapMatomo(config=config)
    assert caught.value.errors == ["start_date: 2031-03-01 is in the future"]


def test_matomo_now_is_read_alike_by_the_tap_and_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.NOW_VARIABLE, FAKE_NOW.isoformat())  # standing still
    assert clock.utc_now() == FAKE_NOW
    assert simulator_clock.now() == FAKE_NOW.timestamp()
    monkeypatch.setenv(clock.NOW_VARIABLE, f"2031-03-04T13:00:00+01:00@{time.time() - 60}")  # running on
    assert 60 <= (clock.utc_now() - FAKE_NOW).total_seconds() < 90
    assert 60 <= simulator_clock.now() - FAKE_NOW.timestamp() < 90
    monkeypatch.setenv(clock.NOW_VARIABLE, "noon")
    with pytest.raises(clock.ClockError, match="MATOMO_NOW: 'noon' is not an ISO 8601 instant"):
        clock.utc_now()


def test_the_tap_cli_and_the_simulator_follow_matomo_now(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As the suite runs at a given hour (MATOMO_TEST_CLOCK): the tap's own process reads MATOMO_NOW."""
    monkeypatch.setenv(clock.NOW_VARIABLE, f"{FAKE_NOW.isoformat()}@{time.time()}")
    world = World(seed=3)
    world.sites = {1: world.sites[1]}
    inside = world.add_visit(1, int((FAKE_NOW - timedelta(days=1)).timestamp()))
    with MatomoSimulator(world, {TOKEN: None}) as sim:
        run = run_tap(tmp_path, {"url": sim.url, "token_auth": TOKEN, "site_ids": [1], "reports": []})
        days = sorted({r.params["date"] for r in sim.live_requests()})
    assert run.returncode == 0, run.stderr[-2000:]
    assert days == ["2031-03-01", "2031-03-02", "2031-03-03", "2031-03-04"]
    assert {r["idvisit"] for r in run.records()} == {inside.idvisit}
