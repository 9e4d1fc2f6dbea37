"""BATCH files as the project's loader reads them fastest: JSON Lines, uncompressed, written by msgspec.

The SDK's own `jsonl` encoder always gzips (level 9): on one machine that costs the tap more than
the whole rest of a record's work, to save disk space that lives for seconds. This encoder is
registered under its own format name, `jsonl-plain` (an SDK entry point in pyproject.toml), and
read by the project's loader (target-postgres-matomo/), which deletes each file once loaded.

Records are written as they come, `batch_size` to a file, so the tap holds one record at a time.

A run that fails must not leave files nobody will read. Every file name holds the run's id (RUN_ID), and:
- when the loader fails, Meltano kills the tap (SIGKILL, no handler runs): a watcher process started with the
  first file (`batch_watcher.py`) sees the tap die without saying "keep" and removes the run's files;
- when the loader is gone and the tap finds out itself (a broken pipe), it removes them (`discard_run`,
  called by output.py);
- the loader, when it fails, removes the files named in the messages still in its pipe (its own `target.py`).
A run that ends cleanly or with its own error says "keep": the loader may still be reading its files.
What a machine crash leaves, the next run removes once older than LEFTOVER_AGE: far older than a live run's
files ever get (the loader reads a file within minutes of its writing, the tap waiting on the pipe when it
falls behind), so runs of other shards sharing the folder are never touched.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import subprocess
import sys
import time
import typing as t
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit
from uuid import uuid4

import msgspec
from singer_sdk.batch import BaseBatcher

from tap_matomo.batch_watcher import remove_matching
from tap_matomo.compat import override

#: The `batch_config.encoding.format` that selects this encoder.
FORMAT = "jsonl-plain"
_FLUSH_BYTES = 1 << 20
#: Files of earlier runs older than this are removed by the next run.
LEFTOVER_AGE = timedelta(hours=6)
#: This process's run, in each of its file names.
RUN_ID = uuid4().hex[:16]
#: The watcher of this run's files (started with the first file), and the files' folder and name pattern.
_watch: tuple[subprocess.Popen[bytes], Path, str] | None = None


class PlainJSONLinesBatcher(BaseBatcher):
    """`batch_size` records per file, one JSON object per line, no compression."""

    @override
    def get_batches(self, records: t.Iterator[dict[str, t.Any]]) -> t.Iterator[list[str]]:
        storage = self.batch_config.storage
        run = f"{run_pattern(storage.prefix, self.tap_name)[:-1]}{self.stream_name}-{uuid4().hex[:8]}"
        encoder = msgspec.json.Encoder()
        buffer = bytearray()
        records = iter(records)
        for number in itertools.count(1):
            first = next(records, None)
            if first is None:
                return
            url = storage.get_url(f"{run}-{number}.jsonl")
            path = local_path(url)
            path.parent.mkdir(parents=True, exist_ok=True)
            watch_run(path.parent, run_pattern(storage.prefix, self.tap_name))
            # A plain file, not the storage's fsspec transaction: a parent stream's file stays open
            # while its children write theirs, and nested transactions would drop the parent's.
            with path.open("wb") as file:
                for record in itertools.chain((first,), itertools.islice(records, self.batch_config.batch_size - 1)):
                    encoder.encode_into(record, buffer, -1)
                    buffer.extend(b"\n")
                    if len(buffer) >= _FLUSH_BYTES:
                        file.write(buffer)
                        buffer.clear()
                file.write(buffer)
                buffer.clear()
            yield [url]


def local_path(url: str) -> Path:
    """The file a `file://` URL names; this format needs tap and loader on one file system."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        msg = f"batch_config: format {FORMAT} writes local files, set storage.root to a file:// URL (got {url})"
        raise ValueError(msg)
    return Path(unquote(parts.path))


def run_pattern(prefix: str | None, tap_name: str) -> str:
    """The glob of this run's file names (`*` standing for the stream and file number)."""
    return f"{prefix or ''}{tap_name}--{RUN_ID}--*"


def watch_run(folder: Path, pattern: str) -> None:
    """Start, once per process, the watcher that removes this run's files if the tap is killed."""
    global _watch  # one watcher per process, as there is one run
    if _watch is not None:
        return
    watcher = subprocess.Popen(  # this interpreter, this package's module, our own arguments
        [sys.executable, "-m", "tap_matomo.batch_watcher", str(folder), pattern],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,  # never holds the tap's pipes: Meltano waits for them to close
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to the terminal's process group is the tap's, not the watcher's
    )
    _watch = (watcher, folder, pattern)
    atexit.register(_keep_run)


def _keep_run() -> None:
    """At a clean exit or the tap's own error: the loader may still read the files, the watcher leaves them."""
    if _watch is not None:
        _release(_watch[0])


def _release(watcher: subprocess.Popen[bytes]) -> None:
    """Tell the watcher to leave the files, and see it end (it does at once)."""
    if watcher.stdin is not None:
        with contextlib.suppress(BrokenPipeError):  # it ended already
            watcher.stdin.write(b"keep")
            watcher.stdin.close()
    watcher.wait(timeout=10)


def discard_run() -> int:
    """Remove this run's files now (the loader stopped reading), and let the watcher go; how many went."""
    global _watch
    if _watch is None:
        return 0
    watcher, folder, pattern = _watch
    _watch = None
    _release(watcher)  # nothing left for it to do
    return remove_matching(folder, pattern)


def remove_leftovers(batch_config: t.Mapping[str, t.Any], tap_name: str, now: float | None = None) -> int:
    """Remove this tap's jsonl-plain files older than LEFTOVER_AGE from the batch folder; how many went."""
    if (batch_config.get("encoding") or {}).get("format") != FORMAT:
        return 0
    storage = batch_config.get("storage") or {}
    folder = local_path(str(storage.get("root") or ""))
    cutoff = (time.time() if now is None else now) - LEFTOVER_AGE.total_seconds()
    removed = 0
    for path in folder.glob(f"{storage.get('prefix') or ''}{tap_name}--*.jsonl"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another run removed it meanwhile
            continue
    return removed
