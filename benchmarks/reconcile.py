"""Benchmark: a nightly reconcile of 7 days x 5,000 visits on one site, its wall time and API requests.

The tap alone in reconcile mode (its records to /dev/null), against the simulator in its own
process, at max_parallel_requests 1 and 4; requests are counted from the tap's own metrics
(`http_request_count` per stream). Results: docs/benchmarks-reconcile.md.

    .venv/bin/python -m benchmarks.reconcile        # about a minute
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import ROOT, TAP_BIN, TOKEN, Simulator

METRIC = re.compile(r'METRIC: (\{.*"metric":\s*"http_request_count".*\})')


def main() -> int:
    sim = Simulator(8, 5_000, seed=11)
    try:
        with tempfile.TemporaryDirectory(prefix="tap-matomo-reconcile-") as tmp:
            rows = [_reconcile(sim, Path(tmp), parallel) for parallel in (1, 4)]
    finally:
        sim.stop()
    write_report(rows)
    return 0


def _reconcile(sim: Simulator, tmp: Path, parallel: int) -> tuple[int, float, dict[str, int], int]:
    """One reconcile run of the tap alone: its wall time, requests per stream (its METRIC lines), actions emitted."""
    config = tmp / f"config-{parallel}.json"
    settings = {
        "url": sim.url,
        "token_auth": TOKEN,
        "page_size": 500,
        "mode": "reconcile",
        "log_metrics": True,  # the request counts come from the METRIC lines
        "reconcile_days": 7,
        "max_parallel_requests": parallel,
    }
    config.write_text(json.dumps(settings))
    started = time.monotonic()
    done = subprocess.run(
        [str(TAP_BIN / "tap-matomo"), "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    seconds = time.monotonic() - started
    requests: dict[str, int] = {}
    for line in done.stderr.splitlines():
        found = METRIC.search(line)
        if found:
            metric = json.loads(found[1])
            stream = metric["tags"]["stream"]
            requests[stream] = requests.get(stream, 0) + int(metric["value"])
    emitted = sum(int(m) for m in re.findall(r"(\d+) actions emitted; ", done.stderr))
    print(parallel, f"{seconds:.1f} s", requests, emitted, flush=True)
    return parallel, seconds, requests, emitted


def write_report(rows: list[tuple[int, float, dict[str, int], int]]) -> None:
    lines = [
        "# Benchmark: a nightly reconcile",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `python -m benchmarks.reconcile` on the machine of",
        "[benchmarks.md](benchmarks.md): one site (UTC), the last 7 closed days of 5,000 visits each, pages of",
        "500, the tap alone in `mode: reconcile` (records to /dev/null), the simulator in its own process",
        "(no added latency: against a real Matomo add about 0.3 s per Live request, divided by the parallelism).",
        "",
        "| max_parallel_requests | wall (s) | actions emitted | Live requests | VisitsSummary requests "
        "| other requests |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for parallel, seconds, requests, emitted in rows:
        live = requests.get("visits_actions", 0)
        summary = requests.get("visits_summary", 0)
        other = sum(requests.values()) - live - summary
        lines.append(f"| {parallel} | {seconds:.1f} | {emitted:,} | {live} | {summary} | {other} |")
    (ROOT / "docs" / "benchmarks-reconcile.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
