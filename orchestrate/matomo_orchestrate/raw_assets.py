"""The loader's raw tables (schema matomo_raw) as Dagster assets, materialized by the shard runs.

One multi-asset backed by a graph of steps:
  1. `plan`: each shard's sites (shards.py), every site's bookmark moved into the state of the
     shard that now extracts it (state_moves.py); one dynamic output per shard;
  2. `extract_shard`, once per shard: `meltano run --state-id-suffix <shard> <extractor>
     target-postgres` for its sites, with its own run directory (meltano.py), reported through
     Dagster Pipes (meltano_pipes.py); all shards in the Matomo server's pool, each retried alone;
  3. `loaded`: once every shard is done, a materialization of each raw table, with what the shards did.

Why one multi-asset rather than an asset partitioned by shard or by site: every shard writes the
same tables and every dbt model reads them whole, and a shard is no stable slice of the data
(resharding moves sites between shards; sites come and go). So each raw table is one asset,
materialized once a cycle, the shards' detail (sites, visits, actions, bookmarks, requests, time)
its metadata; the shards stay steps of their own, with their own pool slot, retries and logs, and as
many of them as the run's settings say (no code location reload to reshard).
"""

# No `from __future__ import annotations`: Dagster reads the ops' annotations at definition.
import json
import sys
import time
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass, field

import dagster as dg

from matomo_orchestrate.meltano import MeltanoError
from matomo_orchestrate.parent_death import dying_with_this_process
from matomo_orchestrate.resources import MeltanoResource, ShardSettings
from matomo_orchestrate.sites import viewable_sites
from matomo_orchestrate.state_moves import resharded, sites_in, visit_bookmarks

LOADER = "target-postgres"
RAW_ASSETS = "matomo_raw"
EXTRACTORS = ("tap-matomo", "tap-matomo-reconcile")


class ExtractConfig(dg.Config):
    """Which Meltano extractor a cycle runs: tap-matomo (new visits, hourly) or tap-matomo-reconcile
    (the last closed days again, nightly)."""

    extractor: str = "tap-matomo"


@dataclass(frozen=True)
class Shard:
    name: str
    sites: tuple[int, ...]
    extractor: str


@dataclass(frozen=True)
class ShardRun:
    """What one shard's Meltano run did."""

    shard: str
    sites: tuple[int, ...] = ()
    records: dict[str, int] = field(default_factory=dict)
    visits: int = 0
    actions: int = 0
    requests: int = 0
    seconds: float = 0.0
    bookmarks: dict[int, str] = field(default_factory=dict)


@dg.op(out=dg.DynamicOut(Shard), description="Each shard's sites; bookmarks follow sites that changed shard")
def plan(
    context: dg.OpExecutionContext, config: ExtractConfig, meltano: MeltanoResource, shard_settings: ShardSettings
) -> Iterator[dg.DynamicOutput[Shard]]:
    if config.extractor not in EXTRACTORS:
        raise dg.Failure(f"extractor: {config.extractor!r} is not one of {', '.join(EXTRACTORS)}")
    project = meltano.project()
    shards = shard_settings.plan()
    sites = viewable_sites(project.config(config.extractor)) if shards.needs_site_list else []
    assignment = shards.assign(sites)
    base = project.state_id(config.extractor, LOADER)
    known = project.state_ids(f"{base}*")
    states = {state_id: project.get_state(state_id) for state_id in known}
    wanted = {project.state_id(config.extractor, LOADER, shard): sites for shard, sites in assignment.items()}
    # Shards that no longer exist (fewer shards now) give up their sites too; the unsharded job's
    # state (`meltano run matomo-to-postgres`) is read, never changed.
    wanted |= {state_id: [] for state_id in known if state_id.startswith(f"{base}:") and state_id not in wanted}
    # Two passes: every state first takes its new sites and keeps its old ones, then gives up those it
    # lost. Interrupted anywhere, a site is in one state at least (the most advanced copy wins next
    # time), never in none.
    keeping = {state_id: sorted(set(sites) | sites_in(states.get(state_id, {}))) for state_id, sites in wanted.items()}
    for step in (keeping, wanted):
        moves = resharded(states, step)
        for state_id, state in moves.items():
            project.set_state(state_id, state)
            context.log.info(f"state {state_id}: sites {', '.join(map(str, step[state_id])) or '(none)'}")
        states |= moves
    for shard, shard_sites in assignment.items():
        context.log.info(f"{shard}: sites {', '.join(map(str, shard_sites)) or '(none)'}")
        yield dg.DynamicOutput(Shard(shard, tuple(shard_sites), config.extractor), mapping_key=shard)


