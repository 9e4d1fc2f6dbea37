"""What the project relies on in code it does not own, checked against the pinned releases, so that an
upgrade that changes it fails here, by name, rather than silently:

- the members of MeltanoLabs' target-postgres that target-postgres-matomo overrides or calls (an upgrade
  that renames, reorders or removes one would make a load take upstream's path, or break);
- the two Singer SDK log lines the tap keeps out of a run's log (tap_matomo/quiet.py matches their
  wording: a new wording would let them through, or a filter that matches nothing would stay).
"""

from __future__ import annotations

import json
import logging
import subprocess
import textwrap
from datetime import timedelta

import pytest
from matomo_simulator import Fault, MatomoSimulator, World
from tap_matomo import clock
from tap_matomo.quiet import QuietWhenExpected
from tap_matomo.tap import TapMatomo

from tests.helpers import TOKEN
from tests.pipeline import ROOT

LOADER_PYTHON = ROOT / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin" / "python"

#: member -> its parameters (methods) or "property": what sink.py and target.py rely on.
CONTRACT = {
    "target_postgres.sinks.PostgresSink.setup": ["self"],
    "target_postgres.sinks.PostgresSink.process_batch": ["self", "context"],
    "target_postgres.sinks.PostgresSink.upsert": [
        "self",
        "from_table",
        "to_table",
        "schema",
        "join_keys",
        "connection",
    ],
    "target_postgres.sinks.PostgresSink.bulk_insert_records": [
        "self",
        "table",
        "schema",
        "records",
        "primary_keys",
        "connection",
    ],
    "target_postgres.sinks.PostgresSink.column_representation": ["self", "schema"],
    "target_postgres.sinks.PostgresSink.generate_copy_statement": ["self", "full_table_name", "columns"],
    "target_postgres.sinks.PostgresSink.process_batch_files": ["self", "encoding", "files"],
    "target_postgres.sinks.PostgresSink.append_only": "property",
    "target_postgres.sinks.PostgresSink.schema_name": "property",
    "target_postgres.sinks.PostgresSink.table_name": "property",
    "target_postgres.sinks.PostgresSink.key_properties": "property",
    "target_postgres.sinks.PostgresSink.include_sdc_metadata_properties": "property",
    "target_postgres.sinks.PostgresSink.record_counter_metric": "property",
    "target_postgres.sinks.PostgresSink.connector": "property",
    "target_postgres.connector.PostgresConnector.create_engine": ["self"],
    "target_postgres.connector.PostgresConnector.sanitize_null_text_characters": "property",
    "target_postgres.target.TargetPostgres.message_reader_class": "attribute",
    "target_postgres.target.TargetPostgres.default_sink_class": "attribute",
    "target_postgres.target.TargetPostgres.cli": "attribute",
}

#: Run in the loader's own venv (target-postgres is installed there only): each member's shape.
PROBE = textwrap.dedent(
    """
    import functools, importlib, inspect, json, sys
    found = {}
    for path in json.load(sys.stdin):
        module, owner, name = path.rsplit(".", 2)
        cls = getattr(importlib.import_module(module), owner)
        static = inspect.getattr_static(cls, name, None)
        if static is None:
            found[path] = None
        elif isinstance(static, (property, functools.cached_property)):
            found[path] = "property"
        elif inspect.isfunction(static):
            found[path] = list(inspect.signature(static).parameters)
        else:
            found[path] = "attribute"
    print(json.dumps(found))
    """
)


def test_every_upstream_member_the_loader_touches_has_the_shape_it_relies_on() -> None:
    done = subprocess.run(
        [str(LOADER_PYTHON), "-c", PROBE],
        input=json.dumps(list(CONTRACT)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    changed = {member: (expected, found[member]) for member, expected in CONTRACT.items() if found[member] != expected}
    assert changed == {}, f"target-postgres changed what the loader relies on (expected, found): {changed}"


def test_the_sdk_still_logs_the_two_lines_the_tap_keeps_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    dropped: list[str] = []
    keeps = QuietWhenExpected.filter

    def recording(self: QuietWhenExpected, record: logging.LogRecord) -> bool:
        kept = keeps(self, record)
        if not kept:
            dropped.append(record.getMessage())
        return kept

    monkeypatch.setattr(QuietWhenExpected, "filter", recording)
    world = World(seed=3)
    world.sites = {1: world.sites[1]}
    world.add_visit(1, int((clock.utc_now() - timedelta(hours=2)).timestamp()))
    config = {"token_auth": TOKEN, "site_ids": [1], "reports": [], "max_retries": 0}
    with MatomoSimulator(world, {TOKEN: None}) as sim:
        TapMatomo(config={**config, "url": sim.url}).sync_all()
        sim.inject(Fault("status", times=9, status=500))  # a failure the tap reports in one line
        with pytest.raises(Exception, match="HTTP 500"):
            TapMatomo(config={**config, "url": sim.url}).sync_all()
    assert any(m.startswith("Stream is assumed to be unsorted") for m in dropped), dropped
    assert any(m.startswith("An unhandled error occurred while syncing 'visits_actions'") for m in dropped), dropped
