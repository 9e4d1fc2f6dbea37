"""Mapping of one Matomo visit (Live.getLastVisitsDetails item) to `visits_actions` records.

Pure functions, no I/O: one record per `actionDetails` item, in order, each carrying its
visit's fields. See docs/data-contract.md for the columns.
"""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime, tzinfo

from tap_matomo.coerce import integer, number, text
from tap_matomo.timezones import local_date, local_wall_clock_to_utc

CONTENT_TYPE = "13"
DIMENSION_COLUMNS = 10


class InvalidVisitError(ValueError):
    """A visit that cannot be mapped (no id, no action list)."""


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant else None


def _epoch_iso(value: t.Any) -> str | None:
    epoch = integer(value)
    return _iso(datetime.fromtimestamp(epoch, UTC)) if epoch is not None else None


def _dimensions(source: dict) -> dict[str, str]:
    """`dimensionN` keys with a value."""
    return {
        key: str(value)
        for key, value in source.items()
        if key.startswith("dimension") and key[9:].isdigit() and text(value) is not None
    }


def _custom_variables(raw: t.Any, prefix: str) -> dict[str, t.Any] | None:
    """`{"1": {"<prefix>Name1": n, "<prefix>Value1": v}}` as `{n: v}`; None when there are none."""
    if not isinstance(raw, dict) or not raw:
        return None
    result = {}
    for slot, pair in raw.items():
        if not isinstance(pair, dict):
            continue
        name = text(pair.get(f"{prefix}Name{slot}"))
        if name is not None:
            result[name] = pair.get(f"{prefix}Value{slot}")
    return result or None


def _items(raw: t.Any) -> list[dict] | None:
    if not isinstance(raw, list):
        return None
    return [
        {
            "sku": text(item.get("itemSKU")),
            "name": text(item.get("itemName")),
            "category": text(item.get("itemCategory")),
            "categories": [c for c in (item.get("categories") or []) if text(c) is not None],
            "price": number(item.get("price")),
            "quantity": number(item.get("quantity")),
        }
        for item in raw
        if isinstance(item, dict)
    ]


def action_type(raw: t.Any) -> str | None:
    """Matomo's action type as a word; content items (`13` or `"13"`) become `content`."""
    word = text(raw)
    return "content" if word == CONTENT_TYPE else word


def visit_fields(visit: dict, tz: tzinfo, site: dict, *, include_ip: bool) -> dict[str, t.Any]:
    """The columns every action of a visit shares."""
    first_at = integer(visit.get("firstActionTimestamp"))
    fields: dict[str, t.Any] = {
        "idsite": integer(visit.get("idSite")) or site.get("idsite"),
        "idvisit": integer(visit.get("idVisit")),
        "actions": integer(visit.get("actions")),
        "country": text(visit.get("country")),
        "region": text(visit.get("region")),
        "city": text(visit.get("city")),
        "operatingsystemname": text(visit.get("operatingSystemName")),
        "devicemodel": text(visit.get("deviceModel")),
        "devicebrand": text(visit.get("deviceBrand")),
        "visitduration": integer(visit.get("visitDuration")),
        "dayssincefirstvisit": integer(visit.get("daysSinceFirstVisit")),
        "visitortype": text(visit.get("visitorType")),
        "sitename": text(visit.get("siteName")),
        "userid": text(visit.get("userId")),
        "serverdateprettyfirstaction": (local_date(first_at, tz).isoformat() if first_at is not None else None),
        "visitorid": text(visit.get("visitorId")),
        "referrertype": text(visit.get("referrerType")),
        "referrername": text(visit.get("referrerName")),
        "resolution": text(visit.get("resolution")),
        "experiments": visit.get("experiments") if isinstance(visit.get("experiments"), list) else None,
        "visitcount": integer(visit.get("visitCount")),
        "fingerprint": text(visit.get("fingerprint")),
        "countrycode": text(visit.get("countryCode")),
        "regioncode": text(visit.get("regionCode")),
        "continentcode": text(visit.get("continentCode")),
        "latitude": number(visit.get("latitude")),
        "longitude": number(visit.get("longitude")),
        "language_code": text(visit.get("languageCode")),
        "browsername": text(visit.get("browserName")),
        "browserversion": text(visit.get("browserVersion")),
        "browserfamily": text(visit.get("browserFamily")),
        "operatingsystemversion": text(visit.get("operatingSystemVersion")),
        "devicetype": text(visit.get("deviceType")),
        "referrerkeyword": text(visit.get("referrerKeyword")),
        "referrerurl": text(visit.get("referrerUrl")),
        "visitconverted": integer(visit.get("visitConverted")),
        "visitecommercestatus": text(visit.get("visitEcommerceStatus")),
        "goalconversions": integer(visit.get("goalConversions")),
        "events": integer(visit.get("events")),
        "searches": integer(visit.get("searches")),
        "interactions": integer(visit.get("interactions")),
        "visit_first_action_at": _epoch_iso(first_at),
        "visit_last_action_at": _epoch_iso(visit.get("lastActionTimestamp")),
        "visit_custom_variables": _custom_variables(visit.get("customVariables"), "customVariable"),
        "truncated_actions_count": integer(visit.get("truncatedActionsCount")),
        "site_timezone": site.get("timezone"),
        "site_currency": text(visit.get("siteCurrency")) or site.get("currency"),
    }
    if include_ip:
        fields["visitip"] = text(visit.get("visitIp"))
    return fields


