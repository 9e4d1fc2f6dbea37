"""Benchmark: a year of the default reports for one site, and what an hourly run adds once it is loaded.

The tap alone (its records counted, then dropped), only its report streams selected, against the simulator
in its own process answering every Reporting API request in 300 ms (a bulk request in 300 ms too: the
simulator's model, see docs/benchmarks-reports.md). Requests come from the tap's own metrics.

    .venv/bin/python -m benchmarks.reports            # about 25 minutes
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import ROOT, TAP_BIN, TOKEN, Simulator, machine, write_results

METRIC = re.compile(r'METRIC: (\{.*"metric":\s*"http_request_count".*\})')
LATENCY_MS = 300
YEAR, MONTH = 365, 31
REPORT_STATE_PREFIX = "report_"


def catalog_of_reports(config: Path, tmp: Path) -> Path:
    """The tap's catalog with only its report streams (and their parent, `sites`) selected."""
    found = subprocess.run(
        [str(TAP_BIN / "tap-matomo"), "--config", str(config), "--discover"], capture_output=True, text=True, check=True
    )
    catalog = json.loads(found.stdout)
    for stream in catalog["streams"]:
        wanted = stream["tap_stream_id"].startswith(REPORT_STATE_PREFIX) or stream["tap_stream_id"] == "sites"
        for entry in stream["metadata"]:
            if not entry["breadcrumb"]:
                entry["metadata"]["selected"] = wanted
    path = tmp / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def sync(config: Path, catalog: Path, state: dict | None, tmp: Path) -> tuple[float, int, int, dict]:
    """(seconds, report requests, report rows, final state) of one run."""
    command = [str(TAP_BIN / "tap-matomo"), "--config", str(config), "--catalog", str(catalog)]
    if state is not None:
        (tmp / "state.json").write_text(json.dumps(state))
        command += ["--state", str(tmp / "state.json")]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.monotonic() - started
    requests = rows = 0
    last_state: dict = {}
    for line in done.stderr.splitlines():
        found = METRIC.search(line)
        if found:
            metric = json.loads(found[1])
            if metric["tags"]["stream"].startswith(REPORT_STATE_PREFIX):
                requests += int(metric["value"])
    for line in done.stdout.splitlines():
        message = json.loads(line)
        if (
            message["type"] == "RECORD"
            and message["stream"].startswith(REPORT_STATE_PREFIX)
            and message["stream"] != "report_fetches"
        ):
            rows += 1
        elif message["type"] == "STATE":
            last_state = message["value"]
    return seconds, requests, rows, last_state


def a_day_earlier(state: dict) -> dict:
    """The state as the previous site-local day left it: the trailing windows are due again."""
    moved = json.loads(json.dumps(state))
    for stream, bookmark in moved["bookmarks"].items():
        for partition in bookmark.get("partitions", []) if stream.startswith(REPORT_STATE_PREFIX) else []:
            for period in partition.get("periods", {}).values():
                day = datetime.fromisoformat(period["refreshed_on"]).date() - timedelta(days=1)
                period["refreshed_on"] = day.isoformat()
    return moved


def main() -> int:
    sim = Simulator(YEAR + 2, 60, seed=17, report_latency_ms=LATENCY_MS)
    lines = []
    try:
        with tempfile.TemporaryDirectory(prefix="tap-matomo-reports-") as folder:
            tmp = Path(folder)
            for days, parallel, bulk in ((YEAR, 4, 31), (YEAR, 1, 31), (YEAR, 4, 1), (MONTH, 1, 1), (MONTH, 4, 1)):
                start = (datetime.now(UTC) - timedelta(days=days)).date().isoformat()
                config = tmp / f"config-{days}-{parallel}-{bulk}.json"
                settings = {"url": sim.url, "token_auth": TOKEN, "start_date": start, "max_parallel_requests": parallel}
                settings["log_metrics"] = True  # the request counts come from the METRIC lines
                config.write_text(json.dumps(settings | {"report_bulk_size": bulk}))
                catalog = catalog_of_reports(config, tmp)
                seconds, requests, rows, state = sync(config, catalog, None, tmp)
                lines.append((f"{days} days", parallel, bulk, requests, rows, seconds))
                print(lines[-1], flush=True)
                if (days, parallel, bulk) == (YEAR, 4, 31):
                    again = sync(config, catalog, state, tmp)
                    next_day = sync(config, catalog, a_day_earlier(state), tmp)
                    hourly = [
                        ("the same day, again", *again[1:3], again[0]),
                        ("the next day", *next_day[1:3], next_day[0]),
                    ]
                    print(hourly, flush=True)
    finally:
        sim.stop()
    table = [
        "| window | max_parallel_requests | report_bulk_size | requests | rows | wall s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    table += [f"| {w} | {p} | {b} | {r:,} | {n:,} | {s:.1f} |" for w, p, b, r, n, s in lines]
    hourly_table = ["| a run once the year is loaded | requests | rows | wall s |", "|---|---:|---:|---:|"]
    hourly_table += [f"| {name} | {r:,} | {n:,} | {s:.1f} |" for name, r, n, s in hourly]
    measured = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; simulator: one UTC site, "
        f"{sim.visits:,} visits over {YEAR + 2} days, {LATENCY_MS} ms per answer.\n\n"
    )
    body = measured + "\n".join(table) + "\n\n" + "\n".join(hourly_table) + "\n"
    write_results(ROOT / "docs" / "benchmarks-reports.md", body, "Benchmark: a year of Matomo's reports for one site")
    return 0


if __name__ == "__main__":
    sys.exit(main())
