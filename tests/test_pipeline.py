"""`meltano run tap-matomo target-postgres` against the simulator, into a real PostgreSQL."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from matomo_simulator import MatomoSimulator
from matomo_simulator.render import render_visit
from psycopg import sql
from tap_matomo import clock

from devenv.postgres import LocalPostgres
from tests.conftest import TOKENS, LoadedProject, new_database, project_meltano, three_day_world
from tests.helpers import TOKEN
from tests.pipeline import ROOT, Meltano, raw_actions, small_batches

RUN = ("run", "tap-matomo", "target-postgres")


@pytest.fixture(scope="module")
def loaded(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> LoadedProject:
    return LoadedProject.load(postgres, tmp_path_factory.mktemp("loaded"), three_day_world(), {}, *RUN)


@pytest.fixture
def loaded_meltano(loaded: LoadedProject, postgres: LocalPostgres, tmp_path: Path) -> Iterator[Meltano]:
    """The project after one good run: this test's own copy of the database, the state and the world."""
    loaded.copy_state_to(tmp_path / "meltano.db")
    with MatomoSimulator(loaded.world.clone(), TOKENS) as sim, new_database(postgres, loaded.template) as url:
        yield project_meltano(sim.url, url, tmp_path / "meltano.db")


def test_env_only_run_lands_exactly_the_truth(meltano: Meltano, simulator: MatomoSimulator, database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:  # a server whose sessions default to another zone
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET timezone = 'Asia/Kolkata'").format(
                sql.Identifier(database.rsplit("/", 1)[1])
            )
        )
    meltano.env["MATOMO_SITE"] = "1,3"
    done = meltano.run(*RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    truth = {**simulator.world.truth(1), **simulator.world.truth(3)}
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT action_id, action_timestamp FROM matomo_raw.visits_actions").fetchall()
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'matomo_raw' AND table_name = 'visits_actions'"
            ).fetchall()
        )
        assert conn.execute("SELECT count(*) FROM matomo_raw.sites").fetchone()[0] == 2
    assert len(rows) == len(truth)
    assert {r[0] for r in rows} == set(truth)
    # UTC instants land unshifted although the server's sessions default to another zone.
    assert all(ts.replace(tzinfo=UTC).isoformat() == truth[action_id]["action_timestamp"] for action_id, ts in rows)
    assert types["idvisit"] == "bigint"
    assert types["_sdc_extracted_at"].startswith("timestamp")


def test_rerun_keeps_no_duplicates_and_updates_grown_visits(
    meltano: Meltano, simulator: MatomoSimulator, database: str
) -> None:
    assert meltano.run(*RUN).returncode == 0
    first = raw_actions(database)
    again = meltano.run(*RUN)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(raw_actions(database)) == sorted(first)
    bookmarks = meltano.bookmarks()
    assert set(bookmarks) == {1, 2, 3, 4}
    assert all(bookmarks.values())

    world = simulator.world
    now = int(clock.utc_now().timestamp())
    new = world.add_visit(1, now - 10)
    grown = max((v for v in world.visits.values() if v.idsite == 2), key=lambda v: v.last_action)
    world.grow_visit(grown.idvisit, now - 200, n_actions=2)
    third = meltano.run(*RUN)
    assert third.returncode == 0, third.stderr[-3000:]
    rows = raw_actions(database)
    ids = Counter(r[0] for r in rows)
    assert max(ids.values()) == 1
    assert set(ids) == set(world.truth())
    expected = render_visit(world, grown)
    grown_rows = [r for r in rows if r[1] == grown.idvisit]
    assert len(grown_rows) == len(expected["actionDetails"])
    assert {(r[2], r[3]) for r in grown_rows} == {(expected["actions"], expected["visitDuration"])}
    assert any(r[1] == new.idvisit for r in rows)
    assert meltano.bookmarks()[1] > bookmarks[1]