def extract_shard_op(pool: str) -> dg.OpDefinition:
    """The shard step, in the concurrency pool of the Matomo server it reads (MATOMO_POOL)."""

    @dg.op(name="extract_shard", pool=pool, description=f"meltano run <extractor> {LOADER} for the sites of a shard")
    def extract_shard(
        context: dg.OpExecutionContext,
        shard: Shard,
        meltano: MeltanoResource,
        shard_settings: ShardSettings,
        pipes_subprocess_client: dg.PipesSubprocessClient,
    ) -> dg.Output[ShardRun]:
        # A step that runs Pipes gives its results as Output events (Dagster requires it after Pipes).
        if not shard.sites:
            context.log.info(f"{shard.name} has no site this cycle")
            return dg.Output(ShardRun(shard.name))
        project = meltano.project()
        attempt = context.retry_number + 1
        context.log.info(f"{shard.name}: extracting sites {', '.join(map(str, shard.sites))} (attempt {attempt})")
        # --force: Meltano marks a killed run as running for minutes and refuses the next one. Two runs
        # of a shard cannot overlap here: cycles of a job never do (the cycle tag, the schedule's check),
        # a step is retried only after its process ended, and a Meltano run dies with its step.
        args = ["run", "--force", "--state-id-suffix", shard.name, shard.extractor, LOADER]
        site_ids_var = f"{shard.extractor.upper().replace('-', '_')}_SITE_IDS"
        env = project.process_env(
            {site_ids_var: json.dumps(list(shard.sites))}, project.shard_dir(context.job_name, shard.name)
        )
        bridge = [sys.executable, "-m", "matomo_orchestrate.meltano_pipes", project.executable, *args]
        started = time.monotonic()
        try:
            completed = pipes_subprocess_client.run(
                context=context, command=dying_with_this_process(bridge), env=env, cwd=str(project.root)
            )
            reports = completed.get_custom_messages()
        except Exception as exc:  # Pipes raises (its error class is not public API) when the bridge died early
            reports, died = [], str(exc)
        else:
            died = "it exited without a report"
        if len(reports) != 1:
            failure = MeltanoError(f"the shard's process ended before it reported ({died}); Meltano's run died with it")
        elif reports[0]["exit_code"] != 0:
            report = reports[0]
            failure = MeltanoError(f"meltano run failed (exit {report['exit_code']}): {report['error'] or 'no output'}")
        else:
            failure = None
        if failure is not None:
            context.log.error(f"{shard.name}: {failure}")
            raise dg.RetryRequested(
                max_retries=shard_settings.max_retries(), seconds_to_wait=shard_settings.seconds_between_retries()
            ) from failure
        (report,) = reports
        bookmarks = visit_bookmarks(project.get_state(project.state_id(shard.extractor, LOADER, shard.name)))
        run = ShardRun(
            shard=shard.name,
            sites=shard.sites,
            records=dict(report["records"]),
            visits=sum(report["visits"].values()),
            actions=sum(report["actions"].values()),
            requests=int(report["requests"]),
            seconds=round(time.monotonic() - started, 1),
            bookmarks={site: bookmarks[site] for site in shard.sites if site in bookmarks},
        )
        return dg.Output(run)

    return extract_shard


def _shard_table(runs: list[ShardRun]) -> dg.TableMetadataValue:
    columns = [("shard", "string"), ("sites", "int"), ("visits", "int"), ("actions", "int")]
    columns += [("requests", "int"), ("seconds", "float"), ("oldest_bookmark", "string"), ("newest_bookmark", "string")]
    records = [
        dg.TableRecord(
            {
                "shard": run.shard,
                "sites": len(run.sites),
                "visits": run.visits,
                "actions": run.actions,
                "requests": run.requests,
                "seconds": run.seconds,
                "oldest_bookmark": min(run.bookmarks.values(), default=""),
                "newest_bookmark": max(run.bookmarks.values(), default=""),
            }
        )
        for run in sorted(runs, key=lambda r: r.shard)
    ]
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns])
    return dg.MetadataValue.table(records, schema=schema)


def raw_metadata(table: str, runs: list[ShardRun]) -> dict[str, t.Any]:
    """A raw table's materialization metadata: records the shards emitted to it; for the raw log, per shard."""
    metadata: dict[str, t.Any] = {"records": sum(run.records.get(table, 0) for run in runs)}
    if table == "visits_actions":
        bookmarks = [value for run in runs for value in run.bookmarks.values()]
        metadata |= {
            "sites": sum(len(run.sites) for run in runs),
            "visits": sum(run.visits for run in runs),
            "actions": sum(run.actions for run in runs),
            "requests": sum(run.requests for run in runs),
            "slowest_shard_seconds": max((run.seconds for run in runs), default=0.0),
            "oldest_bookmark": min(bookmarks, default=""),
            "newest_bookmark": max(bookmarks, default=""),
            "shards": _shard_table(runs),
        }
    return metadata


def raw_assets(tables: list[str], pool: str) -> dg.AssetsDefinition:
    """The multi-asset of the raw tables `tables` (those the dbt project's source declares)."""

    @dg.op(out={table: dg.Out(dg.Nothing) for table in tables}, description="Every shard has loaded: the raw tables")
    def loaded(context: dg.OpExecutionContext, runs: list[ShardRun]) -> Iterator[dg.Output[None]]:
        context.log.info(f"{len(runs)} shards loaded {sum(run.actions for run in runs):,} actions")
        for table in tables:
            yield dg.Output(None, output_name=table, metadata=raw_metadata(table, runs))

    extract_shard = extract_shard_op(pool)
    outs = {
        table: dg.AssetOut(key=[RAW_ASSETS, table], dagster_type=dg.Nothing, description=f"{RAW_ASSETS}.{table}")
        for table in tables
    }

    @dg.graph_multi_asset(name=RAW_ASSETS, outs=outs, group_name=RAW_ASSETS)
    def matomo_raw() -> dict[str, t.Any]:
        results = loaded(plan().map(extract_shard).collect())
        return {table: getattr(results, table) for table in tables}

    return matomo_raw
