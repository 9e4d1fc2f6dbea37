"""Fixtures: the real Matomo samples, and a fresh Matomo simulator per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from matomo_simulator import MatomoSimulator, World

from tests.helpers import TOKEN

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO.parent / "shared" / "samples" / "matomo-5.0.2"


def load_sample(name: str) -> object:
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture
def world() -> World:
    """Three days of visits up to a minute ago, on the four built-in sites (UTC, New York, Kolkata, UTC-3)."""
    world = World(seed=7, max_actions_per_visit=40)
    now = datetime.now(UTC)
    world.generate(now - timedelta(days=2, hours=12), now - timedelta(minutes=1), visits_per_day=40)
    return world


@pytest.fixture
def simulator(world: World) -> Iterator[MatomoSimulator]:
    with MatomoSimulator(world, {TOKEN: None, "tok-only-site-1": {1}}) as sim:
        yield sim


@pytest.fixture
def tap_config(simulator: MatomoSimulator) -> dict:
    return {
        "url": simulator.url,
        "token_auth": TOKEN,
        "page_size": 25,
        "retry_backoff_seconds": 0.05,
        "request_timeout": 5,
    }