def test_kill_9_mid_load_then_rerun_completes(
    meltano: Meltano, simulator: MatomoSimulator, database: str, tmp_path: Path
) -> None:
    meltano.env |= small_batches(tmp_path / "batches", 200)  # commit while the run goes on
    slow_calls = []

    def slow_after_a_few_pages(sim: MatomoSimulator, params: dict[str, str]) -> None:
        slow_calls.append(1)
        if len(slow_calls) > 12:
            time.sleep(0.5)

    simulator.before_live_request.append(slow_after_a_few_pages)
    meltano.env["TAP_MATOMO_PAGE_SIZE"] = "10"
    process = meltano.popen(*RUN)
    deadline = time.monotonic() + 120
    landed = 0
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
        try:
            landed = len(raw_actions(database))
        except psycopg.errors.UndefinedTable:
            continue
        if landed:
            break
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert 0 < landed < len(simulator.world.truth())

    simulator.before_live_request.clear()
    # Meltano still sees the killed run as running (no heartbeat for 5 minutes yet): --force.
    done = meltano.run(*RUN, "--force")
    assert done.returncode == 0, done.stderr[-3000:]
    ids = Counter(r[0] for r in raw_actions(database))
    assert max(ids.values()) == 1
    assert set(ids) == set(simulator.world.truth())


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"MATOMO_KEY": "wrong-token-123"}, "Matomo rejected token_auth"),
        ({"MATOMO_SITE": "99"}, "site_ids: site 99 is unknown or token_auth has no view access"),
        ({"MATOMO_URL": "http://127.0.0.1:9"}, "cannot reach Matomo at http://127.0.0.1:9"),
        (
            {"PGDATABASE": "postgresql://postgres@127.0.0.1:9/nowhere"},
            "target-postgres failed: PostgreSQL (PGDATABASE, or PGHOST, PGPORT, PGUSER, PGPASSWORD): "
            'connection failed: connection to server at "127.0.0.1", port 9 failed: Connection refused',
        ),
        ({"MATOMO_URL": "matomo.example.org"}, "url: 'matomo.example.org' must start with https:// (or http://)"),
    ],
    ids=["wrong-token", "unknown-site", "unreachable-url", "unreachable-database", "url-without-scheme"],
)
def test_bad_settings_fail_fast_with_one_clear_line_and_keep_the_state(
    loaded_meltano: Meltano, env: dict[str, str], expected: str
) -> None:
    meltano = loaded_meltano  # after a good run
    bookmarks = meltano.state()["singer_state"]["bookmarks"]["visits_actions"]
    meltano.env.update(env)
    done = meltano.run(*RUN)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert output.count("Retrying in") <= 1, "fails fast: at most one retry"
    assert expected in output, output[-3000:]
    assert "wrong-token-123" not in output
    meltano.env = {k: v for k, v in meltano.env.items() if k not in env}
    assert meltano.state()["singer_state"]["bookmarks"]["visits_actions"] == bookmarks


def test_a_wrong_token_on_a_first_run_is_said_once(meltano: Meltano, simulator: MatomoSimulator) -> None:
    """A new project (no catalog yet: Meltano discovers first) with a wrong token: the reason once, no raw JSON."""
    meltano.env |= {"MATOMO_KEY": "wrong-token-123", "MATOMO_SITE": "1"}
    meltano.env.pop("TAP_MATOMO_REPORTS")  # the default reports: discovery asks Matomo for their metadata
    done = meltano.run(*RUN)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert output.count("Matomo rejected token_auth") == 1, output[-3000:]
    assert '{"level"' not in output
    assert "wrong-token-123" not in output


def test_standalone_tap_into_another_singer_target(simulator: MatomoSimulator, tmp_path: Path) -> None:
    """The tap is a plain Singer tap: piped into MeltanoLabs' target-csv, outside Meltano."""
    tap = ROOT / ".meltano/extractors/tap-matomo/venv/bin/tap-matomo"
    target = ROOT / ".meltano/loaders/target-csv/venv/bin/target-csv"
    (tmp_path / "tap.json").write_text(json.dumps({"url": simulator.url, "token_auth": TOKEN, "site_ids": [3]}))
    (tmp_path / "target.json").write_text(json.dumps({"output_path": str(tmp_path / "out")}))
    pipeline = f"'{tap}' --config '{tmp_path / 'tap.json'}' | '{target}' --config '{tmp_path / 'target.json'}'"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    csv_file = next((tmp_path / "out").glob("visits_actions*.csv"))
    lines = csv_file.read_text().splitlines()
    assert len(lines) - 1 == len(simulator.world.truth(3))


PASSWORD = "p@ss:w/rd% #?"  # every character that must be percent-encoded in a URL


