"""Asset checks of our own, beside the dbt tests that dagster-dbt turns into checks.

- `matomo_reconciliation` agrees with Matomo: every archived day on which the warehouse's totals
  differ from Matomo's own is listed, with its differences, and the check warns (a day of late hits,
  or data lost: a person should look; nothing is wrong with the run itself).
- The raw log was loaded recently: the age of the raw `visits_actions` asset's last materialization,
  a warning past 2 hours and a failure past 6 (the thresholds of the dbt source's freshness).
"""

# No `from __future__ import annotations`: Dagster reads the checks' annotations at definition.
import time
import typing as t

import dagster as dg
from psycopg import sql

from matomo_orchestrate.resources import Warehouse

RECONCILIATION = dg.AssetKey("matomo_reconciliation")
RAW_VISITS = dg.AssetKey(["matomo_raw", "visits_actions"])
#: The differences listed in the check's metadata (all days count in `days`).
LISTED_DAYS = 100
DIFFERENCES = ("visits", "actions", "pageviews", "downloads", "outlinks", "searches")


class FreshnessConfig(dg.Config):
    warn_after_hours: float = 2.0
    error_after_hours: float = 6.0


def reconciliation_check(schema: str, relation: str) -> dg.AssetChecksDefinition:
    """The check of the `matomo_reconciliation` view, at `schema`.`relation` (from dbt's manifest)."""

    @dg.asset_check(
        asset=RECONCILIATION,
        name="matches_matomo",
        description="Archived days whose warehouse totals differ from Matomo's (WARN, with each day)",
    )
    def matches_matomo(warehouse: Warehouse) -> dg.AssetCheckResult:
        columns = ["idsite", "site_day", *(f"{name}_difference" for name in DIFFERENCES)]
        query = sql.SQL("SELECT {} FROM {} WHERE differs ORDER BY site_day DESC, idsite").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema, relation)
        )
        with warehouse.connect() as conn:
            rows = conn.execute(query).fetchall()
        records = [
            dg.TableRecord(
                {name: (str(value) if name == "site_day" else value) for name, value in zip(columns, row, strict=True)}
            )
            for row in rows[:LISTED_DAYS]
        ]
        schema_def = dg.TableSchema(
            columns=[dg.TableColumn(name, "string" if name == "site_day" else "int") for name in columns]
        )
        return dg.AssetCheckResult(
            passed=not rows,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "days": len(rows),
                "differences": dg.MetadataValue.table(records, schema=schema_def),
            },
            description=(
                "every archived day agrees with Matomo"
                if not rows
                else f"{len(rows)} archived day(s) differ from Matomo; latest {rows[0][1]} (site {rows[0][0]})"
            ),
        )

    return matches_matomo


@dg.asset_check(
    asset=RAW_VISITS,
    name="loaded_recently",
    description="Age of the raw log's last load: WARN past 2 hours, ERROR past 6 (as the dbt source's freshness)",
)
def raw_log_loaded_recently(context: dg.AssetCheckExecutionContext, config: FreshnessConfig) -> dg.AssetCheckResult:
    event = context.instance.get_latest_materialization_event(RAW_VISITS)
    if event is None:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.ERROR, description="the raw log was never loaded"
        )
    hours = (time.time() - event.timestamp) / 3600
    metadata: dict[str, t.Any] = {"hours_since_load": round(hours, 2), "last_load_run": event.run_id}
    if hours > config.error_after_hours:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata)
    return dg.AssetCheckResult(
        passed=hours <= config.warn_after_hours, severity=dg.AssetCheckSeverity.WARN, metadata=metadata
    )
