"""The simulator's data: sites, visits and their actions, held with true UTC instants.

Rendering to Matomo's JSON (localised timestamps, number quirks) is render.py's job; this
module only decides what happened, deterministically from a seed.
"""

from __future__ import annotations

import copy
import hashlib
import random
import threading
import typing as t
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo


def tz_of(name: str) -> tzinfo:
    """IANA names and Matomo's `UTC+5.5` / `UTC-3` offsets."""
    if name.startswith("UTC") and len(name) > 3:
        hours = float(name[3:])
        return timezone(timedelta(minutes=round(hours * 60)), name)
    return UTC if name == "UTC" else ZoneInfo(name)


@dataclass
class Site:
    idsite: int
    name: str
    main_url: str
    timezone: str
    currency: str
    ecommerce: bool
    ts_created: str
    #: idcustomdimension -> (name, scope "visit" | "action")
    dimensions: dict[int, tuple[str, str]] = field(default_factory=dict)
    #: idgoal -> (name, url pattern, revenue)
    goals: dict[int, tuple[str, str, float]] = field(default_factory=dict)

    @property
    def tz(self) -> tzinfo:
        return tz_of(self.timezone)


@dataclass
class Action:
    kind: str  # action, event, download, outlink, search, content, goal, ecommerceOrder, ecommerceAbandonedCart
    at: int  # true UTC epoch
    url: str | None = None
    title: str | None = None
    pageview_id: str = ""
    page_id: int | None = None  # Matomo's idlink_va; goals and ecommerce items have none
    attrs: dict = field(default_factory=dict)
    dimensions: dict[int, str] = field(default_factory=dict)


@dataclass
class Visit:
    idvisit: int
    idsite: int
    visitor_id: str
    attrs: dict
    actions: list[Action]
    dimensions: dict[int, str] = field(default_factory=dict)
    ping_seconds: int = 0  # time added by heartbeat pings: duration only, no action, no new last action

    @property
    def first_action(self) -> int:
        return self.actions[0].at

    @property
    def last_action(self) -> int:
        # Actions are kept in time order (add_visit, grow_visit): the last is the latest.
        return self.actions[-1].at


DEFAULT_SITES = [
    Site(1, "Test Site", "https://example.org", "UTC", "USD", False, "2026-01-01 00:00:00"),
    Site(
        2,
        "Shop NY",
        "https://shop.example.com",
        "America/New_York",
        "EUR",
        True,
        "2026-01-01 00:00:00",
        dimensions={1: ("Channel", "action"), 3: ("Tier", "visit")},
        goals={1: ("Signup", "/signup", 5.0), 2: ("Contact", "/contact", 0.0)},
    ),
    Site(
        3,
        "Shop IN",
        "https://shop.example.in",
        "Asia/Kolkata",
        "INR",
        True,
        "2026-01-01 00:00:00",
        dimensions={2: ("Category", "action"), 1: ("Segment", "visit")},
        goals={1: ("Newsletter", "/subscribed", 2.0)},
    ),
    Site(4, "Ops BR", "https://ops.example.com.br", "UTC-3", "BRL", False, "2026-01-01 00:00:00"),
]

#: What anonymised location fields read (Matomo renders an empty country as "Unknown").
_ANONYMOUS_LOCATION = {
    "country": "Unknown",
    "countryCode": "xx",
    "continent": "Unknown",
    "continentCode": "unk",
    "region": None,
    "regionCode": None,
    "city": None,
    "latitude": None,
    "longitude": None,
}

