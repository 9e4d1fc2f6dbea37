"""Matomo 5.0.2's JSON for sites and visits, in the key order and with the quirks of the real samples.

Quirks kept: action `timestamp` is the site-local wall clock encoded as a UTC epoch; content
items have `"type": 13`; latitude/longitude are strings; `totalEcommerceItems` is a string
unless 0; floats without a fraction are ints; with `numeric_strings` every number becomes a
string, as older PHP/MySQL stacks answer.
"""

from __future__ import annotations

import calendar
import typing as t
import zlib
from datetime import UTC, datetime

from matomo_simulator.dataset import Action, Site, Visit, World

_ICONS = {
    "action": ("", "plugins/Morpheus/images/action.svg"),
    "event": ("plugins/Morpheus/images/event.png", "plugins/Morpheus/images/event.svg"),
    "download": ("plugins/Morpheus/images/download.png", "plugins/Morpheus/images/download.svg"),
    "outlink": ("plugins/Morpheus/images/link.png", "plugins/Morpheus/images/link.svg"),
    "search": ("plugins/Morpheus/images/search.png", "plugins/Morpheus/images/search.svg"),
    "goal": ("plugins/Morpheus/images/goal.png", "plugins/Morpheus/images/goal.svg"),
    "ecommerceOrder": ("plugins/Morpheus/images/ecommerceOrder.png", "plugins/Morpheus/images/ecommerceOrder.svg"),
    "ecommerceAbandonedCart": (
        "plugins/Morpheus/images/ecommerceAbandonedCart.png",
        "plugins/Morpheus/images/ecommerceAbandonedCart.svg",
    ),
}
_SYMBOLS = {"USD": "$", "EUR": "€", "INR": "‎₹", "BRL": "R$"}


def _num(value: float | int | None) -> float | int | None:
    """PHP's JSON: a float without a fraction is written as an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _pretty_duration(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs}s" if minutes else f"{secs}s"


def localised_epoch(at: int, site: Site) -> int:
    """Matomo's action timestamp: the site-local wall clock read as if it were UTC."""
    return calendar.timegm(datetime.fromtimestamp(at, site.tz).timetuple())


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


