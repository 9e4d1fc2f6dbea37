"""The Meltano project as the ops run it: its CLI in subprocesses, one run directory per shard.

Meltano 4 keeps a run's files (config, catalog, state) in `.meltano/run/<plugin>/`, shared by
every run of a plugin in the project (meltano/meltano#8763): shards running at the same moment
would read each other's. Each shard therefore runs with a system directory of its own
(MELTANO_SYS_DIR_ROOT) whose plugin folders point at the installed ones, while the system
database (state, run records) stays the project's one: MELTANO_DATABASE_URI, or the project's
`.meltano/meltano.db`.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import typing as t
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from matomo_orchestrate.parent_death import dying_with_this_process
from matomo_orchestrate.run_report import is_error_line

#: The Meltano utility that runs dbt (meltano.yml), whose `commands:` the dbt steps run.
DBT_UTILITY = "dbt-postgres"
#: Where the shards' own system directories go (default: <project>/.meltano/shards).
SHARD_DIRS_VAR = "MATOMO_SHARD_RUN_DIR"
_PLUGIN_FOLDERS = ("extractors", "loaders", "utilities")


class MeltanoError(RuntimeError):
    """A Meltano command failed; the message is one line: the command and its last error line."""


def isolated_sys_dir(folder: Path, project: Path) -> Path:
    """A Meltano system directory of its own that shares `project`'s installed plugins."""
    folder.mkdir(parents=True, exist_ok=True)
    for kind in _PLUGIN_FOLDERS:
        link = folder / kind
        if not link.exists():
            link.symlink_to(project / ".meltano" / kind, target_is_directory=True)
    return folder


@dataclass
class MeltanoProject:
    """The project at `root`, run with `env` (the process environment by default)."""

    root: Path = field(
        default_factory=lambda: Path(os.environ.get("MELTANO_PROJECT_ROOT") or Path(__file__).parents[2])
    )
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def executable(self) -> str:
        return shutil.which("meltano", path=str(Path(sys.executable).parent)) or "meltano"

    @property
    def environment(self) -> str:
        """Meltano's active environment: MELTANO_ENVIRONMENT, else meltano.yml's default_environment."""
        if self.env.get("MELTANO_ENVIRONMENT"):
            return self.env["MELTANO_ENVIRONMENT"]
        project = yaml.safe_load((self.root / "meltano.yml").read_text())
        return str(project.get("default_environment") or "")

    @property
    def system_database(self) -> str:
        return self.env.get("MELTANO_DATABASE_URI") or f"sqlite:///{self.root / '.meltano' / 'meltano.db'}"

    def shard_dir(self, job: str, shard: str) -> Path:
        base = Path(self.env.get(SHARD_DIRS_VAR) or self.root / ".meltano" / "shards")
        return isolated_sys_dir(base / job / shard, self.root)

    def state_id(self, extractor: str, loader: str, suffix: str | None = None) -> str:
        """The state id `meltano run --state-id-suffix` gives an extract/load pair."""
        base = f"{self.environment}:{extractor}-to-{loader}" if self.environment else f"{extractor}-to-{loader}"
        return f"{base}:{suffix}" if suffix else base

    def installed_version(self, kind: str, plugin: str, package: str) -> str | None:
        """The version of `package` in the venv `meltano install` made for a plugin, read from the package's
        metadata without starting a process; None when it is not installed there."""
        sys_dir = Path(self.env.get("MELTANO_SYS_DIR_ROOT") or self.root / ".meltano")
        for site in sorted((sys_dir / kind / plugin / "venv").glob("lib/python*/site-packages")):
            for dist in importlib.metadata.distributions(name=package, path=[str(site)]):
                return dist.version
        return None

    def process_env(self, extra_env: t.Mapping[str, str] | None, sys_dir: Path | None) -> dict[str, str]:
        env = {**self.env, **(extra_env or {}), "MELTANO_DATABASE_URI": self.system_database}
        if sys_dir is not None:
            env["MELTANO_SYS_DIR_ROOT"] = str(sys_dir)
        return env

    def run(self, *args: str, extra_env: t.Mapping[str, str] | None = None, sys_dir: Path | None = None) -> None:
        """`meltano <args>`, its output echoed to this process's (an op's log in Dagster's UI).

        Raises MeltanoError with the command and its last error line when it fails.
        """
        process = subprocess.Popen(
            dying_with_this_process([self.executable, *args]),
            cwd=self.root,
            env=self.process_env(extra_env, sys_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        tail: deque[str] = deque(maxlen=40)
        for line in process.stdout:
            tail.append(line)
            sys.stdout.write(line)
            sys.stdout.flush()
        if process.wait() != 0:
            raise MeltanoError(_failure(args, process.returncode, tail))

    def _query(self, *args: str) -> str:
        """The standard output of a short `meltano <args>` (Meltano logs to standard error)."""
        done = subprocess.run(
            [self.executable, *args],
            cwd=self.root,
            env=self.process_env(None, None),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise MeltanoError(_failure(args, done.returncode, done.stderr.splitlines()))
        return done.stdout

    def state_ids(self, pattern: str) -> list[str]:
        return [
            line.strip() for line in self._query("state", "list", "--pattern", pattern).splitlines() if line.strip()
        ]

    def get_state(self, state_id: str) -> dict[str, t.Any]:
        out = self._query("state", "get", state_id).strip()
        return t.cast("dict[str, t.Any]", json.loads(out)) if out else {}

    def set_state(self, state_id: str, state: dict[str, t.Any]) -> None:
        """`meltano state set`, the state passed in a file: a busy site's state alone is over the 128 KiB
        Linux allows a single command-line argument (E2BIG)."""
        with tempfile.TemporaryDirectory(prefix="matomo-state-") as folder:
            path = Path(folder) / "state.json"
            path.write_text(json.dumps(state))
            self._query("state", "set", "--force", "--input-file", str(path), state_id)

    def config(self, plugin: str) -> dict[str, t.Any]:
        """The plugin's configuration as Meltano resolves it (meltano.yml, .env, environment variables)."""
        # --unsafe: the token is needed to ask Matomo for the sites; it stays in this process.
        return t.cast(
            "dict[str, t.Any]", json.loads(self._query("config", "--unsafe", "print", plugin, "--format", "json"))
        )


def _failure(args: t.Sequence[str], code: int, output: t.Iterable[str]) -> str:
    """One line: the command, its exit code and its last line that reads like an error."""
    lines = [line.strip() for line in output if line.strip()]
    errors = [line for line in lines if is_error_line(line)] or lines
    last = errors[-1][:300] if errors else "no output"
    return f"meltano {' '.join(args[:2])} failed (exit {code}): {last}"