_PAGES = ["/", "/pricing", "/products", "/about", "/blog/post-1", "/blog/post-2", "/contact", "/docs"]
_PROFILES = [
    {
        "country": "France",
        "countryCode": "fr",
        "continent": "Europe",
        "continentCode": "eur",
        "region": "Île-de-France",
        "regionCode": "IDF",
        "city": "Paris",
        "latitude": "48.857",
        "longitude": "2.352",
        "languageCode": "fr",
        "language": "French",
    },
    {
        "country": "India",
        "countryCode": "in",
        "continent": "Asia",
        "continentCode": "asi",
        "region": "Maharashtra",
        "regionCode": "16",
        "city": "Mumbai",
        "latitude": "19.076",
        "longitude": "72.878",
        "languageCode": "en-in",
        "language": "English",
    },
    {
        "country": "Unknown",
        "countryCode": "xx",
        "continent": "Unknown",
        "continentCode": "unk",
        "region": None,
        "regionCode": None,
        "city": None,
        "latitude": None,
        "longitude": None,
        "languageCode": "",
        "language": "Unknown",
    },
]
_DEVICES = [
    {
        "deviceType": "Desktop",
        "deviceBrand": "Unknown",
        "deviceModel": "Generic Desktop",
        "operatingSystemName": "GNU/Linux",
        "operatingSystemCode": "LIN",
        "operatingSystemVersion": "",
        "browserName": "Chrome",
        "browserCode": "CH",
        "browserVersion": "120.0",
        "browserFamily": "Blink",
        "resolution": "1920x1080",
    },
    {
        "deviceType": "Smartphone",
        "deviceBrand": "Apple",
        "deviceModel": "iPhone",
        "operatingSystemName": "iOS",
        "operatingSystemCode": "IOS",
        "operatingSystemVersion": "17.1",
        "browserName": "Mobile Safari",
        "browserCode": "MF",
        "browserVersion": "17.1",
        "browserFamily": "WebKit",
        "resolution": "390x844",
    },
]
_REFERRERS = [
    {"referrerType": "direct", "referrerName": "", "referrerKeyword": "", "referrerUrl": None},
    {
        "referrerType": "search",
        "referrerName": "Google",
        "referrerKeyword": "matomo",
        "referrerUrl": "https://www.google.com/search?q=matomo",
    },
    {"referrerType": "campaign", "referrerName": "spring", "referrerKeyword": "", "referrerUrl": None},
    {
        "referrerType": "website",
        "referrerName": "news.example.net",
        "referrerKeyword": "",
        "referrerUrl": "https://news.example.net/a",
    },
    {
        "referrerType": "social",
        "referrerName": "Mastodon",
        "referrerKeyword": "",
        "referrerUrl": "https://mastodon.social/@example/1",
    },
]
_ITEMS = [("SKU-1", "Wetsuit", "Diving", 55.0), ("SKU-2", "Fins", "Diving", 13.45), ("SKU-3", "Mask", "Snorkel", 20.0)]


