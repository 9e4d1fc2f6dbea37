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
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from matomo_simulator.dataset import Action, Site, Visit, World
from matomo_simulator.render import render_visit

#: Matomo's names of the referrer types (Referrers.getReferrerType's labels) and their codes.
REFERRER_TYPES = {"direct": ("Direct Entry", 1), "search": ("Search Engines", 2), "website": ("Websites", 3)}
REFERRER_TYPES |= {"campaign": ("Campaigns", 6), "social": ("Social Networks", 7)}
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
#: Dimensions whose rows carry the full `url` too.
URL_FIELDS = {
    "Actions_PageUrl",
    "Actions_EntryPageUrl",
    "Actions_ExitPageUrl",
    "Actions_DownloadUrl",
    "Actions_ClickedUrl",
}


@dataclass(frozen=True)
class VisitView:
    """A visit as reports see it: its rendered fields (the Live API's) and its actions."""

    visit: Visit
    rendered: dict[str, t.Any]

    @property
    def actions(self) -> list[Action]:
        return self.visit.actions


def _visit_metrics(views: list[VisitView]) -> dict[str, t.Any]:
    actions = [v.rendered["actions"] for v in views]
    return {
        "nb_uniq_visitors": len({v.visit.visitor_id for v in views}),
        "nb_visits": len(views),
        "nb_actions": sum(actions),
        "nb_users": len({v.rendered["userId"] for v in views if v.rendered["userId"]}),
        "max_actions": max(actions, default=0),
        "sum_visit_length": sum(v.rendered["visitDuration"] for v in views),
        "bounce_count": sum(1 for a in actions if a == 1),
        "nb_visits_converted": sum(1 for v in views if v.rendered["visitConverted"]),
    }


def _summary(views: list[VisitView]) -> dict[str, t.Any]:
    metrics = _visit_metrics(views)
    visits = metrics["nb_visits"]
    return {
        **metrics,
        "bounce_rate": round(metrics["bounce_count"] / visits, 2) if visits else 0,
        "nb_actions_per_visit": round(metrics["nb_actions"] / visits, 1) if visits else 0,
        "avg_time_on_site": round(metrics["sum_visit_length"] / visits) if visits else 0,
    }


def _path(url: str | None) -> str:
    return urlsplit(url or "").path or "/"


def _host(url: str | None) -> str:
    return urlsplit(url or "").netloc


def _actions_get(views: list[VisitView]) -> dict[str, t.Any]:
    kinds: dict[str, list[tuple[int, Action]]] = defaultdict(list)
    for view in views:
        for action in view.actions:
            kinds[action.kind].append((view.visit.idvisit, action))
    return {
        "nb_pageviews": len(kinds["action"]),
        "nb_uniq_pageviews": len({(i, a.url) for i, a in kinds["action"]}),
        "nb_downloads": len(kinds["download"]),
        "nb_uniq_downloads": len({(i, a.url) for i, a in kinds["download"]}),
        "nb_outlinks": len(kinds["outlink"]),
        "nb_uniq_outlinks": len({(i, a.url) for i, a in kinds["outlink"]}),
        "nb_searches": len(kinds["search"]),
        "nb_keywords": len({a.attrs.get("siteSearchKeyword") for _, a in kinds["search"]}),
    }


def _goal_kinds(idgoal: str | None) -> tuple[str, int | None]:
    if idgoal in ("ecommerceOrder", "ecommerceAbandonedCart"):
        return idgoal, None
    return "goal", int(idgoal) if idgoal not in (None, "") else None


def _goals_get(views: list[VisitView], idgoal: str | None) -> dict[str, t.Any]:
    kind, number = _goal_kinds(idgoal)
    converted: set[int] = set()
    conversions, revenue, items = 0, 0.0, 0
    for view in views:
        for action in view.actions:
            if action.kind != kind or (number is not None and action.attrs.get("goalId") != number):
                continue
            conversions += 1
            revenue += float(action.attrs.get("revenue") or 0)
            items += int(action.attrs.get("items") or 0)
            converted.add(view.visit.idvisit)
    row: dict[str, t.Any] = {
        "nb_conversions": conversions,
        "nb_visits_converted": len(converted),
        "revenue": _num(round(revenue, 2)),
        "conversion_rate": round(len(converted) / len(views), 4) if views else 0,
    }
    if kind != "goal":
        row["items"] = items
    return row


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class Grouping:
    """A multi-row report: each row's dimension values (parent first) from a visit or an action."""

    fields: tuple[str, ...]  # Plugin_Dimension names, parent first
    level: t.Literal["visit", "action", "event", "item"]
    #: -> the dimension values of a visit or an action, one per field (None: not in this report)
    values: t.Callable[[VisitView, Action | None], tuple[str, ...] | None]
    #: the flat label of a row's values (Matomo joins most with " - ")
    label: t.Callable[[tuple[str, ...]], str] = " - ".join
    attributes: t.Callable[[tuple[str, ...], VisitView, Action | None], dict[str, t.Any]] = lambda *_: {}
    all_values: tuple[tuple[str, ...], ...] = ()  # rows every answer lists, with zeros (device types, hours)


