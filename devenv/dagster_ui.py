"""`make dagster`: Dagster's UI and daemon on the demo setup: the warehouse's assets, checks and schedules.

Like `make demo`, it starts the Matomo simulator and a local PostgreSQL unless MATOMO_URL or
PGDATABASE/PGHOST say otherwise, then runs `dg dev` (Dagster's command for local development) on
the code location (orchestrate/matomo_orchestrate) with 2 shards by default (MATOMO_SHARDS). Open
the printed URL, materialize the assets (or launch `matomo_hourly`), and follow each shard and model.
Ctrl-C or SIGTERM stops everything it started within 10 seconds. `python -m devenv.check_dagster`
lists, through Dagster's GraphQL API, what the UI shows.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from contextlib import ExitStack
from pathlib import Path

from dotenv import dotenv_values

from devenv.demo import DEMO_TOKEN, LOCAL, ROOT, start_postgres, start_simulator
from devenv.until_stopped import run_until_stopped

DAGSTER_PORT = int(os.environ.get("DAGSTER_PORT", "3000"))
#: How long dg dev has to stop what it started once asked; then its processes are killed.
STOP_SECONDS = 6


def main() -> int:
    env = {**{k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}, **os.environ}
    env.setdefault("MATOMO_SHARDS", "2")
    home = LOCAL / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "orchestrate" / "dagster.yaml", home / "dagster.yaml")
    env["DAGSTER_HOME"] = str(home)
    with ExitStack() as stack:
        if not env.get("MATOMO_URL"):
            env |= {"MATOMO_URL": start_simulator(stack), "MATOMO_KEY": DEMO_TOKEN}
            state = LOCAL / "dagster-meltano.db"  # the simulator's data is new each time: so is the state
            state.unlink(missing_ok=True)
            env["MELTANO_DATABASE_URI"] = f"sqlite:///{state}"
        if not (env.get("PGDATABASE") or env.get("PGHOST")):
            env["PGDATABASE"] = start_postgres(stack)
        dg = str(Path(sys.executable).parent / "dg")
        command = [dg, "dev", "-m", "matomo_orchestrate.definitions", "-h", "127.0.0.1", "-p", str(DAGSTER_PORT)]
        shards = env["MATOMO_SHARDS"]
        print(f"Dagster UI on http://127.0.0.1:{DAGSTER_PORT} ({shards} shards); Ctrl-C stops", flush=True)
        # dg dev stops the webserver, daemon and code servers it started on one SIGINT (a second signal would
        # cut that short).
        return run_until_stopped(
            command, env=env, cwd=ROOT, name="Dagster", stop_signal=signal.SIGINT, whole_session=False,
            stop_seconds=STOP_SECONDS,
        )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