class World:
    """Every site and visit the simulator knows; thread-safe, changed only through its methods."""

    def __init__(self, seed: int = 1, sites: list[Site] | None = None, max_actions_per_visit: int = 500) -> None:
        self.rng = random.Random(seed)
        self.sites = {s.idsite: s for s in (sites or DEFAULT_SITES)}
        self.visits: dict[int, Visit] = {}
        self.max_actions_per_visit = max_actions_per_visit
        self.lock = threading.RLock()
        self._next_visit = 1
        self._next_link = 1
        #: Bumped by every change to a visit: the per-site index below is rebuilt when it moves.
        self.version = 0
        self._index: dict[int, tuple[int, list[tuple[int, int, Visit]]]] = {}

    def clone(self) -> World:
        """An independent copy (same visits, same random sequence): a test can change it freely."""
        with self.lock:
            state = copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in ("lock", "_index")})
        twin = World.__new__(World)
        twin.__dict__.update(state, lock=threading.RLock(), _index={})
        return twin

    # -- building visits -------------------------------------------------------------------

    def _link_id(self) -> int:
        self._next_link += 1
        return self._next_link - 1

    def _new_visit(self, site: Site) -> Visit:
        idvisit = self._next_visit
        self._next_visit += 1
        rng = self.rng
        attrs = {**rng.choice(_PROFILES), **rng.choice(_DEVICES), **rng.choice(_REFERRERS)}
        returning = rng.random() < 0.3
        attrs |= {
            "visitIp": f"10.0.{idvisit % 250}.{rng.randint(1, 250)}",
            "fingerprint": f"{rng.getrandbits(64):016x}",
            "userId": f"user-{rng.randint(1, 99)}" if rng.random() < 0.2 else None,
            "visitorType": "returning" if returning else "new",
            "visitCount": rng.randint(2, 9) if returning else 1,
            "daysSinceFirstVisit": rng.randint(1, 60) if returning else 0,
        }
        if rng.random() < 0.1:
            attrs["customVariables"] = {
                "1": {"customVariableName1": "plan", "customVariableValue1": rng.choice(["free", "pro"])}
            }
        visit = Visit(idvisit, site.idsite, f"{rng.getrandbits(64):016x}", attrs, [])
        for iddim, (_name, scope) in site.dimensions.items():
            if scope == "visit" and rng.random() < 0.6:
                visit.dimensions[iddim] = rng.choice(["gold", "silver", "bronze"])
        return visit

    def _action_dims(self, site: Site) -> dict[int, str]:
        return {
            iddim: self.rng.choice(["shoes", "bags", "hats"])
            for iddim, (_n, scope) in site.dimensions.items()
            if scope == "action" and self.rng.random() < 0.5
        }

    def _pageview(self, site: Site, at: int, path: str, pv: str) -> Action:
        attrs = {}
        if self.rng.random() < 0.1:  # page-scope custom variables (the plugin is often absent)
            attrs["customVariables"] = {"1": {"customVariablePageName1": "lang", "customVariablePageValue1": "en"}}
        return Action(
            "action",
            at,
            site.main_url + path,
            path.strip("/").title() or "Home",
            pv,
            self._link_id(),
            attrs,
            self._action_dims(site),
        )

    def _actions(self, site: Site, visit: Visit, start: int, count: int) -> list[Action]:
        """`count` trackable hits from `start`, with what they trigger (goals, carts, orders)."""
        rng, actions, at = self.rng, [], start
        pv = ""
        for _ in range(count):
            roll = rng.random()
            if site.idsite == 1:
                pv = ""  # this site's tracker sends no pageview id (as in the real samples)
            elif roll < 0.45 or not pv:
                pv = f"pv{rng.getrandbits(24):06x}"
            if roll < 0.45 or not actions:
                path = rng.choice(_PAGES + [p for _n, p, _r in site.goals.values()])
                action = self._pageview(site, at, path, pv)
                if site.ecommerce and rng.random() < 0.2:
                    sku, name, _c, price = rng.choice(_ITEMS)
                    action.attrs |= {"productViewPrice": price, "productViewName": name, "productViewSku": sku}
                actions.append(action)
                for idgoal, (gname, pattern, revenue) in site.goals.items():
                    if path == pattern:
                        actions.append(
                            Action(
                                "goal",
                                at,
                                action.url,
                                None,
                                pv,
                                None,
                                {"goalId": idgoal, "goalName": gname, "revenue": revenue, "goalPageId": action.page_id},
                                self._action_dims(site),
                            )
                        )
            elif roll < 0.65:
                attrs = {
                    "eventCategory": rng.choice(["Video", "Form", "Ecommerce"]),
                    "eventAction": rng.choice(["Play", "Submit", "Cart change"]),
                }
                if rng.random() < 0.8:
                    attrs["eventName"] = rng.choice(["Intro video", "Newsletter signup", "added - Fins"])
                if rng.random() < 0.6:
                    attrs["eventValue"] = rng.choice([1, 42.5, 3])
                actions.append(
                    Action("event", at, actions[-1].url, None, pv, self._link_id(), attrs, self._action_dims(site))
                )
            elif roll < 0.72:
                actions.append(Action("download", at, site.main_url + "/files/brochure.pdf", None, pv, self._link_id()))
            elif roll < 0.78:
                actions.append(Action("outlink", at, "https://partner.example.com/offer", None, pv, self._link_id()))
            elif roll < 0.84:
                actions.append(
                    Action(
                        "search",
                        at,
                        None,
                        None,
                        pv,
                        self._link_id(),
                        {
                            "siteSearchKeyword": rng.choice(["shoes", "fins"]),
                            "siteSearchCategory": rng.choice(["catalog", None]),
                            "siteSearchCount": rng.randint(0, 9),
                        },
                    )
                )
            elif roll < 0.92 or not site.ecommerce:
                interaction = rng.choice([None, "click"])
                actions.append(
                    Action(
                        "content",
                        at,
                        actions[-1].url,
                        None,
                        pv,
                        self._link_id(),
                        {
                            "contentName": "Banner",
                            "contentPiece": "banner.png",
                            "contentTarget": site.main_url + "/sale",
                            "contentInteraction": interaction,
                        },
                        self._action_dims(site),
                    )
                )
            else:
                kind = rng.choice(["ecommerceOrder", "ecommerceAbandonedCart"])
                items = rng.sample(_ITEMS, rng.randint(1, 2))
                details = [
                    {"itemSKU": s, "itemName": n, "itemCategory": c, "price": p, "quantity": q, "categories": [c]}
                    for (s, n, c, p), q in zip(items, [2, 1], strict=False)
                ]
                revenue = round(sum(d["price"] * d["quantity"] for d in details), 2)
                attrs = {"revenue": revenue, "items": sum(d["quantity"] for d in details), "itemDetails": details}
                if kind == "ecommerceOrder":
                    attrs |= {
                        "orderId": f"O-{visit.idvisit}-{len(actions)}",
                        "revenueSubTotal": revenue,
                        "revenueTax": round(revenue * 0.1, 2),
                        "revenueShipping": 5,
                        "revenueDiscount": 0,
                    }
                actions.append(Action(kind, at, None, None, "", None, attrs, self._action_dims(site)))
            at += rng.randint(5, 90)
        return actions

    def add_visit(self, idsite: int, last_action_at: int, n_actions: int | None = None) -> Visit:
        """A new visit whose last action is at `last_action_at` (never crossing local midnight)."""
        with self.lock:
            site = self.sites[idsite]
            visit = self._new_visit(site)
            count = n_actions or self.rng.randint(1, 8)
            actions = self._actions(site, visit, 0, count)
            span = actions[-1].at
            local = datetime.fromtimestamp(last_action_at, site.tz)
            midnight = int(datetime.combine(local.date(), time(0), tzinfo=site.tz).timestamp())
            start = max(last_action_at - span, midnight)
            shift = [min(a.at + start, last_action_at) for a in actions]
            shift[-1] = last_action_at
            for action, at in zip(actions, shift, strict=True):
                action.at = at
            visit.actions = actions
            self.visits[visit.idvisit] = visit
            self.version += 1
            return visit

    def add_shared_label_visits(self, idsite: int, at: int) -> list[Visit]:
        """Two visits whose report rows share a flat label, as real Matomo 5.0.2 answered: an event of
        category "Video - Play" and action "HD", and one of category "Video" and action "Play - HD" (both
        "Video - Play - HD" in Events.getCategory); and the second visit in the first's country under the
        code in upper case (a location re-geolocated after an anonymisation), a country row of its own
        with the same name in UserCountry.getCountry. Each visit: a pageview then the event, ending at `at`."""
        visits = [self.add_visit(idsite, at, n_actions=1) for _ in range(2)]
        site = self.sites[idsite]
        with self.lock:
            for visit, (category, action) in zip(visits, [("Video - Play", "HD"), ("Video", "Play - HD")], strict=True):
                for earlier in visit.actions:
                    earlier.at = at - 1
                page = visit.actions[0]
                attrs = {"eventCategory": category, "eventAction": action}
                visit.actions.append(
                    Action(
                        "event", at, page.url, None, page.pageview_id, self._link_id(), attrs, self._action_dims(site)
                    )
                )
            location = {key: visits[0].attrs[key] for key in _ANONYMOUS_LOCATION}
            visits[1].attrs |= location | {"countryCode": str(location["countryCode"]).upper()}
            self.version += 1
        return visits

    def grow_visit(self, idvisit: int, at: int, n_actions: int = 1) -> Visit:
        """Open visit gets more hits, the first at `at` (after its current last action)."""
        with self.lock:
            visit = self.visits[idvisit]
            site = self.sites[visit.idsite]
            start = max(at, visit.last_action + 1)
            more = self._actions(site, visit, start, n_actions)
            if more and more[0].kind not in ("action",):
                more.insert(0, self._pageview(site, start, "/pricing", f"pv{self.rng.getrandbits(24):06x}"))
            visit.actions.extend(more)
            self.version += 1
            return visit

    def ping_visit(self, idvisit: int, seconds: int, user_id: str | None = None) -> Visit:
        """A heartbeat ping, as verified on Matomo 5.0.2: `visitDuration` grows, and a ping carrying
        `uid` sets `userId` and changes `visitorId`; the last action and the action list stay as they are."""
        with self.lock:
            visit = self.visits[idvisit]
            visit.ping_seconds += seconds
            if user_id is not None:
                visit.attrs["userId"] = user_id
                visit.visitor_id = hashlib.sha1(user_id.encode()).hexdigest()[:16]  # noqa: S324 - Matomo's own id
            self.version += 1
            return visit

    def remove_actions(self, idvisit: int, start: int, stop: int | None = None) -> Visit:
        """Matomo no longer returns actions [start:stop] of a visit (a purge, a lower cap)."""
        with self.lock:
            visit = self.visits[idvisit]
            del visit.actions[start:stop]
            self.version += 1
            return visit

    def erase_visits(self, idvisits: t.Iterable[int]) -> int:
        """A GDPR erasure (PrivacyManager.deleteDataSubjects): the visits are gone from the Live API at once."""
        with self.lock:
            gone = [idvisit for idvisit in idvisits if self.visits.pop(idvisit, None) is not None]
            self.version += 1
            return len(gone)

    def anonymise(self, idsite: int, start: date, end: date) -> list[int]:
        """PrivacyManager.anonymizeSomeRawData (IP, location, user id) over site-local days [start, end],
        as the scheduled task anonymizePastData applies it: the IP keeps two bytes (76.146.0.0), location
        fields are emptied, the user id removed; ids, timestamps and actions do not change."""
        lo, _ = self.site_day_bounds(idsite, start)
        _, hi = self.site_day_bounds(idsite, end)
        with self.lock:
            changed = [v for v in self.visits.values() if v.idsite == idsite and lo <= v.last_action < hi]
            for visit in changed:
                a = visit.attrs
                a["visitIp"] = ".".join([*a["visitIp"].split(".")[:2], "0", "0"])
                a.update(_ANONYMOUS_LOCATION)
                a["userId"] = None
            self.version += 1
            return [v.idvisit for v in changed]

    def purge_before(self, idsite: int, day: date) -> int:
        """Matomo's own deletion of old raw logs (delete_logs_older_than): whole site-local days before `day`."""
        lo, _ = self.site_day_bounds(idsite, day)
        with self.lock:
            old = [i for i, v in self.visits.items() if v.idsite == idsite and v.last_action < lo]
            return self.erase_visits(old)

    def generate(self, start: datetime, end: datetime, visits_per_day: int) -> None:
        """Visits spread over [start, end) on every site, in each site's own days."""
        with self.lock:
            for site in self.sites.values():
                per_second = visits_per_day / 86400
                count = max(1, round((end - start).total_seconds() * per_second))
                for _ in range(count):
                    at = self.rng.randint(int(start.timestamp()), int(end.timestamp()) - 1)
                    self.add_visit(site.idsite, at)

    def add_burst(self, idsite: int, at: int, count: int) -> list[Visit]:
        """`count` visits whose last action falls on the same second (paging's hard case)."""
        return [self.add_visit(idsite, at, n_actions=2) for _ in range(count)]

    def add_long_visit(self, idsite: int, last_action_at: int) -> Visit:
        """A visit with more actions than the server returns (it will carry truncatedActionsCount)."""
        return self.add_visit(idsite, last_action_at, n_actions=self.max_actions_per_visit + 5)

    # -- reading ---------------------------------------------------------------------------

    def by_last_action(self, idsite: int) -> list[tuple[int, int, Visit]]:
        """A site's visits as (last action, idvisit, visit), in that order; kept until a visit changes."""
        with self.lock:
            cached = self._index.get(idsite)
            if cached is None or cached[0] != self.version:
                rows = sorted((v.last_action, v.idvisit, v) for v in self.visits.values() if v.idsite == idsite)
                cached = self._index[idsite] = (self.version, rows)
            return cached[1]

    def site_day_bounds(self, idsite: int, day: date) -> tuple[int, int]:
        tz = self.sites[idsite].tz
        lo = datetime.combine(day, time(0), tzinfo=tz)
        hi = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
        return int(lo.timestamp()), int(hi.timestamp())

    def returned_actions(self, visit: Visit) -> list[Action]:
        """The actions the Live API returns for a visit (capped like visitor_log_maximum_actions_per_visit)."""
        return sorted(visit.actions, key=lambda a: a.at)[: self.max_actions_per_visit]

    def truth(self, idsite: int | None = None) -> dict[str, dict]:
        """What a complete load must hold: action_id -> its type, UTC instant and visit."""
        with self.lock:
            result = {}
            for visit in self.visits.values():
                if idsite is not None and visit.idsite != idsite:
                    continue
                for position, action in enumerate(self.returned_actions(visit)):
                    result[f"{visit.idvisit}_{position}"] = {
                        "idsite": visit.idsite,
                        "idvisit": visit.idvisit,
                        "action_type": action.kind,
                        "action_timestamp": datetime.fromtimestamp(action.at, UTC).isoformat(),
                    }
            return result
