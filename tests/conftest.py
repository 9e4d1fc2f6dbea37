"""Fixtures: the real Matomo samples, a fresh Matomo simulator per test, a PostgreSQL server per session,
and `LoadedProject`: one job run per module whose database and Meltano state each test gets a copy of."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from matomo_orchestrate.meltano import isolated_sys_dir
from matomo_simulator import MatomoSimulator, World
from psycopg import sql
from tap_matomo import clock

from devenv.net import free_port
from devenv.postgres import LocalPostgres
from tests.helpers import TOKEN
from tests.pipeline import Meltano

#: `MATOMO_TEST_CLOCK=HH:MM` runs the suite as if it were that UTC time of the real day (see pytest_configure).
TEST_CLOCK_VARIABLE = "MATOMO_TEST_CLOCK"


def pytest_configure(config: pytest.Config) -> None:
    """The suite's one clock: with MATOMO_TEST_CLOCK=HH:MM, MATOMO_NOW (tap_matomo/clock.py) is set to that
    UTC time of today, running on from the moment it is set, for this process and all it starts (xdist's
    workers, which inherit it, the tap, Meltano, the simulator). Set before collection, so that module
    constants computed from the time follow it too. Tests read the time through `clock.utc_now()`."""
    wanted = os.environ.get(TEST_CLOCK_VARIABLE, "").strip()
    if not wanted or os.environ.get(clock.NOW_VARIABLE):
        return
    try:
        hour, minute = (int(part) for part in wanted.split(":"))
        instant = clock.utc_now().replace(hour=hour, minute=minute, second=0, microsecond=0)
    except ValueError:
        raise pytest.UsageError(f"{TEST_CLOCK_VARIABLE}: {wanted!r} is not a UTC time as HH:MM") from None
    os.environ[clock.NOW_VARIABLE] = f"{instant.isoformat()}@{time.time()}"


def pytest_report_header(config: pytest.Config) -> str:
    return f"clock: {os.environ.get(clock.NOW_VARIABLE) or 'real time'} ({clock.NOW_VARIABLE})"


REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "fixtures" / "matomo-5.0.2"


def load_sample(name: str) -> object:
    return json.loads((SAMPLES / name).read_text())


def three_day_world() -> World:
    """Three days of visits up to a minute ago, on the four built-in sites (UTC, New York, Kolkata, UTC-3)."""
    world = World(seed=7, max_actions_per_visit=40)
    now = clock.utc_now()
    world.generate(now - timedelta(days=2, hours=12), now - timedelta(minutes=1), visits_per_day=40)
    return world


@pytest.fixture
def world() -> World:
    return three_day_world()


TOKENS: dict[str, set[int] | None] = {TOKEN: None, "tok-only-site-1": {1}}


@pytest.fixture
def simulator(world: World) -> Iterator[MatomoSimulator]:
    with MatomoSimulator(world, TOKENS) as sim:
        yield sim


@pytest.fixture
def tap_config(simulator: MatomoSimulator) -> dict:
    return {
        "url": simulator.url,
        "token_auth": TOKEN,
        "page_size": 25,
        "max_parallel_requests": 4,  # the default, written down: faults and sync run with days in parallel
        "retry_backoff_ms": 50,
        "request_timeout": 5,
        "reports": [],  # the tests of reports ask for them (tests/test_reports.py)
    }


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL server for the whole session, on 127.0.0.1.

    Its folder is not under pytest's tmp_path: pytest deletes old session folders, and another
    session running meanwhile would pull the data from under the server.
    """
    folder = Path(tempfile.mkdtemp(prefix="tap-matomo-pg-"))
    server = LocalPostgres(folder / "data", free_port(), durable=False).start()  # nothing to keep: fsync off
    server.wait_ready()
    yield server
    server.remove()
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def new_database(postgres: LocalPostgres, template: str | None = None) -> Iterator[str]:
    """A database of its own, empty or a copy of `template`; its URL. Dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(create)
    yield f"postgresql://postgres@127.0.0.1:{postgres.port}/{name}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def database(postgres: LocalPostgres) -> Iterator[str]:
    """A fresh, empty database; its URL."""
    with new_database(postgres) as url:
        yield url


def project_meltano(matomo_url: str, database: str, system_db: Path) -> Meltano:
    """The project's Meltano, configured only through the Node tool's variables, with its own state,
    run directory and dbt target (next to `system_db`), so that tests can run in parallel."""
    return Meltano(
        {
            "MATOMO_URL": matomo_url,
            "MATOMO_KEY": TOKEN,
            "PGDATABASE": database,
            "MELTANO_DATABASE_URI": f"sqlite:///{system_db}",
            "MELTANO_SYS_DIR_ROOT": str(isolated_sys_dir(system_db.parent / "meltano-sys", REPO)),
            "DBT_TARGET_PATH": str(system_db.parent / "dbt-target"),  # dbt's compiled files, per test
            "DBT_LOG_PATH": str(system_db.parent / "dbt-logs"),
            "TAP_MATOMO_RETRY_BACKOFF_MS": "50",
            "TAP_MATOMO_REPORTS": "[]",  # the tests of reports ask for them (tests/test_reports.py)
        }
    )


@pytest.fixture
def meltano(simulator: MatomoSimulator, database: str, tmp_path: Path) -> Meltano:
    return project_meltano(simulator.url, database, tmp_path / "meltano.db")


@dataclass(frozen=True)
class LoadedProject:
    """What one run of the job left, to be copied per test: the world served, the database, Meltano's state.

    Loading once per module and copying (CREATE DATABASE ... TEMPLATE, a copy of the system
    database) gives every test that changes data its own warehouse at a fraction of a load's cost.
    """

    world: World
    template: str  # a database name, used only as a template
    system_db: Path

    @classmethod
    def load(cls, postgres: LocalPostgres, folder: Path, world: World, env: dict[str, str], *job: str) -> LoadedProject:
        template = f"tpl_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
        url = f"postgresql://postgres@127.0.0.1:{postgres.port}/{template}"
        with MatomoSimulator(world.clone(), TOKENS) as sim:
            meltano = project_meltano(sim.url, url, folder / "meltano.db")
            meltano.env |= env
            done = meltano.run(*job)
        assert done.returncode == 0, done.stderr[-3000:]
        return cls(world, template, folder / "meltano.db")

    def copy_state_to(self, system_db: Path) -> None:
        shutil.copyfile(self.system_db, system_db)
