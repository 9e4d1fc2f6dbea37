"""`make dashboards`: Matomo's dashboards in a local Superset, on the demo's warehouse or one's own.

Without PGDATABASE or PGHOST (environment or .env) it reads the database `make demo` filled, its
PostgreSQL in .local/ started again if stopped (left running, as `make psql` leaves it); with them, that
warehouse. Then `meltano invoke dashboards:ui` (dashboards/, docs/dashboards.md) until Ctrl-C or SIGTERM,
which stop every process it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import psycopg
from dotenv import dotenv_values

from devenv.demo import DEMO_DB, ROOT, demo_server, start_demo_server
from devenv.until_stopped import run_until_stopped

#: How long Superset has to stop once asked; then what is left is killed.
STOP_SECONDS = 7


def main() -> int:
    env = {**{k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}, **os.environ}
    if not (env.get("PGDATABASE") or env.get("PGHOST")):
        server = start_demo_server(demo_server())
        server.wait_ready()
        env["PGDATABASE"] = server.url.rsplit("/", 1)[0] + f"/{DEMO_DB}"
        with psycopg.connect(server.url) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DB,)).fetchone()
        if not found:
            print("No demo data yet: run `make demo` first (or set PGDATABASE to your warehouse).", file=sys.stderr)
            return 2
    meltano = shutil.which("meltano", path=str(Path(sys.executable).parent)) or "meltano"
    # Meltano, matomo-superset and Superset's server: a chain in which a signal is not passed on.
    command = [meltano, "invoke", "dashboards:ui"]
    return run_until_stopped(
        command, env=env, cwd=ROOT, name="Superset", stop_signal=signal.SIGTERM, whole_session=True,
        stop_seconds=STOP_SECONDS,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
