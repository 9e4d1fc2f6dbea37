"""Matomo's reports when Matomo's answers are not what a still picture suggests: labels that repeat within
one answer, through Meltano, the loader and dbt into `matomo_reports` (docs/reports.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import psycopg
from matomo_simulator import MatomoSimulator
from tap_matomo import clock

from tests.conftest import project_meltano
from tests.pipeline import query

REPORTS = json.dumps(
    [
        {"method": "Events.getCategory", "name": "report_event_categories", "periods": ["day"]},
        {"method": "UserCountry.getCountry", "name": "report_countries", "periods": ["day"]},
    ]
)
SHARED = "Video - Play - HD"


def rows_of_answer(database: str, report: str, day: object) -> tuple[int, int, int]:
    """(rows report_fetches says the answer had, rows in matomo_reports, rows in the raw table) for a day."""
    fetched = query(
        database,
        "SELECT rows FROM matomo_raw.report_fetches WHERE report = %s AND idsite = 1 AND period = 'day'"
        " AND period_start = %s",
        report,
        day,
    )
    marts = query(
        database,
        "SELECT count(*) FROM matomo_reports WHERE report = %s AND idsite = 1 AND period = 'day' AND period_start = %s",
        report,
        day,
    )
    raw = query(database, f"SELECT count(*) FROM matomo_raw.{report} WHERE idsite = 1 AND period_start = %s", day)  # noqa: S608
    return fetched[0][0], marts[0][0], raw[0][0]


def primary_key(database: str, table: str) -> list[str]:
    rows = query(
        database,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        table,
    )
    return [name for (name,) in rows]


def test_rows_with_one_label_are_all_kept_and_marked_and_an_older_warehouse_follows(
    simulator: MatomoSimulator, database: str, tmp_path: Path
) -> None:
    """Two events whose category and action join into one flat label, and one country under two codes
    (the simulator answers as real Matomo 5.0.2 did): every row of the answer reaches the raw table and
    `matomo_reports`, where `label_rows` says the label is shared. Then a warehouse loaded before the key
    held the row's position (the raw table keyed on the label, one of the two rows lost): the next load
    moves its primary key and holds both."""
    yesterday = (clock.utc_now() - timedelta(days=1)).date()
    simulator.world.add_shared_label_visits(1, int(datetime.combine(yesterday, time(12), UTC).timestamp()))
    meltano = project_meltano(simulator.url, database, tmp_path / "meltano.db")
    start = (clock.utc_now() - timedelta(days=2)).date().isoformat()
    meltano.env |= {"TAP_MATOMO_REPORTS": REPORTS, "STARTDATE": start, "MATOMO_SITE": "1"}
    first = meltano.run("run", "matomo-to-postgres")
    assert first.returncode == 0, first.stderr[-3000:]

    for report in ("report_event_categories", "report_countries"):
        fetched, marts, raw = rows_of_answer(database, report, yesterday)
        assert fetched == marts == raw > 2, report
    shared = query(
        database,
        "SELECT label_path, label_rows FROM matomo_reports WHERE report = 'report_event_categories'"
        " AND period_start = %s AND label = %s ORDER BY row_index",
        yesterday,
        SHARED,
    )
    assert sorted(path for path, _ in shared) == [["Video", "Play - HD"], ["Video - Play", "HD"]]
    assert [rows for _, rows in shared] == [2, 2]
    codes = query(
        database,
        "SELECT label, array_agg(attributes->>'code' ORDER BY row_index) FROM matomo_raw.report_countries"
        " WHERE period_start = %s GROUP BY label HAVING count(*) > 1",
        yesterday,
    )
    assert len(codes) == 1
    upper, lower = sorted(codes[0][1])
    assert upper == lower.upper() != lower
    unshared = query(database, "SELECT count(*) FROM matomo_reports WHERE label_rows = 1 AND label <> %s", SHARED)
    assert unshared[0][0] > 0

    # The raw table as an earlier version left it: keyed on the label, one of the two rows never written.
    table = "matomo_raw.report_event_categories"
    with psycopg.connect(database) as conn:
        conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT report_event_categories_pkey")
        conn.execute(f"ALTER TABLE {table} ALTER COLUMN row_index DROP NOT NULL")
        last = f"SELECT max(row_index) FROM {table} WHERE label = %s"  # noqa: S608
        conn.execute(f"DELETE FROM {table} WHERE label = %s AND row_index = ({last})", (SHARED, SHARED))  # noqa: S608
        conn.execute(f"UPDATE {table} SET row_index = NULL")  # noqa: S608
        conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (idsite, period, period_start, segment, params, label)")
    assert primary_key(database, table)[-1] == "label"
    again = meltano.run("run", "--full-refresh", "matomo-to-postgres")
    assert again.returncode == 0, again.stderr[-3000:]
    assert primary_key(database, table) == ["idsite", "period", "period_start", "segment", "params", "row_index"]
    fetched, marts, raw = rows_of_answer(database, "report_event_categories", yesterday)
    assert fetched == marts == raw
    assert query(database, f"SELECT count(*) FROM {table} WHERE row_index IS NULL") == [(0,)]  # noqa: S608
    both = query(database, f"SELECT count(*) FROM {table} WHERE period_start = %s AND label = %s", yesterday, SHARED)  # noqa: S608
    assert both == [(2,)]
