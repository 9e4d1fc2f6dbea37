"""The yardstick: the least a Python loader must do, in one process, with no framework.

requests (POST, token in the body) + json + a flatten of each action with its visit's fields to the
registry's columns + psycopg COPY into a table with the `matomo` table's columns and indexes. It
pages each UTC day by offset (the benchmark's site is static). What it skips, on purpose: Singer
messages, state, paging that survives a changing site, DST handling of local timestamps.

    python -m benchmarks.bare URL TOKEN DATABASE_URL TABLE FIRST_DAY LAST_DAY
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, timedelta

import psycopg
import requests
from psycopg import sql
from tap_matomo.columns import VISITS_ACTIONS

PAGE = 500


def rows_of(visit: dict, names: list[str]) -> list[list[object]]:
    """One row per action: the registry's plain columns, the key and the UTC instant; JSON as text."""
    plain = {c.name: (c.scope, c.source) for c in VISITS_ACTIONS if c.source}
    rows = []
    for position, action in enumerate(visit["actionDetails"]):
        values: dict[str, object] = {
            "action_id": f"{visit['idVisit']}_{position}",
            "idsite": visit["idSite"],
            "action_position": position,
            "action_type": action.get("type"),
            "action_timestamp": datetime.fromtimestamp(action["timestamp"], UTC),
        }
        for name, (scope, source) in plain.items():
            value = (visit if scope == "visit" else action).get(source)
            values[name] = json.dumps(value) if isinstance(value, dict | list) else value
        rows.append([values.get(name) for name in names])
    return rows


def main(url: str, token: str, database: str, table: str, first: str, last: str) -> int:
    session = requests.Session()
    actions = 0
    seen: set[int] = set()
    with psycopg.connect(database) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (table,),
            )
            if r[0] in {c.name for c in VISITS_ACTIONS}
        ]
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
        )
        day = date.fromisoformat(first)
        while day <= date.fromisoformat(last):
            # Matomo's "today" starts yesterday: minTimestamp keeps each UTC day to itself.
            since = int(datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp()) - 1
            offset = 0
            while True:
                params = {
                    "module": "API",
                    "method": "Live.getLastVisitsDetails",
                    "format": "JSON",
                    "idSite": 1,
                    "period": "day",
                    "date": day.isoformat(),
                    "filter_sort_order": "asc",
                    "filter_limit": PAGE,
                    "filter_offset": offset,
                    "minTimestamp": since,
                }
                visits = json.loads(session.post(f"{url}/index.php", params=params, data={"token_auth": token}).text)
                with conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
                    for visit in visits:
                        if visit["idVisit"] in seen:  # a visit ending at midnight is listed on both days
                            continue
                        seen.add(visit["idVisit"])
                        for row in rows_of(visit, names):
                            copy.write_row(row)
                            actions += 1
                conn.commit()
                if len(visits) < PAGE:
                    break
                offset += PAGE
            day += timedelta(days=1)
    print(actions)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
