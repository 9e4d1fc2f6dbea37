"""Paging through one site's visits without losing or repeating any while Matomo keeps changing.

Matomo orders visits by their last action time (then idvisit). Offsets shift under a live
site, so pages are cut by `minTimestamp` (strict `>`) one second before the last visit of the
previous page; the visits seen twice are dropped by id. Only when a whole page shares one
second does the paginator fall back to an offset inside that second, with an overlap: the
next page must start with a visit already seen in that second; if it does not, visits left
the second (they grew) and offsets moved down, so it steps back and reads again.
Each request asks for one site-local day with an explicit date, so Matomo never splits the
query across days (its multi-day offset bug); a paginator walks one day (day_fetch.py reads
several days at once).

The page size travels in the page token: after "Could not run the query in time" the same page
is asked again with half as many visits (never below 10), and the smaller size sticks for the
rest of the day, and for every day of the site that starts after it.
"""

from __future__ import annotations

import logging
import typing as t
from dataclasses import dataclass, replace
from datetime import date, tzinfo

import msgspec
from singer_sdk.pagination import BaseAPIPaginator

from tap_matomo.answers import is_query_timeout
from tap_matomo.compat import override
from tap_matomo.timezones import day_start

if t.TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class VisitPage:
    """Which visits to ask for: one site-local day, after an instant, from an offset."""

    day: date
    min_timestamp: int  # UTC epoch, sent as minTimestamp (last action strictly after it)
    limit: int  # visits per request, sent as filter_limit
    offset: int = 0
    last_id: int = 0  # with an offset: the highest idvisit already read in second min_timestamp + 1

    def smaller(self) -> VisitPage | None:
        """The same page with half the visits after a query timeout; None when it cannot shrink."""
        if self.limit <= MIN_PAGE_SIZE:
            return None
        return replace(self, limit=max(MIN_PAGE_SIZE, self.limit // 2))


#: Matomo's query-timeout answers shrink pages down to this size, no further.
MIN_PAGE_SIZE = 10


def first_page(day: date, tz: tzinfo, lower_bound: int, limit: int) -> VisitPage:
    """A day's first page: its visits whose last action is at or after `lower_bound` (UTC epoch).

    Visits ending exactly at midnight belong to both days; the reader drops the repeat by id.
    """
    start = int(day_start(day, tz).timestamp())
    return VisitPage(day, max(lower_bound, start) - 1, limit)


class VisitDayPaginator(BaseAPIPaginator[VisitPage]):
    """Walks one site-local day, page by page; `on_shrink` hears of a smaller page size."""

    def __init__(
        self,
        first: VisitPage,
        on_shrink: t.Callable[[int], None] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(first)
        self.on_shrink = on_shrink
        self.logger = logger or logging.getLogger(__name__)

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        # A page of visits already emitted is not the end of the day.
        return True

    @override
    def get_next(self, response: requests.Response) -> VisitPage | None:
        body = visit_keys(response)
        page = self.current_value
        if is_query_timeout(body):  # the fetch let it through: the page can shrink
            smaller = page.smaller()
            if smaller is None:
                msg = "a query timeout reached the paginator for a page that cannot shrink"
                raise RuntimeError(msg)
            self.logger.warning(
                "Matomo timed out (live_query_max_execution_time): asking for %d visits per page instead of %d",
                smaller.limit,
                page.limit,
            )
            if self.on_shrink:
                self.on_shrink(smaller.limit)
            return smaller
        visits = body if isinstance(body, list) else []  # another body: the reader reports it
        limit = page.limit
        overlap = min(limit - 1, max(1, limit // 10))
        second = page.min_timestamp + 1
        if page.offset and not self._starts_with_a_seen_visit(visits, second, page.last_id):
            back = max(0, page.offset - (limit - overlap))
            return VisitPage(page.day, page.min_timestamp, limit, back, page.last_id if back else 0)
        if len(visits) >= limit > 0:
            last = int(visits[-1].lastActionTimestamp or 0)
            if last > second:
                return VisitPage(page.day, last - 1, limit)
            # The whole page shares one second: step through it by offset.
            read = max(int(v.idVisit) for v in visits)
            return VisitPage(
                page.day, page.min_timestamp, limit, page.offset + limit - overlap, max(read, page.last_id)
            )
        return None  # a short page: the day is done

    @staticmethod
    def _starts_with_a_seen_visit(visits: list[VisitKey], second: int, last_id: int) -> bool:
        """Whether an offset page overlaps the previous one, as it does when no visit left the second."""
        if not visits:
            return False
        first = visits[0]
        return int(first.lastActionTimestamp or 0) == second and int(first.idVisit) <= last_id


class VisitKey(msgspec.Struct):
    """What paging needs of a visit; Matomo may write numbers as strings."""

    idVisit: int | str
    lastActionTimestamp: int | str | None = None


_KEYS = msgspec.json.Decoder(list[VisitKey] | dict[str, t.Any])


def visit_keys(response: requests.Response) -> list[VisitKey] | dict[str, t.Any]:
    """A page's visits as paging needs them, decoded in a fraction of a full decode; Matomo's error
    envelope as an object; an empty list for items that are not visits (the reader reports them)."""
    try:
        return _KEYS.decode(response.content)
    except msgspec.ValidationError:
        return []
