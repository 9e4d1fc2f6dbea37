"""Matomo 5.0.2's JSON for sites and visits, in the key order and with the quirks of the real samples.

Quirks kept (an action's own in render_actions.py): latitude/longitude are strings; `totalEcommerceItems` is a string
unless 0; floats without a fraction are ints; with `numeric_strings` every number becomes a
string, as older PHP/MySQL stacks answer.
"""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime

from matomo_simulator.render_actions import SYMBOLS, actions_json, num, pretty_duration

if t.TYPE_CHECKING:
    from matomo_simulator.dataset import World
    from matomo_simulator.model import Site, Visit

_REFERRER_NAMES = {
    "direct": "Direct Entry",
    "search": "Search Engines",
    "campaign": "Campaigns",
    "social": "Social Networks",
    "website": "Websites",
}


def stringify_numbers(value: object) -> object:
    """Every number as a string, as older PHP/MySQL stacks answer (booleans stay booleans)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return {k: stringify_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stringify_numbers(v) for v in value]
    return value


def render_site(site: Site) -> dict:
    return {
        "idsite": site.idsite,
        "name": site.name,
        "main_url": site.main_url,
        "ts_created": site.ts_created,
        "ecommerce": int(site.ecommerce),
        "sitesearch": 1,
        "sitesearch_keyword_parameters": "",
        "sitesearch_category_parameters": "",
        "timezone": site.timezone,
        "currency": site.currency,
        "exclude_unknown_urls": 0,
        "excluded_ips": "",
        "excluded_parameters": "",
        "excluded_user_agents": "",
        "excluded_referrers": "",
        "group": "",
        "type": "website",
        "keep_url_fragment": 0,
        "creator_login": "admin",
        "timezone_name": site.timezone,
        "currency_name": site.currency,
    }


def render_visit(world: World, visit: Visit, *, numeric_strings: bool = False) -> dict:
    """One item of Live.getLastVisitsDetails, as Matomo 5.0.2 writes it."""
    site = world.sites[visit.idsite]
    a = visit.attrs
    out: dict[str, t.Any] = {
        **_visit_head(world, site, visit),
        **_visit_referrer_and_device(visit),
        **(_ecommerce_totals(visit) if site.ecommerce else {}),
        **_visit_location(visit),
    }
    if "customVariables" in a:
        out["customVariables"] = a["customVariables"]
    for iddim, (_name, scope) in site.dimensions.items():
        if scope == "visit":
            out[f"dimension{iddim}"] = visit.dimensions.get(iddim)
    hidden = len(visit.actions) - len(out["actionDetails"])
    if hidden > 0:
        out["truncatedActionsCount"] = hidden
    return t.cast(dict[str, t.Any], stringify_numbers(out)) if numeric_strings else out


def _visit_head(world: World, site: Site, visit: Visit) -> dict[str, t.Any]:
    """From `idSite` to `visitDurationPretty`: the visit, its actions, its times and its conversions."""
    a = visit.attrs
    first, last = visit.first_action, visit.last_action
    first_local, last_local = datetime.fromtimestamp(first, site.tz), datetime.fromtimestamp(last, site.tz)
    first_utc, last_utc = datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC)
    goals = [act.kind for act in visit.actions].count("goal")
    orders = any(act.kind == "ecommerceOrder" for act in visit.actions)
    carts = any(act.kind == "ecommerceAbandonedCart" for act in visit.actions)
    status = "ordered" if orders else ("abandonedCart" if carts else "none")
    duration = last - first + (0 if len(visit.actions) == 1 else 3) + visit.ping_seconds
    return {
        "idSite": site.idsite,
        "idVisit": visit.idvisit,
        "visitIp": a["visitIp"],
        "visitorId": visit.visitor_id,
        "fingerprint": a["fingerprint"],
        "actionDetails": actions_json(world, site, visit),
        "goalConversions": goals,
        "siteCurrency": site.currency,
        "siteCurrencySymbol": SYMBOLS.get(site.currency, ""),
        "serverDate": f"{last_utc:%Y-%m-%d}",
        "visitServerHour": f"{first_utc.hour}",
        "lastActionTimestamp": last,
        "lastActionDateTime": f"{last_utc:%Y-%m-%d %H:%M:%S}",
        "siteName": site.name,
        "serverTimestamp": last,
        "firstActionTimestamp": first,
        "serverTimePretty": f"{last_local:%H:%M:%S}",
        "serverDatePretty": f"{last_local:%A, %B} {last_local.day}, {last_local:%Y}",
        "serverDatePrettyFirstAction": f"{first_local:%A, %B} {first_local.day}, {first_local:%Y}",
        "serverTimePrettyFirstAction": f"{first_local:%H:%M:%S}",
        "userId": a["userId"],
        "visitorType": a["visitorType"],
        "visitorTypeIcon": "plugins/Live/images/returningVisitor.png" if a["visitorType"] == "returning" else None,
        "visitConverted": int(goals > 0),
        "visitConvertedIcon": "plugins/Morpheus/images/goal.svg" if goals else None,
        "visitCount": a["visitCount"],
        "visitEcommerceStatus": status,
        "visitEcommerceStatusIcon": f"plugins/Morpheus/images/{status}.svg" if status != "none" else None,
        "daysSinceFirstVisit": a["daysSinceFirstVisit"],
        "secondsSinceFirstVisit": a["daysSinceFirstVisit"] * 86400,
        "daysSinceLastEcommerceOrder": 0,
        "secondsSinceLastEcommerceOrder": 0 if orders else None,
        "visitDuration": duration,
        "visitDurationPretty": pretty_duration(duration),
    }


def _visit_referrer_and_device(visit: Visit) -> dict[str, t.Any]:
    """From `searches` to `browserVersion`: what the visit did, where it came from, its device and browser."""
    a, kinds = visit.attrs, [act.kind for act in visit.actions]
    return {
        "searches": kinds.count("search"),
        "actions": sum(kinds.count(k) for k in ("action", "event", "download", "outlink", "search")),
        "interactions": kinds.count("action") + kinds.count("search"),
        "referrerType": a["referrerType"],
        "referrerTypeName": _REFERRER_NAMES[a["referrerType"]],
        "referrerName": a["referrerName"],
        "referrerKeyword": a["referrerKeyword"],
        "referrerKeywordPosition": None,
        "referrerUrl": a["referrerUrl"],
        "referrerSearchEngineUrl": None,
        "referrerSearchEngineIcon": None,
        "referrerSocialNetworkUrl": None,
        "referrerSocialNetworkIcon": None,
        "languageCode": a["languageCode"],
        "language": a["language"],
        "deviceType": a["deviceType"],
        "deviceTypeIcon": f"plugins/Morpheus/icons/dist/devices/{a['deviceType'].lower()}.png",
        "deviceBrand": a["deviceBrand"],
        "deviceModel": a["deviceModel"],
        "operatingSystem": a["operatingSystemName"],
        "operatingSystemName": a["operatingSystemName"],
        "operatingSystemIcon": f"plugins/Morpheus/icons/dist/os/{a['operatingSystemCode']}.png",
        "operatingSystemCode": a["operatingSystemCode"],
        "operatingSystemVersion": a["operatingSystemVersion"],
        "browserFamily": a["browserFamily"],
        "browserFamilyDescription": a["browserFamily"],
        "browser": f"{a['browserName']} {a['browserVersion']}",
        "browserName": a["browserName"],
        "browserIcon": f"plugins/Morpheus/icons/dist/browsers/{a['browserCode']}.png",
        "browserCode": a["browserCode"],
        "browserVersion": a["browserVersion"],
    }


def _ecommerce_totals(visit: Visit) -> dict[str, t.Any]:
    """An ecommerce site's visit: its orders' and abandoned carts' totals."""
    orders = [act for act in visit.actions if act.kind == "ecommerceOrder"]
    carts = [act for act in visit.actions if act.kind == "ecommerceAbandonedCart"]
    items = sum(o.attrs["items"] for o in orders)
    cart_items = sum(c.attrs["items"] for c in carts)
    return {
        "totalEcommerceRevenue": num(round(sum(o.attrs["revenue"] for o in orders), 2)),
        "totalEcommerceConversions": len(orders),
        "totalEcommerceItems": str(items) if items else 0,
        "totalAbandonedCartsRevenue": num(round(sum(c.attrs["revenue"] for c in carts), 2)),
        "totalAbandonedCarts": len(carts),
        "totalAbandonedCartsItems": str(cart_items) if cart_items else 0,
    }


