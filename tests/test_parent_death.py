"""A Meltano run dies with the op that started it (kill -9 of the op), without Python run between fork
and exec in the op's multi-threaded process (matomo_orchestrate/parent_death.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
from matomo_orchestrate import meltano as meltano_module
from matomo_orchestrate.meltano import MeltanoProject

pytestmark = [pytest.mark.unit, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl")]

PARENT = """
import subprocess, sys, time
from matomo_orchestrate.parent_death import dying_with_this_process
child = subprocess.Popen(dying_with_this_process(["sleep", "300"]))
print(child.pid, flush=True)
time.sleep(300)
"""


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def gone(pid: int) -> bool:
    """Dead (or a zombie waiting for init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def wait_for(condition: t.Callable[[], bool], what: str, limit: float = 30) -> None:
    """Until `condition` holds; the limit only keeps a broken run from hanging the suite."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_the_command_dies_with_its_parent_killed_by_signal_9() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    wait_for(lambda: command_of(child).startswith("sleep 300"), "the child became the command (exec)")
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    wait_for(lambda: gone(child), "the command died with its parent")


def test_meltano_runs_start_through_the_wrapper_with_no_preexec_fn(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[list[str], dict[str, t.Any]]] = []

    class Recorder:
        def __init__(self, args: list[str], **kwargs: t.Any) -> None:
            started.append((args, kwargs))
            self.stdout = iter(())
            self.returncode = 0

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(meltano_module.subprocess, "Popen", Recorder)
    MeltanoProject(env={"MELTANO_ENVIRONMENT": "dev"}).run("run", "tap-matomo", "target-postgres")
    ((args, kwargs),) = started
    assert args[:4] == [sys.executable, "-m", "matomo_orchestrate.parent_death", str(os.getpid())]
    assert args[4].endswith("meltano")
    assert args[5:] == ["run", "tap-matomo", "target-postgres"]
    assert "preexec_fn" not in kwargs
