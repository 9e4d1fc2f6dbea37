"""Who may import what, and how long a module may grow: the orchestration uses the tap through its entry point
only, the tap's two halves (raw log, reports) do not import each other, nothing uses Dagster's private modules,
the code location does no work when it is imported, and the modules and functions of the tap, the simulator,
the benchmarks and the dashboards stay short (a test per rule, failing on a violation)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import without_meltano_or_dbt
from tests.pipeline import ROOT

#: What orchestrate/ may import of the tap: the Tap class (its CLI's entry point, what Meltano runs).
TAP_ENTRY_POINTS = {"tap_matomo.tap"}
PYTHON_FOLDERS = [
    "orchestrate",
    "tap-matomo",
    "target-postgres-matomo",
    "pg-url",
    "matomo-simulator",
    "devenv",
    "dashboards",
]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports (`import a.b`, `from a.b import c`), at any depth of the file."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


def python_files(*folders: str) -> list[Path]:
    return [
        path
        for folder in folders
        for path in sorted((ROOT / folder).rglob("*.py"))
        if not {"build", ".venv"} & set(path.relative_to(ROOT).parts)
    ]


@pytest.mark.unit
def test_the_orchestration_imports_the_tap_by_its_entry_point_only() -> None:
    found = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files("orchestrate")
        for module in imported_modules(path)
        if module.split(".")[0] == "tap_matomo" and module not in TAP_ENTRY_POINTS
    }
    assert not found, sorted(found)


@pytest.mark.unit
def test_nothing_imports_dagsters_private_modules() -> None:
    found = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files(*PYTHON_FOLDERS, "tests", "benchmarks")
        for module in imported_modules(path)
        if module.split(".")[0].startswith("dagster") and any(part.startswith("_") for part in module.split(".")[1:])
    }
    assert not found, sorted(found)


@pytest.mark.unit
def test_importing_the_code_location_starts_no_process() -> None:
    """Under `dg dev` the definitions write dbt's manifest (`dbt parse` through Meltano): when Dagster loads the
    location, not when its module is imported (by a step's process, a test, a tool). (A library's own
    `file -b` at import is not the location's work: only Meltano and dbt are refused.)"""
    done = without_meltano_or_dbt("import matomo_orchestrate.definitions", DAGSTER_IS_DEV_CLI="1")
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.unit
@pytest.mark.parametrize(("half", "other"), [("raw", "reports"), ("reports", "raw")])
def test_the_tap_halves_do_not_import_each_other(half: str, other: str) -> None:
    """The raw log (tap_matomo/raw) and the reports (tap_matomo/reports) share what sits beside them (client,
    settings, schemas, clock...), never each other's modules: either can change without reading the other."""
    found = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in sorted((ROOT / "tap-matomo" / "tap_matomo" / half).rglob("*.py"))
        for module in imported_modules(path)
        if module == f"tap_matomo.{other}" or module.startswith(f"tap_matomo.{other}.")
    }
    assert not found, sorted(found)


#: Folders whose modules stay short enough to read whole: at most MODULE_LINES lines, functions FUNCTION_LINES.
SHORT_MODULE_FOLDERS = [
    "tap-matomo/tap_matomo",
    "matomo-simulator/matomo_simulator",
    "benchmarks",
    "dashboards/matomo_dashboards",
]
MODULE_LINES, FUNCTION_LINES = 300, 50


@pytest.mark.unit
def test_modules_and_functions_stay_short() -> None:
    too_long = []
    for path in python_files(*SHORT_MODULE_FOLDERS):
        text = path.read_text()
        if len(text.splitlines()) > MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, too_long