def _action_json(action: Action, site: Site, visit: Visit, pv_position: int, time_spent: int | None) -> dict:
    local = datetime.fromtimestamp(action.at, site.tz)
    pretty = f"{local:%b} {local.day}, {local:%Y %H:%M:%S}"
    icon, icon_svg = _ICONS.get(action.kind, ("", ""))
    a = action.attrs
    kind = action.kind
    common_tail = {"timestamp": localised_epoch(action.at, site)}
    if kind == "action":
        out: dict[str, t.Any] = {
            "type": "action",
            "url": action.url,
            "pageTitle": action.title,
            "pageIdAction": 40 + zlib.crc32(action.url.encode()) % 50,
            "idpageview": action.pageview_id,
            "serverTimePretty": pretty,
            "pageId": action.page_id,
        }
        for key in ("productViewPrice", "productViewName", "productViewSku"):
            if key in a:
                out[key] = _num(a[key])
        if "customVariables" in a:
            out["customVariables"] = a["customVariables"]
        out |= {
            "timeSpent": time_spent or 0,
            "timeSpentPretty": _pretty_duration(time_spent or 0),
            "pageviewPosition": pv_position,
            "title": action.title,
            "subtitle": action.url,
            "icon": icon,
            "iconSVG": icon_svg,
            **common_tail,
        }
    elif kind == "content":
        interaction = a.get("contentInteraction")
        word = "interaction" if interaction else "impression"
        out = {
            "type": 13,
            "url": action.url,
            "pageTitle": None,
            "pageIdAction": 44,
            "idpageview": action.pageview_id,
            "serverTimePretty": pretty,
            "pageId": action.page_id,
            "contentName": a["contentName"],
            "contentPiece": a["contentPiece"],
            "contentTarget": a["contentTarget"],
            "contentInteraction": interaction,
            "pageviewPosition": pv_position,
            "icon": f"plugins/Morpheus/images/content{word}.png",
            "iconSVG": f"plugins/Morpheus/images/content{word}.svg",
            "title": f"Content Interaction ({interaction})" if interaction else "Content Impression",
            "subtitle": f"{a['contentName']} - {a['contentPiece']}",
            **common_tail,
        }
    elif kind == "goal":
        out = {
            "type": "goal",
            "goalName": a["goalName"],
            "goalId": a["goalId"],
            "idpageview": action.pageview_id,
            "revenue": _num(a["revenue"]),
            "goalPageId": a["goalPageId"],
            "serverTimePretty": pretty,
            "url": action.url,
            "referrerType": visit.attrs["referrerType"],
            "referrerName": None,
            "referrerKeyword": None,
            "icon": icon,
            "iconSVG": icon_svg,
            "title": "Goal conversion",
            "subtitle": f"{a['goalName']} ({_SYMBOLS.get(site.currency, '')}{_num(a['revenue'])} revenue)",
            **common_tail,
        }
    elif kind in ("ecommerceOrder", "ecommerceAbandonedCart"):
        out = {"type": kind}
        if kind == "ecommerceOrder":
            out |= {
                "orderId": a["orderId"],
                "revenue": _num(a["revenue"]),
                "revenueSubTotal": _num(a["revenueSubTotal"]),
                "revenueTax": _num(a["revenueTax"]),
                "revenueShipping": _num(a["revenueShipping"]),
                "revenueDiscount": _num(a["revenueDiscount"]),
            }
            title = f"Ordered ({a['orderId']})"
        else:
            out |= {"revenue": _num(a["revenue"])}
            title = "Abandoned Cart"
        details = [{**d, "price": _num(d["price"])} for d in a["itemDetails"]]
        out |= {
            "items": a["items"],
            "serverTimePretty": pretty,
            "idpageview": None,
            "itemDetails": details,
            "icon": icon,
            "iconSVG": icon_svg,
            "title": title,
            "subtitle": f"{_SYMBOLS.get(site.currency, '')}{_num(a['revenue'])} revenue - {a['items']} items",
            **common_tail,
        }
    elif kind == "event":
        out = {
            "type": "event",
            "url": action.url,
            "pageIdAction": 13,
            "idpageview": action.pageview_id,
            "serverTimePretty": pretty,
            "pageId": action.page_id,
            "eventCategory": a["eventCategory"],
            "eventAction": a["eventAction"],
            "pageviewPosition": pv_position,
            **common_tail,
            "icon": icon,
            "iconSVG": icon_svg,
            "title": "Event",
            "subtitle": f'Category: "{a["eventCategory"]}\', Action: "{a["eventAction"]}"',
        }
        if "eventName" in a:
            out["eventName"] = a["eventName"]
        if "eventValue" in a:
            out["eventValue"] = _num(a["eventValue"])
    elif kind == "search":
        out = {
            "type": "search",
            "url": None,
            "pageIdAction": None,
            "idpageview": action.pageview_id,
            "serverTimePretty": pretty,
            "pageId": action.page_id,
            "siteSearchKeyword": a["siteSearchKeyword"],
            "siteSearchCategory": a["siteSearchCategory"],
            "siteSearchCount": a["siteSearchCount"],
            "pageviewPosition": pv_position,
            "icon": icon,
            "iconSVG": icon_svg,
            "title": "Site Search",
            "subtitle": f"{a['siteSearchKeyword']} - Search Category: {a['siteSearchCategory']}",
            **common_tail,
        }
    else:  # download, outlink, and any other kind as Matomo would list it
        out = {
            "type": kind,
            "url": action.url,
            "pageTitle": None,
            "pageIdAction": 10,
            "idpageview": action.pageview_id,
            "serverTimePretty": pretty,
            "pageId": action.page_id,
            "pageviewPosition": pv_position,
            "icon": icon,
            "iconSVG": icon_svg,
            "title": kind.title(),
            "subtitle": action.url,
            **common_tail,
        }
    for iddim, (_name, scope) in site.dimensions.items():
        if scope == "action":
            out[f"dimension{iddim}"] = action.dimensions.get(iddim)
    return out


