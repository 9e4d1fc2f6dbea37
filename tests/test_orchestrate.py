"""Dagster runs the project in shards: 3 shards over 6 sites at once, retries, cycles, resharding, kill -9.

Real Dagster (multiprocess executor, a test instance with a concurrency pool), real Meltano runs
and dbt, a real PostgreSQL; the simulator is the only fake.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psutil
import pytest
import yaml
from dagster_dbt import DbtProject
from matomo_orchestrate import dbt_models, raw_assets
from matomo_orchestrate.checks import raw_log_loaded_recently
from matomo_orchestrate.meltano import MeltanoProject
from matomo_orchestrate.resources import MeltanoResource, ShardSettings
from matomo_orchestrate.shards import ShardPlan, shard_of
from matomo_orchestrate.state_moves import resharded, visit_bookmarks
from matomo_simulator import MatomoSimulator, World
from matomo_simulator.server import Fault
from tap_matomo import clock
from tap_matomo.raw.recent_visits import CAP as RECENT_CAP
from tap_matomo.raw.recent_visits import RecentVisits

from devenv.net import free_port
from devenv.postgres import LocalPostgres
from tests.conftest import TOKENS, new_database
from tests.helpers import TOKEN, without_meltano_or_dbt
from tests.pipeline import ROOT, query

SITES = [1, 2, 3, 4, 5, 6]
STATE_BASE = "dev:tap-matomo-to-target-postgres"


def six_site_world() -> World:
    world = World(seed=12, max_actions_per_visit=30)
    extra = [replace(world.sites[n], idsite=n + 4, name=f"Copy of {n}") for n in (1, 2)]
    world.sites |= {site.idsite: site for site in extra}
    now = clock.utc_now()
    world.generate(now - timedelta(hours=30), now - timedelta(minutes=1), visits_per_day=30)
    return world


@pytest.fixture
def project(postgres: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MatomoSimulator]:
    """The simulator with 6 sites and the code location's environment: its warehouse, Meltano state, run dirs."""
    with new_database(postgres) as database, MatomoSimulator(six_site_world(), TOKENS) as sim:
        sim.live_latency = 0.02
        env = {
            "MATOMO_URL": sim.url,
            "MATOMO_KEY": TOKEN,
            "PGDATABASE": database,
            "STARTDATE": (clock.utc_now() - timedelta(days=2)).date().isoformat(),
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
            "MATOMO_SHARD_RUN_DIR": str(tmp_path / "shards"),
            "DBT_TARGET_PATH": str(tmp_path / "dbt-target"),
            "DBT_LOG_PATH": str(tmp_path / "dbt-logs"),
            "TAP_MATOMO_RETRY_BACKOFF_MS": "50",
            "MATOMO_SHARD_RETRY_DELAY": "0.5",
            "MATOMO_SHARDS": "3",
            "TAP_MATOMO_REPORTS": "[]",  # sharding is the subject here (reports: tests/test_reports.py)
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield sim


@functools.cache
def definitions() -> dg.Definitions:
    """The code location's definitions, built once per process (after the manifest is fresh: see `fresh_manifest`)."""
    from matomo_orchestrate.definitions import defs  # after the manifest is written

    return defs()


@pytest.fixture(scope="module", autouse=True)
def fresh_manifest() -> None:
    """dbt's manifest of the models as they are now, which the code location reads when it loads."""
    dbt_models.write_manifest(DbtProject(project_dir=ROOT / "transform"))


@dataclass
class Cycle:
    """A run of a job, read back from the instance it ran on."""

    run_id: str
    success: bool
    events: list[dg.EventLogEntry]


def run_cycle(pool_limit: int = 3, job: str = "matomo_hourly", home: Path | None = None) -> Cycle:
    """One run of a cycle's job in a run worker of its own, as in a deployment (tests/dagster_cycle.py), on
    an instance whose Matomo pool allows `pool_limit` shards at once, or on the instance at `home`."""
    with tempfile.TemporaryDirectory(prefix="dagster-home-") as folder:
        if home is None:
            home = Path(folder)
            pools = {"concurrency": {"pools": {"default_limit": pool_limit}}, "telemetry": {"enabled": False}}
            (home / "dagster.yaml").write_text(yaml.safe_dump(pools))
        command = [sys.executable, "-m", "tests.dagster_cycle", job]
        subprocess.run(command, cwd=ROOT, env={**os.environ, "DAGSTER_HOME": str(home)}, check=False)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs(limit=1)
            assert runs, f"{job} did not start (its output is above)"
            run = runs[0]
            return Cycle(run.run_id, run.is_success, list(instance.all_logs(run.run_id)))


STEP_KINDS = {"STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY", "STEP_RESTARTED"}
SHARD_STEP = "matomo_raw.extract_shard["


def shard_step(shard: str) -> str:
    return f"{SHARD_STEP}{shard}]"


def step_events(result: Cycle, prefix: str) -> list[tuple[str, str]]:
    """(event, step) of the starts, retries, successes and failures of the steps named `prefix...`, in the
    order the run's event log holds them."""
    found = []
    for record in result.events:
        event = record.dagster_event
        if event and event.step_key and event.step_key.startswith(prefix) and event.event_type_value in STEP_KINDS:
            found.append((event.event_type_value, event.step_key))
    return found


def step_times(result: Cycle, prefix: str) -> dict[str, list[tuple[str, str]]]:
    """Per step of the shard ops: its events, in order."""
    steps: dict[str, list[tuple[str, str]]] = {}
    for kind, step in step_events(result, prefix):
        steps.setdefault(step, []).append((kind, step))
    return steps


def materializations(result: Cycle) -> dict[tuple[str, ...], dict[str, t.Any]]:
    """asset key path -> the metadata of its materialization in the run (values unwrapped)."""
    found = {}
    for record in result.events:
        event = record.dagster_event
        if event and event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            found[tuple(materialization.asset_key.path)] = {k: v.value for k, v in materialization.metadata.items()}
    return found


def check_evaluations(result: Cycle) -> dict[tuple[tuple[str, ...], str], t.Any]:
    """(asset key path, check name) -> its evaluation in the run."""
    found = {}
    for record in result.events:
        event = record.dagster_event
        if event and event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            found[tuple(evaluation.asset_key.path), evaluation.check_name] = evaluation
    return found


def assert_exactly_the_truth(sim: MatomoSimulator) -> None:
    """Every action of the simulator's truth in the raw table and once in `matomo`, nothing else there."""
    database = os.environ["PGDATABASE"]
    truth = set(sim.world.truth())
    raw = {r[0] for r in query(database, "SELECT action_id FROM matomo_raw.visits_actions")}
    assert truth <= raw, f"{len(truth - raw)} actions missing from the raw table"
    total, distinct = query(database, "SELECT count(*), count(DISTINCT action_id) FROM matomo")[0]
    assert total == distinct, "an action twice in matomo"
    assert total == len(truth)


def shard_states(meltano: MeltanoProject) -> dict[str, dict[int, str]]:
    """state id -> {site: bookmark}."""
    return {state_id: visit_bookmarks(meltano.get_state(state_id)) for state_id in meltano.state_ids(f"{STATE_BASE}*")}


def live_floor(sim: MatomoSimulator, since: int) -> dict[int, int]:
    """Per site, the lowest minTimestamp the Live requests from request `since` on asked for."""
    floors: dict[int, int] = {}
    for request in sim.live_requests()[since:]:
        site = int(request.params["idSite"])
        floors[site] = min(floors.get(site, 2**62), int(request.params.get("minTimestamp", 0)))
    return floors


def test_three_shards_at_once_then_incremental_then_two_shards_keep_every_bookmark(project: MatomoSimulator) -> None:
    sim = project
    meltano = MeltanoProject()
    first = run_cycle()
    assert first.success

    assert_exactly_the_truth(sim)
    shards = step_times(first, SHARD_STEP)
    assert len(shards) == 3
    order = [kind for kind, _step in step_events(first, SHARD_STEP)]
    assert order.index("STEP_SUCCESS") > 2, "the three shards ran at the same time: all started before one ended"
    states = shard_states(meltano)
    expected = ShardPlan(3).assign(SITES)
    assert {s: sorted(b) for s, b in states.items()} == {f"{STATE_BASE}:{k}": v for k, v in expected.items()}

    # Every raw table and every dbt model materialized, with what the shards and dbt did; every check passed.
    done = materializations(first)
    raw = done["matomo_raw", "visits_actions"]
    truth = sim.world.truth()
    assert raw["actions"] == raw["records"] == len(truth)
    assert raw["visits"] == len({action_id.split("_")[0] for action_id in truth})
    assert raw["sites"] == len(SITES)
    assert [row.data["shard"] for row in raw["shards"].records] == ["shard_0", "shard_1", "shard_2"]
    assert sum(row.data["actions"] for row in raw["shards"].records) == len(truth)
    assert raw["newest_bookmark"] >= raw["oldest_bookmark"] > ""
    assert raw["requests"] >= len(SITES)
    models = {key for key in definitions().resolve_asset_graph().get_all_asset_keys() if key.path[0] != "matomo_raw"}
    assert {tuple(key.path) for key in models} <= set(done)
    assert done["matomo",]["rows_affected"] == len(truth)  # every action new: inserted once
    checks = check_evaluations(first)
    assert (("matomo_reconciliation",), "matches_matomo") in checks
    assert any(name.startswith("unique_matomo_action_id") for _key, name in checks)
    failed = {key: c.severity for key, c in checks.items() if not c.passed}
    assert not failed, failed

    # Second cycle: new visits; each shard reads from its sites' bookmarks only.
    now = int(clock.utc_now().timestamp())
    for site in SITES:
        sim.world.add_visit(site, now - 5, n_actions=2)
    since = len(sim.live_requests())
    second = run_cycle()
    assert second.success
    assert_exactly_the_truth(sim)
    assert materializations(second)["matomo_raw", "visits_actions"]["visits"] >= len(SITES)
    floors = live_floor(sim, since)
    bookmarks = {site: value for sites in states.values() for site, value in sites.items()}
    for site, floor in floors.items():
        bookmark = datetime.fromisoformat(bookmarks[site]).timestamp()
        assert floor >= bookmark - 2 * 3600, f"site {site} read again from {floor}, its bookmark is {bookmark}"

    # Reshard 3 -> 2 (read when the run starts: no reload): every site's bookmark follows it; no site is
    # read from its start date again.
    os.environ["MATOMO_SHARDS"] = "2"
    states = shard_states(meltano)
    bookmarks = {site: value for sites in states.values() for site, value in sites.items()}
    since = len(sim.live_requests())
    third = run_cycle()
    assert third.success
    assert len(step_times(third, SHARD_STEP)) == 2
    floors = live_floor(sim, since)
    assert sorted(floors) == SITES
    for site, floor in floors.items():
        bookmark = datetime.fromisoformat(bookmarks[site]).timestamp()
        assert floor >= bookmark - 2 * 3600, f"site {site} read again from {floor} after resharding"
    after = shard_states(meltano)
    for name, sites in ShardPlan(2).assign(SITES).items():
        assert sorted(after[f"{STATE_BASE}:{name}"]) == sites
    assert all(not sites for state_id, sites in after.items() if state_id.endswith("shard_2"))
    assert_exactly_the_truth(sim)


def test_a_failing_shard_is_retried_alone(project: MatomoSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = project
    monkeypatch.setenv("TAP_MATOMO_MAX_PARALLEL_REQUESTS", "1")  # one request at a time: 6 tries, then the run fails
    failing_site = 4
    failing_shard = shard_step(f"shard_{shard_of(failing_site, 3)}")
    sim.inject(Fault("status", times=7, status=503, idsite=failing_site))  # more than the tap's 5 retries
    result = run_cycle()
    assert result.success
    shards = step_times(result, SHARD_STEP)
    retried = {step for step, events in shards.items() if any(kind == "STEP_UP_FOR_RETRY" for kind, _ in events)}
    assert retried == {failing_shard}
    for step, events in shards.items():
        starts = [kind for kind, _ in events if kind in ("STEP_START", "STEP_RESTARTED")]
        assert len(starts) == (2 if step == failing_shard else 1), (step, events)
    errors = [r.user_message for r in result.events if r.level >= logging.ERROR]
    said = [m for m in errors if "meltano run failed (exit 1): " in m]
    assert len(said) == 1, errors  # one line, naming the shard, the exit code and Meltano's error
    assert said[0].startswith(f"shard_{shard_of(failing_site, 3)}: ")
    assert f"tap-matomo failed: Matomo Live.getLastVisitsDetails for site {failing_site}: HTTP 503" in said[0]
    assert_exactly_the_truth(sim)

    # The nightly reconcile job, shard by shard: every site's closed days are listed and logged.
    nightly = run_cycle(job="matomo_reconcile")
    assert nightly.success
    logged = query(os.environ["PGDATABASE"], "SELECT DISTINCT idsite FROM matomo_reconcile_log ORDER BY 1")
    assert [site for (site,) in logged] == SITES


def test_a_shard_killed_mid_run_is_run_again_at_once(project: MatomoSimulator) -> None:
    """kill -9 leaves Meltano's run marked as running; the next cycle's shard must not wait for it."""
    sim = project
    sim.live_latency = 0.3
    meltano = MeltanoProject()
    shard = "shard_0"
    sites = ShardPlan(3).assign(SITES)[shard]
    env = {**meltano.process_env({"TAP_MATOMO_SITE_IDS": json.dumps(sites)}, meltano.shard_dir("matomo_hourly", shard))}
    victim = subprocess.Popen(
        [meltano.executable, "run", "--state-id-suffix", shard, "tap-matomo", "target-postgres"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not sim.live_requests() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    sim.live_latency = 0.02

    result = run_cycle(pool_limit=1)  # and the Matomo server's pool lets one shard at a time read it
    assert result.success
    shards = step_times(result, SHARD_STEP)
    # Run at once (--force), neither refused nor waiting for Meltano to find the killed run stale.
    assert [kind for kind, _ in shards[shard_step(shard)]] == ["STEP_START", "STEP_SUCCESS"], "not refused"
    # One shard at a time: each started only after the previous one ended.
    order = [kind for kind, _step in step_events(result, SHARD_STEP)]
    assert order == ["STEP_START", "STEP_SUCCESS"] * 3, order
    assert_exactly_the_truth(sim)


def test_a_shard_whose_process_dies_before_it_reports_is_retried(project: MatomoSimulator) -> None:
    """kill -9 of a shard's Pipes bridge (as the out-of-memory killer would): the step is retried, not failed."""
    victim = "shard_1"
    killed: list[int] = []
    step_started_by: list[str] = []  # the command of the step process's parent

    def kill_the_bridge() -> None:
        deadline = time.monotonic() + 300
        while not killed and time.monotonic() < deadline:
            for process in psutil.Process().children(recursive=True):  # this test's, not another worker's
                try:
                    command = process.cmdline()
                except psutil.Error:
                    continue
                if "matomo_orchestrate.meltano_pipes" in command and victim in command:
                    step_started_by.append(" ".join(process.parent().parent().cmdline()))
                    process.kill()
                    killed.append(process.pid)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_bridge, daemon=True)
    killer.start()
    result = run_cycle()
    killer.join()
    assert killed, "the bridge was never seen"
    # The shard's step was forked from the run's server process that had imported the code location.
    assert "multiprocessing.forkserver" in step_started_by[0], step_started_by
    assert "matomo_orchestrate.definitions" in step_started_by[0], step_started_by
    assert result.success
    steps = step_times(result, SHARD_STEP)
    assert [kind for kind, _ in steps[shard_step(victim)]] == [
        "STEP_START",
        "STEP_UP_FOR_RETRY",
        "STEP_RESTARTED",
        "STEP_SUCCESS",
    ]
    errors = [r.user_message for r in result.events if r.level >= logging.ERROR]
    assert any(m.startswith(f"{victim}: the shard's process ended before it reported") for m in errors), errors
    assert_exactly_the_truth(project)


def busy_site_state(sites: list[int], busy: list[int]) -> dict:
    """The unsharded job's state, the `busy` sites at the tap's cap of recent visits (about 213 KB each)."""
    bookmark = clock.utc_now().replace(microsecond=0)
    partitions = []
    for site in sites:
        recent = RecentVisits()
        if site in busy:
            for n in range(RECENT_CAP):
                recent.remember(site * 10_000_000 + n, int(bookmark.timestamp()) - n, n.to_bytes(8, "big"))
        partitions.append(
            {
                "context": {"idsite": site},
                "replication_key": "action_timestamp",
                "replication_key_value": bookmark.isoformat(),
                "recent_visits": recent.encode(),
            }
        )
    return {"singer_state": {"bookmarks": {"visits_actions": {"partitions": partitions}}}}


def run_plan(shards: int) -> list[str]:
    """Only the cycle's first step, `plan`, with `shards` shards: each shard's sites, and their bookmarks moved."""
    context = dg.build_op_context(
        resources={"meltano": MeltanoResource(), "shard_settings": ShardSettings(shards=shards)}
    )
    return [output.mapping_key for output in raw_assets.plan(context, raw_assets.ExtractConfig())]


def test_a_busy_sites_state_moves_to_two_then_three_shards(project: MatomoSimulator) -> None:
    """A state over Linux's 128 KiB limit for one command-line argument (E2BIG before it went through a file)."""
    meltano = MeltanoProject()
    busy = [2, 5]
    single = busy_site_state(SITES, busy)
    size = len(json.dumps(single))
    assert size > 2 * 200_000, size
    meltano.set_state(STATE_BASE, single)
    expected = {p["context"]["idsite"]: p for p in single["singer_state"]["bookmarks"]["visits_actions"]["partitions"]}

    for shards in (2, 3):
        assert run_plan(shards) == [f"shard_{n}" for n in range(shards)]
        plan = ShardPlan(shards).assign(SITES)
        for name, sites in plan.items():
            state = meltano.get_state(f"{STATE_BASE}:{name}")
            partitions = state["singer_state"]["bookmarks"]["visits_actions"]["partitions"]
            assert {p["context"]["idsite"]: p for p in partitions} == {site: expected[site] for site in sites}
        assert meltano.get_state(STATE_BASE) == single  # the unsharded job's state is read, never changed
    print(f"unsharded state of {size:,} bytes moved to 2, then 3 shards")


def test_resharding_moves_each_site_to_its_new_shard_with_its_most_advanced_bookmark() -> None:
    def state(*sites: tuple[int, str]) -> dict:
        partitions = [
            {"context": {"idsite": s}, "replication_key_value": v, "recent_visits": f"r{s}{v}"} for s, v in sites
        ]
        return {"singer_state": {"bookmarks": {"visits_actions": {"partitions": partitions}}}}

    states = {
        "dev:x": state((1, "2031-01-01T00:00:00+00:00"), (2, "2031-01-05T00:00:00+00:00")),  # before sharding
        "dev:x:shard_0": state((1, "2031-01-03T00:00:00+00:00")),
        "dev:x:shard_1": state((2, "2031-01-02T00:00:00+00:00"), (3, "2031-01-04T00:00:00+00:00")),
    }
    moves = resharded(states, {"dev:x:shard_0": [1, 2, 3], "dev:x:shard_1": [], "dev:x:shard_2": [4]})
    got = {
        state_id: {
            p["context"]["idsite"]: p["replication_key_value"]
            for p in s["singer_state"]["bookmarks"]["visits_actions"]["partitions"]
        }
        for state_id, s in moves.items()
    }
    assert got == {
        "dev:x:shard_0": {
            1: "2031-01-03T00:00:00+00:00",
            2: "2031-01-05T00:00:00+00:00",
            3: "2031-01-04T00:00:00+00:00",
        },
        "dev:x:shard_1": {},
    }
    assert moves["dev:x:shard_0"]["singer_state"]["bookmarks"]["visits_actions"]["partitions"][1]["recent_visits"] == (
        "r22031-01-05T00:00:00+00:00"
    )
    assert resharded({**states, **moves}, {"dev:x:shard_0": [1, 2, 3], "dev:x:shard_1": []}) == {}


def test_hash_shards_are_stable_and_a_new_site_moves_no_other() -> None:
    before = ShardPlan(4).assign(range(1, 200))
    after = ShardPlan(4).assign(range(1, 201))
    moved = [s for s in range(1, 200) if not any(s in after[k] and s in before[k] for k in before)]
    assert moved == []
    assert all(len(sites) > 20 for sites in before.values()), "sites spread over every shard"
    assert ShardPlan.from_env({"MATOMO_SHARD_SITES": "1,2;3"}).assign() == {"shard_0": [1, 2], "shard_1": [3]}
    for bad in ({"MATOMO_SHARDS": "0"}, {"MATOMO_SHARD_SITES": "1;1"}, {"MATOMO_SHARD_SITES": "a,b"}):
        with pytest.raises(ValueError, match="MATOMO_SHARD"):
            ShardPlan.from_env(bad)


def test_the_asset_graph_runs_from_the_raw_tables_to_every_dbt_model() -> None:
    """Every dbt model an asset, each raw table (the dbt source) the multi-asset of the shard runs, the
    edges from dbt's own graph; every data test a check, beside the reconciliation and freshness checks."""
    graph = definitions().resolve_asset_graph()
    manifest = json.loads(dbt_models.dbt_project().manifest_path.read_text())
    models = {node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    sources = {source["name"] for source in manifest["sources"].values()}
    keys = {"/".join(key.path) for key in graph.get_all_asset_keys()}
    assert keys == models | {f"matomo_raw/{name}" for name in sources}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model":
            continue
        parents = {"/".join(key.path) for key in graph.get(dg.AssetKey(node["name"])).parent_keys}
        expected = {
            manifest["nodes"][p]["name"] if p.startswith("model.") else f"matomo_raw/{p.split('.')[-1]}"
            for p in node["depends_on"]["nodes"]
        }
        assert parents == expected, node["name"]

    def asset_of(unique_id: str) -> str:
        if unique_id.startswith("model."):
            return str(manifest["nodes"][unique_id]["name"])
        return f"matomo_raw/{unique_id.split('.')[-1]}"

    # A generic test checks the node it is attached to; a singular test, the one node it reads.
    tests = {
        (asset_of(node.get("attached_node") or node["depends_on"]["nodes"][0]), node["name"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
    }
    checks = {("/".join(key.asset_key.path), key.name) for key in graph.asset_check_keys}
    assert checks == tests | {
        ("matomo_reconciliation", "matches_matomo"),
        ("matomo_raw/visits_actions", "loaded_recently"),
    }
    assert any(asset.startswith("matomo_raw/") for asset, _ in tests)  # the sources' tests too


def test_the_documented_downstream_asset_loads_under_matomo_daily() -> None:
    """docs/scale-out.md's dashboard extract and the definitions that add it, as written there, join the code
    location below matomo_daily."""
    section = (ROOT / "docs" / "scale-out.md").read_text().split("## Your own asset downstream", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = [part.split("```", 1)[0] for part in section.split("```python\n")[1:]]
    assert len(blocks) == 2
    namespace: dict[str, t.Any] = {}
    exec("from matomo_orchestrate.definitions import defs", namespace)  # noqa: S102 -- as the docs say
    for code in blocks:
        exec(compile(code, "docs/scale-out.md", "exec"), namespace)  # noqa: S102 -- the docs' own example
    merged = namespace["with_extract"]()
    dg.Definitions.validate_loadable(merged)
    parents = merged.resolve_asset_graph().get(dg.AssetKey("dashboard_extract")).parent_keys
    assert parents == {dg.AssetKey("matomo_daily")}


def test_after_a_cycle_the_ui_shows_each_asset_its_lineage_metadata_and_checks(
    project: MatomoSimulator, tmp_path: Path
) -> None:
    """A cycle on the instance the webserver reads, then Dagster's GraphQL API through the README's script."""
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "orchestrate" / "dagster.yaml").read_text())
    assert run_cycle(home=home).success
    port = free_port()
    webserver = str(Path(sys.executable).parent / "dagster-webserver")
    server = subprocess.Popen(
        [webserver, "-m", "matomo_orchestrate.definitions", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        check = [sys.executable, "-m", "devenv.check_dagster", "--url", f"http://127.0.0.1:{port}", "--wait", "120"]
        listed = subprocess.run([*check, "--materialized"], cwd=ROOT, capture_output=True, text=True, check=False)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert listed.returncode == 0, listed.stderr + listed.stdout[-3000:]
    print(listed.stdout)
    assert "asset matomo [matomo_marts] <- stg_matomo__visits_actions" in listed.stdout
    assert f"actions={len(project.world.truth())}" in listed.stdout
    assert "check matches_matomo: SUCCEEDED" in listed.stdout
    assert "job matomo_hourly: schedule matomo_hourly_schedule (0 * * * *)" in listed.stdout


def test_a_day_that_differs_from_matomo_turns_the_reconciliation_check_to_warn(project: MatomoSimulator) -> None:
    """Matomo purged a closed day's raw log after archiving it: its totals stay, the Live API has nothing."""
    sim = project
    day = (clock.utc_now() - timedelta(days=2)).date()  # site 1 is UTC; STARTDATE is 2 days back
    noon = int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp())
    for minute in range(3):  # the world's visits are of the last 30 hours: these are the day's own
        sim.world.add_visit(1, noon + 60 * minute, n_actions=2)
    archived = sim.answer(
        {
            "module": "API",
            "method": "VisitsSummary.get",
            "idSite": "1",
            "period": "day",
            "date": str(day),
            "format": "JSON",
        },
        TOKEN,
    )
    assert int(archived["nb_visits"]) >= 3
    sim.world.purge_before(1, day + timedelta(days=1))  # the raw log of the day goes, its archive stays
    result = run_cycle()
    assert result.success
    evaluation = check_evaluations(result)[("matomo_reconciliation",), "matches_matomo"]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    listed = [row.data for row in evaluation.metadata["differences"].value.records]
    assert listed == [
        {
            "idsite": 1,
            "site_day": str(day),
            "visits_difference": -int(archived["nb_visits"]),
            "actions_difference": -int(archived["nb_actions"]),
            "pageviews_difference": None,
            "downloads_difference": None,
            "outlinks_difference": None,
            "searches_difference": None,
        }
    ]
    assert evaluation.metadata["days"].value == 1
    print(f"check matches_matomo: {evaluation.severity.value}, {evaluation.description}; differences: {listed}")


def test_the_freshness_check_warns_past_its_hours_and_fails_without_a_load(tmp_path: Path) -> None:
    job = definitions().resolve_job_def("matomo_freshness")
    key = dg.AssetKey(["matomo_raw", "visits_actions"])

    def freshness(instance: dg.DagsterInstance, **config: float) -> t.Any:
        run_config = {"ops": {raw_log_loaded_recently.node_def.name: {"config": config}}} if config else None
        result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)
        (evaluation,) = [
            e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        return evaluation

    with dg.instance_for_test() as instance:
        never = freshness(instance)
        assert (never.passed, never.severity) == (False, dg.AssetCheckSeverity.ERROR)
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
        assert freshness(instance).passed
        stale = freshness(instance, warn_after_hours=0.0)
        assert (stale.passed, stale.severity) == (False, dg.AssetCheckSeverity.WARN)
        assert stale.metadata["hours_since_load"].value < 1
        late = freshness(instance, warn_after_hours=0.0, error_after_hours=0.0)
        assert (late.passed, late.severity) == (False, dg.AssetCheckSeverity.ERROR)


def test_the_schedule_skips_a_tick_while_the_previous_cycle_runs() -> None:
    """Cycles of a job never overlap, which is what makes the shard steps' --force safe."""
    defs = definitions()
    schedule = defs.get_schedule_def("matomo_hourly_schedule")
    job = definitions().resolve_job_def("matomo_hourly")
    with dg.instance_for_test() as instance:
        assert isinstance(schedule(dg.build_schedule_context(instance=instance)), dg.RunRequest)
        running = instance.create_run_for_job(job_def=job, status=dg.DagsterRunStatus.STARTED)
        skipped = schedule(dg.build_schedule_context(instance=instance))
        assert isinstance(skipped, dg.SkipReason)
        assert running.run_id in str(skipped.skip_message)
        instance.report_run_failed(running)
        assert isinstance(schedule(dg.build_schedule_context(instance=instance)), dg.RunRequest)


def test_dagster_dbt_reads_dbts_version_without_starting_meltano_or_dbt() -> None:
    """dagster-dbt runs `matomo-dbt --version` before every dbt command: the answer is the installed dbt-core's
    version, read without Meltano (here it could not even start: its system database is unusable), dbt or
    a question to PyPI (6 s a dbt step before)."""
    plugin_python = ROOT / ".meltano" / "utilities" / dbt_models.DBT_UTILITY / "venv" / "bin" / "python"
    reads_version = "import importlib.metadata as m; print(m.version('dbt-core'))"
    installed = subprocess.run([plugin_python, "-c", reads_version], capture_output=True, text=True, check=True)
    matomo_dbt = Path(sys.executable).parent / "matomo-dbt"
    unusable = {**os.environ, "MELTANO_DATABASE_URI": "nosuchdb://"}
    answer = subprocess.run([matomo_dbt, "--version"], env=unusable, capture_output=True, text=True, check=True)
    assert re.search(r"(\d+\.\d+\.\d+)", answer.stdout)[1] == installed.stdout.strip()  # dagster-dbt's reading
    failed = subprocess.run([matomo_dbt, "debug"], env=unusable, capture_output=True, text=True, check=False)
    assert failed.returncode != 0, "any other command goes through Meltano"


def test_under_dagster_dev_a_step_parses_dbt_only_when_the_project_changed() -> None:
    """`dg dev` marks every process of a run as its own (DAGSTER_IS_DEV_CLI): a step's process loads the code
    location without `dbt parse` while the manifest is newer than the project's files, with it once not."""
    loads = "from matomo_orchestrate.definitions import defs\ndefs()"
    loaded = without_meltano_or_dbt(loads, DAGSTER_IS_DEV_CLI="1")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    project = DbtProject(project_dir=ROOT / "transform")
    model = next((ROOT / "transform" / "models").rglob("*.sql"))
    older = model.stat().st_mtime - 60
    os.utime(project.manifest_path, (older, older))  # as if a model had been edited since the last parse
    parsed = without_meltano_or_dbt(loads, DAGSTER_IS_DEV_CLI="1")
    assert "started: " in parsed.stderr, parsed.stderr[-2000:]
    assert "parse" in parsed.stderr, parsed.stderr[-2000:]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_IS_DEV_CLI", "1")
        dbt_models.dbt_project()
    assert project.manifest_path.stat().st_mtime > model.stat().st_mtime
