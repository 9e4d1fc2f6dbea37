"""`make dashboards`: Matomo's dashboards in a local Superset, on the demo's warehouse or one's own.

Without PGDATABASE or PGHOST (environment or .env) it reads the database `make demo` filled, its
PostgreSQL in .local/ started again if stopped (left running, as `make psql` leaves it); with them, that
warehouse. Then `meltano invoke dashboards:ui` (dashboards/, docs/dashboards.md) until Ctrl-C or SIGTERM,
which stop every process it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
from dotenv import dotenv_values

from devenv.demo import DEMO_DB, ROOT, demo_server

#: How long Superset has to stop once asked; then what is left is killed.
STOP_SECONDS = 10


def main() -> int:
    env = {**{k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}, **os.environ}
    if not (env.get("PGDATABASE") or env.get("PGHOST")):
        server = demo_server().start()
        server.wait_ready()
        env["PGDATABASE"] = server.url.rsplit("/", 1)[0] + f"/{DEMO_DB}"
        with psycopg.connect(server.url) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DB,)).fetchone()
        if not found:
            print("No demo data yet: run `make demo` first (or set PGDATABASE to your warehouse).", file=sys.stderr)
            return 2
    meltano = shutil.which("meltano", path=str(Path(sys.executable).parent)) or "meltano"
    # Meltano, matomo-superset and Superset's server in a session of their own: Ctrl-C, or the SIGTERM make
    # passes on, reaches all of them once; what still runs after STOP_SECONDS is killed.
    process = subprocess.Popen([meltano, "invoke", "dashboards:ui"], env=env, cwd=ROOT, start_new_session=True)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        return process.wait()
    except KeyboardInterrupt:
        print("stopping Superset...", flush=True)
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            print(f"Superset still running after {STOP_SECONDS} s: killed", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the clean-up below is not cut short
        _signal_group(process.pid, signal.SIGKILL)  # what is left of the session


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # none left
        os.killpg(group, signum)


if __name__ == "__main__":
    sys.exit(main())
