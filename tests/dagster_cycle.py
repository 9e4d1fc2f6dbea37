"""One run of a job of the code location in a process of its own, as a deployment's run worker runs it.

    DAGSTER_HOME=<folder> python -m tests.dagster_cycle matomo_hourly

The job's steps are forked from a server process started by the run's worker, which keeps the
environment it started with (definitions.py, STEP_START). Run here, each test's cycle has its own
and with it the test's environment (its warehouse, its simulator), as each run of a deployment has;
run in the test's process, the first test's server would serve every later one.
"""

from __future__ import annotations

import sys

import dagster as dg


def job_named(name: str) -> dg.JobDefinition:
    from matomo_orchestrate.definitions import defs

    return defs().resolve_job_def(name)


def hourly_job() -> dg.JobDefinition:
    return job_named("matomo_hourly")


def reconcile_job() -> dg.JobDefinition:
    return job_named("matomo_reconcile")


JOBS = {"matomo_hourly": hourly_job, "matomo_reconcile": reconcile_job}


def main() -> None:
    with dg.DagsterInstance.get() as instance:
        dg.execute_job(dg.reconstructable(JOBS[sys.argv[1]]), instance=instance)


if __name__ == "__main__":
    main()
