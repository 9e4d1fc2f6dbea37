"""The dbt project (transform/) as Dagster assets: each model an asset, each data test an asset check.

dagster-dbt reads the project's manifest; the project's sources (the loader's raw tables) are the
upstream assets that raw_assets.py materializes, which gives the lineage from Matomo to every model.
dbt runs as `matomo-dbt` (dbt_cli.py: `meltano invoke dbt-postgres`), i.e. the project's own dbt,
pinned in meltano.yml and started as `dbt-pgurl`: PGDATABASE is read as the loader reads it, and a
writing dbt command waits for the one already running on the same warehouse, whoever started it.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import typing as t
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg
import yaml
from dagster_dbt import DagsterDbtTranslator, DbtCliInvocation, DbtCliResource, DbtProject, DbtProjectPreparer
from tap_matomo.compat import override

from matomo_orchestrate.meltano import MeltanoProject

#: The Meltano utility that runs dbt (meltano.yml), whose `commands:` the steps run.
DBT_UTILITY = "dbt-postgres"
RAW_SOURCE = "matomo_raw"


class MeltanoDbtPreparer(DbtProjectPreparer):
    """Writes the manifest with the project's dbt (`dbt parse`) under `dagster dev`/`dg dev`, and
    whenever it is missing; a deployment can also write it when building its image."""

    @override
    def prepare_if_dev(self, project: DbtProject) -> None:
        if self.using_dagster_dev() or not project.manifest_path.exists():
            self.prepare(project)

    @override
    def prepare(self, project: DbtProject) -> None:
        meltano = MeltanoProject()
        target = project.project_dir / project.target_path
        meltano.run("--log-level=warning", "invoke", DBT_UTILITY, "parse", "--quiet", "--target-path", str(target))


def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=MeltanoProject().root / "transform", preparer=MeltanoDbtPreparer())
    project.prepare_if_dev()
    return project


class MatomoTranslator(DagsterDbtTranslator):
    """dagster-dbt's asset keys (a model by its name, a source table as [source, table]); groups by folder."""

    @override
    def get_asset_spec(self, manifest: Mapping[str, t.Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            return spec.replace_attributes(group_name=RAW_SOURCE)
        folder = props["fqn"][1] if len(props["fqn"]) > 2 else "models"
        return spec.replace_attributes(group_name=f"matomo_{folder}")


def raw_tables(project: DbtProject) -> list[str]:
    """The raw tables the loader writes, as the dbt project's source declares them (one list, in dbt)."""
    sources = json.loads(project.manifest_path.read_text())["sources"].values()
    return sorted(source["name"] for source in sources if source["source_name"] == RAW_SOURCE)


def dbt_command_args(root: Path, command: str) -> list[str]:
    """The dbt arguments of a command of the dbt utility in meltano.yml (`build`, `test-all`...)."""
    plugins = yaml.safe_load((root / "meltano.yml").read_text())["plugins"]
    utility = next(p for p in plugins.get("utilities", []) if p["name"] == DBT_UTILITY)
    commands = utility.get("commands", {})
    if command not in commands:
        msg = f"{command!r} is not a command of {DBT_UTILITY} in meltano.yml ({', '.join(commands)})"
        raise dg.DagsterInvalidConfigError(msg, [], None)
    spec = commands[command]
    return shlex.split(spec["args"] if isinstance(spec, dict) else spec)


def dbt_resource(project: DbtProject) -> DbtCliResource:
    executable = shutil.which("matomo-dbt", path=str(Path(sys.executable).parent)) or "matomo-dbt"
    return DbtCliResource(project_dir=project, dbt_executable=executable)


def with_rows_affected(invocation: DbtCliInvocation) -> Iterator[t.Any]:
    """dagster-dbt's events for the invocation, each model's materialization with the rows its statement
    affected (dbt's adapter response, `rows_affected`: new and changed rows of an incremental model).

    dbt reports a node's result (which dagster-dbt turns into the materialization) just before the
    event that carries its adapter response: each materialization waits for that event; the events
    keep their order.
    """
    waiting: list[tuple[str | None, t.Any]] = []
    rows: dict[str, int] = {}

    def ready() -> Iterator[t.Any]:
        while waiting and (waiting[0][0] is None or waiting[0][0] in rows):
            unique_id, event = waiting.pop(0)
            if unique_id is not None and rows[unique_id] >= 0:
                event = event.with_metadata({**event.metadata, "rows_affected": rows[unique_id]})
            yield event

    for message in invocation.stream_raw_events():
        data = message.raw_event.get("data", {})
        unique_id = data.get("node_info", {}).get("unique_id")
        if message.raw_event.get("info", {}).get("name") == "NodeFinished" and unique_id:
            response = data.get("run_result", {}).get("adapter_response", {})
            rows[unique_id] = int(response.get("rows_affected", -1))
        for event in message.to_default_asset_events(
            manifest=invocation.manifest,
            dagster_dbt_translator=invocation.dagster_dbt_translator,
            context=invocation.context,
            target_path=invocation.target_path,
            project=invocation.project,
        ):
            waits = isinstance(event, dg.Output) and unique_id is not None
            waiting.append((unique_id if waits else None, event))
        yield from ready()
    for unique_id, _event in waiting:  # a node without its NodeFinished event: no count, still its event
        if unique_id is not None:
            rows.setdefault(unique_id, -1)
    yield from ready()