def _referrer(kind: str) -> t.Callable[[VisitView, Action | None], tuple[str, ...] | None]:
    def values(view: VisitView, _: Action | None) -> tuple[str, ...] | None:
        r = view.rendered
        if r["referrerType"] != kind:
            return None
        name, keyword = r["referrerName"] or "", r["referrerKeyword"] or "Keyword not defined"
        if kind == "website":
            return (name, _path(r["referrerUrl"]).lstrip("/"))
        if kind == "search":
            return (name, keyword)
        return (name, keyword)

    return values


def _kind(kind: str, key: str) -> t.Callable[[VisitView, Action | None], tuple[str, ...] | None]:
    def values(_: VisitView, action: Action | None) -> tuple[str, ...] | None:
        if action is None or action.kind != kind:
            return None
        return (str(action.attrs.get(key) or ""),)

    return values


def _event(*keys: str) -> t.Callable[[VisitView, Action | None], tuple[str, ...] | None]:
    def values(_: VisitView, action: Action | None) -> tuple[str, ...] | None:
        if action is None or action.kind != "event":
            return None
        return tuple(str(action.attrs.get(key) or "") for key in keys)

    return values


def _hour(view: VisitView, _: Action | None) -> tuple[str, ...]:
    return (f"{int(view.rendered['serverTimePrettyFirstAction'][:2]):02d}",)


