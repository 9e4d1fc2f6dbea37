"""Running the tap's real CLI and reading what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

TAP = str(Path(sys.executable).parent / "tap-matomo")
TOKEN = "tok-Secret-9f3b2c"


@dataclass
class TapRun:
    returncode: int
    stdout: str
    stderr: str
    messages: list[dict] = field(default_factory=list)

    def records(self, stream: str = "visits_actions") -> list[dict]:
        return [m["record"] for m in self.messages if m.get("type") == "RECORD" and m.get("stream") == stream]

    @property
    def state(self) -> dict:
        states = [m["value"] for m in self.messages if m.get("type") == "STATE"]
        return states[-1] if states else {}

    def bookmarks(self) -> dict[int, str]:
        partitions = self.state.get("bookmarks", {}).get("visits_actions", {}).get("partitions", [])
        return {p["context"]["idsite"]: p.get("replication_key_value") for p in partitions}

    def metrics(self, metric: str) -> list[dict]:
        """The points of one of the SDK's metrics in the run's log (with `log_metrics`), e.g. http_request_count."""
        return [
            point
            for line in self.stderr.splitlines()
            if "METRIC: " in line and (point := json.loads(line.split("METRIC: ", 1)[1]))["metric"] == metric
        ]

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "| ERROR" in line or "CRITICAL" in line]


def run_tap(tmp_path: Path, config: dict, state: dict | None = None, *args: str, timeout: float = 300) -> TapRun:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    command = [TAP, "--config", str(config_file), *args]
    if state is not None:
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        command += ["--state", str(state_file)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    messages = []
    for line in done.stdout.splitlines():
        if line.startswith('{"type"'):
            messages.append(json.loads(line))
    return TapRun(done.returncode, done.stdout, done.stderr, messages)


def latest_versions(*runs: TapRun) -> dict[int, list[dict]]:
    """Each visit's rows from the last run that emitted it (a later extraction replaces an earlier one)."""
    visits: dict[int, list[dict]] = {}
    for run in runs:
        emitted: dict[int, list[dict]] = {}
        for record in run.records():
            emitted.setdefault(record["idvisit"], []).append(record)
        visits.update(emitted)
    return visits


def action_ids(visits: dict[int, list[dict]]) -> set[str]:
    return {r["action_id"] for rows in visits.values() for r in rows}


def without_meltano_or_dbt(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`code` in a new Python whose subprocesses may not be Meltano or dbt: one started ends the process
    with `started: <its command>` (a library's own `file -b` may run). `env` is added to this environment."""
    guard = (
        "import subprocess, sys\n"
        "start = subprocess.Popen.__init__\n"
        "def refuse(self, args, *rest, **kwargs):\n"
        "    if any(word in str(args) for word in ('meltano', 'dbt')):\n"
        "        sys.exit(f'started: {args}')\n"
        "    start(self, args, *rest, **kwargs)\n"
        "subprocess.Popen.__init__ = refuse\n"
    )
    command = [sys.executable, "-c", guard + code]
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
