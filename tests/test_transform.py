"""The dbt layer through Meltano: the weekly-partitioned `matomo` table and the models users query."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import requests
from matomo_simulator import MatomoSimulator, World
from psycopg import sql
from tap_matomo import clock
from tap_matomo.schemas import VISITS_ACTIONS

from devenv.postgres import LocalPostgres
from tests.conftest import LoadedProject, new_database
from tests.helpers import TOKEN
from tests.pipeline import LOADER, ROOT, Meltano, query

JOB = ("run", "matomo-to-postgres")
NODE_INDEXES = 16  # the Node tool's set (see data-contract.md)


START = {"STARTDATE": (clock.utc_now() - timedelta(days=14)).date().isoformat()}


@pytest.fixture(scope="module")
def loaded(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> LoadedProject:
    """One run of the job over twelve days of visits (the table spans several ISO weeks)."""
    world = World(seed=17)
    now = clock.utc_now()
    world.generate(now - timedelta(days=12), now - timedelta(minutes=1), visits_per_day=12)
    return LoadedProject.load(postgres, tmp_path_factory.mktemp("loaded"), world, START, *JOB)


@pytest.fixture
def world(loaded: LoadedProject) -> World:
    return loaded.world.clone()


@pytest.fixture
def database(postgres: LocalPostgres, loaded: LoadedProject) -> Iterator[str]:
    with new_database(postgres, template=loaded.template) as url:
        yield url


@pytest.fixture
def pipeline(meltano: Meltano, loaded: LoadedProject, tmp_path: Path) -> Meltano:
    """The loaded project, this test's own copy: database, state and the world Matomo serves."""
    loaded.copy_state_to(tmp_path / "meltano.db")
    meltano.env |= START
    return meltano


def snapshot(database: str) -> list[tuple]:
    return query(database, "SELECT action_id, idvisit, actions, visitduration, loaded_at FROM matomo ORDER BY 1")


def rewritten_visits(database: str, before: dict[str, set[tuple]]) -> dict[str, set[int]]:
    """Per model, the visits with a row written since `before` (a row version's xmin changes when written)."""
    now = row_versions(database)
    return {model: {row[0] for row in now[model] ^ before[model]} for model in now}


def row_versions(database: str) -> dict[str, set[tuple]]:
    return {
        model: set(query(database, sql.SQL("SELECT idvisit, xmin::text FROM {}").format(sql.Identifier(model))))
        for model in ("matomo", "matomo_visits")
    }


@pytest.mark.clock  # days, weeks and midnight: run again at four UTC times (`make test-clock`)
def test_matomo_holds_the_latest_extraction_typed_partitioned_and_indexed(
    pipeline: Meltano, simulator: MatomoSimulator, database: str
) -> None:
    truth = simulator.world.truth()
    rows = query(database, "SELECT action_id FROM matomo")
    assert len(rows) == len(truth) == query(database, "SELECT count(*) FROM stg_matomo__visits_actions")[0][0]
    assert {r[0] for r in rows} == set(truth)

    weeks = {datetime.fromisoformat(v["action_timestamp"]).isocalendar()[:2] for v in truth.values()}
    partitions = query(
        database,
        """SELECT c.relname, (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid)
           FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
           WHERE h.inhparent = 'public.matomo'::regclass""",
    )
    assert {name for name, _ in partitions} == {f"matomo_{y}w{w:02d}" for y, w in weeks}
    assert len(partitions) >= 2
    assert all(count == NODE_INDEXES + 2 for _, count in partitions)  # + the unique key and loaded_at
    assert query(
        database,
        "SELECT count(*) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid "
        "WHERE h.inhparent = 'public.matomo'::regclass AND c.relpartbound IS NULL",
    ) == [(0,)]
    unique = query(
        database,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'public.matomo'::regclass AND contype = 'u'",
    )
    assert unique == [("UNIQUE (action_id, action_timestamp)",)]

    types = dict(
        query(
            database,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'matomo'",
        )
    )
    expected = {
        "action_id": "text",
        "idsite": "integer",
        "idvisit": "bigint",
        "action_timestamp": "timestamp with time zone",
        "visit_first_action_at": "timestamp with time zone",
        "serverdateprettyfirstaction": "date",
        "revenue": "numeric",
        "action_eventvalue": "numeric",
        "latitude": "numeric",
        "items": "jsonb",
        "usercustomdimensions": "jsonb",
        "usercustomproperties": "jsonb",
        "experiments": "jsonb",
        "action_url": "text",
        "visitduration": "integer",
        "action_idlink_va": "bigint",
        "dimension10": "text",
    }
    assert {k: types[k] for k in expected} == expected
    assert len(types) >= 97


