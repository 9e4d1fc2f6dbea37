"""The Singer SDK's standard tap tests, against a simulator started for this module."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from matomo_simulator import MatomoSimulator, World
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tap_matomo.tap import TapMatomo

from tests.helpers import TOKEN


def _start_simulator() -> MatomoSimulator:
    world = World(seed=13)
    now = datetime.now(UTC)
    world.generate(now - timedelta(days=1), now - timedelta(minutes=1), visits_per_day=30)
    return MatomoSimulator(world, {TOKEN: None}).start()


SIMULATOR = _start_simulator()

TestTapMatomo = get_tap_test_class(
    TapMatomo,
    config={
        "url": SIMULATOR.url,
        "token_auth": TOKEN,
        "page_size": 20,
        "start_date": (datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
    },
    suite_config=SuiteConfig(max_records_limit=None),
)
