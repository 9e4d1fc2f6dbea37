"""The settings of the raw log: pages, lookback, the personal data it emits, and the reconcile mode (whole
closed days read again); and the checks JSON Schema cannot make (`problems`)."""

from __future__ import annotations

import typing as t
from datetime import date, timedelta

from singer_sdk import typing as th

PROPERTIES = th.PropertiesList(
    th.Property(
        "page_size",
        th.IntegerType(minimum=1),
        default=500,
        title="Page size",
        description="Visits per Live API request (Matomo's own default of 10 never applies)",
    ),
    th.Property(
        "lookback_minutes",
        th.IntegerType(minimum=0),
        default=60,
        title="Lookback minutes",
        description="How far before the bookmark a run reads again, for visits that grew or hits that landed late",
    ),
    th.Property(
        "mode",
        th.StringType(allowed_values=["incremental", "reconcile"]),
        default="incremental",
        title="Mode",
        description=(
            "incremental: from the bookmark (minus the lookback) to now; reconcile: every visit of whole closed "
            "site-local days again, each finished day reported in `reconciled_days`, so that the warehouse "
            "drops visits Matomo no longer has (GDPR erasures) and takes changed ones (anonymisation)"
        ),
    ),
    th.Property(
        "reconcile_days",
        th.IntegerType(minimum=1),
        default=7,
        title="Reconcile days",
        description=(
            "reconcile mode: the closed site-local days to read, the last N before today; with reports, also the "
            "closed days whose VisitsSummary.get totals are checked once a day (a changed day's reports are read again)"
        ),
    ),
    th.Property(
        "reconcile_start_date",
        th.DateType,
        title="Reconcile start date",
        description="reconcile mode: first site-local day of a one-off range (instead of reconcile_days)",
    ),
    th.Property(
        "reconcile_end_date",
        th.DateType,
        title="Reconcile end date",
        description=(
            "reconcile mode: last day of that range (default yesterday); up to today, whose listing is taken "
            "at the run's start: visits whose last action is before it and that Matomo no longer lists are gone"
        ),
    ),
    th.Property(
        "include_visitor_ip",
        th.BooleanType,
        default=False,
        title="Include visitor IP",
        description="Emit visitIp (personal data) in the visitip column",
    ),
)


def reconcile_window(config: t.Mapping[str, t.Any], today: date) -> tuple[date, date]:
    """The site-local days a reconcile run reads, given the site's today: the last `reconcile_days`
    closed days, or a one-off range, which may end today (an erasure applied at once, docs/reconcile.md)."""
    yesterday = today - timedelta(days=1)
    if config.get("reconcile_start_date"):
        first = date.fromisoformat(str(config["reconcile_start_date"])[:10])
        last = date.fromisoformat(str(config.get("reconcile_end_date") or yesterday)[:10])
        return first, min(last, today)
    return today - timedelta(days=int(config["reconcile_days"])), yesterday


def problems(config: t.Mapping[str, t.Any]) -> list[str]:
    """What is wrong with the reconcile range, one line each."""
    found = []
    first, last = config.get("reconcile_start_date"), config.get("reconcile_end_date")
    if last and not first:
        found.append("reconcile_end_date: set reconcile_start_date too (the range's first day)")
    if first and last and str(last) < str(first):
        found.append(f"reconcile_end_date: {last} is before reconcile_start_date {first}")
    return found
