"""Benchmark: the tap's peak memory reading a year of the default reports against reading a month.

Report requests are sent as the reader takes answers (tap_matomo/reports/plan.py), so memory should hold
about `max_parallel_requests` answers, whatever the number of periods: the goal is a year's peak within
1.2x a month's. The tap alone (stdout to /dev/null) against an in-process simulator answering at once, one
UTC site with one visit a day (the answers' size is not what is measured), the default 31 reports, no raw
log beyond one day. Peak RSS from the kernel's accounting of the tap's process (`ru_maxrss`).

    .venv/bin/python -m benchmarks.report_memory       # about 3 minutes
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from matomo_simulator import MatomoSimulator, World
from tap_matomo import clock

from benchmarks.common import TAP_BIN, TOKEN, machine

#: Runs a command and prints its exit code and the peak RSS (KiB) of its process.
_PEAK = (
    "import resource, subprocess, sys; "
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_mib(config: dict, folder: Path) -> tuple[float, float]:
    """The tap's peak RSS in MiB and its wall time in seconds for one run with `config`."""
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(TAP_BIN / "tap-matomo"), "--config", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    code, kib = done.stdout.split()
    if code != "0":
        msg = f"the tap failed (exit {code})"
        raise RuntimeError(msg)
    return int(kib) / 1024, time.monotonic() - started


def main() -> int:
    world = World(seed=43, max_actions_per_visit=8)
    world.sites = {1: world.sites[1]}
    now = clock.utc_now()
    world.generate(now - timedelta(days=370), now - timedelta(minutes=1), visits_per_day=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, MatomoSimulator(world, {TOKEN: None}) as sim:
        for days in (31, 365):
            start = (now - timedelta(days=days)).date().isoformat()
            config = {"url": sim.url, "token_auth": TOKEN, "site_ids": [1], "start_date": start, "end_date": start}
            before = len(sim.requests)
            mib, seconds = peak_mib(config, Path(tmp))
            rows.append((days, len(sim.requests) - before, mib, seconds))
    month = rows[0][2]
    print(f"Machine: {machine()}")
    print("| periods from | requests | tap peak RSS MiB | of a month | wall s |")
    print("|---|---:|---:|---:|---:|")
    for days, requests, mib, seconds in rows:
        print(f"| {days} days back | {requests:,} | {mib:.1f} | {mib / month:.2f}x | {seconds:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
