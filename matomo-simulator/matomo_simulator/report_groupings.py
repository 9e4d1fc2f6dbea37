"""How a multi-row report groups visits or actions into rows: each report's dimension fields, the values a visit
or an action gives for them, the row's label and attributes (Matomo 5.0.2's `flat=1` answers)."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

if t.TYPE_CHECKING:
    from matomo_simulator.model import Action, Site, Visit

#: Matomo's names of the referrer types (Referrers.getReferrerType's labels) and their codes.
REFERRER_TYPES = {"direct": ("Direct Entry", 1), "search": ("Search Engines", 2), "website": ("Websites", 3)}
REFERRER_TYPES |= {"campaign": ("Campaigns", 6), "social": ("Social Networks", 7)}
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


def path_of(url: str | None) -> str:
    return urlsplit(url or "").path or "/"


def host_of(url: str | None) -> str:
    return urlsplit(url or "").netloc


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
            return (name, path_of(r["referrerUrl"]).lstrip("/"))
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
        ("Actions_PageUrl",), "action", lambda _, a: (path_of(a.url),) if a is not None and a.kind == "action" else None
    ),
    "Actions.getPageTitles": Grouping(
        ("Actions_PageTitle",),
        "action",
        lambda _, a: (a.title or "",) if a is not None and a.kind == "action" else None,
    ),
    "Actions.getEntryPageUrls": Grouping(
        ("Actions_EntryPageUrl",),
        "action",
        lambda v, a: (path_of(a.url),) if a is not None and a is _edge_pageview(v, 0) else None,
    ),
    "Actions.getExitPageUrls": Grouping(
        ("Actions_ExitPageUrl",),
        "action",
        lambda v, a: (path_of(a.url),) if a is not None and a is _edge_pageview(v, -1) else None,
    ),
    "Actions.getSiteSearchKeywords": Grouping(("Actions_Keyword",), "action", _kind("search", "siteSearchKeyword")),
    "Actions.getDownloads": Grouping(
        ("Actions_DownloadUrl",),
        "action",
        lambda _, a: (host_of(a.url) + path_of(a.url),) if a is not None and a.kind == "download" else None,
    ),
    "Actions.getOutlinks": Grouping(
        ("Actions_ClickedUrl",),
        "action",
        lambda _, a: (host_of(a.url) + path_of(a.url),) if a is not None and a.kind == "outlink" else None,
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


def dimension_grouping(site: Site, iddimension: int) -> Grouping | None:
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
                (f"{a.dimensions[iddimension]} - {host_of(a.url)}{path_of(a.url)}",)
                if a is not None and iddimension in a.dimensions
                else None
            ),
        )
    return None
