"""Paging through one site's visits without losing or repeating any while Matomo keeps changing.

Matomo orders visits by their last action time (then idvisit). Offsets shift under a live
site, so pages are cut by `minTimestamp` (strict `>`) one second before the last visit of the
previous page; the visits seen twice are dropped by id. Only when a whole page shares one
second does the paginator fall back to an offset inside that second, with an overlap: the
next page must start with a visit already seen in that second; if it does not, visits left
the second (they grew) and offsets moved down, so it steps back and reads again.
Each request asks for one site-local day with an explicit date, so Matomo never splits the
query across days (its multi-day offset bug).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from urllib.parse import parse_qsl, urlsplit

from singer_sdk.pagination import BaseAPIPaginator

from tap_matomo.client import matomo_json
from tap_matomo.timezones import day_start

if t.TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class VisitPage:
    """Which visits to ask for: one site-local day, after an instant, from an offset."""

    day: date
    min_timestamp: int  # UTC epoch, sent as minTimestamp (last action strictly after it)
    offset: int = 0
    last_id: int = 0  # with an offset: the highest idvisit already read in second min_timestamp + 1


def requested_limit(response: requests.Response) -> int:
    """The `filter_limit` actually sent (retries after a query timeout ask for less)."""
    params = dict(parse_qsl(urlsplit(response.request.url or "").query))
    return int(params.get("filter_limit", 10))


class VisitWindowPaginator(BaseAPIPaginator[VisitPage]):
    """Walks the days from the first page's day to `last_day`, page by page."""

    def __init__(
        self,
        first: VisitPage,
        last_day: date,
        tz: tzinfo,
        lower_bound: int,
        on_day_done: t.Callable[[date], None] | None = None,
    ) -> None:
        super().__init__(first)
        self.last_day = last_day
        self.tz = tz
        self.lower_bound = lower_bound
        self.on_day_done = on_day_done

    def continue_if_empty(self, response: requests.Response) -> bool:
        # A page of visits already emitted, or an empty day, is not the end of the window.
        return True

    def get_next(self, response: requests.Response) -> VisitPage | None:
        visits = matomo_json(response)
        page = self.current_value
        limit = requested_limit(response)
        overlap = min(limit - 1, max(1, limit // 10))
        second = page.min_timestamp + 1
        if page.offset and not self._starts_with_a_seen_visit(visits, second, page.last_id):
            back = max(0, page.offset - (limit - overlap))
            return VisitPage(page.day, page.min_timestamp, back, page.last_id if back else 0)
        if len(visits) >= limit > 0:
            last = int(visits[-1]["lastActionTimestamp"])
            if last > second:
                return VisitPage(page.day, last - 1)
            # The whole page shares one second: step through it by offset.
            read = max(int(v["idVisit"]) for v in visits)
            return VisitPage(page.day, page.min_timestamp, page.offset + limit - overlap, max(read, page.last_id))
        if self.on_day_done:
            self.on_day_done(page.day)
        if page.day >= self.last_day:
            return None
        next_day = page.day + timedelta(days=1)
        start = int(day_start(next_day, self.tz).timestamp())
        # Visits ending exactly at midnight belong to both days; the id check drops the repeat.
        return VisitPage(next_day, max(self.lower_bound, start - 1))

    @staticmethod
    def _starts_with_a_seen_visit(visits: list[dict], second: int, last_id: int) -> bool:
        """Whether an offset page overlaps the previous one, as it does when no visit left the second."""
        if not visits:
            return False
        first = visits[0]
        return int(first["lastActionTimestamp"]) == second and int(first["idVisit"]) <= last_id
