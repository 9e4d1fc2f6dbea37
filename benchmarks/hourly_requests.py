"""Benchmark: what the hourly job asks Matomo for, per site, when nothing new happened.

100 sites (copies of the simulator's four: UTC, Asia/Kolkata, America/New_York, UTC-3), two days of
visits, the default reports. A first run loads them at 22:00 UTC; then one run every hour until 06:00
UTC with no new visit, each site's midnight and the hours after it among them. The tap alone (its
records dropped), its state passed from run to run, its clock set with MATOMO_NOW and the simulator's
with it. The simulator records every request: counted per run, per site and per API method, and the
report requests for a period holding the site's today (with browser archiving, Matomo's default, each
makes Matomo archive today again).

    .venv/bin/python -m benchmarks.hourly_requests [SITES]      # 100 sites by default

Results: docs/benchmarks-requests.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from matomo_simulator import reports
from matomo_simulator.dataset import World
from matomo_simulator.server import MatomoSimulator, RecordedRequest

from benchmarks.common import ROOT, TAP_BIN, TOKEN, machine, write_results

SITES = 100
VISITS_PER_DAY = 12
HOURS = 8
#: Seconds Matomo takes per report answer: requests in flight overlap as on a real server.
REPORT_LATENCY = 0.02
#: Requests about the whole Matomo rather than a site (once per run).
RUN_WIDE = {"SitesManager.getSitesWithAtLeastViewAccess", "API.getReportMetadata", "API.getMatomoVersion"}
NOT_REPORTS = {"Live.getLastVisitsDetails", "Goals.getGoals", "CustomDimensions.getConfiguredCustomDimensions"}


def world_of(sites: int, first: datetime, last: datetime) -> World:
    """`sites` copies of the simulator's built-in sites (as `matomo-simulator --sites 1,...,N`), with visits."""
    world = World(seed=5)
    built_in = list(world.sites.values())
    world.sites = {
        i: replace(built_in[(i - 1) % len(built_in)], idsite=i, name=f"site {i}") for i in range(1, sites + 1)
    }
    world.generate(first, last, VISITS_PER_DAY)
    return world


def run_tap(config: Path, state: dict | None, now: datetime, tmp: Path) -> tuple[dict, int, int]:
    """One run of the tap's CLI at `now`: its last state, and how many STATE messages and bytes it wrote."""
    command = [str(TAP_BIN / "tap-matomo"), "--config", str(config)]
    if state is not None:
        (tmp / "state.json").write_text(json.dumps(state))
        command += ["--state", str(tmp / "state.json")]
    env = {**os.environ, "MATOMO_NOW": now.isoformat()}
    last, states, state_bytes = "", 0, 0
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as tap:
        assert tap.stdout is not None
        assert tap.stderr is not None
        errors = threading.Thread(target=tap.stderr.read)  # drained, not kept
        errors.start()
        for line in tap.stdout:
            if line.startswith(b'{"type":"STATE"'):
                last, states, state_bytes = line.decode(), states + 1, state_bytes + len(line)
        errors.join()
    if tap.returncode:
        msg = f"the tap failed at {now:%H:%M} (exit {tap.returncode})"
        raise RuntimeError(msg)
    return json.loads(last)["value"] if last else {}, states, state_bytes


def asks_for_today(world: World, request: RecordedRequest, now: datetime) -> bool:
    """A report request for a period that holds its site's today."""
    params = request.params
    if params.get("method") in NOT_REPORTS | RUN_WIDE or "period" not in params or "idSite" not in params:
        return False
    site = world.sites[int(params["idSite"])]
    today = now.astimezone(site.tz).date()
    start, end = reports.period_range(params["period"], date.fromisoformat(params["date"]))
    return start <= today <= end


def main() -> int:
    sites = int(sys.argv[1]) if len(sys.argv) > 1 else SITES
    real_now = datetime.now(UTC)
    first_run = datetime.combine(real_now.date() - timedelta(days=2), datetime.min.time(), UTC) + timedelta(hours=22)
    world = world_of(sites, first_run - timedelta(days=2), first_run - timedelta(minutes=30))
    clock = {"now": first_run}
    sim = MatomoSimulator(world, {TOKEN: None}, now=lambda: clock["now"].timestamp()).start()
    sim.report_latency = REPORT_LATENCY
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="tap-matomo-hourly-") as folder:
            tmp = Path(folder)
            config = tmp / "config.json"
            start = (first_run - timedelta(days=2)).date().isoformat()
            config.write_text(json.dumps({"url": sim.url, "token_auth": TOKEN, "start_date": start}))
            state = None
            for hour in range(HOURS + 1):
                now = clock["now"] = first_run + timedelta(hours=hour)
                row, state = _hour(sim, world, config, state, now, sites)
                rows.append(row)
                print(row[:6], row[6].most_common(6), f"{row[7][0]} STATE messages, {row[7][1]:,} bytes", flush=True)
    finally:
        sim.stop()
    write_report(rows, real_now, sites)
    return 0


#: One run: its time, requests (all, a site's most, per site), report requests for today, archive lock waits,
#: requests per method, and (STATE messages, their bytes, seconds).
Row = tuple[datetime, int, int, float, int, int, Counter[str], tuple[int, int, float]]


def _hour(
    sim: MatomoSimulator, world: World, config: Path, state: dict | None, now: datetime, sites: int
) -> tuple[Row, dict]:
    """One hourly run of the tap at `now`, and what it asked Matomo for."""
    before, waits, started = len(sim.requests), len(sim.archive_lock_waits), time.monotonic()
    state, states, state_bytes = run_tap(config, state, now, config.parent)
    seconds = time.monotonic() - started
    sent = sim.requests[before:]
    per_site = Counter(int(r.params["idSite"]) for r in sent if "idSite" in r.params)
    methods = Counter(r.params.get("method", "") for r in sent)
    today = sum(asks_for_today(world, r, now) for r in sent)
    most = max(per_site.values(), default=0)
    row = (now, len(sent), most, per_site.total() / sites, today, len(sim.archive_lock_waits) - waits, methods)
    return (*row, (states, state_bytes, seconds)), state


def write_report(rows: list[Row], real_now: datetime, sites: int) -> None:
    table = [
        "| run (UTC) | requests | per site, most | per site, mean | report requests for today | archive lock"
        " waits | STATE messages (MB) | seconds | top methods |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for now, total, most, mean, today, waits, methods, (states, state_bytes, seconds) in rows:
        top = ", ".join(f"{m} {n}" for m, n in methods.most_common(4))
        table.append(
            f"| {now:%H:%M} | {total:,} | {most} | {mean:.2f} | {today} | {waits} | {states} ({state_bytes / 1e6:.1f})"
            f" | {seconds:.0f} | {top} |"
        )
    hourly = rows[1:]
    body = (
        f"Measured {real_now:%Y-%m-%d %H:%M} UTC on {machine()}; {sites} sites, {VISITS_PER_DAY} visits a day each,"
        f" default reports, Matomo taking {REPORT_LATENCY * 1000:.0f} ms a report answer (requests that need one"
        " archive at once wait for each other: its lock); the first row is the first run, the others hourly"
        " runs with no new visit.\n\n"
        + "\n".join(table)
        + f"\n\nHourly runs: at most {max(r[2] for r in hourly)} requests for a site, "
        f"{sum(r[4] for r in hourly)} report requests for today in {len(hourly)} runs.\n"
    )
    write_results(ROOT / "docs" / "benchmarks-requests.md", body, "Benchmark: what the hourly job asks Matomo for")


if __name__ == "__main__":
    sys.exit(main())
