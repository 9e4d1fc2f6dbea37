"""The Dagster code location: one job per Meltano extract, its sites split into shards.

    dagster dev -m matomo_orchestrate.definitions      (`make dagster` starts it on the demo setup)

A cycle (one run of `matomo_hourly` or `matomo_reconcile`):
  1. `plan`: each shard's sites (shards.py), and every site's bookmark moved into the state of
     the shard that now extracts it (state_moves.py);
  2. one op per shard: `meltano run --state-id-suffix <shard> <extractor> target-postgres` for its
     sites, with its own run directory (meltano.py); all shards in the pool of the Matomo server;
  3. `dbt_build`, once every shard is done: `meltano run dbt-postgres:build`.

Settings (environment variables of the code location, read when it loads): MATOMO_SHARDS (shards
by hash, default 1) or MATOMO_SHARD_SITES ("1,2;3;4,5"); MATOMO_POOL (default "matomo"), the
concurrency pool of the Matomo server, whose limit is the instance's (dagster.yaml or
`dagster instance concurrency set matomo 2`); MATOMO_SHARD_RETRIES (default 3) and
MATOMO_SHARD_RETRY_DELAY (seconds, default 30). Meltano's own settings come from the environment
and `.env` as for `meltano run`.
"""

# No `from __future__ import annotations`: Dagster reads the ops' context annotations at definition.
import json
import os
from dataclasses import dataclass

import dagster as dg

from matomo_orchestrate.meltano import MeltanoProject
from matomo_orchestrate.shards import ShardPlan
from matomo_orchestrate.sites import viewable_sites
from matomo_orchestrate.state_moves import resharded, sites_in

LOADER = "target-postgres"
CYCLE_TAG = "matomo/cycle"  # dagster.yaml limits runs per value to one: cycles of a job never overlap


@dataclass(frozen=True)
class Extract:
    """A Meltano extractor run in shards, with its Dagster job and schedule."""

    job: str
    extractor: str
    cron: str
    description: str


HOURLY = Extract(
    "matomo_hourly", "tap-matomo", "0 * * * *", "New visits of every site, shard by shard, then the dbt models"
)
RECONCILE = Extract(
    "matomo_reconcile",
    "tap-matomo-reconcile",
    "30 3 * * *",
    "The last closed days again (GDPR erasures, anonymisation, late hits), shard by shard, then dbt",
)


def _plan_op(extract: Extract, shards: ShardPlan) -> dg.OpDefinition:
    @dg.op(name=f"{extract.job}_plan", description="Each shard's sites; bookmarks follow sites that changed shard")
    def plan(context: dg.OpExecutionContext) -> dict[str, list[int]]:
        meltano = MeltanoProject()
        sites = viewable_sites(meltano.config(extract.extractor)) if shards.needs_site_list else []
        assignment = shards.assign(sites)
        for shard, shard_sites in assignment.items():
            context.log.info(f"{shard}: sites {', '.join(map(str, shard_sites)) or '(none)'}")
        base = meltano.state_id(extract.extractor, LOADER)
        known = meltano.state_ids(f"{base}*")
        states = {state_id: meltano.get_state(state_id) for state_id in known}
        wanted = {meltano.state_id(extract.extractor, LOADER, shard): sites for shard, sites in assignment.items()}
        # Shards that no longer exist (fewer shards now) give up their sites too; the unsharded
        # job's state (`meltano run matomo-to-postgres`) is read, never changed.
        wanted |= {state_id: [] for state_id in known if state_id.startswith(f"{base}:") and state_id not in wanted}
        # Two passes: every state first takes its new sites and keeps its old ones, then gives up
        # those it lost. Interrupted anywhere, a site is in one state at least (the most advanced
        # copy wins next time), never in none.
        keeping = {
            state_id: sorted(set(sites) | sites_in(states.get(state_id, {}))) for state_id, sites in wanted.items()
        }
        for plan in (keeping, wanted):
            moves = resharded(states, plan)
            for state_id, state in moves.items():
                meltano.set_state(state_id, state)
                context.log.info(f"state {state_id}: sites {', '.join(map(str, plan[state_id])) or '(none)'}")
            states |= moves
        return assignment

    return plan


