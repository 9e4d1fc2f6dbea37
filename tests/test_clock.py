"""The tap reads the time only through tap_matomo.clock, so tests can inject it (here: a day in 2031)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from matomo_simulator import MatomoSimulator, World
from singer_sdk.exceptions import ConfigValidationError
from tap_matomo import clock
from tap_matomo.tap import TapMatomo

from tests.helpers import TOKEN

pytestmark = pytest.mark.unit

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
