"""The column registry (tap_matomo/columns.py) is the one declaration: schema, dbt staging and docs follow it."""

from __future__ import annotations

import re

import pytest
import yaml
from tap_matomo import columns, schemas

from devenv import generate
from tests.pipeline import ROOT

pytestmark = pytest.mark.unit

STAGING = ROOT / "transform" / "models" / "staging" / "stg_matomo__visits_actions.sql"
VISITS_MART = ROOT / "transform" / "models" / "marts" / "matomo_visits.sql"
# What the staging model adds to the registry's columns.
STAGING_EXTRA = [("sync_started_at", "bigint"), ("loaded_at", "timestamptz")]


def staging_columns() -> list[tuple[str, str]]:
    """(name, type) of each `<expression>::<type> as <name>` (or `to_jsonb(...) as <name>`) of the staging select."""
    found = []
    final_select = STAGING.read_text().rsplit("\nselect\n", 1)[-1]
    for line in final_select.splitlines():
        match = re.match(r"^\s+(?P<expr>.+?)\s+as\s+(?P<name>\w+),?$", line)
        if not match or line.strip().startswith("--"):
            continue
        expr = match["expr"]
        cast = re.search(r"::(\w+)$", expr)
        sql_type = "jsonb" if expr.startswith("to_jsonb(") else cast[1] if cast else "?"
        found.append((match["name"], sql_type))
    return found


def test_the_schema_is_the_registry_in_order() -> None:
    assert list(schemas.VISITS_ACTIONS["properties"]) == [c.name for c in columns.VISITS_ACTIONS]
    assert schemas.VISITS_ACTIONS["required"] == list(columns.REQUIRED)
    integer_types = {"integer", "bigint"}
    for column in columns.VISITS_ACTIONS:
        json_type = schemas.VISITS_ACTIONS["properties"][column.name]["type"]
        if column.sql_type in integer_types:
            assert "integer" in json_type, column.name


def test_the_staging_model_casts_every_registry_column_to_its_type() -> None:
    expected = [(c.name, c.sql_type) for c in columns.VISITS_ACTIONS] + STAGING_EXTRA
    assert staging_columns() == expected


def test_the_visits_mart_repeats_only_visit_columns_of_the_registry() -> None:
    repeated = re.findall(r"min\((\w+)\) as (\w+)", VISITS_MART.read_text())
    visit_columns = {c.name for c in columns.VISITS_ACTIONS if c.scope == "visit"}
    plain = [source for source, alias in repeated if source == alias]
    assert plain
    assert set(plain) <= visit_columns


def test_the_number_of_dimension_columns_is_declared_once() -> None:
    names = [c.name for c in columns.VISITS_ACTIONS if re.fullmatch(r"dimension\d+", c.name)]
    assert tuple(names) == columns.DIMENSION_NAMES
    assert len(names) == columns.DIMENSION_SLOTS


def test_the_dbt_docs_of_the_main_tables_follow_the_registry() -> None:
    """transform/models/marts/_matomo.yml is what devenv/generate.py makes of the registry."""
    assert generate.main(["--check"]) == 0
    documented = {c["name"] for c in yaml.safe_load(generate.marts_yaml())["models"][0]["columns"]}
    assert documented == {c.name for c in columns.VISITS_ACTIONS} | {"loaded_at"}
