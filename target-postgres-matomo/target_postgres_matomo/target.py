"""The loader: MeltanoLabs' TargetPostgres with msgspec's message reader and the faster sink.

Everything a user configures (settings, upsert on the key, schema evolution, state) is upstream's;
this class only swaps two documented parts, the message reader and the sink class, and sets libpq's
variables from PGDATABASE (pg-url) as it starts.

When the load fails, the BATCH files named in the messages already in the pipe will never be loaded: the
loader removes them before it exits (the tap's own watcher removes those it writes after; see
tap-matomo's batch_files.py).
"""

from __future__ import annotations

import logging
import os
import select
import sys
import typing as t

import msgspec
import psycopg
import sqlalchemy
from pgurl import ConnectionURLError, libpq_environment
from pgurl.entrypoints import CONNECTION_SETTINGS, one_line
from singer_sdk.contrib.msgspec import MsgSpecReader
from target_postgres.target import TargetPostgres
from typing_extensions import override

from target_postgres_matomo.sink import BatchFileError, MatomoPostgresSink, local_path


class TargetPostgresMatomo(TargetPostgres):
    """target-postgres, reading messages with msgspec and loading through MatomoPostgresSink."""

    message_reader_class = MsgSpecReader  # the SDK's msgspec reader: JSON lines decoded 3x faster
    default_sink_class = MatomoPostgresSink

    @override
    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        # libpq's variables from PGDATABASE, once the SDK's logging is set up (a wrong URL is an error line)
        os.environ.update(libpq_environment(os.environ))
        super().__init__(*args, **kwargs)


def main() -> None:
    """`target-postgres-matomo`: the target's CLI, failures that say it all in one line.

    A PostgreSQL that cannot be reached or refuses the connection (a wrong password, a missing database)
    is reported as one line naming the settings; the SDK would log it with a traceback, which Meltano
    renders as boxes of frames before the useful line.
    """
    try:
        TargetPostgresMatomo.cli()
    except ConnectionURLError as exc:
        logging.getLogger(TargetPostgresMatomo.name).error("target-postgres failed: %s", exc)
        remove_unread_batch_files(sys.stdin)
        sys.exit(1)
    except (sqlalchemy.exc.OperationalError, psycopg.OperationalError) as exc:
        logging.getLogger(TargetPostgresMatomo.name).error(
            "target-postgres failed: PostgreSQL (%s): %s", CONNECTION_SETTINGS, one_line(exc)
        )
        remove_unread_batch_files(sys.stdin)
        sys.exit(1)
    except BaseException as exc:  # any other end: click's exit (0 when all was loaded), or a failure
        if not (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            remove_unread_batch_files(sys.stdin)
        raise


def remove_unread_batch_files(stream: t.TextIO) -> int:
    """Remove the local files named by the BATCH messages the pipe holds now; how many went.

    Reads without waiting: a tap that has finished wrote all its messages before it ended (the pipe's buffer
    holds them), and a tap still running is killed once the loader exits, its watcher removing its files.
    """
    fd = stream.fileno()
    os.set_blocking(fd, False)
    lines = list(iter(stream.readline, ""))  # the reader's buffer, then what the pipe has ("" when it is empty)
    tail = b""
    while select.select([fd], [], [], 0)[0] and (chunk := os.read(fd, 1 << 16)):
        tail += chunk
    removed = 0
    for line in [*lines, *tail.decode(errors="replace").splitlines()]:
        if '"BATCH"' not in line:
            continue
        try:
            message = msgspec.json.decode(line)
            paths = [local_path(url) for url in message["manifest"]]
        except (msgspec.DecodeError, KeyError, TypeError, BatchFileError):
            continue  # a line cut at the end of what was read, or files that are not local
        for path in paths:
            if path.exists():
                path.unlink(missing_ok=True)
                removed += 1
    return removed
