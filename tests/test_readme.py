"""Every shell block of README.md, tap-matomo/README.md and docs/ works as written: each runs, in order, in
a copy of the repository, against the simulator and a local PostgreSQL standing in for the examples'
Matomo and database. A block preceded by `<!-- readme-test: skip (reason) -->` is left out, with its
reason; one marked `<!-- readme-test: run with its own services -->` runs without them (`make demo` starts
its own).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from matomo_orchestrate.meltano import isolated_sys_dir
from matomo_simulator import MatomoSimulator, World
from tap_matomo import clock

from devenv.net import free_port
from devenv.postgres import LocalPostgres
from tests.conftest import TOKENS, new_database
from tests.helpers import TOKEN
from tests.pipeline import ROOT

DOCUMENTS = [ROOT / "README.md", ROOT / "tap-matomo" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<mark>[^\n]*?) -->\n)?```sh\n(?P<body>.*?)\n```", re.DOTALL)
#: What the examples name, and what stands in for it here.
EXAMPLE_URL = "https://matomo.example.org"
EXAMPLE_TOKEN = "your-token-auth"
EXAMPLE_DATABASE = "postgres://matomo:secret@db.example.org:5432/analytics?sslmode=require"
EXAMPLE_CLONE = "/path/to/tap-matomo"


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    mark: str
    body: str

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def shell_blocks() -> list[Block]:
    found = []
    for document in DOCUMENTS:
        text = document.read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("body"))
            found.append(Block(document, line, (match["mark"] or "run").strip(), match["body"]))
    return found


BLOCKS = shell_blocks()


@dataclass
class Stage:
    """A copy of the repository (sharing the installed venvs), and who stands in for the examples."""

    folder: Path
    env: dict[str, str]
    substitutions: dict[str, str]


def copy_of_the_repository(folder: Path) -> Path:
    """The tracked files, timestamps kept (so `make` finds everything installed), the venvs shared."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        source, target = ROOT / name, folder / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (folder / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    isolated_sys_dir(folder / ".meltano", ROOT)  # the installed plugins; state and run files of its own
    shutil.copy2(ROOT / ".meltano" / ".installed", folder / ".meltano" / ".installed")
    return folder


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory, postgres: LocalPostgres) -> Iterator[Stage]:
    world = World(seed=31)
    now = clock.utc_now()
    world.generate(now - timedelta(days=1), now - timedelta(minutes=1), visits_per_day=30)
    folder = copy_of_the_repository(tmp_path_factory.mktemp("readme") / "tap-matomo")
    # The copy shares the installed venvs: were they out of date, `make` in the copy would reinstall the
    # project's packages from the copy, into the venvs of the repository.
    if subprocess.run(["make", "-q", "install"], cwd=folder, check=False).returncode != 0:
        pytest.fail("the venvs are not up to date: run `make install` first")
    with MatomoSimulator(world, TOKENS) as sim, new_database(postgres) as database:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TAP_", "TARGET_", "PG", "DBT_"))}
        env |= {
            "PATH": f"{folder / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "DEMO_PG_PORT": str(free_port()),
            "TAP_MATOMO_RETRY_BACKOFF_MS": "50",
        }
        substitutions = {
            EXAMPLE_DATABASE: database,
            EXAMPLE_URL: sim.url,
            EXAMPLE_TOKEN: TOKEN,
            EXAMPLE_CLONE: str(folder),
        }
        yield Stage(folder, env, substitutions)
        demo = folder / ".local" / "pgdata"
        if demo.exists():
            LocalPostgres(demo, int(env["DEMO_PG_PORT"])).remove()


def runnable(block: Block) -> t.Any:
    if block.mark.startswith("skip"):
        return pytest.param(block, id=block.name, marks=pytest.mark.skip(reason=block.mark))
    return pytest.param(block, id=block.name)


@pytest.mark.parametrize("block", [runnable(block) for block in BLOCKS])
def test_the_block_works_as_written(stage: Stage, block: Block) -> None:
    script = block.body
    for example, stand_in in stage.substitutions.items():
        script = script.replace(example, stand_in)
    env = dict(stage.env)
    if "its own services" not in block.mark:
        env |= {"MATOMO_URL": stage.substitutions[EXAMPLE_URL], "MATOMO_KEY": TOKEN}
        env["PGDATABASE"] = stage.substitutions[EXAMPLE_DATABASE]
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=stage.folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{block.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-4000:]}"
    assert TOKEN not in done.stderr


def test_every_document_has_its_blocks_found() -> None:
    """The parser sees the blocks: a change of fence or marker would otherwise skip them silently."""
    names = [block.name for block in BLOCKS]
    assert any(name.startswith("README.md") for name in names)
    assert any(name.startswith("docs/reconcile.md") for name in names)
    assert all(block.mark == "run" or block.mark.startswith(("skip (", "run with")) for block in BLOCKS)


def test_the_standalone_recipe_keeps_the_first_runs_rows_and_leaves_the_clone_clean(stage: Stage) -> None:
    """After the README's blocks (run before this test, in order): the CSV target's second run (nothing new)
    left the first run's rows where they were (with one file per stream, the target's default, it replaced
    them with a header), the token's file is the user's alone, and nothing of the recipe is in the clone."""
    alone = stage.folder.parent / "matomo-alone"
    if not alone.exists():
        pytest.skip("the README's blocks did not run in this session")
    files = sorted((alone / "csv").glob("visits_actions-*.csv"))
    assert len(files) == 2, files  # a file per run
    assert len(files[0].read_text().splitlines()) > 1, "the first run's rows are gone"
    assert (alone / "tap.json").stat().st_mode & 0o777 == 0o600
    assert (alone / "state.json").read_text().strip()
    names = ("tap.json", "target.json", "state.json", "csv", ".venv-alone")
    left = [name for name in names if (stage.folder / name).exists()]
    assert not left, left
