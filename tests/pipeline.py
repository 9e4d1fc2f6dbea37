"""Running the real Meltano project (meltano.yml) and reading what landed in PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from matomo_orchestrate.state_moves import visit_bookmarks
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
MELTANO = str(Path(sys.executable).parent / "meltano")
STATE_ID = "dev:tap-matomo-to-target-postgres"
#: The project's loader, as `meltano install` put it in its plugin venv.
LOADER = str(ROOT / ".meltano/loaders/target-postgres/venv/bin/target-postgres-matomo")


@dataclass
class Meltano:
    """The project's Meltano with its own system database and a given environment."""

    env: dict[str, str]

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [MELTANO, *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [MELTANO, *args],
            cwd=ROOT,
            env={**os.environ, **self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def state(self) -> dict:
        done = self.run("state", "get", STATE_ID)
        if done.returncode != 0 or not done.stdout.strip():
            return {}
        return json.loads(done.stdout)

    def bookmarks(self) -> dict[int, str]:
        return visit_bookmarks(self.state())


def small_batches(folder: Path, rows: int) -> dict[str, str]:
    """Environment for BATCH files of `rows` records (the project's default is 10,000), so a run commits often."""
    config = {"encoding": {"format": "jsonl-plain"}, "storage": {"root": folder.as_uri()}, "batch_size": rows}
    return {"TAP_MATOMO_BATCH_CONFIG": json.dumps(config)}


def query(database: str, statement: str | sql.Composable, *params: object) -> list[tuple]:
    """The rows of one statement on a test database."""
    with psycopg.connect(database) as conn:
        return conn.execute(statement, params).fetchall()


def raw_actions(database_url: str) -> list[tuple]:
    """(action_id, idvisit, actions, visitduration) of every raw row."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT action_id, idvisit, actions, visitduration FROM matomo_raw.visits_actions"
        ).fetchall()
