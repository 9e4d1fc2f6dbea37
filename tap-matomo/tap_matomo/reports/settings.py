"""The settings of the reports: which to copy, which closed periods to read again, when a period is final,
how many rows and periods a request asks for; and the check JSON Schema cannot make (`problems`)."""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_matomo.reports.periods import PERIODS
from tap_matomo.reports.specs import ReportSettingError, specs_from_setting

PROPERTIES = th.PropertiesList(
    th.Property(
        "reports",
        th.ArrayType(
            th.ObjectType(
                th.Property("method", th.StringType, required=True, description="e.g. Referrers.getReferrerType"),
                th.Property("params", th.ObjectType(additional_properties=True), description="e.g. {idGoal: 1}"),
                th.Property(
                    "periods",
                    th.ArrayType(th.StringType(allowed_values=list(PERIODS))),
                    description="day, week, month, year (default: day, week, month)",
                ),
                th.Property("segment", th.StringType, description="a Matomo segment, e.g. deviceType==smartphone"),
                th.Property("name", th.StringType, description="the stream's name (default: from the method)"),
            )
        ),
        title="Reports",
        description=(
            "Matomo reports to copy, one stream each (docs/reports.md); absent: the default set "
            "(summaries, pages, referrers, locations, devices, events, goals, ecommerce, custom dimensions, "
            "server hours); [] for none"
        ),
    ),
    th.Property(
        "report_trailing_days",
        th.IntegerType(minimum=0),
        default=3,
        title="Report trailing days",
        description="Closed days of every report read again once a day (late hits, invalidations, erasures)",
    ),
    th.Property(
        "report_trailing_weeks",
        th.IntegerType(minimum=0),
        default=1,
        title="Report trailing weeks",
        description="Closed weeks read again once a day",
    ),
    th.Property(
        "report_trailing_months",
        th.IntegerType(minimum=0),
        default=1,
        title="Report trailing months",
        description="Closed months read again once a day",
    ),
    th.Property(
        "report_trailing_years",
        th.IntegerType(minimum=0),
        default=1,
        title="Report trailing years",
        description="Closed years read again once a day",
    ),
    th.Property(
        "report_include_current_period",
        th.BooleanType,
        default=False,
        title="Report current period",
        description="Also read the unfinished current day, week, month and year (never final; read again by every run)",
    ),
    th.Property(
        "report_final_after_hours",
        th.IntegerType(minimum=0),  # whole hours: Meltano cannot pass a `decimal` setting from the environment
        default=3,
        title="Report final after hours",
        description=(
            "Hours after a period's end in the site's timezone before it is first read (core:archive runs hourly by "
            "default; hits can arrive late): its answer is then final (is_final) unless empty while VisitsSummary.get "
            "has no visit for it. Final means Matomo's archive as read; a re-archive can still change it"
        ),
    ),
    th.Property(
        "report_page_size",
        th.IntegerType(minimum=1),
        default=10000,
        title="Report page size",
        description="Rows per report request (filter_limit); a longer report is read page by page",
    ),
    th.Property(
        "report_bulk_size",
        th.IntegerType(minimum=1),
        default=1,
        title="Report bulk size",
        description="Periods asked for in one API.getBulkRequest (1: one request per period)",
    ),
)


def problems(config: t.Mapping[str, t.Any]) -> list[str]:
    """What is wrong with the `reports` setting, one line each."""
    try:
        specs_from_setting(config.get("reports"))
    except ReportSettingError as exc:
        return [str(exc)]
    return []