def test_a_grown_visit_ends_with_its_new_rows_and_a_quiet_run_writes_nothing(
    pipeline: Meltano, simulator: MatomoSimulator, database: str
) -> None:
    world = simulator.world
    now = int(clock.utc_now().timestamp())
    # Two visits inside the lookback window, loaded whole first.
    grown, shrunk = world.add_visit(1, now - 600, n_actions=4), world.add_visit(3, now - 500, n_actions=4)
    done = pipeline.run(*JOB)
    assert done.returncode == 0, done.stderr[-4000:]
    rows_before = len(query(database, "SELECT 1 FROM matomo WHERE idvisit = %s", shrunk.idvisit))
    assert rows_before == len(world.returned_actions(shrunk)) >= 4

    world.grow_visit(grown.idvisit, now - 400, n_actions=2)  # hits 5-90 s apart: all in the past
    world.remove_actions(shrunk.idvisit, 1, 2)  # Matomo dropped one action of this visit (a purge, a lower cap)
    versions = row_versions(database)
    done = pipeline.run(*JOB)
    assert done.returncode == 0, done.stderr[-4000:]
    # Only the two changed visits are written again, though the previous load is within the reload overlap.
    assert rewritten_visits(database, versions) == {
        "matomo": {grown.idvisit, shrunk.idvisit},
        "matomo_visits": {grown.idvisit, shrunk.idvisit},
    }

    truth = world.truth()
    for visit in (grown, shrunk):
        expected = {k for k, v in truth.items() if v["idvisit"] == visit.idvisit}
        got = {r[0] for r in query(database, "SELECT action_id FROM matomo WHERE idvisit = %s", visit.idvisit)}
        assert got == expected, visit.idvisit
    assert len(query(database, "SELECT 1 FROM matomo WHERE idvisit = %s", shrunk.idvisit)) == rows_before - 1
    assert query(database, "SELECT count(*) FROM matomo")[0][0] == len(truth)

    quiet_before, versions = snapshot(database), row_versions(database)
    assert pipeline.run(*JOB).returncode == 0
    assert snapshot(database) == quiet_before
    assert rewritten_visits(database, versions) == {"matomo": set(), "matomo_visits": set()}  # nothing written


@pytest.mark.clock  # days, weeks and midnight: run again at four UTC times (`make test-clock`)
def test_a_one_week_query_reads_one_partition(pipeline: Meltano, database: str) -> None:
    monday = (clock.utc_now() - timedelta(days=7)).date()
    monday -= timedelta(days=monday.weekday())
    plan = "\n".join(
        r[0]
        for r in query(
            database,
            "EXPLAIN SELECT count(*) FROM matomo WHERE action_timestamp >= %s AND action_timestamp < %s",
            datetime(monday.year, monday.month, monday.day, tzinfo=UTC),
            datetime(monday.year, monday.month, monday.day, tzinfo=UTC) + timedelta(days=7),
        )
    )
    scanned = set(re.findall(r"on (matomo_\d{4}w\d{2})", plan))
    year, week, _ = monday.isocalendar()
    assert scanned == {f"matomo_{year}w{week:02d}"}, plan


@pytest.mark.clock  # days, weeks and midnight: run again at four UTC times (`make test-clock`)
def test_matomo_daily_reconciles_with_visits_summary(
    pipeline: Meltano, simulator: MatomoSimulator, database: str
) -> None:
    rows = query(database, "SELECT idsite, site_day, nb_visits, nb_actions FROM matomo_daily ORDER BY 1, 2")
    assert len(rows) > 4 * 10
    for idsite, day, nb_visits, nb_actions in rows:
        summary = requests.post(  # Matomo's own daily totals
            f"{simulator.url}/index.php",
            params={
                "module": "API",
                "method": "VisitsSummary.get",
                "format": "JSON",
                "idSite": idsite,
                "period": "day",
                "date": day.isoformat(),
            },
            data={"token_auth": TOKEN},
            timeout=10,
        ).json()
        assert (nb_visits, nb_actions) == (summary["nb_visits"], summary["nb_actions"]), (idsite, day)
    visits = query(database, "SELECT count(*), sum(action_items) FROM matomo_visits")[0]
    assert visits == (len(simulator.world.visits), len(simulator.world.truth()))


