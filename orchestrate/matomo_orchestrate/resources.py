"""The code location's settings, as Dagster resources read when a run starts, not when the code loads.

A changed MATOMO_SHARDS, a new retry count or another warehouse applies to the next run without
reloading the code location; each can also be set per run in the launchpad (resources config).
"""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import dagster as dg
import psycopg
from pgurl.parse import connection_parameters
from psycopg.conninfo import make_conninfo

from matomo_orchestrate.meltano import MeltanoProject
from matomo_orchestrate.shards import SHARD_SITES_VAR, SHARDS_VAR, ShardPlan

RETRIES_VAR = "MATOMO_SHARD_RETRIES"
RETRY_DELAY_VAR = "MATOMO_SHARD_RETRY_DELAY"


class ShardSettings(dg.ConfigurableResource[t.Any]):  # the resource is its own value
    """How sites are split into shards and how a failed shard is retried.

    Unset fields are read from the environment when the run starts: MATOMO_SHARDS (shards by hash,
    default 1) or MATOMO_SHARD_SITES ("1,2;3;4,5"), MATOMO_SHARD_RETRIES (default 3),
    MATOMO_SHARD_RETRY_DELAY (seconds, default 30).
    """

    shards: int | None = None
    shard_sites: str | None = None
    retries: int | None = None
    retry_delay: float | None = None

    def plan(self) -> ShardPlan:
        env = dict(os.environ)
        if self.shards is not None:
            env[SHARDS_VAR] = str(self.shards)
        if self.shard_sites is not None:
            env[SHARD_SITES_VAR] = self.shard_sites
        return ShardPlan.from_env(env)

    def max_retries(self) -> int:
        return self.retries if self.retries is not None else int(os.environ.get(RETRIES_VAR, "3"))

    def seconds_between_retries(self) -> float:
        return self.retry_delay if self.retry_delay is not None else float(os.environ.get(RETRY_DELAY_VAR, "30"))


class MeltanoResource(dg.ConfigurableResource[t.Any]):  # the resource is its own value
    """The Meltano project the steps run (default: MELTANO_PROJECT_ROOT, else this repository)."""

    project_root: str | None = None

    def project(self) -> MeltanoProject:
        return MeltanoProject(Path(self.project_root)) if self.project_root else MeltanoProject()


class Warehouse(dg.ConfigurableResource[t.Any]):  # the resource is its own value
    """The PostgreSQL the loader and dbt write to, reached as they reach it: PGDATABASE (a URL or a
    database name) and libpq's variables (pg-url/), read when a step connects."""

    def connect(self) -> psycopg.Connection[t.Any]:
        return psycopg.connect(make_conninfo(**connection_parameters(os.environ)), autocommit=True)
