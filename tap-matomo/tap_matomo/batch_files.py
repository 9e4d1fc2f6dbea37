"""BATCH files as the project's loader reads them fastest: JSON Lines, uncompressed, written by msgspec.

The SDK's own `jsonl` encoder always gzips (level 9): on one machine that costs the tap more than
the whole rest of a record's work, to save disk space that lives for seconds. This encoder is
registered under its own format name, `jsonl-plain` (an SDK entry point in pyproject.toml), and
read by the project's loader (target-postgres-matomo/), which deletes each file once loaded.

Records are written as they come, `batch_size` to a file, so the tap holds one record at a time.

A run that fails (the loader cannot connect, a kill) leaves the files the loader did not read. Each run
removes the files of earlier runs older than LEFTOVER_AGE: far older than a live run's files ever get
(the loader reads a file within minutes of its writing, the tap waiting on the pipe when it falls behind),
so runs of other shards sharing the folder are never touched.
"""

from __future__ import annotations

import itertools
import time
import typing as t
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit
from uuid import uuid4

import msgspec
from singer_sdk.batch import BaseBatcher

from tap_matomo.compat import override

#: The `batch_config.encoding.format` that selects this encoder.
FORMAT = "jsonl-plain"
_FLUSH_BYTES = 1 << 20
#: Files of earlier runs older than this are removed by the next run.
LEFTOVER_AGE = timedelta(hours=6)


class PlainJSONLinesBatcher(BaseBatcher):
    """`batch_size` records per file, one JSON object per line, no compression."""

    @override
    def get_batches(self, records: t.Iterator[dict[str, t.Any]]) -> t.Iterator[list[str]]:
        storage = self.batch_config.storage
        run = f"{storage.prefix or ''}{self.tap_name}--{self.stream_name}-{uuid4()}"
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
