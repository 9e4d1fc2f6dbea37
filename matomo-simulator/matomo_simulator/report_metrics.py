"""A report's rows computed from the visits of its period: visit metrics (per row of visits), hit metrics (per
row of actions or events), one-row summaries (VisitsSummary.get, Actions.get, Goals.get), ecommerce items."""

from __future__ import annotations

import typing as t
from collections import defaultdict

from matomo_simulator.render_actions import num
from matomo_simulator.report_groupings import URL_FIELDS, Grouping, VisitView

if t.TYPE_CHECKING:
    from matomo_simulator.model import Action


def visit_metrics(views: list[VisitView]) -> dict[str, t.Any]:
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


def summary(views: list[VisitView]) -> dict[str, t.Any]:
    metrics = visit_metrics(views)
    visits = metrics["nb_visits"]
    return {
        **metrics,
        "bounce_rate": round(metrics["bounce_count"] / visits, 2) if visits else 0,
        "nb_actions_per_visit": round(metrics["nb_actions"] / visits, 1) if visits else 0,
        "avg_time_on_site": round(metrics["sum_visit_length"] / visits) if visits else 0,
    }


def actions_get(views: list[VisitView]) -> dict[str, t.Any]:
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


def goals_get(views: list[VisitView], idgoal: str | None) -> dict[str, t.Any]:
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
        "revenue": num(round(revenue, 2)),
        "conversion_rate": round(len(converted) / len(views), 4) if views else 0,
    }
    if kind != "goal":
        row["items"] = items
    return row


def grouped(grouping: Grouping, views: list[VisitView]) -> dict[tuple[str, ...], dict[str, t.Any]]:
    """Each dimension-values tuple's metrics."""
    if grouping.level == "visit":
        return _visit_rows(grouping, views)
    if grouping.level == "item":
        return {}  # filled by items
    hits: dict[tuple[str, ...], list[tuple[VisitView, Action]]] = defaultdict(list)
    for view in views:
        for action in view.actions:
            values = grouping.values(view, action)
            if values is not None:
                hits[values].append((view, action))
    return {values: _hit_row(grouping, hit_group) for values, hit_group in hits.items()}


def _visit_rows(grouping: Grouping, views: list[VisitView]) -> dict[tuple[str, ...], dict[str, t.Any]]:
    """A report of visits: each row's visit metrics and attributes; the rows every answer lists, with zeros."""
    members: dict[tuple[str, ...], list[VisitView]] = defaultdict(list)
    for view in views:
        values = grouping.values(view, None)
        if values is not None:
            members[values].append(view)
    for values in grouping.all_values:
        members.setdefault(values, [])
    return {
        values: {**visit_metrics(group), **(grouping.attributes(values, group[0], None) if group else {})}
        for values, group in members.items()
    }


def _hit_row(grouping: Grouping, hit_group: list[tuple[VisitView, Action]]) -> dict[str, t.Any]:
    """A row of a report of actions or events: its hits' metrics."""
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
        return row | {
            "nb_events": len(hit_group),
            "nb_events_with_value": len(event_values),
            "sum_event_value": num(round(sum(event_values), 2)),
            "min_event_value": num(min(event_values, default=0)),
            "max_event_value": num(max(event_values, default=0)),
            "avg_event_value": num(round(sum(event_values) / len(event_values), 2)) if event_values else 0,
        }
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
    return row


def items(views: list[VisitView], by: str) -> dict[tuple[str, ...], dict[str, t.Any]]:
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
        row["revenue"] = num(round(row["revenue"], 2))
        row["avg_price"] = num(round(row["revenue"] / row["quantity"], 2)) if row["quantity"] else 0
    return rows
