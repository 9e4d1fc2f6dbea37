"""What Dagster's UI shows of the code location, read through its GraphQL API.

    python -m devenv.check_dagster [--url http://127.0.0.1:3000] [--launch] [--materialized]

Prints every asset with the assets it depends on (the Lineage page's edges), its last
materialization and the metadata it carries, each asset check with its latest result, and the
jobs with their schedules. Exit 1, saying what is missing, unless the raw tables and the dbt models
are assets joined from Matomo's raw log to `matomo_reconciliation`, and each job has its schedule.
With --launch, it first starts a run of matomo_hourly (as the UI's Materialize button does) and
waits for it; with --materialized, every asset must have been materialized and no check may have
failed with an error.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import typing as t

import requests

#: Matomo's raw log to the reconciliation, each asset depending on the one before (by key path).
LINEAGE = (
    "matomo_raw/visits_actions",
    "stg_matomo__visits_actions",
    "matomo",
    "matomo_visits",
    "matomo_daily",
    "matomo_reconciliation",
)
JOBS = ("matomo_hourly", "matomo_reconcile", "matomo_daily_tests", "matomo_freshness")
LOCATION = "matomo_orchestrate.definitions"

ASSETS = """
{ assetNodes { assetKey { path } dependencyKeys { path } groupName
    assetMaterializations(limit: 1) { runId timestamp
      metadataEntries { label __typename
        ... on IntMetadataEntry { intValue } ... on FloatMetadataEntry { floatValue }
        ... on TextMetadataEntry { text } } }
    assetChecksOrError { ... on AssetChecks { checks { name
        executionForLatestMaterialization { status evaluation { severity } } } } } }
  repositoriesOrError { __typename
    ... on RepositoryConnection { nodes { jobs { name } schedules { name cronSchedule pipelineName } } }
    ... on PythonError { message } } }
"""
LAUNCH = """
mutation($location: String!, $job: String!) {
  launchRun(executionParams: {selector: {repositoryLocationName: $location, repositoryName: "__repository__",
                                         jobName: $job}, runConfigData: {}}) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }
"""
RUN = """
query($id: ID!) { runOrError(runId: $id) { ... on Run { status stepStats { stepKey status startTime endTime } } } }
"""


def graphql(url: str, query: str, **variables: str) -> dict[str, t.Any]:
    answer = requests.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=60)
    answer.raise_for_status()
    body = answer.json()
    if body.get("errors"):
        raise ValueError(body["errors"][0].get("message"))
    return t.cast("dict[str, t.Any]", body["data"])


def fetch(url: str, wait: float) -> dict[str, t.Any]:
    """The assets and repositories the webserver serves, waiting up to `wait` seconds for it to answer."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return graphql(url, ASSETS)
        except (requests.RequestException, KeyError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def launch(url: str, job: str, timeout: float = 900) -> int:
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


def _value(entry: dict[str, t.Any]) -> t.Any:
    return next((entry[k] for k in ("intValue", "floatValue", "text") if k in entry), f"({entry['__typename']})")


def report(data: dict[str, t.Any], materialized: bool) -> list[str]:
    """Prints the listing; returns what is missing or failed."""
    problems: list[str] = []
    nodes = {"/".join(node["assetKey"]["path"]): node for node in data["assetNodes"]}
    for key, node in sorted(nodes.items()):
        upstream = sorted("/".join(dep["path"]) for dep in node["dependencyKeys"])
        print(f"asset {key} [{node['groupName']}] <- {', '.join(upstream) or '(Matomo)'}")
        last = node["assetMaterializations"]
        if last:
            shown = [f"{e['label']}={_value(e)}" for e in last[0]["metadataEntries"] if e["label"] != "shards"]
            print(f"  materialized by run {last[0]['runId']}: {', '.join(shown)}")
        elif materialized:
            problems.append(f"no materialization of {key}")
        for check in (node.get("assetChecksOrError") or {}).get("checks", []):
            execution = check["executionForLatestMaterialization"] or {}
            severity = (execution.get("evaluation") or {}).get("severity") or ""
            status = execution.get("status", "never run")
            print(f"  check {check['name']}: {status}{f' ({severity})' if status == 'FAILED' else ''}")
            if materialized and (status == "never run" or (status == "FAILED" and severity == "ERROR")):
                problems.append(f"check {key}:{check['name']} {status}")
    for parent, child in itertools.pairwise(LINEAGE):
        deps = nodes.get(child, {}).get("dependencyKeys", [])
        if parent not in {"/".join(dep["path"]) for dep in deps}:
            problems.append(f"edge {parent} -> {child}")
    repositories = data["repositoriesOrError"]
    if repositories.get("__typename") != "RepositoryConnection":
        return [*problems, f"the code location does not load: {repositories.get('message')}"]
    jobs = {job["name"] for repo in repositories["nodes"] for job in repo["jobs"]}
    schedules = {s["pipelineName"]: s for repo in repositories["nodes"] for s in repo["schedules"]}
    for job in JOBS:
        if job not in jobs or job not in schedules:
            problems.append(f"job {job} with its schedule")
        else:
            print(f"job {job}: schedule {schedules[job]['name']} ({schedules[job]['cronSchedule']})")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('DAGSTER_PORT', '3000')}")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for the webserver")
    parser.add_argument("--launch", action="store_true", help="first run matomo_hourly and wait for it")
    parser.add_argument("--materialized", action="store_true", help="every asset materialized, no check in error")
    args = parser.parse_args()
    url = args.url.rstrip("/")
    try:
        fetch(url, args.wait)
        if args.launch and launch(url, "matomo_hourly") != 0:
            return 1
        data = fetch(url, args.wait)
    except (requests.RequestException, KeyError, ValueError) as exc:
        print(f"no Dagster GraphQL API at {args.url}: {exc}", file=sys.stderr)
        return 1
    problems = report(data, args.materialized)
    if problems:
        print(f"missing or failed at {args.url}: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