GROUPINGS: dict[str, Grouping] = {
    "Referrers.getReferrerType": Grouping(
        (),  # the real answer has no dimension field: the label and referrer_type
        "visit",
        lambda v, _: (REFERRER_TYPES[v.rendered["referrerType"]][0],),
        attributes=lambda values, v, _: {"referrer_type": REFERRER_TYPES[v.rendered["referrerType"]][1]},
    ),
    "Referrers.getAll": Grouping(
        ("Referrers_Referrer",),
        "visit",
        lambda v, _: (v.rendered["referrerName"] or REFERRER_TYPES[v.rendered["referrerType"]][0],),
        attributes=lambda values, v, _: {"referer_type": REFERRER_TYPES[v.rendered["referrerType"]][1]},
    ),
    "Referrers.getWebsites": Grouping(
        ("Referrers_Website", "Referrers_WebsitePage"), "visit", _referrer("website"), label="/".join
    ),
    "Referrers.getSearchEngines": Grouping(
        ("Referrers_SearchEngine", "Referrers_Keyword"), "visit", _referrer("search")
    ),
    "Referrers.getKeywords": Grouping(
        ("Referrers_Keyword", "Referrers_SearchEngine"),
        "visit",
        lambda v, a: (lambda p: (p[1], p[0]) if p else None)(_referrer("search")(v, a)),
    ),
    "Referrers.getCampaigns": Grouping(("Referrers_Campaign", "Referrers_Keyword"), "visit", _referrer("campaign")),
    "Referrers.getSocials": Grouping(
        ("Referrers_SocialNetwork", "Referrers_WebsitePage"), "visit", _referrer("social")
    ),
    # Rows by country code, labelled by name: codes that differ only in case (a location re-geolocated
    # after an anonymisation, seen on Matomo 5.0.2) are two rows with one label.
    "UserCountry.getCountry": Grouping(
        ("UserCountry_Country",),
        "visit",
        lambda v, _: (v.rendered["country"], v.rendered["countryCode"]),
        label=lambda values: values[0],
        attributes=lambda values, v, _: {"code": v.rendered["countryCode"]},
    ),
    "UserCountry.getCity": Grouping(
        ("UserCountry_City",),
        "visit",
        lambda v, _: (v.rendered["city"] or "Unknown",),
        attributes=lambda values, v, _: {"country": v.rendered["countryCode"], "country_name": v.rendered["country"]},
    ),
    "DevicesDetection.getType": Grouping(
        ("DevicesDetection_DeviceType",),
        "visit",
        lambda v, _: (v.rendered["deviceType"],),
        all_values=(("Desktop",), ("Smartphone",), ("Tablet",), ("Unknown",)),
    ),
    "DevicesDetection.getBrowsers": Grouping(
        ("DevicesDetection_BrowserName",), "visit", lambda v, _: (v.rendered["browserName"],)
    ),
    "DevicesDetection.getOsFamilies": Grouping(
        ("DevicesDetection_Os",), "visit", lambda v, _: (v.rendered["operatingSystemName"],)
    ),
    "VisitTime.getVisitInformationPerServerTime": Grouping(
        ("CoreHome_VisitFirstActionTime",),
        "visit",
        _hour,
        label=lambda values: f"{int(values[0]):02d}",
        all_values=tuple((str(h),) for h in range(24)),
    ),
    "Actions.getPageUrls": Grouping(
        ("Actions_PageUrl",), "action", lambda _, a: (_path(a.url),) if a is not None and a.kind == "action" else None
    ),
    "Actions.getPageTitles": Grouping(
        ("Actions_PageTitle",),
        "action",
        lambda _, a: (a.title or "",) if a is not None and a.kind == "action" else None,
    ),
    "Actions.getEntryPageUrls": Grouping(
        ("Actions_EntryPageUrl",),
        "action",
        lambda v, a: (_path(a.url),) if a is not None and a is _edge_pageview(v, 0) else None,
    ),
    "Actions.getExitPageUrls": Grouping(
        ("Actions_ExitPageUrl",),
        "action",
        lambda v, a: (_path(a.url),) if a is not None and a is _edge_pageview(v, -1) else None,
    ),
    "Actions.getSiteSearchKeywords": Grouping(("Actions_Keyword",), "action", _kind("search", "siteSearchKeyword")),
    "Actions.getDownloads": Grouping(
        ("Actions_DownloadUrl",),
        "action",
        lambda _, a: (_host(a.url) + _path(a.url),) if a is not None and a.kind == "download" else None,
    ),
    "Actions.getOutlinks": Grouping(
        ("Actions_ClickedUrl",),
        "action",
        lambda _, a: (_host(a.url) + _path(a.url),) if a is not None and a.kind == "outlink" else None,
    ),
    "Events.getCategory": Grouping(
        ("Events_EventCategory", "Events_EventAction"), "event", _event("eventCategory", "eventAction")
    ),
    "Events.getAction": Grouping(
        ("Events_EventAction", "Events_EventName"), "event", _event("eventAction", "eventName")
    ),
    "Events.getName": Grouping(("Events_EventName", "Events_EventAction"), "event", _event("eventName", "eventAction")),
    "Goals.getItemsName": Grouping(("Ecommerce_ProductName",), "item", lambda v, a: None),
    "Goals.getItemsSku": Grouping(("Ecommerce_ProductSku",), "item", lambda v, a: None),
}


def _edge_pageview(view: VisitView, index: int) -> Action | None:
    """The visit's first (0) or last (-1) pageview: its entry or exit page."""
    pageviews = [a for a in view.actions if a.kind == "action"]
    return pageviews[index] if pageviews else None


def _dimension_grouping(site: Site, iddimension: int) -> Grouping | None:
    scope = site.dimensions.get(iddimension, (None, None))[1]
    field_name = f"CustomDimension_CustomDimension{iddimension}"
    if scope == "visit":
        return Grouping(
            (field_name,),
            "visit",
            lambda v, _: (v.visit.dimensions[iddimension],) if iddimension in v.visit.dimensions else None,
        )
    if scope == "action":  # one field: "value - host/path" (the real answers)
        return Grouping(
            (field_name,),
            "action",
            lambda _, a: (
                (f"{a.dimensions[iddimension]} - {_host(a.url)}{_path(a.url)}",)
                if a is not None and iddimension in a.dimensions
                else None
            ),
        )
    return None


