"""docs/benchmarks-job.md from a run of benchmarks/job.py: per database and workload, each row against the bare
loop, where the job's seconds go, and an hourly run with no new data."""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime

from benchmarks.common import ROOT, machine

if t.TYPE_CHECKING:
    from benchmarks.job import Run

NAMES = {
    "bare": "bare reference (requests + json + flatten + COPY)",
    "tap": "tap alone > /dev/null (RECORD messages)",
    "el": "EL: meltano run tap-matomo target-postgres",
    "job": "job: meltano run matomo-to-postgres",
    "dbt": "dbt step alone: meltano run dbt-postgres:build, after an EL",
    "seed": "seed Node tool (@socialgouv/matomo-postgres)",
}


def write_report(
    results: dict[str, dict[str, t.Any]], starts: dict[str, float], load: list[float], repeats: int
) -> None:
    """The doc: what was measured so far, then the notes written by hand below its `<!-- notes -->` marker."""
    lines = [
        "# Benchmark: the whole job against the bare loop, on a durable PostgreSQL",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m benchmarks.job` (a script, not a test), "
        f"all in one run, on {machine()}; load average (1 min) during the run {min(load):.1f} to {max(load):.1f}. "
        f"Each row is the median of {repeats} runs on an empty database; the simulator, the tap, the loader, dbt "
        "and PostgreSQL share the machine.",
        "",
        "Process starts (each program started and stopped doing nothing, median of 3): "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in starts.items())
        + ".",
        "",
    ]
    for key, result in results.items():
        lines += _rows(key, result) + _where_time_goes(result["rows"]["job"], result["hourly"])
    path = ROOT / "docs" / "benchmarks-job.md"
    notes = (
        path.read_text().split("<!-- notes -->", 1)[1]
        if path.exists() and "<!-- notes -->" in path.read_text()
        else "\n"
    )
    path.write_text("\n".join(lines) + "\n<!-- notes -->" + notes)
    print("\n".join(lines))


def _rows(key: str, result: dict[str, t.Any]) -> list[str]:
    server, per_day = key.split("|")
    rows: dict[str, Run] = result["rows"]
    actions = result["actions"]
    bare, seed = rows["bare"].seconds, rows["seed"].seconds if "seed" in rows else None
    lines = [
        f"## {server}: {result['days']} days x {int(per_day):,} visits = {actions:,} actions",
        "",
        "| run | wall s | actions/s | of bare | vs seed tool | WAL bytes per action | commits |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("seed", "bare", "tap", "el", "job", "dbt"):
        if name not in rows:
            continue
        r = rows[name]
        wal = f"{r.wal_bytes / actions:,.0f}" if r.wal_bytes else "-"
        commits = f"{r.commits:,}" if r.commits else "-"
        rate = f"{actions / r.seconds:,.0f}" if name != "dbt" else "-"
        share = f"{bare / r.seconds:.0%}" if name != "dbt" else "-"
        versus = f"{seed / r.seconds:.2f}x" if seed and name != "dbt" else "-"
        lines.append(f"| {NAMES[name]} | {r.seconds:.1f} | {rate} | {share} | {versus} | {wal} | {commits} |")
    if "seed" in rows:
        loaded = rows["seed"].rows_loaded
        lines += ["", f"The seed tool loaded {loaded:,} rows of the {actions:,} actions ({loaded / actions:.1%})."]
    return lines


def _slowest(nodes: dict[str, float], count: int) -> str:
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in sorted(nodes.items(), key=lambda i: -i[1])[:count])


def _where_time_goes(job: Run, hourly: Run) -> list[str]:
    spans = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(job.spans.items()))
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(job.cpu.items()))
    return [
        "",
        f"Where the job's {job.seconds:.1f} s go: processes alive {spans} (CPU s: {cpu}); dbt's own "
        f"execution phase {job.dbt_elapsed:.1f} s of its {job.spans.get('dbt', 0):.1f} s (the rest: start, "
        "import, parse, exit); "
        f"its slowest nodes: {_slowest(job.dbt_nodes, 8)}.",
        "",
        f"An hourly run with no new data: {hourly.seconds:.1f} s; processes alive "
        + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(hourly.spans.items()))
        + f"; dbt's execution phase {hourly.dbt_elapsed:.1f} s; {hourly.commits:,} commits, "
        f"{hourly.wal_bytes:,} WAL bytes; its slowest nodes: {_slowest(hourly.dbt_nodes, 6)}.",
        "",
    ]
