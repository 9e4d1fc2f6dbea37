"""Matomo's Reporting API, computed from the simulator's own visits (docs/matomo-api.md, "Reporting API").

A report of a period is what the raw visits whose last action falls in it give: the same visits the
Live API lists for those days, so a report equals what a complete load of the raw visits gives. The
answers take the shapes of the real ones (tests/fixtures/matomo-5.0.2-reports/): `flat=1` rows with
"parent - child" labels and `Plugin_Dimension` fields, full paths for page URLs, one-row reports as an
object (a list of one with `flat=1`), rates as "24%" unless `format_metrics=0`, day answers with some
metrics written as JSON strings, `filter_limit` (100 by default) and `filter_offset`.
"""

from __future__ import annotations

import typing as t
import weakref
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from matomo_simulator import report_metrics
from matomo_simulator.dataset import World
from matomo_simulator.model import Site
from matomo_simulator.render import render_visit
from matomo_simulator.report_groupings import GROUPINGS, VisitView, dimension_grouping

VISIT_METRICS = ("nb_uniq_visitors", "nb_visits", "nb_actions", "nb_users", "max_actions")
VISIT_METRICS += ("sum_visit_length", "bounce_count", "nb_visits_converted")
ACTION_METRICS = ("nb_visits", "nb_uniq_visitors", "nb_hits", "sum_time_spent")
EVENT_METRICS = ("nb_uniq_visitors", "nb_visits", "nb_events", "nb_events_with_value", "sum_event_value")
EVENT_METRICS += ("min_event_value", "max_event_value", "avg_event_value")
#: Metrics Matomo writes as JSON strings in some rows of day answers (the real ones mix both).
STRING_IN_DAY_ANSWERS = {"nb_actions", "sum_visit_length", "bounce_count", "nb_visits_converted", "nb_events"}
STRING_IN_DAY_ANSWERS |= {"entry_nb_visits", "exit_nb_visits", "nb_visits_with_value", "nb_events_with_value"}
RATES = {"bounce_rate", "exit_rate", "conversion_rate", "interaction_rate"}
DEFAULT_FILTER_LIMIT = 100


# -- the API -------------------------------------------------------------------------------------------

SINGLE_ROW = {"VisitsSummary.get", "Actions.get", "Goals.get"}
CONFIG_METHODS = {"Goals.getGoals", "CustomDimensions.getConfiguredCustomDimensions"}


def report_methods() -> set[str]:
    return SINGLE_ROW | set(GROUPINGS) | {"CustomDimensions.getCustomDimension"}


