"""`make dagster` stops everything it started when asked: what a user's Ctrl-C or a supervisor's SIGTERM does."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
from matomo_simulator import MatomoSimulator

from devenv.net import free_port
from tests.conftest import REPO
from tests.helpers import TOKEN

#: The issue's promise: every process gone within this many seconds of the signal.
STOP_SECONDS = 10


def wait_for_ui(port: int, process: subprocess.Popen[bytes], seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "make dagster ended before its UI answered"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"Dagster's UI did not answer within {seconds} s")


def test_sigterm_to_make_dagster_stops_every_process_it_started(
    simulator: MatomoSimulator, database: str, tmp_path: Path
) -> None:
    """SIGTERM to `make` alone (make passes it on to its command, not to dg dev's own session): the
    webserver, the daemon, the code servers and dg dev are all gone within 10 s. Before, 6 stayed."""
    port = free_port()
    env = {**os.environ, "DAGSTER_PORT": str(port), "MATOMO_URL": simulator.url, "MATOMO_KEY": TOKEN}
    env["PGDATABASE"] = database
    log = (tmp_path / "dagster.log").open("wb")
    make = subprocess.Popen(["make", "--no-print-directory", "dagster"], cwd=REPO, env=env, stdout=log, stderr=log)
    started: list[psutil.Process] = []
    try:
        wait_for_ui(port, make)
        started = psutil.Process(make.pid).children(recursive=True)
        assert any("dagster_webserver" in " ".join(p.cmdline()) for p in started)
        assert any("_daemon" in " ".join(p.cmdline()) for p in started)
        make.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs([psutil.Process(make.pid), *started], timeout=STOP_SECONDS)
        assert not alive, [" ".join(p.cmdline())[:120] for p in alive]
    finally:
        for process in [psutil.Process(make.pid), *started] if make.poll() is None else started:
            if process.is_running():
                process.kill()
        make.wait()