def action_fields(
    action: dict,
    position: int,
    visit_dimensions: dict[str, str],
    tz: tzinfo,
    bounds: tuple[int | None, int | None],
) -> dict[str, t.Any]:
    """The columns of one `actionDetails` item."""
    localised = integer(action.get("timestamp"))
    instant = local_wall_clock_to_utc(localised, tz, *bounds) if localised is not None else None
    dimensions = {**visit_dimensions, **_dimensions(action)}
    kind = action_type(action.get("type"))
    is_item_list = kind in ("ecommerceOrder", "ecommerceAbandonedCart")
    return {
        "action_type": kind,
        "action_eventcategory": text(action.get("eventCategory")),
        "action_eventaction": text(action.get("eventAction")),
        "action_eventname": text(action.get("eventName")),
        "action_eventvalue": number(action.get("eventValue")),
        "action_timespent": integer(action.get("timeSpent")),
        "action_timestamp": _iso(instant),
        "usercustomproperties": _custom_variables(action.get("customVariables"), "customVariablePage"),
        "usercustomdimensions": dimensions or None,
        **{f"dimension{n}": dimensions.get(f"dimension{n}") for n in range(1, DIMENSION_COLUMNS + 1)},
        "action_url": text(action.get("url")),
        "sitesearchkeyword": text(action.get("siteSearchKeyword")),
        "action_title": text(action.get("title")),
        "action_position": position,
        "action_idlink_va": integer(action.get("pageId")),
        "action_idpageview": text(action.get("idpageview")),
        "action_page_title": text(action.get("pageTitle")),
        "action_page_load_ms": integer(
            action.get("pageLoadTimeMilliseconds", action.get("generationTimeMilliseconds"))
        ),
        "sitesearchcategory": text(action.get("siteSearchCategory")),
        "sitesearchcount": integer(action.get("siteSearchCount")),
        "content_name": text(action.get("contentName")),
        "content_piece": text(action.get("contentPiece")),
        "content_target": text(action.get("contentTarget")),
        "content_interaction": text(action.get("contentInteraction")),
        "goal_id": integer(action.get("goalId")),
        "goal_name": text(action.get("goalName")),
        "goal_page_idlink_va": integer(action.get("goalPageId")),
        "revenue": number(action.get("revenue")),
        "order_id": text(action.get("orderId")),
        "revenue_subtotal": number(action.get("revenueSubTotal")),
        "revenue_tax": number(action.get("revenueTax")),
        "revenue_shipping": number(action.get("revenueShipping")),
        "revenue_discount": number(action.get("revenueDiscount")),
        "items_count": integer(action.get("items")) if is_item_list else None,
        "items": _items(action.get("itemDetails")),
        "product_view_sku": text(action.get("productViewSku")),
        "product_view_name": text(action.get("productViewName")),
        "product_view_price": number(action.get("productViewPrice")),
    }


def visit_to_records(visit: dict, tz: tzinfo, site: dict, *, include_ip: bool = False) -> t.Iterator[dict[str, t.Any]]:
    """One record per item of the visit's `actionDetails`, keyed `{idVisit}_{position}`."""
    idvisit = integer(visit.get("idVisit"))
    if idvisit is None:
        msg = f"visit without a numeric idVisit: {visit.get('idVisit')!r}"
        raise InvalidVisitError(msg)
    actions = visit.get("actionDetails")
    if not isinstance(actions, list):
        msg = f"visit {idvisit} has no actionDetails list"
        raise InvalidVisitError(msg)
    shared = visit_fields(visit, tz, site, include_ip=include_ip)
    visit_dimensions = _dimensions(visit)
    # A little slack around the visit's true bounds, for the DST fold choice only.
    first, last = integer(visit.get("firstActionTimestamp")), integer(visit.get("lastActionTimestamp"))
    bounds = (first - 1 if first is not None else None, last + 1 if last is not None else None)
    for position, action in enumerate(actions):
        yield {
            "action_id": f"{idvisit}_{position}",
            **shared,
            **action_fields(action, position, visit_dimensions, tz, bounds),
        }
