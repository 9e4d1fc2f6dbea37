"""The dbt project (transform/) as Dagster assets: each model an asset, each data test an asset check.

dagster-dbt reads the project's manifest; the project's sources (the loader's raw tables) are the
upstream assets that raw_assets.py materializes, which gives the lineage from Matomo to every model.
dbt runs as `matomo-dbt` (dbt_cli.py: `meltano invoke dbt-postgres`), i.e. the project's own dbt,
pinned in meltano.yml and started as `dbt-pgurl`: PGDATABASE is read as the loader reads it, and a
writing dbt command waits for the one already running on the same warehouse, whoever started it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import typing as t
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg
import yaml
from dagster_dbt import DagsterDbtTranslator, DbtCliInvocation, DbtCliResource, DbtProject
from typing_extensions import override

from matomo_orchestrate.meltano import DBT_UTILITY, MeltanoProject

RAW_SOURCE = "matomo_raw"


#: Folders of the dbt project that dbt writes, not reads.
_DBT_OUTPUTS = frozenset({"target", "logs", "dbt_packages"})


def dbt_project() -> DbtProject:
    """The dbt project, its manifest written when it is missing (a deployment writes it when building its
    image) and, under `dg dev`/`dagster dev`, when a file it is parsed from changed since: every step's
    process loads the code location too, and parsed the project at each step before."""
    project = DbtProject(project_dir=MeltanoProject().root / "transform")
    manifest = project.manifest_path
    if not manifest.exists() or (project.preparer.using_dagster_dev() and changed_since(project, manifest)):
        write_manifest(project)
    return project


def changed_since(project: DbtProject, written: Path) -> bool:
    """Whether a file of the dbt project, or meltano.yml (the dbt utility's settings), is newer than `written`."""
    instant = written.stat().st_mtime
    root = Path(project.project_dir)
    if (root.parent / "meltano.yml").stat().st_mtime > instant:
        return True
    for folder, subfolders, files in os.walk(root):
        if Path(folder) == root:
            subfolders[:] = [name for name in subfolders if name not in _DBT_OUTPUTS]
        if any((Path(folder) / name).stat().st_mtime > instant for name in files):
            return True
    return False


def write_manifest(project: DbtProject) -> None:
    """`dbt parse` by the project's own dbt, through Meltano with its settings (dagster-dbt's own
    preparer would run whichever dbt is on PATH, without them)."""
    target = project.project_dir / project.target_path
    MeltanoProject().run("--log-level=warning", "invoke", DBT_UTILITY, "parse", "--quiet", "--target-path", str(target))


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


def raw_tables(manifest: Mapping[str, t.Any]) -> list[str]:
    """The raw tables the loader writes, as the dbt project's source declares them (one list, in dbt)."""
    return sorted(source["name"] for source in manifest["sources"].values() if source["source_name"] == RAW_SOURCE)


def dbt_command_args(root: Path, command: str) -> list[str]:
    """The dbt arguments of a command of the dbt utility in meltano.yml (`build`, `test-all`...)."""
    plugins = yaml.safe_load((root / "meltano.yml").read_text())["plugins"]
    utility = next(p for p in plugins.get("utilities", []) if p["name"] == DBT_UTILITY)
    commands = utility.get("commands", {})
    if command not in commands:
        msg = f"{command!r} is not a command of {DBT_UTILITY} in meltano.yml ({', '.join(commands)})"
        raise ValueError(msg)
    spec = commands[command]
    return shlex.split(spec["args"] if isinstance(spec, dict) else spec)


def dbt_resource(project: DbtProject) -> DbtCliResource:
    executable = shutil.which("matomo-dbt", path=str(Path(sys.executable).parent)) or "matomo-dbt"
    return DbtCliResource(project_dir=project, dbt_executable=executable)


#: PostgreSQL's command tag of a statement that changes or returns rows: `INSERT 0 1059`, `UPDATE 3`...
_COMMAND_TAG = re.compile(r"^(?:INSERT \d+|UPDATE|DELETE|MERGE|SELECT|COPY) (\d+)$")


def rows_affected(status: str) -> int | None:
    """The rows a model's last statement affected, from dbt's result status (the adapter's message)."""
    match = _COMMAND_TAG.match(status.strip())
    return int(match[1]) if match else None


def with_rows_affected(invocation: DbtCliInvocation) -> Iterator[t.Any]:
    """dagster-dbt's events for the invocation, each model's materialization with the rows its statement
    affected (new and changed rows of an incremental model), from dbt's model result event."""
    for message in invocation.stream_raw_events():
        status = (
            message.raw_event["data"].get("status") if message.raw_event["info"]["name"] == "LogModelResult" else None
        )
        rows = rows_affected(status) if isinstance(status, str) else None
        for event in message.to_default_asset_events(
            manifest=invocation.manifest,
            dagster_dbt_translator=invocation.dagster_dbt_translator,
            context=invocation.context,
            target_path=invocation.target_path,
            project=invocation.project,
        ):
            if isinstance(event, dg.Output) and rows is not None:
                event = event.with_metadata({**event.metadata, "rows_affected": rows})
            yield event
