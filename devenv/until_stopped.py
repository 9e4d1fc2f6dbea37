"""A local UI run until Ctrl-C or SIGTERM, and every process it started stopped with it (`make dagster`,
`make dashboards`).

The UI runs in a session of its own, so that the terminal's Ctrl-C does not reach its processes twice;
this process passes a stop on once (Ctrl-C, or the SIGTERM `make` passes on to its command), waits, then
kills what is left of the session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_until_stopped(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    name: str,
    stop_signal: signal.Signals,
    whole_session: bool,
    stop_seconds: float,
) -> int:
    """Run `command`; on a stop, send it `stop_signal` (to its whole session when `whole_session`: for a
    chain of programs that do not pass signals on), and kill what still runs after `stop_seconds`."""
    process = subprocess.Popen(command, env=dict(env), cwd=cwd, start_new_session=True)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        return process.wait()
    except KeyboardInterrupt:
        print(f"stopping {name}...", flush=True)
        if whole_session:
            _signal_group(process.pid, stop_signal)
        else:
            process.send_signal(stop_signal)
        try:
            process.wait(timeout=stop_seconds)
        except subprocess.TimeoutExpired:
            print(f"{name} still running after {stop_seconds} s: killed", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the clean-up below is not cut short
        _signal_group(process.pid, signal.SIGKILL)  # what is left of the session, or the process itself


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # none left
        os.killpg(group, signum)