def _grouped(grouping: Grouping, views: list[VisitView]) -> dict[tuple[str, ...], dict[str, t.Any]]:
    """Each dimension-values tuple's metrics."""
    rows: dict[tuple[str, ...], dict[str, t.Any]] = {}
    if grouping.level == "visit":
        members: dict[tuple[str, ...], list[VisitView]] = defaultdict(list)
        for view in views:
            values = grouping.values(view, None)
            if values is not None:
                members[values].append(view)
        for values in grouping.all_values:
            members.setdefault(values, [])
        for values, group in members.items():
            rows[values] = {**_visit_metrics(group), **(grouping.attributes(values, group[0], None) if group else {})}
        return rows
    if grouping.level == "item":
        return rows  # filled by _items
    hits: dict[tuple[str, ...], list[tuple[VisitView, Action]]] = defaultdict(list)
    for view in views:
        for action in view.actions:
            values = grouping.values(view, action)
            if values is not None:
                hits[values].append((view, action))
    for values, hit_group in hits.items():
        views_of_group = [hit[0] for hit in hit_group]
        actions_of_group = [hit[1] for hit in hit_group]
        visits = {view.visit.idvisit for view in views_of_group}
        row: dict[str, t.Any] = {"nb_visits": len(visits)}
        if grouping.fields != ("Actions_Keyword",):  # site search keywords count no unique visitors
            row["nb_uniq_visitors"] = len({view.visit.visitor_id for view in views_of_group})
        if grouping.level == "event":
            event_values = [
                float(action.attrs["eventValue"])
                for action in actions_of_group
                if action.attrs.get("eventValue") is not None
            ]
            row |= {
                "nb_events": len(hit_group),
                "nb_events_with_value": len(event_values),
                "sum_event_value": _num(round(sum(event_values), 2)),
                "min_event_value": _num(min(event_values, default=0)),
                "max_event_value": _num(max(event_values, default=0)),
                "avg_event_value": _num(round(sum(event_values) / len(event_values), 2)) if event_values else 0,
            }
        else:
            row |= {"nb_hits": len(hit_group), "sum_time_spent": 0}
            if grouping.fields[0] == "Actions_EntryPageUrl":
                row |= {
                    "entry_nb_visits": len(visits),
                    "entry_bounce_count": sum(1 for view in views_of_group if view.rendered["actions"] == 1),
                }
            if grouping.fields[0] == "Actions_ExitPageUrl":
                row |= {"exit_nb_visits": len(visits)}
            if grouping.fields[0] in URL_FIELDS:
                row["url"] = actions_of_group[0].url
        rows[values] = row
    return rows


def _items(views: list[VisitView], by: str) -> dict[tuple[str, ...], dict[str, t.Any]]:
    rows: dict[tuple[str, ...], dict[str, t.Any]] = {}
    for view in views:
        for action in view.actions:
            if action.kind != "ecommerceOrder":
                continue
            for item in action.attrs["itemDetails"]:
                key = (str(item["itemName" if by == "name" else "itemSKU"]),)
                row = rows.setdefault(
                    key, {"revenue": 0.0, "quantity": 0, "orders": 0, "nb_visits": 0, "_visits": set()}
                )
                row["revenue"] += float(item["price"]) * int(item["quantity"])
                row["quantity"] += int(item["quantity"])
                row["orders"] += 1
                row["_visits"].add(view.visit.idvisit)
    for row in rows.values():
        row["nb_visits"] = len(row.pop("_visits"))
        row["revenue"] = _num(round(row["revenue"], 2))
        row["avg_price"] = _num(round(row["revenue"] / row["quantity"], 2)) if row["quantity"] else 0
    return rows


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
        return [_summary(views)]
    if query.method == "Actions.get":
        return [_actions_get(views)]
    if query.method == "Goals.get":
        return [_goals_get(views, query.params.get("idGoal"))]
    if query.method == "CustomDimensions.getCustomDimension":
        grouping = _dimension_grouping(site, int(query.params.get("idDimension") or 0))
        if grouping is None:
            return []
    elif query.method in ("Goals.getItemsName", "Goals.getItemsSku"):
        grouping = GROUPINGS[query.method]
        grouped = _items(views, "name" if query.method.endswith("Name") else "sku")
        return [
            {"_path": values, "_fields": grouping.fields, "_label": values[0], **row}
            for values, row in sorted(grouped.items(), key=_by_visits)
        ]
    else:
        grouping = GROUPINGS[query.method]
    grouped = _grouped(grouping, views)
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
    entry("Actions.get", list(_actions_get([])))
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
