"""The simulator's data model: sites, visits and their actions, held with true UTC instants; the built-in sites.

Rendering to Matomo's JSON (localised timestamps, number quirks) is render.py's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, timedelta, timezone, tzinfo
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
