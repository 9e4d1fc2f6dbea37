"""The one sampler of the benchmarks: a command run with its output dropped, its processes (and their children)
looked at every few milliseconds for their memory, CPU time and life span, grouped by role."""

from __future__ import annotations

import os
import subprocess
import time
import typing as t
from dataclasses import dataclass, field

import psutil


@dataclass
class Seen:
    """One process as sampled: its role, when it was first and last seen, its peak RSS and CPU seconds."""

    role: str
    first: float
    last: float
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0


@dataclass
class Sampled:
    """A command's run: its wall time and what was seen of each of its processes with a role."""

    seconds: float
    processes: dict[int, Seen] = field(default_factory=dict)

    def by_role(self, what: t.Callable[[Seen], float], combine: t.Callable[[float, float], float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for seen in self.processes.values():
            out[seen.role] = combine(out[seen.role], what(seen)) if seen.role in out else what(seen)
        return out

    def peak_rss_mb(self) -> dict[str, float]:
        """Each role's highest RSS of any of its processes."""
        return self.by_role(lambda seen: seen.peak_rss_mb, max)

    def cpu_seconds(self) -> dict[str, float]:
        """Each role's CPU time (user and system), all its processes together."""
        return self.by_role(lambda seen: seen.cpu_seconds, lambda a, b: a + b)

    def spans(self) -> dict[str, float]:
        """Each role's longest-lived process, first seen to last seen."""
        return self.by_role(lambda seen: seen.last - seen.first, max)


def command_line(process: psutil.Process) -> list[str] | None:
    """A process's command line; None once it is gone."""
    try:
        return process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def sample(
    command: list[str],
    role_of: t.Callable[[list[str]], str | None],
    env: dict[str, str] | None = None,
    interval: float = 0.05,
) -> Sampled:
    """Run `command` (stdout dropped), sampling it and its children every `interval` s; `role_of` names a process
    from its command line (None: not counted). Fails with the command's last error lines when it fails."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    root, seen = psutil.Process(process.pid), Sampled(0.0)
    while process.poll() is None:
        for proc in [root, *root.children(recursive=True)]:
            _look_at(proc, role_of, seen.processes)
        time.sleep(interval)
    seen.seconds = time.monotonic() - started
    stderr = process.stderr.read() if process.stderr else ""
    if process.returncode != 0:
        msg = f"{command[:3]}: exit {process.returncode}: {stderr[-2000:]}"
        raise RuntimeError(msg)
    return seen


def _look_at(proc: psutil.Process, role_of: t.Callable[[list[str]], str | None], seen: dict[int, Seen]) -> None:
    line = command_line(proc)
    role = role_of(line) if line is not None else None
    if role is None:
        return
    now = time.monotonic()
    entry = seen.setdefault(proc.pid, Seen(role, now, now))
    entry.last = now
    try:
        rss, times = proc.memory_info().rss / 2**20, proc.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return
    entry.peak_rss_mb = max(entry.peak_rss_mb, rss)
    entry.cpu_seconds = times.user + times.system
