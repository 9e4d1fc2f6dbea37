"""The Dagster code location: the warehouse as assets, from Matomo's raw log to every dbt model.

    dg dev -m matomo_orchestrate.definitions      (`make dagster` starts it on the demo setup)

Assets: the loader's raw tables (raw_assets.py: one multi-asset whose steps are the shard runs), then
every model of the dbt project (dbt_models.py, through dagster-dbt), with lineage from the raw
tables to each model. Checks: every dbt data test, `matomo_reconciliation` against Matomo's totals
and the raw log's freshness (checks.py).

Jobs and their schedules (UTC):
  - matomo_hourly (every hour): new visits, shard by shard, then `dbt build`;
  - matomo_reconcile (03:30): the last closed days again (erasures, anonymisation, late hits), then dbt;
  - matomo_daily_tests (05:00): every dbt data test on every row (the Meltano command `test-all`);
  - matomo_freshness (every 15 minutes): the raw log's freshness check.
A cycle's tick is skipped while the job's previous cycle still runs, and the instance allows one run
per cycle tag at a time (dagster.yaml): cycles of a job never overlap.

Settings are resources read when a run starts (resources.py): MATOMO_SHARDS or MATOMO_SHARD_SITES,
MATOMO_SHARD_RETRIES, MATOMO_SHARD_RETRY_DELAY; PGDATABASE and libpq's variables for the checks;
Meltano's own settings from the environment and `.env`, as for `meltano run`. MATOMO_POOL (default
"matomo") names the concurrency pool of the shard steps when the code location loads (a pool is a
property of a step's definition); its limit is the instance's (dagster.yaml, or `dagster instance
concurrency set matomo 2`).
"""

# No `from __future__ import annotations`: Dagster reads the ops' context annotations at definition.
import json
import os
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
from dagster_dbt import DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from matomo_orchestrate.checks import raw_log_loaded_recently, reconciliation_check
from matomo_orchestrate.dbt_models import (
    MatomoTranslator,
    dbt_command_args,
    dbt_project,
    dbt_resource,
    raw_tables,
    with_rows_affected,
)
from matomo_orchestrate.meltano import MeltanoProject
from matomo_orchestrate.raw_assets import RAW_ASSETS, raw_assets
from matomo_orchestrate.resources import MeltanoResource, ShardSettings, Warehouse

CYCLE_TAG = "matomo/cycle"  # dagster.yaml limits runs per value to one: cycles of a job never overlap
DBT_ASSETS = "matomo_dbt"
#: Steps of a run in processes at once. Shard steps mostly wait on Matomo and Meltano: the cap that
#: matters is the Matomo server's pool (MATOMO_POOL), not this machine's CPU count (the default cap).
MAX_STEPS_AT_ONCE = 64
#: Each step's process is forked from a server process of the run that imported this code location once
#: (the multiprocess executor's forkserver): started fresh, a step imported dagster, dagster-dbt and dbt
#: again, about 2.5 s before its work and 5 steps one after another in a cycle (docs/benchmarks-scale-out.md).
#: The server starts with the run's worker, and with its environment.
STEP_START = {"forkserver": {"preload_modules": ["matomo_orchestrate.definitions"]}}


@dataclass(frozen=True)
class Cycle:
    """A job over the assets, its run config and its schedule."""

    job: str
    cron: str
    description: str
    extractor: str = ""  # the raw assets' extractor; none: dbt's checks only
    dbt_command: str = "build"


HOURLY = Cycle(
    "matomo_hourly", "0 * * * *", "New visits of every site, shard by shard, then the dbt models", "tap-matomo"
)
RECONCILE = Cycle(
    "matomo_reconcile",
    "30 3 * * *",
    "The last closed days again (GDPR erasures, anonymisation, late hits), shard by shard, then dbt",
    "tap-matomo-reconcile",
)
DAILY_TESTS = Cycle("matomo_daily_tests", "0 5 * * *", "Every dbt data test on every row", dbt_command="test-all")


class DbtCommandConfig(dg.Config):
    """Which command of meltano.yml's dbt-postgres utility the dbt step runs (`build`, `test-all`...)."""

    command: str = "build"


