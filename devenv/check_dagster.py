"""Checks, through Dagster's GraphQL API, that the UI lists the shard jobs and their schedules.

    python -m devenv.check_dagster [--url http://127.0.0.1:3000] [--shards 2] [--launch]

Exit 0 and a summary when each job (matomo_hourly, matomo_reconcile) has its plan op, one op per
shard and its dbt op, and each has its schedule; otherwise exit 1 with what is missing. With
--launch, it then starts a run of matomo_hourly (as the UI's Launch button does), waits for it and
prints each step's status and time (`make dagster` runs Dagster's daemon, which starts queued runs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import requests
from matomo_orchestrate.definitions import HOURLY, RECONCILE

QUERY = """
{ repositoriesOrError { __typename
    ... on RepositoryConnection { nodes { name
        jobs { name solids { name } }
        schedules { name cronSchedule scheduleState { status } } } }
    ... on PythonError { message } } }
"""


def fetch(url: str, wait: float) -> dict:
    """The repositories the webserver serves, waiting up to `wait` seconds for it to answer."""
    deadline = time.monotonic() + wait
    while True:
        try:
            answer = requests.post(f"{url}/graphql", json={"query": QUERY}, timeout=10)
            answer.raise_for_status()
            return answer.json()["data"]["repositoriesOrError"]
        except (requests.RequestException, KeyError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


LAUNCH = """
mutation($location: String!, $job: String!) {
  launchRun(executionParams: {selector: {repositoryLocationName: $location, repositoryName: "__repository__",
                                         jobName: $job}, runConfigData: {}}) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }
"""
RUN = """
query($id: ID!) { runOrError(runId: $id) { ... on Run { status stepStats { stepKey status startTime endTime } } } }
"""
LOCATION = "matomo_orchestrate.definitions"


def graphql(url: str, query: str, **variables: str) -> dict:
    answer = requests.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30)
    answer.raise_for_status()
    return answer.json()["data"]


def launch(url: str, job: str, timeout: float = 600) -> int:
    """Runs `job` through the API and waits for it; 0 when it succeeded."""
    launched = graphql(url, LAUNCH, location=LOCATION, job=job)["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        print(f"could not launch {job}: {launched.get('message', launched['__typename'])}", file=sys.stderr)
        return 1
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + timeout
    while True:
        run = graphql(url, RUN, id=run_id)["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") or time.monotonic() > deadline:
            break
        time.sleep(2)
    print(f"run {run_id} of {job}: {run['status']}")
    for step in run["stepStats"]:
        seconds = (step["endTime"] or 0) - (step["startTime"] or 0)
        print(f"  {step['stepKey']}: {step['status']} in {seconds:.1f} s")
    return 0 if run["status"] == "SUCCESS" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('DAGSTER_PORT', '3000')}")
    parser.add_argument("--shards", type=int, default=int(os.environ.get("MATOMO_SHARDS", "2")))
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for the webserver")
    parser.add_argument("--launch", action="store_true", help="then run matomo_hourly and wait for it")
    args = parser.parse_args()
    try:
        repositories = fetch(args.url.rstrip("/"), args.wait)
    except (requests.RequestException, KeyError, ValueError) as exc:
        print(f"no Dagster GraphQL API at {args.url}: {exc}", file=sys.stderr)
        return 1
    if repositories.get("__typename") != "RepositoryConnection":
        print(f"the code location does not load: {repositories.get('message', repositories)}", file=sys.stderr)
        return 1
    jobs = {job["name"]: {s["name"] for s in job["solids"]} for repo in repositories["nodes"] for job in repo["jobs"]}
    schedules = {s["name"]: s for repo in repositories["nodes"] for s in repo["schedules"]}
    missing = []
    for extract in (HOURLY, RECONCILE):
        ops = {f"{extract.job}_plan", f"{extract.job}_dbt_build"} | {
            f"{extract.job}_shard_{n}" for n in range(args.shards)
        }
        missing += [f"job {extract.job}"] if extract.job not in jobs else sorted(ops - jobs[extract.job])
        if f"{extract.job}_schedule" not in schedules:
            missing.append(f"schedule {extract.job}_schedule")
    if missing:
        print(f"missing from {args.url}: {', '.join(missing)}", file=sys.stderr)
        return 1
    for name, ops in sorted(jobs.items()):
        shards = sorted(op for op in ops if "_shard_" in op)
        print(f"job {name}: {len(shards)} shard ops ({', '.join(shards)}), plan, dbt_build")
    for name, schedule in sorted(schedules.items()):
        print(f"schedule {name}: {schedule['cronSchedule']} ({schedule['scheduleState']['status'].lower()})")
    return launch(args.url.rstrip("/"), HOURLY.job) if args.launch else 0


if __name__ == "__main__":
    sys.exit(main())
