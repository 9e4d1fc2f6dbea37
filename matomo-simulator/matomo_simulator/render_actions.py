"""Matomo 5.0.2's JSON for one action of a visit's `actionDetails`, per kind, in the real samples' key order.

Quirks kept: `timestamp` is the site-local wall clock encoded as a UTC epoch; content items have
`"type": 13`; floats without a fraction are ints.
"""

from __future__ import annotations

import calendar
import typing as t
import zlib
from dataclasses import dataclass
from datetime import datetime

if t.TYPE_CHECKING:
    from matomo_simulator.dataset import World
    from matomo_simulator.model import Action, Site, Visit

ICONS = {
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
SYMBOLS = {"USD": "$", "EUR": "€", "INR": "‎₹", "BRL": "R$"}


def num(value: float | int | None) -> float | int | None:
    """PHP's JSON: a float without a fraction is written as an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def pretty_duration(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs}s" if minutes else f"{secs}s"


def localised_epoch(at: int, site: Site) -> int:
    """Matomo's action timestamp: the site-local wall clock read as if it were UTC."""
    return calendar.timegm(datetime.fromtimestamp(at, site.tz).timetuple())


@dataclass(frozen=True)
class Shown:
    """One action as a renderer needs it: the action, its visit and site, and what every kind shows."""

    action: Action
    site: Site
    visit: Visit
    pv_position: int
    time_spent: int | None

    @property
    def a(self) -> dict[str, t.Any]:
        return self.action.attrs

    @property
    def pretty(self) -> str:
        local = datetime.fromtimestamp(self.action.at, self.site.tz)
        return f"{local:%b} {local.day}, {local:%Y %H:%M:%S}"

    @property
    def icons(self) -> dict[str, str]:
        icon, icon_svg = ICONS.get(self.action.kind, ("", ""))
        return {"icon": icon, "iconSVG": icon_svg}

    @property
    def tail(self) -> dict[str, int]:
        return {"timestamp": localised_epoch(self.action.at, self.site)}

    @property
    def currency(self) -> str:
        return SYMBOLS.get(self.site.currency, "")


def _pageview(s: Shown) -> dict[str, t.Any]:
    action, a = s.action, s.a
    out: dict[str, t.Any] = {
        "type": "action",
        "url": action.url,
        "pageTitle": action.title,
        "pageIdAction": 40 + zlib.crc32(action.url.encode()) % 50,
        "idpageview": action.pageview_id,
        "serverTimePretty": s.pretty,
        "pageId": action.page_id,
    }
    for key in ("productViewPrice", "productViewName", "productViewSku"):
        if key in a:
            out[key] = num(a[key])
    if "customVariables" in a:
        out["customVariables"] = a["customVariables"]
    time_spent = s.time_spent or 0
    return out | {
        "timeSpent": time_spent,
        "timeSpentPretty": pretty_duration(time_spent),
        "pageviewPosition": s.pv_position,
        "title": action.title,
        "subtitle": action.url,
        **s.icons,
        **s.tail,
    }


def _content(s: Shown) -> dict[str, t.Any]:
    action, a = s.action, s.a
    interaction = a.get("contentInteraction")
    word = "interaction" if interaction else "impression"
    return {
        "type": 13,
        "url": action.url,
        "pageTitle": None,
        "pageIdAction": 44,
        "idpageview": action.pageview_id,
        "serverTimePretty": s.pretty,
        "pageId": action.page_id,
        "contentName": a["contentName"],
        "contentPiece": a["contentPiece"],
        "contentTarget": a["contentTarget"],
        "contentInteraction": interaction,
        "pageviewPosition": s.pv_position,
        "icon": f"plugins/Morpheus/images/content{word}.png",
        "iconSVG": f"plugins/Morpheus/images/content{word}.svg",
        "title": f"Content Interaction ({interaction})" if interaction else "Content Impression",
        "subtitle": f"{a['contentName']} - {a['contentPiece']}",
        **s.tail,
    }


def _goal(s: Shown) -> dict[str, t.Any]:
    action, a = s.action, s.a
    return {
        "type": "goal",
        "goalName": a["goalName"],
        "goalId": a["goalId"],
        "idpageview": action.pageview_id,
        "revenue": num(a["revenue"]),
        "goalPageId": a["goalPageId"],
        "serverTimePretty": s.pretty,
        "url": action.url,
        "referrerType": s.visit.attrs["referrerType"],
        "referrerName": None,
        "referrerKeyword": None,
        **s.icons,
        "title": "Goal conversion",
        "subtitle": f"{a['goalName']} ({s.currency}{num(a['revenue'])} revenue)",
        **s.tail,
    }


def _ecommerce(s: Shown) -> dict[str, t.Any]:
    kind, a = s.action.kind, s.a
    out: dict[str, t.Any] = {"type": kind}
    if kind == "ecommerceOrder":
        out |= {
            "orderId": a["orderId"],
            "revenue": num(a["revenue"]),
            "revenueSubTotal": num(a["revenueSubTotal"]),
            "revenueTax": num(a["revenueTax"]),
            "revenueShipping": num(a["revenueShipping"]),
            "revenueDiscount": num(a["revenueDiscount"]),
        }
        title = f"Ordered ({a['orderId']})"
    else:
        out |= {"revenue": num(a["revenue"])}
        title = "Abandoned Cart"
    return out | {
        "items": a["items"],
        "serverTimePretty": s.pretty,
        "idpageview": None,
        "itemDetails": [{**d, "price": num(d["price"])} for d in a["itemDetails"]],
        **s.icons,
        "title": title,
        "subtitle": f"{s.currency}{num(a['revenue'])} revenue - {a['items']} items",
        **s.tail,
    }


def _event(s: Shown) -> dict[str, t.Any]:
    action, a = s.action, s.a
    out: dict[str, t.Any] = {
        "type": "event",
        "url": action.url,
        "pageIdAction": 13,
        "idpageview": action.pageview_id,
        "serverTimePretty": s.pretty,
        "pageId": action.page_id,
        "eventCategory": a["eventCategory"],
        "eventAction": a["eventAction"],
        "pageviewPosition": s.pv_position,
        **s.tail,
        **s.icons,
        "title": "Event",
        "subtitle": f'Category: "{a["eventCategory"]}\', Action: "{a["eventAction"]}"',
    }
    if "eventName" in a:
        out["eventName"] = a["eventName"]
    if "eventValue" in a:
        out["eventValue"] = num(a["eventValue"])
    return out


def _search(s: Shown) -> dict[str, t.Any]:
    a = s.a
    return {
        "type": "search",
        "url": None,
        "pageIdAction": None,
        "idpageview": s.action.pageview_id,
        "serverTimePretty": s.pretty,
        "pageId": s.action.page_id,
        "siteSearchKeyword": a["siteSearchKeyword"],
        "siteSearchCategory": a["siteSearchCategory"],
        "siteSearchCount": a["siteSearchCount"],
        "pageviewPosition": s.pv_position,
        **s.icons,
        "title": "Site Search",
        "subtitle": f"{a['siteSearchKeyword']} - Search Category: {a['siteSearchCategory']}",
        **s.tail,
    }


def _other(s: Shown) -> dict[str, t.Any]:
    """A download, an outlink, and any other kind as Matomo would list it."""
    action = s.action
    return {
        "type": action.kind,
        "url": action.url,
        "pageTitle": None,
        "pageIdAction": 10,
        "idpageview": action.pageview_id,
        "serverTimePretty": s.pretty,
        "pageId": action.page_id,
        "pageviewPosition": s.pv_position,
        **s.icons,
        "title": action.kind.title(),
        "subtitle": action.url,
        **s.tail,
    }


_RENDERERS: dict[str, t.Callable[[Shown], dict[str, t.Any]]] = {
    "action": _pageview,
    "content": _content,
    "goal": _goal,
    "ecommerceOrder": _ecommerce,
    "ecommerceAbandonedCart": _ecommerce,
    "event": _event,
    "search": _search,
}


def action_json(shown: Shown) -> dict[str, t.Any]:
    out = _RENDERERS.get(shown.action.kind, _other)(shown)
    for iddim, (_name, scope) in shown.site.dimensions.items():
        if scope == "action":
            out[f"dimension{iddim}"] = shown.action.dimensions.get(iddim)
    return out


def actions_json(world: World, site: Site, visit: Visit) -> list[dict[str, t.Any]]:
    """The visit's `actionDetails`: pageviews numbered, each with the time until the next pageview."""
    actions = world.returned_actions(visit)
    out, pv_position = [], 0
    pageview_times = [a.at for a in actions if a.kind == "action"]
    for action in actions:
        time_spent = None
        if action.kind == "action":
            pv_position += 1
            later = [at for at in pageview_times if at > action.at]
            time_spent = later[0] - action.at if later else 0
        out.append(action_json(Shown(action, site, visit, max(pv_position, 1), time_spent)))
    return out
