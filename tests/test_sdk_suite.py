"""The Singer SDK's standard tap tests, against a simulator that runs while this module's tests run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from matomo_simulator import MatomoSimulator, World
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tap_matomo.tap import TapMatomo

from devenv.net import free_port
from tests.helpers import TOKEN

# The SDK builds its test class from a config at import time; the server itself starts only
# when the module's tests run (fixture below), on a port chosen now.
PORT = free_port()
NOW = datetime.now(UTC)


@pytest.fixture(scope="module", autouse=True)
def simulator() -> Iterator[MatomoSimulator]:
    world = World(seed=13)
    world.generate(NOW - timedelta(days=1), NOW - timedelta(minutes=1), visits_per_day=30)
    with MatomoSimulator(world, {TOKEN: None}, port=PORT) as sim:
        yield sim


CONFIG = {
    "url": f"http://127.0.0.1:{PORT}",
    "token_auth": TOKEN,
    "page_size": 20,
    "start_date": (NOW - timedelta(days=1)).date().isoformat(),
}

TestTapMatomo = get_tap_test_class(
    TapMatomo,
    config=CONFIG,
    # reconciled_days reports whole days listed by a reconcile run only (below).
    suite_config=SuiteConfig(max_records_limit=None, ignore_no_records_for_streams=["reconciled_days"]),
)

TestTapMatomoReconcile = get_tap_test_class(
    TapMatomo,
    config={**CONFIG, "mode": "reconcile", "reconcile_days": 1},
    suite_config=SuiteConfig(max_records_limit=None),
)