def _actions_json(world: World, site: Site, visit: Visit) -> list[dict]:
    actions = world.returned_actions(visit)
    out, pv_position = [], 0
    pageview_times = [a.at for a in actions if a.kind == "action"]
    for action in actions:
        time_spent = None
        if action.kind == "action":
            pv_position += 1
            later = [at for at in pageview_times if at > action.at]
            time_spent = later[0] - action.at if later else 0
        out.append(_action_json(action, site, visit, max(pv_position, 1), time_spent))
    return out


def render_visit(world: World, visit: Visit, *, numeric_strings: bool = False) -> dict:
    """One item of Live.getLastVisitsDetails, as Matomo 5.0.2 writes it."""
    site = world.sites[visit.idsite]
    a = visit.attrs
    first, last = visit.first_action, visit.last_action
    tz = site.tz
    first_local, last_local = datetime.fromtimestamp(first, tz), datetime.fromtimestamp(last, tz)
    first_utc, last_utc = datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC)
    kinds = [act.kind for act in visit.actions]
    goals = kinds.count("goal")
    orders = [act for act in visit.actions if act.kind == "ecommerceOrder"]
    carts = [act for act in visit.actions if act.kind == "ecommerceAbandonedCart"]
    status = "ordered" if orders else ("abandonedCart" if carts else "none")
    duration = last - first + (0 if len(visit.actions) == 1 else 3) + visit.ping_seconds
    referrer_names = {
        "direct": "Direct Entry",
        "search": "Search Engines",
        "campaign": "Campaigns",
        "social": "Social Networks",
        "website": "Websites",
    }
    out: dict = {
        "idSite": site.idsite,
        "idVisit": visit.idvisit,
        "visitIp": a["visitIp"],
        "visitorId": visit.visitor_id,
        "fingerprint": a["fingerprint"],
        "actionDetails": _actions_json(world, site, visit),
        "goalConversions": goals,
        "siteCurrency": site.currency,
        "siteCurrencySymbol": _SYMBOLS.get(site.currency, ""),
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
        "visitDurationPretty": _pretty_duration(duration),
        "searches": kinds.count("search"),
        "actions": sum(kinds.count(k) for k in ("action", "event", "download", "outlink", "search")),
        "interactions": kinds.count("action") + kinds.count("search"),
        "referrerType": a["referrerType"],
        "referrerTypeName": referrer_names[a["referrerType"]],
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
    if site.ecommerce:
        items = sum(o.attrs["items"] for o in orders)
        cart_items = sum(c.attrs["items"] for c in carts)
        out |= {
            "totalEcommerceRevenue": _num(round(sum(o.attrs["revenue"] for o in orders), 2)),
            "totalEcommerceConversions": len(orders),
            "totalEcommerceItems": str(items) if items else 0,
            "totalAbandonedCartsRevenue": _num(round(sum(c.attrs["revenue"] for c in carts), 2)),
            "totalAbandonedCarts": len(carts),
            "totalAbandonedCartsItems": str(cart_items) if cart_items else 0,
        }
    out |= {
        "events": kinds.count("event"),
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
    if "customVariables" in a:
        out["customVariables"] = a["customVariables"]
    for iddim, (_name, scope) in site.dimensions.items():
        if scope == "visit":
            out[f"dimension{iddim}"] = visit.dimensions.get(iddim)
    hidden = len(visit.actions) - len(out["actionDetails"])
    if hidden > 0:
        out["truncatedActionsCount"] = hidden
    return t.cast(dict[str, t.Any], stringify_numbers(out)) if numeric_strings else out


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
            "revenue": _num(revenue),
            "deleted": 0,
            "event_value_as_revenue": 0,
        }
        for idgoal, (name, pattern, revenue) in sorted(site.goals.items())
    ]
