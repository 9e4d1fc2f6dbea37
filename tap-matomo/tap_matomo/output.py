"""The tap's Singer output: msgspec's writer, fewer STATE messages, and a run's files when nothing reads it.

STATE: the SDK writes the whole state after every site of every stream. Each message holds every site's
bookmarks, so a run of N sites writes N x streams messages of a size that grows with N: 1.1 GB for a first
run of 100 sites (docs/benchmarks-requests.md), which the loader must read and parse. This writer writes a
STATE at most every STATE_INTERVAL seconds, holding the newest one in between (encoded when it was given,
so it is what the SDK would have written then). The one it holds is written when the sync ends (the
streams' `log_sync_costs`, which the SDK calls once at the end of a sync: `write_held_states`) and, if the
sync failed, when the process ends: the loader commits as often as every few seconds, and the last state
is never lost.

A broken pipe (the loader stopped reading: it failed and said why) removes the BATCH files of the run
(batch_files.discard_run): nothing of it will be loaded.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sys
import time
import typing as t
import weakref

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import Message, StateMessage

from tap_matomo import batch_files
from tap_matomo.compat import override

#: Seconds between two STATE messages at most (the one held in between is written at the sync's end).
STATE_INTERVAL = 10.0
#: The writers of this process (one per tap), whose held STATE `write_held_states` writes.
_WRITERS: weakref.WeakSet[RunOutputWriter] = weakref.WeakSet()


class RunOutputWriter(MsgSpecWriter):
    """msgspec's message writer (faster than the SDK's default), STATE messages spaced out, and the run's
    BATCH files removed when its output is no longer read."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.held_state: bytes | None = None
        self.state_written_at = -STATE_INTERVAL
        _WRITERS.add(self)

    @override
    def write_message(self, message: Message) -> None:
        if isinstance(message, StateMessage):
            now = time.monotonic()
            if now - self.state_written_at < STATE_INTERVAL:
                self.held_state = bytes(self.format_message(message))  # the SDK reuses its buffer
                return
            self.held_state, self.state_written_at = None, now
        self.write_bytes(self.format_message(message))

    def write_held_state(self) -> None:
        """Write the STATE held back, if any (at the process's end, whatever ended it)."""
        held, self.held_state = self.held_state, None
        if held is not None:
            with contextlib.suppress(BrokenPipeError, ValueError):  # nothing reads, or stdout is closed
                self.write_bytes(held)

    def write_bytes(self, line: bytes | bytearray) -> None:
        try:
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
        except BrokenPipeError:
            removed = batch_files.discard_run()
            logging.getLogger("tap-matomo").info(
                "tap-matomo stopped: its output is no longer read; removed %d batch files of this run", removed
            )
            raise


def write_held_states() -> None:
    """Write the STATE each writer of this process holds back: at the end of a sync, and of the process."""
    for writer in list(_WRITERS):
        writer.write_held_state()


atexit.register(write_held_states)
