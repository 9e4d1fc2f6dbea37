"""Where target-postgres spends its time on tap-matomo's records, done faster through documented hooks.

Profiled on 270,000 actions (docs/benchmarks.md): upstream builds a dict per record and runs a
SQLAlchemy bind processor per value before COPY, and BATCH files of the SDK's `jsonl` format are
gzipped by the tap. Overrides of hooks the SDK and upstream document for this purpose:

- `bulk_insert_records` ("may be overridden to provide faster, native bulk uploads"): rows go to
  COPY as lists in column order; psycopg adapts plain values, JSON and array columns go through
  upstream's own bind processors.
  Upstream's semantics are kept: one row per primary key (the last one), then the upsert (below).
- `process_batch_files`: reads tap-matomo's `jsonl-plain` BATCH files (uncompressed JSON Lines),
  adds the `_sdc_*` columns upstream adds to RECORD messages (the dbt models read
  `_sdc_batched_at` and `_sdc_sync_started_at`), loads them through upstream's `process_batch`
  (temp table, COPY, upsert) and deletes each file once its rows are committed.
- `upsert`: upstream's insert-or-update on the key as one statement that never lets an older
  extraction overwrite a newer one (two loads of one visit at once), and a row of the load ledger
  (below) in the same transaction.

The load ledger (`<schema>.load_ledger`): one row per committed batch, written in the batch's own
transaction, with the batch's `_sdc_batched_at` range and the transaction's id. `_sdc_batched_at` is
stamped before a batch commits, so a batch that commits late (behind a lock, a stalled loader) holds
batch times older than loads that committed before it; the dbt models find such a batch by its
transaction id, which PostgreSQL's snapshots order by completion (transform/macros/load_marks.sql).
"""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import msgspec
import psycopg
import sqlalchemy
from sqlalchemy.dialects import postgresql
from target_postgres.sinks import PostgresSink
from typing_extensions import override

#: tap-matomo's BATCH format (tap_matomo/batch_files.py).
JSONL_PLAIN = "jsonl-plain"
#: When the load that wrote a row started (the SDK's metadata column): the row's extraction's age.
SYNC_STARTED_AT = "_sdc_sync_started_at"


class BatchFileError(ValueError):
    """A BATCH file this loader cannot read."""