def test_extra_indexes_destination_table_and_docs(pipeline: Meltano, database: str) -> None:
    extra = "{extra_indexes: [{name: matomo_goal_idx, columns: [goal_id], where: \"action_type = 'goal'\"}]}"
    done = pipeline.run("invoke", "dbt-postgres", "run", "--select", "matomo", "--vars", extra)
    assert done.returncode == 0, done.stdout[-3000:]
    definition = query(database, "SELECT indexdef FROM pg_indexes WHERE indexname = 'matomo_goal_idx'")
    assert definition
    assert "WHERE (action_type = 'goal'::text)" in definition[0][0]
    partition_copies = query(
        database,
        "SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'matomo_____w__' AND indexdef LIKE '%%(goal_id)%%'",
    )[0][0]
    assert partition_copies >= 2

    pipeline.env["DESTINATION_TABLE"] = "matomo_events"
    assert pipeline.run("invoke", "dbt-postgres", "run", "--select", "matomo").returncode == 0
    assert query(database, "SELECT count(*) FROM matomo_events") == query(database, "SELECT count(*) FROM matomo")

    pipeline.env["DESTINATION_TABLE"] = 'matomo"; DROP TABLE matomo; --'
    bad = pipeline.run("invoke", "dbt-postgres", "run", "--select", "matomo")
    assert bad.returncode != 0
    assert "is not a plain table name" in bad.stdout + bad.stderr
    assert query(database, "SELECT count(*) FROM matomo")[0][0] > 0

    pipeline.env.pop("DESTINATION_TABLE")
    # The failed run recreated the staging views and skipped what follows `matomo`: dbt's view materialization
    # drops the old view with CASCADE, so matomo_reconciliation went with it until the next build (dbt's own
    # behaviour: a build after a failed run restores it). Built again before its docs are read.
    assert pipeline.run("invoke", "dbt-postgres", "run").returncode == 0
    docs = pipeline.run("invoke", "dbt-postgres:docs-generate")
    assert docs.returncode == 0, docs.stdout[-3000:]
    # Every column of the tables and views an analyst reads is documented (the two main tables from the column
    # registry), as the database has it.
    target = Path(pipeline.env["DBT_TARGET_PATH"])
    manifest = json.loads((target / "manifest.json").read_text())["nodes"]
    catalog = json.loads((target / "catalog.json").read_text())["nodes"]
    marts = ["matomo", "matomo_visits", "matomo_daily", "matomo_reports", "matomo_reconciliation"]
    staging = [name.split(".")[-1] for name in catalog if name.startswith("model.matomo.stg_matomo__reports_")]
    assert len(staging) == 7
    for model in marts + staging:
        documented = {name: c["description"] for name, c in manifest[f"model.matomo.{model}"]["columns"].items()}
        built = set(catalog[f"model.matomo.{model}"]["columns"])
        assert len(built) > 10, model
        assert built - {name for name in built if documented.get(name)} == set(), model
        assert not [name for name, text in documented.items() if "{{" in text], model  # doc() blocks rendered