def _shard_op(extract: Extract, shard: str, pool: str, retry: dg.RetryPolicy) -> dg.OpDefinition:
    @dg.op(
        name=f"{extract.job}_{shard}",
        description=f"meltano run {extract.extractor} {LOADER} for the sites of {shard}",
        pool=pool,
        retry_policy=retry,
        tags={"matomo/shard": shard},
    )
    def extract_shard(context: dg.OpExecutionContext, plan: dict[str, list[int]]) -> None:
        sites = plan[shard]
        if not sites:
            context.log.info(f"{shard} has no site this cycle")
            return
        meltano = MeltanoProject()
        context.log.info(f"{shard}: extracting sites {', '.join(map(str, sites))} (attempt {context.retry_number + 1})")
        # --force: Meltano marks a killed run as running for minutes and refuses the next one. Two
        # runs of a shard cannot overlap here: cycles of a job never do (CYCLE_TAG, the schedule's
        # check), an op is retried only after its process ended, and a Meltano run dies with its op.
        meltano.run(
            "run",
            "--force",
            "--state-id-suffix",
            shard,
            extract.extractor,
            LOADER,
            extra_env={f"{extract.extractor.upper().replace('-', '_')}_SITE_IDS": json.dumps(sites)},
            sys_dir=meltano.shard_dir(extract.job, shard),
        )

    return extract_shard


def _dbt_op(extract: Extract) -> dg.OpDefinition:
    @dg.op(
        name=f"{extract.job}_dbt_build",
        ins={"shards": dg.In(dg.Nothing)},
        description="dbt build, once every shard has loaded (concurrent builds queue on dbt-pgurl's lock)",
    )
    def dbt_build() -> None:
        meltano = MeltanoProject()
        meltano.run("run", "dbt-postgres:build", sys_dir=meltano.shard_dir(extract.job, "dbt"))

    return dbt_build


def cycle_job(extract: Extract, executor_def: dg.ExecutorDefinition | None = None) -> dg.JobDefinition:
    """The job of one extract: plan, its shards at once (within the pool's limit), then dbt.

    `executor_def`: by default a process per op on this machine; on Kubernetes, dagster-k8s'
    `k8s_job_executor` runs each shard in a pod of its own (docs/scale-out.md).
    """
    shards = ShardPlan.from_env(os.environ)
    pool = os.environ.get("MATOMO_POOL", "matomo")
    retry = dg.RetryPolicy(
        max_retries=int(os.environ.get("MATOMO_SHARD_RETRIES", "3")),
        delay=float(os.environ.get("MATOMO_SHARD_RETRY_DELAY", "30")),
    )
    plan_op = _plan_op(extract, shards)
    shard_ops = [_shard_op(extract, shard, pool, retry) for shard in shards.names]
    dbt_op = _dbt_op(extract)

    @dg.graph(name=extract.job, description=extract.description)
    def cycle() -> None:
        plan = plan_op()
        dbt_op(shards=[shard_op(plan) for shard_op in shard_ops])

    # Shard ops wait on Meltano, they do not compute: as many at once as there are shards (the pool caps them).
    local = dg.multiprocess_executor.configured({"max_concurrent": shards.count + 1})
    return cycle.to_job(executor_def=executor_def or local, tags={CYCLE_TAG: extract.job})


def cycle_schedule(job: dg.JobDefinition, extract: Extract) -> dg.ScheduleDefinition:
    """The cron schedule of a job, skipping a tick while the job's previous cycle still runs."""

    @dg.schedule(job=job, cron_schedule=extract.cron, name=f"{extract.job}_schedule", execution_timezone="UTC")
    def tick(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        running = context.instance.get_run_records(
            dg.RunsFilter(
                job_name=job.name,
                statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
            ),
            limit=1,
        )
        if running:
            return dg.SkipReason(f"{job.name} {running[0].dagster_run.run_id} is still running")
        return dg.RunRequest()

    return tick


def hourly_job() -> dg.JobDefinition:
    return cycle_job(HOURLY)


def reconcile_job() -> dg.JobDefinition:
    return cycle_job(RECONCILE)


def build_definitions() -> dg.Definitions:
    hourly, reconcile = hourly_job(), reconcile_job()
    return dg.Definitions(
        jobs=[hourly, reconcile],
        schedules=[cycle_schedule(hourly, HOURLY), cycle_schedule(reconcile, RECONCILE)],
    )


defs = build_definitions()