@pytest.fixture
def password_role(postgres: LocalPostgres, database: str) -> str:
    """A role that must give its password (scram-sha-256 on 127.0.0.1), owner of `database`."""
    role = f"pw_{database.rsplit('_', 1)[1]}"
    hba = postgres.data_dir / "pg_hba.conf"
    hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())  # first match wins
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(PASSWORD)))
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(database.rsplit("/", 1)[1]), sql.Identifier(role)
            )
        )
        conn.execute("SELECT pg_reload_conf()")
    return role


def test_pgdatabase_as_a_postgres_url_with_an_encoded_password_reaches_loader_and_dbt(
    meltano: Meltano, simulator: MatomoSimulator, database: str, password_role: str
) -> None:
    host_port, name = database.split("@", 1)[1].split("/", 1)
    url = f"postgres://{password_role}:{quote(PASSWORD, safe='')}@{host_port}/{name}"
    meltano.env |= {"MATOMO_SITE": "1", "PGDATABASE": f"{url}?sslmode=disable&application_name=tap-matomo-test"}
    done = meltano.run("run", "tap-matomo", "target-postgres", "dbt-postgres:run")
    assert done.returncode == 0, done.stderr[-3000:]
    assert PASSWORD not in done.stdout + done.stderr
    with psycopg.connect(database) as conn:
        owners = dict(
            conn.execute(
                "SELECT tablename, tableowner FROM pg_tables WHERE tablename IN ('visits_actions', 'matomo')"
            ).fetchall()
        )
        assert conn.execute("SELECT count(*) FROM matomo").fetchall() == [(len(simulator.world.truth(1)),)]
    assert owners == {"visits_actions": password_role, "matomo": password_role}  # both connected as the URL's user

    # sslmode from the URL reaches both: this server has no SSL, so `require` must fail in each.
    meltano.env["PGDATABASE"] = f"{url}?sslmode=require"
    for command in (("invoke", "dbt-postgres", "debug"), ("run", "tap-matomo", "target-postgres")):
        failed = meltano.run(*command)
        assert failed.returncode != 0
        assert "server does not support SSL" in failed.stdout + failed.stderr, command


#: A log line at warning level or worse, in any of the formats a job's log mixes: Meltano's own
#: (`[warning  ]`), the SDK's (`| WARNING |`), Python's warnings (`UserWarning:`) and dbt's (`[WARN `, `Warning:`).
ALARMING = re.compile(
    r"\[(warning|error|critical)\s*\]|\|\s*(WARNING|ERROR|CRITICAL)\s*\||\w+Warning:|\[WARN\b|\bWarning:|Traceback",
    re.IGNORECASE,
)


def alarming_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.split(" ", 1)[1] for line in (done.stdout + done.stderr).splitlines() if ALARMING.search(line)]


def test_a_successful_job_logs_no_warning_or_error(meltano: Meltano, simulator: MatomoSimulator) -> None:
    first = meltano.run("run", "matomo-to-postgres")
    assert first.returncode == 0, first.stderr[-3000:]
    # Meltano's own notice on a first run, the one line it logs at warning level.
    assert alarming_lines(first) == ["[warning  ] meltano      No state was found, complete import."]
    simulator.world.add_visit(1, int(clock.utc_now().timestamp()) - 30)
    hourly = meltano.run("run", "matomo-to-postgres")
    assert hourly.returncode == 0, hourly.stderr[-3000:]
    assert alarming_lines(hourly) == []


def one_clear_line(done: subprocess.CompletedProcess[str], expected: str) -> None:
    """A failed run says why in one line, at error level, once, and only Meltano's closing lines follow it:
    no traceback, no frame boxes, no colour codes."""
    output = done.stdout + done.stderr
    assert done.returncode != 0
    lines = output.splitlines()
    said = [i for i, line in enumerate(lines) if expected in line]
    assert len(said) == 1, output[-3000:]
    assert "[error" in lines[said[0]], lines[said[0]]
    assert all(" meltano " in line for line in lines[said[0] + 1 :]), lines[said[0] :]
    assert "Traceback" not in output
    assert "Error details" not in output
    assert "\x1b[" not in output