def test_grants_and_persisted_docs_reach_the_partitioned_table(
    pipeline: Meltano, database: str, tmp_path: Path
) -> None:
    """The custom materialization honours dbt's `grants` and `persist_docs` like dbt's own."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS matomo_reader")
        conn.execute("CREATE ROLE matomo_reader")
    project = tmp_path / "transform"
    shutil.copytree(ROOT / "transform", project, ignore=shutil.ignore_patterns("target", "logs"))
    settings = project / "dbt_project.yml"
    settings.write_text(
        settings.read_text().replace(
            "    marts:\n",
            "    marts:\n"
            "      +persist_docs: {relation: true, columns: true}\n"
            "      +grants: {select: [matomo_reader]}\n",
        )
    )
    done = pipeline.run("invoke", "dbt-postgres", "run", "--select", "matomo", "--project-dir", str(project))
    assert done.returncode == 0, done.stdout[-3000:]
    assert query(database, "SELECT has_table_privilege('matomo_reader', 'public.matomo', 'SELECT')") == [(True,)]
    comments = dict(
        query(
            database,
            "SELECT attname, col_description(attrelid, attnum) FROM pg_attribute "
            "WHERE attrelid = 'public.matomo'::regclass AND attnum > 0 AND NOT attisdropped",
        )
    )
    assert comments["action_timestamp"] == "True UTC instant of the action."
    assert all(comments.values())
    assert query(database, "SELECT obj_description('public.matomo'::regclass)")[0][0].startswith("One row per")


def test_two_dbt_runs_at_once_queue(pipeline: Meltano, database: str) -> None:
    """Two whole-project runs started together (`--select matomo` is the project): the second waits
    for the first (dbt-pgurl's lock), so neither swaps views or creates partitions under the other."""
    with psycopg.connect(database) as conn:
        conn.execute("DROP TABLE matomo CASCADE")
    first = pipeline.popen("invoke", "dbt-postgres", "run", "--select", "matomo")
    second = pipeline.popen("invoke", "dbt-postgres", "run", "--select", "matomo")
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    staged = query(database, "SELECT count(*) FROM stg_matomo__visits_actions")[0][0]
    assert query(database, "SELECT count(*), count(DISTINCT action_id) FROM matomo")[0] == (staged, staged)


def test_token_is_not_in_the_tables(pipeline: Meltano, database: str) -> None:
    cells = query(database, "SELECT count(*) FROM matomo_raw.visits_actions t WHERE t::text LIKE %s", f"%{TOKEN}%")
    assert cells == [(0,)]


MODELS = ("matomo", "matomo_visits", "matomo_daily")


def table(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def count_rows(database: str, schema: str, name: str) -> int:
    return query(database, sql.SQL("SELECT count(*) FROM {}").format(table(schema, name)))[0][0]


#: Columns that record an incremental run's history, null on a rebuild by design: `previous_site_day` is the
#: day a visit left when a later hit moved it past midnight (the test's visits do, when it runs near 00:00 UTC).
HISTORY_COLUMNS = frozenset({"previous_site_day"})


def differences(database: str, schema: str, other: str, name: str) -> int:
    """Rows of table `name` in one schema and not the other, both ways (every column compared but the history)."""
    columns = [
        sql.Identifier(column)
        for (column,) in query(
            database,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
            " ORDER BY ordinal_position",
            schema,
            name,
        )
        if column not in HISTORY_COLUMNS
    ]
    listed = sql.SQL(", ").join(columns)
    one, two = table(schema, name), table(other, name)
    both_ways = sql.SQL(
        "SELECT count(*) FROM ((SELECT {c} FROM {one} EXCEPT ALL SELECT {c} FROM {two})"
        " UNION ALL (SELECT {c} FROM {two} EXCEPT ALL SELECT {c} FROM {one})) d"
    ).format(c=listed, one=one, two=two)
    return query(database, both_ways)[0][0]


def matomo_columns(database: str) -> list[str]:
    return [
        r[0]
        for r in query(
            database,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'matomo' ORDER BY ordinal_position",
        )
    ]


def last_week_boundary(before: datetime) -> datetime:
    """The latest Monday 00:00 UTC (a weekly partition boundary) at least two hours before `before`."""
    monday = (before - timedelta(hours=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday - timedelta(days=monday.weekday())


@pytest.mark.clock  # days, weeks and midnight: run again at four UTC times (`make test-clock`)
def test_incremental_runs_equal_a_full_rebuild_and_a_new_column_appears(
    pipeline: Meltano, simulator: MatomoSimulator, database: str, tmp_path: Path
) -> None:
    world = simulator.world
    now = clock.utc_now()
    boundary = int(last_week_boundary(now).timestamp())
    # Read back far enough to see the visit across the week boundary again.
    pipeline.env["TAP_MATOMO_LOOKBACK_MINUTES"] = str((int(now.timestamp()) - boundary) // 60 + 120)
    stamp = int(now.timestamp())
    # A Kolkata visit from Sunday 23:50 to Monday 00:05 UTC (one local day): rows in two weekly partitions.
    across = world.add_visit(3, boundary - 600, n_actions=3)
    world.grow_visit(across.idvisit, boundary + 300, n_actions=2)
    grown, shrunk = world.add_visit(1, stamp - 1500, n_actions=3), world.add_visit(2, stamp - 1400, n_actions=4)
    first = pipeline.run(*JOB)
    assert first.returncode == 0, first.stderr[-4000:]
    weeks = query(database, "SELECT count(DISTINCT tableoid) FROM matomo WHERE idvisit = %s", across.idvisit)
    assert weeks == [(2,)]

    # re-extracted with its rows after the boundary gone, one more action, one fewer
    world.remove_actions(across.idvisit, 3)
    world.remove_actions(shrunk.idvisit, 1, 2)
    world.grow_visit(grown.idvisit, stamp - 600, n_actions=2)  # hits 5-90 s apart: all in the past
    world.ping_visit(grown.idvisit, 30, user_id="user-7")
    second = pipeline.run(*JOB)
    assert second.returncode == 0, second.stderr[-4000:]

    truth = world.truth()
    assert {r[0] for r in query(database, "SELECT action_id FROM matomo")} == set(truth)
    for visit in (across, grown, shrunk):
        expected = {k for k, v in truth.items() if v["idvisit"] == visit.idvisit}
        got = {r[0] for r in query(database, "SELECT action_id FROM matomo WHERE idvisit = %s", visit.idvisit)}
        assert got == expected, visit.idvisit

    pipeline.env["DBT_SCHEMA"] = "full_rebuild"
    rebuild = pipeline.run("invoke", "dbt-postgres:full-refresh")
    assert rebuild.returncode == 0, rebuild.stdout[-4000:]
    for name in MODELS:
        assert count_rows(database, "public", name) == count_rows(database, "full_rebuild", name) > 0, name
        assert differences(database, "public", "full_rebuild", name) == 0, name

    # A column added to the contract, in the middle of the staging model: it appears at the end of
    # `matomo` (appended), filled for the visits replaced from then on; no column moves.
    before = matomo_columns(database)
    project = tmp_path / "transform"
    shutil.copytree(ROOT / "transform", project, ignore=shutil.ignore_patterns("target", "logs"))
    staging = project / "models" / "staging" / "stg_matomo__visits_actions.sql"
    staging.write_text(
        staging.read_text().replace(
            "    country::text as country,\n", "    country::text as country,\n    upper(country) as country_upper,\n"
        )
    )
    pipeline.env.pop("DBT_SCHEMA")
    world.grow_visit(grown.idvisit, stamp - 400, n_actions=1)
    assert pipeline.run("run", "tap-matomo", "target-postgres").returncode == 0
    changed = pipeline.run("invoke", "dbt-postgres", "build", "--project-dir", str(project))
    assert changed.returncode == 0, changed.stdout[-4000:]
    assert matomo_columns(database) == [*before, "country_upper"]
    landed = query(
        database, "SELECT action_id, country, region, country_upper FROM matomo WHERE idvisit = %s", grown.idvisit
    )
    raw = query(
        database,
        "SELECT action_id, country, region, upper(country) FROM matomo_raw.visits_actions WHERE idvisit = %s",
        grown.idvisit,
    )
    assert sorted(landed) == sorted(raw)
    assert len(landed) == len([v for v in world.truth().values() if v["idvisit"] == grown.idvisit])


#: dbt without the overlap: only the load marks (macros/load_marks.sql) can find a late commit.
NO_OVERLAP = ("invoke", "dbt-postgres", "run", "--vars", "{reload_overlap_minutes: 0}")


def test_a_load_that_commits_late_reaches_every_model(pipeline: Meltano, database: str, tmp_path: Path) -> None:
    """A load stamps its batch time before it commits: held behind a lock, it commits after another load
    and that load's dbt run, with batch times older than everything the models then hold (the overlap is
    0 here, so that only the commit order can find it; 15 minutes by default)."""
    late, on_time = (r[0] for r in query(database, "SELECT DISTINCT idvisit FROM matomo ORDER BY 1 LIMIT 2"))
    schema = {"type": "SCHEMA", "stream": "visits_actions", "schema": VISITS_ACTIONS, "key_properties": ["action_id"]}

    def messages(idvisit: int, duration: int) -> str:
        records = [{**row, "visitduration": duration} for row in raw_visit_rows(database, idvisit)]
        lines = [schema, *({"type": "RECORD", "stream": "visits_actions", "record": r} for r in records)]
        return "".join(json.dumps(line) + "\n" for line in lines)

    with psycopg.connect(database) as holder:  # a transaction holding the late visit's raw rows
        holder.execute("SELECT FROM matomo_raw.visits_actions WHERE idvisit = %s FOR UPDATE", (late,))
        first = start_loader(database, tmp_path, "late")
        assert first.stdin is not None
        first.stdin.write(messages(late, 77777))
        first.stdin.close()
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype IN ('transactionid', 'tuple')"
        while holder.execute(waiting).fetchone() == (0,):
            assert first.poll() is None, "the late loader ended before it reached the lock"
            time.sleep(0.05)
        second = start_loader(database, tmp_path, "on_time")
        _, second_log = second.communicate(messages(on_time, 88888), timeout=120)
        assert second.returncode == 0, second_log[-2000:]
        done = pipeline.run(*NO_OVERLAP)
        assert done.returncode == 0, done.stdout[-3000:]
        assert query(database, "SELECT DISTINCT visitduration FROM matomo WHERE idvisit = %s", on_time) == [(88888,)]
    assert first.wait(timeout=120) == 0, first.stderr.read()[-2000:] if first.stderr else ""
    late_batch, newest = query(
        database,
        "SELECT min(_sdc_batched_at) FILTER (WHERE idvisit = %s), max(_sdc_batched_at) FROM matomo_raw.visits_actions",
        late,
    )[0]
    assert late_batch < newest  # stamped before the on-time load, committed after it

    done = pipeline.run(*NO_OVERLAP)
    assert done.returncode == 0, done.stdout[-3000:]
    for model in ("matomo", "matomo_visits"):
        landed = query(
            database,
            sql.SQL("SELECT DISTINCT visitduration FROM {} WHERE idvisit = %s").format(sql.Identifier(model)),
            late,
        )
        assert landed == [(77777,)], model
    raw = query(database, "SELECT action_id FROM matomo_raw.visits_actions WHERE idvisit = %s ORDER BY 1", late)
    assert query(database, "SELECT action_id FROM matomo WHERE idvisit = %s ORDER BY 1", late) == raw


def an_hour_ago(database: str) -> None:
    """Every load so far moved an hour into the past, as if the next run came an hour later."""
    with psycopg.connect(database) as conn:
        conn.execute("UPDATE matomo_raw.visits_actions SET _sdc_batched_at = _sdc_batched_at - interval '1 hour'")
        for model in MODELS:
            conn.execute(
                sql.SQL("UPDATE {} SET loaded_at = loaded_at - interval '1 hour'").format(sql.Identifier(model))
            )


@pytest.mark.clock  # days, weeks and midnight: run again at four UTC times (`make test-clock`)
def test_a_visit_whose_day_changes_leaves_its_old_day_in_matomo_daily(
    pipeline: Meltano, simulator: MatomoSimulator, database: str
) -> None:
    """With create_new_visit_after_midnight=0 a visit of yesterday takes a hit today: its day moves."""
    world = simulator.world
    now = clock.utc_now()
    yesterday = (now - timedelta(days=1)).date()
    noon = int(datetime.combine(yesterday, datetime.min.time(), UTC).timestamp()) + 12 * 3600
    moved = world.add_visit(1, noon, n_actions=2)  # site 1 is UTC
    pipeline.env["TAP_MATOMO_LOOKBACK_MINUTES"] = str((int(now.timestamp()) - noon) // 60 + 60)
    assert pipeline.run(*JOB).returncode == 0
    assert query(database, "SELECT site_day FROM matomo_visits WHERE idvisit = %s", moved.idvisit) == [(yesterday,)]

    # An hour later (every load so far moved back an hour), the hourly job as usual, twice: a new visit on
    # another site, then the moved visit's hit. The day it leaves has no other visit loaded since (dbt's
    # reload overlap reads the previous run's loads again).
    an_hour_ago(database)
    pipeline.env.pop("TAP_MATOMO_LOOKBACK_MINUTES")
    world.add_visit(2, int(now.timestamp()) - 120, n_actions=1)
    assert pipeline.run(*JOB).returncode == 0
    world.grow_visit(moved.idvisit, int(now.timestamp()) - 60, n_actions=1)  # today
    done = pipeline.run(*JOB)
    assert done.returncode == 0, done.stderr[-3000:]
    assert query(database, "SELECT site_day FROM matomo_visits WHERE idvisit = %s", moved.idvisit) == [(now.date(),)]
    recomputed = query(
        database,
        "SELECT idsite, site_day, count(*), sum(actions) FROM matomo_visits GROUP BY 1, 2 ORDER BY 1, 2",
    )
    assert query(database, "SELECT idsite, site_day, nb_visits, nb_actions FROM matomo_daily ORDER BY 1, 2") == (
        recomputed
    )


#: target-postgres-matomo's lock around table set-up (sink.DDL_LOCK_KEY, in the loader's own venv).
LOADER_DDL_LOCK = "tap-matomo loader ddl"


def raw_visit_rows(database: str, idvisit: int) -> list[dict]:
    """A visit's raw rows as the loader takes them (the loader's own `_sdc_*` columns left out)."""
    return [
        {k: v for k, v in row.items() if not k.startswith("_sdc_")}
        for (row,) in query(
            database,
            "SELECT row_to_json(r) FROM matomo_raw.visits_actions r WHERE idvisit = %s ORDER BY action_id",
            idvisit,
        )
    ]


def start_loader(database: str, tmp_path: Path, name: str) -> subprocess.Popen[str]:
    """The project's loader as meltano.yml configures it, reading Singer messages from a pipe."""
    config = tmp_path / f"{name}.json"
    loader_config = {
        "sqlalchemy_url": "postgresql+psycopg://",
        "default_target_schema": "matomo_raw",
        "load_method": "upsert",
        "add_record_metadata": True,
        "use_copy": True,
        "validate_records": False,
    }
    config.write_text(json.dumps(loader_config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"PGDATABASE": database, "PGTZ": "UTC"}
    return subprocess.Popen(
        [LOADER, "--config", str(config)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        text=True,
    )


def test_two_loads_of_one_visit_at_once_leave_the_newer_extraction_whole(
    pipeline: Meltano, database: str, tmp_path: Path
) -> None:
    """The hourly job and the reconcile (or a retried shard) load one visit at the same time: the load
    that started first (the older extraction, one action longer) commits last."""
    (idvisit,) = query(database, "SELECT idvisit FROM matomo GROUP BY idvisit HAVING count(*) >= 2 LIMIT 1")[0]
    rows = raw_visit_rows(database, idvisit)
    newer = [{**row, "visitduration": 222} for row in rows]
    extra = {**rows[-1], "action_id": f"{idvisit}_{len(rows)}", "action_position": len(rows)}
    older = [{**row, "visitduration": 111} for row in [*rows, extra]]
    schema = {"type": "SCHEMA", "stream": "visits_actions", "schema": VISITS_ACTIONS, "key_properties": ["action_id"]}

    def messages(records: list[dict]) -> str:
        lines = [
            json.dumps(schema),
            *(json.dumps({"type": "RECORD", "stream": "visits_actions", "record": r}) for r in records),
        ]
        return "\n".join(lines) + "\n"

    # The first loader starts (its sync start is taken as it starts) and sets up its table under the
    # loaders' DDL lock, held here until it waits for it: then it has started, before the second.
    with psycopg.connect(database, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(hashtext(%s))", (LOADER_DDL_LOCK,))
        first = start_loader(database, tmp_path, "older")
        assert first.stdin is not None
        first.stdin.write(json.dumps(schema) + "\n")
        first.stdin.flush()
        waiting = "select count(*) from pg_locks where locktype = 'advisory' and not granted"
        while holder.execute(waiting).fetchone() != (1,):
            assert first.poll() is None, "the first loader ended early"
            time.sleep(0.05)
    second = start_loader(database, tmp_path, "newer")
    _, second_log = second.communicate(messages(newer), timeout=120)
    assert second.returncode == 0, second_log[-2000:]
    _, first_log = first.communicate(messages(older).split("\n", 1)[1], timeout=120)
    assert first.returncode == 0, first_log[-2000:]

    done = pipeline.run("run", "dbt-postgres:build")
    assert done.returncode == 0, done.stderr[-3000:]
    landed = query(database, "SELECT action_id, visitduration FROM matomo WHERE idvisit = %s ORDER BY 1", idvisit)
    assert landed == [(row["action_id"], 222) for row in newer]
