"""Fixtures: the real Matomo samples, and a fresh Matomo simulator per test."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from matomo_simulator import MatomoSimulator, World

from devenv.net import free_port
from devenv.postgres import LocalPostgres
from tests.helpers import TOKEN
from tests.pipeline import Meltano

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "fixtures" / "matomo-5.0.2"


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
        "retry_backoff_ms": 50,
        "request_timeout": 5,
    }


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL server for the whole session, on 127.0.0.1.

    Its folder is not under pytest's tmp_path: pytest deletes old session folders, and another
    session running meanwhile would pull the data from under the server.
    """
    folder = Path(tempfile.mkdtemp(prefix="tap-matomo-pg-"))
    server = LocalPostgres(folder / "data", free_port()).start()
    server.wait_ready()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def database(postgres: LocalPostgres) -> Iterator[str]:
    """A fresh, empty database; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:{postgres.port}/{name}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def meltano(simulator: MatomoSimulator, database: str, tmp_path: Path) -> Meltano:
    """The project's Meltano, configured only through the Node tool's variables, with its own state."""
    return Meltano(
        {
            "MATOMO_URL": simulator.url,
            "MATOMO_KEY": TOKEN,
            "PGDATABASE": database,
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
            "TAP_MATOMO_RETRY_BACKOFF_MS": "50",
        }
    )