def local_path(url: str) -> Path:
    """The file a `file://` batch URL names: tap and loader share a file system."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        msg = f"{JSONL_PLAIN} batch files must be local (file://), got {parts.scheme or 'no scheme'}: {url}"
        raise BatchFileError(msg)
    return Path(unquote(parts.path))


#: Loaders of one database create and alter its tables one at a time (advisory lock key).
DDL_LOCK_KEY = "tap-matomo loader ddl"
#: The load ledger's table, in the loader's schema (see the module's docstring).
LEDGER_TABLE = "load_ledger"
BATCHED_AT = "_sdc_batched_at"


class MatomoPostgresSink(PostgresSink):
    """PostgresSink with a tuple COPY, tap-matomo's BATCH files, and table set-up one loader at a time."""

    @override
    def setup(self) -> None:
        """Upstream's schema and table set-up, under a lock: shards loading at once into one database
        (orchestrate/) would otherwise race on creating or altering the same table (upstream checks,
        then creates)."""
        engine = self.connector.create_engine()
        try:
            with engine.begin() as connection:
                connection.execute(
                    sqlalchemy.text("select pg_advisory_xact_lock(hashtext(:key))"), {"key": DDL_LOCK_KEY}
                )
                super().setup()
                quote = connection.dialect.identifier_preparer.quote
                self.follow_key(connection, quote)
                connection.execute(sqlalchemy.text(self.ledger_ddl(quote)))
        finally:
            engine.dispose()

    def follow_key(self, connection: sqlalchemy.engine.Connection, quote: t.Callable[[str], str]) -> None:
        """The table's primary key made the stream's again when the tap changed it: upstream adds a new
        key column but keeps the old constraint, and the upsert's `ON CONFLICT` needs one on the new key.

        Rows loaded before the change have no value in the new key columns (integers, such as tap-matomo's
        `row_index`, added to the report keys because Matomo's labels are not unique): they are numbered
        1, 2... within the kept key columns, in the order of the dropped ones, which were unique there.
        """
        if self.append_only or not self.key_properties:
            return
        table = f"{quote(self.schema_name)}.{quote(self.table_name)}" if self.schema_name else quote(self.table_name)
        found = connection.execute(
            sqlalchemy.text(
                "select c.conname, array_agg(a.attname::text order by k.n) from pg_constraint c"
                " cross join unnest(c.conkey) with ordinality k(attnum, n)"
                " join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum"
                " where c.conrelid = to_regclass(:table) and c.contype = 'p' group by c.conname"
            ),
            {"table": table},
        ).one_or_none()
        wanted = list(self.key_properties)
        if found is None or set(found[1]) == set(wanted):
            return
        name, current = found
        kept = [quote(column) for column in wanted if column in current]
        dropped = [quote(column) for column in current if column not in wanted]
        for column in (quote(column) for column in wanted if column not in current):
            window = f"partition by {', '.join(kept) or 'true'} order by {', '.join(dropped) or 'ctid'}"
            numbered = f"select ctid, row_number() over ({window}) n from {table} where {column} is null"  # noqa: S608
            update = f"update {table} t set {column} = s.n from ({numbered}) s where t.ctid = s.ctid"  # noqa: S608
            connection.execute(sqlalchemy.text(update))  # names quoted above
        connection.execute(
            sqlalchemy.text(
                f"alter table {table} drop constraint {quote(name)},"
                f" add primary key ({', '.join(quote(column) for column in wanted)})"
            )
        )
        self.logger.info("%s: primary key now (%s), was (%s)", self.table_name, ", ".join(wanted), ", ".join(current))

    def ledger_ddl(self, quote: t.Callable[[str], str]) -> str:
        """The ledger beside the stream's table, created when missing (looked up first: `create ... if not
        exists` would lock the table against a loader writing its ledger row); `xid` (64-bit, never wraps)
        is the writing transaction's id."""
        table = f"{quote(self.schema_name)}.{quote(LEDGER_TABLE)}" if self.schema_name else quote(LEDGER_TABLE)
        name = table.replace("'", "''")
        return (
            f"do $$ begin if to_regclass('{name}') is null then"
            f" create table {table} (stream text not null, batched_from timestamp, batched_to timestamp,"
            " rows bigint not null, xid xid8 not null default pg_current_xact_id(),"
            " started_at timestamptz not null default now());"
            f" create index load_ledger_xid_idx on {table} (xid);"
            " end if; end $$"
        )

    def record_load(self, from_table: sqlalchemy.Table, connection: sqlalchemy.engine.Connection) -> None:
        """The batch's ledger row, in the batch's transaction: committed with its rows, or not at all."""
        if BATCHED_AT not in from_table.columns:
            return
        batched = from_table.columns[BATCHED_AT]
        rows = sqlalchemy.select(
            sqlalchemy.literal(self.stream_name),
            sqlalchemy.func.min(batched),
            sqlalchemy.func.max(batched),
            sqlalchemy.func.count(),
        ).select_from(from_table)
        ledger = sqlalchemy.table(
            LEDGER_TABLE,
            *(sqlalchemy.column(name) for name in ("stream", "batched_from", "batched_to", "rows")),
            schema=self.schema_name,
        )
        connection.execute(ledger.insert().from_select(["stream", "batched_from", "batched_to", "rows"], rows))

    @override
    def upsert(
        self,
        from_table: sqlalchemy.Table,
        to_table: sqlalchemy.Table,
        schema: dict[str, t.Any],
        join_keys: t.Sequence[str],
        connection: sqlalchemy.engine.Connection,
    ) -> int | None:
        """Upstream's upsert (insert new keys, update the others) as one `INSERT ... ON CONFLICT`, where a row
        of an older extraction never replaces one of a newer.

        Two loads of one visit can run at once (the hourly job and the reconcile, a retried shard).
        Upstream's update is last-committer-wins per row: the load that started first, with the older
        version of the visit, could commit last and overwrite the newer version's rows, and its two
        statements let a concurrent insert of the same new key fail. Here a row is replaced only by one
        whose load started at the same time or later (`_sdc_sync_started_at`); `matomo` then keeps each
        visit's newest extraction whole (its rows all carry that load's start).
        """
        if self.append_only or SYNC_STARTED_AT not in to_table.columns:
            result = t.cast("int | None", super().upsert(from_table, to_table, schema, join_keys, connection))
        else:
            names = [column.name for column in from_table.columns]
            insert = postgresql.insert(to_table).from_select(names, sqlalchemy.select(*from_table.columns))
            current, incoming = to_table.columns[SYNC_STARTED_AT], insert.excluded[SYNC_STARTED_AT]
            statement = insert.on_conflict_do_update(
                index_elements=list(join_keys),
                set_={name: insert.excluded[name] for name in names if name not in join_keys},
                where=sqlalchemy.or_(current.is_(None), incoming.is_(None), current <= incoming),
            )
            connection.execute(statement)
            result = None
        self.record_load(from_table, connection)  # last: the ledger is written from here to the commit only
        return result

    @override
    def bulk_insert_records(
        self,
        table: sqlalchemy.Table,
        schema: dict[str, t.Any],
        records: t.Iterable[dict[str, t.Any]],
        primary_keys: t.Sequence[str],
        connection: sqlalchemy.engine.Connection,
    ) -> int | None:
        if not self.config["use_copy"]:
            return t.cast("int | None", super().bulk_insert_records(table, schema, records, primary_keys, connection))
        columns = self.column_representation(schema)
        names = [column.name for column in columns]
        # JSON and array columns keep upstream's conversion (its bind processors); psycopg adapts the rest.
        convert = {
            i: processor
            for i, column in enumerate(columns)
            if isinstance(column.type, sqlalchemy.types.JSON | sqlalchemy.types.ARRAY)
            and (processor := column.type.bind_processor(connection.dialect)) is not None
        }
        sanitize = self.connector.sanitize_null_text_characters
        if not self.append_only:  # one row per key, the last one, as upstream
            records = {tuple(record[key] for key in primary_keys): record for record in records}.values()
        statement = self.generate_copy_statement(table.name, columns)
        dbapi = t.cast("psycopg.Connection[t.Any]", connection.connection.dbapi_connection)
        with dbapi.cursor() as cursor, cursor.copy(statement) as copy:
            for record in records:
                copy.write_row(self.copy_row(record, names, convert, sanitize=sanitize))
        return True

    @staticmethod
    def copy_row(
        record: dict[str, t.Any],
        names: list[str],
        convert: dict[int, t.Callable[[t.Any], t.Any]],
        *,
        sanitize: bool,
    ) -> list[t.Any]:
        """A record's values in column order, as COPY takes them."""
        row = [record.get(name) for name in names]
        for i, processor in convert.items():
            if row[i] is not None:
                row[i] = processor(row[i])
        if sanitize:
            row = [v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in row]
        return row

    @override
    def process_batch_files(
        self, encoding: t.Any, files: t.Sequence[str]
    ) -> None:  # encoding: the SDK's BaseBatchFileEncoding
        if encoding.format != JSONL_PLAIN:
            super().process_batch_files(encoding, files)
            return
        decoder = msgspec.json.Decoder()
        for url in files:
            path = local_path(url)
            with path.open("rb") as file:
                records = [decoder.decode(line) for line in file]
            if self.include_sdc_metadata_properties:
                self.add_record_metadata(records)
            self.record_counter_metric.increment(len(records))
            self.process_batch({"records": records})
            path.unlink()  # committed: process_batch runs in one transaction

    def add_record_metadata(self, records: list[dict[str, t.Any]]) -> None:
        """The `_sdc_*` values upstream gives RECORD messages; the extraction time is not in the file."""
        now = datetime.now(UTC)
        stamp = {
            "_sdc_extracted_at": None,
            "_sdc_received_at": now.isoformat(),
            "_sdc_batched_at": now.isoformat(),
            "_sdc_deleted_at": None,
            "_sdc_sequence": round(now.timestamp() * 1000),
            "_sdc_table_version": None,
            "_sdc_sync_started_at": self.sync_started_at,
        }
        for record in records:
            record.update(stamp)