def period_range(period: str, day: date) -> tuple[date, date]:
    """The first and last day of the period containing `day` (weeks start on Monday)."""
    if period == "day":
        return day, day
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if period == "month":
        start = day.replace(day=1)
        return start, (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    if period == "year":
        return day.replace(month=1, day=1), day.replace(month=12, day=31)
    msg = f"period {period!r}"
    raise ValueError(msg)


def matches_segment(rendered: dict[str, t.Any], segment: str) -> bool:
    """`dim==value` conditions joined by `;` (and), on a few visit dimensions, case-insensitive."""
    fields = {"deviceType": "deviceType", "countryCode": "countryCode", "referrerType": "referrerType"}
    fields |= {"visitorType": "visitorType", "browserCode": "browserCode"}
    for condition in filter(None, segment.split(";")):
        name, _, value = condition.partition("==")
        if name not in fields or str(rendered.get(fields[name]) or "").lower() != value.lower():
            return False
    return True


@dataclass
class ReportQuery:
    """One report request, as the simulator reads it."""

    method: str
    period: str
    start: date
    end: date
    segment: str = ""
    params: dict[str, str] = field(default_factory=dict)


#: Each world's visits as the Live API renders them, kept until a visit changes (World.version moves).
_RENDERED: weakref.WeakKeyDictionary[World, tuple[int, dict[int, dict[str, t.Any]]]] = weakref.WeakKeyDictionary()


def _rendered_visits(world: World) -> dict[int, dict[str, t.Any]]:
    """The cache of `world`'s rendered visits (the caller holds the world's lock)."""
    cached = _RENDERED.get(world)
    if cached is None or cached[0] != world.version:
        cached = _RENDERED[world] = (world.version, {})
    return cached[1]


def compute(world: World, site: Site, query: ReportQuery) -> list[dict[str, t.Any]]:
    """The report's rows (numbers, unformatted): dimension values under `_path`, metrics, attributes."""
    lo = world.site_day_bounds(site.idsite, query.start)[0]
    hi = world.site_day_bounds(site.idsite, query.end)[1]
    with world.lock:
        index = world.by_last_action(site.idsite)  # (last action, idvisit, visit), sorted
        in_period = index[bisect_left(index, (lo,)) : bisect_left(index, (hi,))]
        rendered = _rendered_visits(world)
        views = []
        for _, _, visit in in_period:
            if visit.idvisit not in rendered:
                rendered[visit.idvisit] = render_visit(world, visit)
            if matches_segment(rendered[visit.idvisit], query.segment):
                views.append(VisitView(visit, rendered[visit.idvisit]))
    if query.method == "VisitsSummary.get":
        return [report_metrics.summary(views)]
    if query.method == "Actions.get":
        return [report_metrics.actions_get(views)]
    if query.method == "Goals.get":
        return [report_metrics.goals_get(views, query.params.get("idGoal"))]
    if query.method == "CustomDimensions.getCustomDimension":
        grouping = dimension_grouping(site, int(query.params.get("idDimension") or 0))
        if grouping is None:
            return []
    elif query.method in ("Goals.getItemsName", "Goals.getItemsSku"):
        grouping = GROUPINGS[query.method]
        grouped = report_metrics.items(views, "name" if query.method.endswith("Name") else "sku")
        return [
            {"_path": values, "_fields": grouping.fields, "_label": values[0], **row}
            for values, row in sorted(grouped.items(), key=_by_visits)
        ]
    else:
        grouping = GROUPINGS[query.method]
    grouped = report_metrics.grouped(grouping, views)
    return [
        {"_path": values, "_fields": grouping.fields, "_label": grouping.label(values), **row}
        for values, row in sorted(grouped.items(), key=_by_visits)
    ]


def _by_visits(item: tuple[tuple[str, ...], dict[str, t.Any]]) -> tuple[int, tuple[str, ...]]:
    values, row = item
    return (-int(row.get("nb_visits", 0) or row.get("nb_events", 0)), values)


def render(
    rows: list[dict[str, t.Any]],
    query: ReportQuery,
    *,
    flat: bool,
    format_metrics: bool,
    limit: int,
    offset: int,
) -> t.Any:
    """The answer's JSON: one-row reports an object (a list of one when flat), others a list of rows."""
    if query.method in SINGLE_ROW:
        row = _format(dict(rows[0]), format_metrics)
        return [row] if flat else row
    out = []
    for n, row in enumerate(rows):
        values, fields = row["_path"], row["_fields"]
        metrics = {k: v for k, v in row.items() if not k.startswith("_")}
        if query.period == "day" and n % 2:  # the real day answers write some metrics as strings
            metrics = {
                k: str(v) if k in STRING_IN_DAY_ANSWERS and isinstance(v, int) else v for k, v in metrics.items()
            }
        label = row["_label"] if flat else values[0]
        rendered: dict[str, t.Any] = {"label": label, **_format(metrics, format_metrics)}
        if flat:
            rendered |= dict(zip(fields, values, strict=False))
        elif len(fields) > 1:
            rendered["idsubdatatable"] = n + 1
        out.append(rendered)
    if not flat:  # nested: one row per top-level value (the simulator does not serve subtables)
        seen: dict[str, dict[str, t.Any]] = {}
        for n, row in enumerate(out):
            seen.setdefault(row["label"] if "idsubdatatable" in row else str(n), row)
        out = list(seen.values())
    return out if limit == -1 else out[offset : offset + limit]


def _format(row: dict[str, t.Any], format_metrics: bool) -> dict[str, t.Any]:
    if format_metrics:
        return {k: f"{round(float(v) * 100)}%" if k in RATES else v for k, v in row.items()}
    return row


def metadata(site: Site) -> list[dict[str, t.Any]]:
    """API.getReportMetadata for a site: the reports the simulator answers, with their metrics and types."""
    entries = []

    def entry(method: str, metrics: t.Iterable[str], parameters: dict[str, t.Any] | None = None) -> None:
        module, action = method.split(".")
        metric_names = list(metrics)
        entries.append(
            {
                "module": module,
                "action": action,
                "name": method,
                "metrics": dict.fromkeys(metric_names, ""),
                "metricTypes": {m: "percent" if m in RATES else "number" for m in metric_names},
                **({"parameters": parameters} if parameters else {}),
            }
        )

    entry("VisitsSummary.get", [*VISIT_METRICS, "bounce_rate", "nb_actions_per_visit", "avg_time_on_site"])
    entry("Actions.get", list(report_metrics.actions_get([])))
    entry("Goals.get", ["nb_conversions", "nb_visits_converted", "revenue", "conversion_rate"])
    for idgoal in sorted(site.goals):
        entry("Goals.get", ["nb_conversions", "nb_visits_converted", "revenue", "conversion_rate"], {"idGoal": idgoal})
    for method, grouping in GROUPINGS.items():
        if grouping.level == "item" and not site.ecommerce:
            continue
        metrics = {"visit": VISIT_METRICS, "action": ACTION_METRICS, "event": EVENT_METRICS}.get(grouping.level)
        entry(method, metrics or ("revenue", "quantity", "orders", "nb_visits", "avg_price"))
    if site.ecommerce:
        entry("Goals.get", ["nb_conversions", "nb_visits_converted", "revenue", "items"], {"idGoal": "ecommerceOrder"})
    for iddimension, (_name, scope) in sorted(site.dimensions.items()):
        metrics = VISIT_METRICS if scope == "visit" else ACTION_METRICS
        entry("CustomDimensions.getCustomDimension", metrics, {"idDimension": str(iddimension)})
    return entries


def today_start(now: float, site: Site) -> date:
    return datetime.fromtimestamp(now, site.tz).date()
