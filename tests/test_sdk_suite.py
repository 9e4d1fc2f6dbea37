"""The Singer SDK's standard tap tests, against a simulator that runs while this module's tests run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from matomo_simulator import MatomoSimulator, World
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tap_matomo import clock
from tap_matomo.tap import TapMatomo

from tests.helpers import TOKEN

pytestmark = pytest.mark.unit

# The SDK builds its test class from a config at import time: the simulator's socket is bound now (its
# port is taken, nobody else can have it), and it serves only while this module's tests run (fixture below).
NOW = clock.utc_now()
WORLD = World(seed=13)
WORLD.generate(NOW - timedelta(days=1), NOW - timedelta(minutes=1), visits_per_day=30)
SIMULATOR = MatomoSimulator(WORLD, {TOKEN: None})


@pytest.fixture(scope="module", autouse=True)
def simulator() -> Iterator[MatomoSimulator]:
    with SIMULATOR as sim:
        yield sim


CONFIG = {
    "url": SIMULATOR.url,
    "token_auth": TOKEN,
    "page_size": 20,
    "start_date": (NOW - timedelta(days=1)).date().isoformat(),
}

TestTapMatomo = get_tap_test_class(
    TapMatomo,
    config=CONFIG,
    suite_config=SuiteConfig(max_records_limit=None),
)

TestTapMatomoReconcile = get_tap_test_class(
    TapMatomo,
    config={**CONFIG, "mode": "reconcile", "reconcile_days": 1},
    suite_config=SuiteConfig(max_records_limit=None),
)
