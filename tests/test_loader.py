"""The project's loader (target-postgres-matomo/): upstream's rows and upsert, through its faster paths."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
from matomo_simulator import MatomoSimulator
from psycopg import sql

from tests.helpers import run_tap
from tests.pipeline import LOADER

SDC = ("_sdc_extracted_at", "_sdc_received_at", "_sdc_batched_at", "_sdc_sequence", "_sdc_sync_started_at")


def load(tmp_path: Path, database: str, schema: str, messages: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / f"target-{schema}.json"
    config.write_text(
        json.dumps(
            {
                "sqlalchemy_url": database.replace("postgresql://", "postgresql+psycopg://"),
                "default_target_schema": schema,
                "load_method": "upsert",
                "add_record_metadata": True,
                "use_copy": True,
                "validate_records": False,
            }
        )
    )
    return subprocess.run(
        [LOADER, "--config", str(config)], input=messages, capture_output=True, text=True, timeout=300, check=False
    )


def rows(database: str, schema: str) -> list[tuple[object, ...]]:
    """Every column but the loader's own `_sdc_*`, action_id first, by action_id."""
    with psycopg.connect(database) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = 'visits_actions' AND column_name NOT LIKE '\\_sdc\\_%%' "
                "ORDER BY column_name <> 'action_id', column_name",
                (schema,),
            )
        ]
        columns = sql.SQL(", ").join(map(sql.Identifier, names))
        table = sql.Identifier(schema, "visits_actions")
        query = sql.SQL("SELECT {} FROM {} ORDER BY action_id").format(columns, table)
        return conn.execute(query).fetchall()


def test_batch_files_and_record_messages_load_the_same_rows_and_the_files_go(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path, database: str
) -> None:
    for folder in ("records", "batched"):
        (tmp_path / folder).mkdir()
    records = run_tap(tmp_path / "records", {**tap_config, "site_ids": [1, 2]})
    batches = tmp_path / "batches"
    batch_config = {"encoding": {"format": "jsonl-plain"}, "storage": {"root": batches.as_uri()}, "batch_size": 500}
    batched = run_tap(tmp_path / "batched", {**tap_config, "site_ids": [1, 2], "batch_config": batch_config})
    assert records.returncode == batched.returncode == 0, batched.stderr[-2000:]
    manifests = [m for m in batched.messages if m["type"] == "BATCH" and m["stream"] == "visits_actions"]
    assert len(manifests) > 1  # several files of 500 records
    assert all(Path(url.removeprefix("file://")).exists() for m in manifests for url in m["manifest"])

    for schema, run in (("from_records", records), ("from_batches", batched)):
        done = load(tmp_path, database, schema, run.stdout)
        assert done.returncode == 0, done.stderr[-3000:]
    assert list(batches.glob("*")) == []  # each file deleted once its rows were committed

    truth = set(simulator.world.truth(1)) | set(simulator.world.truth(2))
    loaded = rows(database, "from_batches")
    assert {r[0] for r in loaded} == truth
    assert loaded == rows(database, "from_records")  # every value alike, JSON and arrays included
    with psycopg.connect(database) as conn:
        for schema in ("from_records", "from_batches"):
            table = sql.Identifier(schema, "visits_actions")
            counts = sql.SQL(", ").join(sql.SQL("count({})").format(sql.Identifier(c)) for c in SDC[1:])
            found = conn.execute(sql.SQL("SELECT count(*), {} FROM {}").format(counts, table)).fetchone()
            assert found == (len(truth),) * len(SDC), (schema, found)  # the dbt models read these


def test_one_row_per_key_the_last_one_within_and_across_loads(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path, database: str
) -> None:
    run = run_tap(tmp_path, {**tap_config, "site_ids": [3]})
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith('{"type":"RECORD","stream":"visits_actions"'))
    message = json.loads(lines[first])
    key = message["record"]["action_id"]
    twice = [json.dumps({**message, "record": {**message["record"], "action_url": f"https://x/{n}"}}) for n in (1, 2)]
    once = load(tmp_path, database, "raw", "\n".join([*lines[: first + 1], *twice, *lines[first + 1 :]]))
    assert once.returncode == 0, once.stderr[-2000:]
    again = [json.dumps({**message, "record": {**message["record"], "action_url": "https://x/3"}})]
    schema_lines = [line for line in lines if line.startswith('{"type":"SCHEMA"')]
    assert load(tmp_path, database, "raw", "\n".join([*schema_lines, *again])).returncode == 0
    with psycopg.connect(database) as conn:
        found = conn.execute("SELECT action_url FROM raw.visits_actions WHERE action_id = %s", (key,)).fetchall()
        total = conn.execute("SELECT count(*), count(DISTINCT action_id) FROM raw.visits_actions").fetchone()
    assert found == [("https://x/3",)]
    assert total == (len(simulator.world.truth(3)),) * 2


def test_plain_batch_files_must_be_local(tmp_path: Path, database: str) -> None:
    schema = {
        "type": "SCHEMA",
        "stream": "s",
        "schema": {"properties": {"id": {"type": "integer"}}},
        "key_properties": ["id"],
    }
    batch = {"type": "BATCH", "stream": "s", "encoding": {"format": "jsonl-plain"}, "manifest": ["s3://b/s-1.jsonl"]}
    done = load(tmp_path, database, "raw", f"{json.dumps(schema)}\n{json.dumps(batch)}\n")
    assert done.returncode != 0
    assert "jsonl-plain batch files must be local (file://), got s3" in done.stderr