def _visit_location(visit: Visit) -> dict[str, t.Any]:
    """From `events` to `pluginsIcons`: where the visitor was, their local time, their screen."""
    a = visit.attrs
    first_utc = datetime.fromtimestamp(visit.first_action, UTC)
    return {
        "events": [act.kind for act in visit.actions].count("event"),
        "continent": a["continent"],
        "continentCode": a["continentCode"],
        "country": a["country"],
        "countryCode": a["countryCode"],
        "countryFlag": f"plugins/Morpheus/icons/dist/flags/{a['countryCode']}.png",
        "region": a["region"],
        "regionCode": a["regionCode"],
        "city": a["city"],
        "location": ", ".join(x for x in (a["city"], a["country"]) if x),
        "latitude": a["latitude"],
        "longitude": a["longitude"],
        "visitLocalTime": f"{first_utc:%H:%M:%S}",
        "visitLocalHour": f"{first_utc.hour}",
        "daysSinceLastVisit": 0,
        "secondsSinceLastVisit": 0,
        "resolution": a["resolution"],
        "plugins": "",
        "pluginsIcons": None,
    }


def render_custom_dimensions(site: Site) -> list[dict]:
    return [
        {
            "idcustomdimension": str(iddim),
            "idsite": str(site.idsite),
            "name": name,
            "index": "1",
            "scope": scope,
            "active": True,
            "extractions": [],
            "case_sensitive": True,
        }
        for iddim, (name, scope) in sorted(site.dimensions.items(), reverse=True)
    ]


def render_goals(site: Site) -> list[dict]:
    return [
        {
            "idsite": site.idsite,
            "idgoal": idgoal,
            "name": name,
            "description": "",
            "match_attribute": "url",
            "pattern": pattern,
            "pattern_type": "contains",
            "case_sensitive": 0,
            "allow_multiple": 1,
            "revenue": num(revenue),
            "deleted": 0,
            "event_value_as_revenue": 0,
        }
        for idgoal, (name, pattern, revenue) in sorted(site.goals.items())
    ]