def dbt_models(project: DbtProject, manifest: dict[str, t.Any], pool: str) -> dg.AssetsDefinition:
    root = MeltanoProject().root

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=MatomoTranslator(DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)),
        name=DBT_ASSETS,
    )
    def matomo_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtCommandConfig) -> Iterator[t.Any]:
        # One target folder per code location (its pool) and job, kept between the job's runs, which
        # never overlap: dbt then parses partially, as under `meltano run` (dagster-dbt's default, a
        # folder per invocation, parses in full every time).
        target = project.project_dir / project.target_path / f"dagster-{pool}-{context.run.job_name}"
        args = dbt_command_args(root, config.command)
        yield from with_rows_affected(dbt.cli(args, context=context, target_path=target))

    return matomo_dbt


def cycle_job_args(cycle: Cycle, selection: dg.AssetSelection) -> dict[str, t.Any]:
    """`define_asset_job`'s arguments for a cycle: its assets, its dbt command, one cycle at a time."""
    config: dict[str, dict[str, t.Any]] = {"ops": {DBT_ASSETS: {"config": {"command": cycle.dbt_command}}}}
    if cycle.extractor:
        config["ops"][RAW_ASSETS] = {"ops": {"plan": {"config": {"extractor": cycle.extractor}}}}
    executor = dg.multiprocess_executor.configured({"max_concurrent": MAX_STEPS_AT_ONCE, "start_method": STEP_START})
    return {
        "name": cycle.job,
        "selection": selection,
        "config": config,
        "description": cycle.description,
        "executor_def": executor,
        "tags": {CYCLE_TAG: cycle.job},
    }


def cycle_schedule(cycle: Cycle) -> dg.ScheduleDefinition:
    """The cron schedule of a cycle's job, skipping a tick while the job's previous cycle still runs."""

    @dg.schedule(job_name=cycle.job, cron_schedule=cycle.cron, name=f"{cycle.job}_schedule", execution_timezone="UTC")
    def tick(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        running = context.instance.get_run_records(
            dg.RunsFilter(
                job_name=cycle.job,
                statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
            ),
            limit=1,
        )
        if running:
            return dg.SkipReason(f"{cycle.job} {running[0].dagster_run.run_id} is still running")
        return dg.RunRequest()

    return tick


def build_definitions() -> dg.Definitions:
    project = dbt_project()
    # Read once: the code location loads in every step's process.
    manifest = json.loads(project.manifest_path.read_text())
    pool = os.environ.get("MATOMO_POOL", "matomo")
    raw = raw_assets(raw_tables(manifest), pool=pool)
    models = dbt_models(project, manifest, pool)
    node = manifest["nodes"]["model.matomo.matomo_reconciliation"]
    reconciliation = reconciliation_check(node["schema"], node["alias"])
    warehouse = dg.AssetSelection.assets(raw, models)
    selections = {
        HOURLY: warehouse,
        RECONCILE: warehouse,
        DAILY_TESTS: dg.AssetSelection.checks_for_assets(models),
    }
    jobs = [dg.define_asset_job(**cycle_job_args(cycle, selection)) for cycle, selection in selections.items()]
    freshness = dg.define_asset_job(
        "matomo_freshness",
        selection=dg.AssetSelection.checks(raw_log_loaded_recently),
        description="Whether the raw log was loaded within the last 2 hours (WARN) and 6 (ERROR)",
    )
    return dg.Definitions(
        assets=[raw, models],
        asset_checks=[reconciliation, raw_log_loaded_recently],
        jobs=[*jobs, freshness],
        schedules=[
            *(cycle_schedule(cycle) for cycle in selections),
            dg.ScheduleDefinition(job=freshness, cron_schedule="*/15 * * * *", execution_timezone="UTC"),
        ],
        resources={
            "meltano": MeltanoResource(),
            "shard_settings": ShardSettings(),
            "warehouse": Warehouse(),
            "dbt": dbt_resource(project),
            "pipes_subprocess_client": dg.PipesSubprocessClient(),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What Dagster loads (`dg dev -m`, `dagster api grpc -m`): built when the code location loads, not when
    the module is imported (writing dbt's manifest runs `dbt parse`)."""
    return build_definitions()