def left_batch_files(folder: Path, seconds: float = 5.0) -> list[str]:
    """The tap's files in `folder` once they stop changing (a killed tap's watcher may still be at work)."""
    deadline = time.monotonic() + seconds
    while (left := sorted(path.name for path in folder.glob("tap-matomo--*"))) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://{role}:wrong@{server}/{name}", 'password authentication failed for user "{role}"'),
        ("postgresql://{role}:{password}@{server}/missing_db", 'database "missing_db" does not exist'),
        ("postgresql://{role}:pa@ss@{server}/{name}", "PGDATABASE: a host name holds an '@' (percent-encode"),
        ("postgresql://{role}:pa/ss@{server}/{name}", "the port of {role} is not a number from 1 to 65535"),
    ],
    ids=["wrong-password", "missing-database", "unencoded-at", "unencoded-slash"],
)
def test_database_problems_are_one_line_and_batch_files_do_not_pile_up(
    meltano: Meltano, database: str, password_role: str, tmp_path: Path, url: str, expected: str
) -> None:
    server, name = database.split("@", 1)[1].split("/", 1)
    values = {"role": password_role, "password": quote(PASSWORD, safe=""), "server": server, "name": name}
    batches = tmp_path / "batches"
    meltano.env |= small_batches(batches, 10_000) | {"MATOMO_SITE": "1", "PGDATABASE": url.format(**values)}
    done = meltano.run("run", "matomo-to-postgres")
    one_clear_line(done, expected.format(**values))
    assert "wrong" not in done.stdout + done.stderr.replace("password authentication failed", "")
    assert PASSWORD not in done.stdout + done.stderr

    # The files nothing will load are gone: those the loader was told of (it removes them as it fails) and
    # those the tap wrote until Meltano killed it (its watcher removes them).
    assert not left_batch_files(batches), "the files of a run that cannot be loaded stay"

    # What a machine crash leaves (no process lived to remove it) the next run removes, once older than a live
    # run's files ever get (a finished tap's files may still be loading).
    batches.mkdir(exist_ok=True)
    left = [batches / f"tap-matomo--0123456789abcdef--visits_actions-0123abcd-{n}.jsonl" for n in (1, 2)]
    for path in left:
        path.write_text("{}\n")
        os.utime(path, (time.time() - 7 * 3600,) * 2)
    meltano.env["PGDATABASE"] = f"postgresql://postgres@{server}/{name}"
    again = meltano.run("run", "tap-matomo", "target-postgres")
    assert again.returncode == 0, again.stderr[-3000:]
    assert not any(path.exists() for path in left)
    assert f"Removed {len(left)} batch files older than 6:00:00 that earlier runs left unread" in again.stderr


def test_a_database_that_refuses_stops_the_run_in_seconds_with_one_line(
    meltano: Meltano, simulator: MatomoSimulator, database: str, password_role: str, tmp_path: Path
) -> None:
    """A wrong password, as a new user types it, while the tap is still extracting (a slow Matomo): the run
    ends within seconds of the loader's failure, says why once, at error level, among its last lines."""
    simulator.live_latency = 1.0
    server, name = database.split("@", 1)[1].split("/", 1)
    meltano.env |= small_batches(tmp_path / "batches", 200) | {
        "PGDATABASE": f"postgresql://{password_role}:wrong@{server}/{name}",
        "TAP_MATOMO_PAGE_SIZE": "10",
        "TAP_MATOMO_MAX_PARALLEL_REQUESTS": "2",
    }
    done = meltano.run("run", "matomo-to-postgres")
    lines = (done.stdout + done.stderr).splitlines()
    assert done.returncode != 0
    said = [i for i, line in enumerate(lines) if "password authentication failed for user" in line]
    assert len(said) == 1, lines[-20:]
    assert "[error" in lines[said[0]]
    # After it: Meltano's closing lines, and at most what the tap logged in the instant before Meltano
    # stopped it (its lines are read apart from the loader's, so one in flight can be printed after).
    after = lines[said[0] + 1 :]
    in_flight = list(itertools.takewhile(lambda line: " meltano " not in line, after))
    assert all(" tap-matomo " in line and "[info" in line for line in in_flight), after
    assert all(" meltano " in line for line in after[len(in_flight) :]), after
    assert not [line for line in lines if "Traceback" in line or "BrokenPipeError" in line]
    failed_at = datetime.fromisoformat(lines[said[0]].split(" ", 1)[0])
    ended_at = datetime.fromisoformat(lines[-1].split(" ", 1)[0])
    assert ended_at - failed_at < timedelta(seconds=5)
    unread = [line for line in lines if "site 4 " in line and "actions emitted" in line]
    assert not unread, "the tap went on extracting after the loader failed"
    assert len(lines) <= 60, len(lines)
    assert not left_batch_files(tmp_path / "batches"), "the files of a run that cannot be loaded stay"
