"""What one run knows about one site while paging: which visits it emitted, and why it skipped others.

The invariant (see paging.py): a visit is emitted at most once per run, always whole. A visit
read again in the lookback window whose records are exactly those emitted before (same digest,
see recent_visits.py) is unchanged and skipped, so a run without new data emits nothing.
"""

from __future__ import annotations

import logging
import typing as t
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from tap_matomo.coerce import integer
from tap_matomo.raw.day_ledger import ListedDay
from tap_matomo.raw.paging import VisitPage, first_page
from tap_matomo.raw.recent_visits import RecentVisits, visit_digest
from tap_matomo.raw.records import InvalidVisitError, map_visit
from tap_matomo.timezones import day_start, local_date

_HORIZON_SLACK_SECONDS = 60  # keep a little more than the next run reads, never less
_ONE_DAY = timedelta(days=1)


@dataclass
class SiteRun:
    """Per-site bookkeeping for one run of `visits_actions`."""

    site: dict[str, t.Any]
    tz: tzinfo
    lower_bound: int  # UTC epoch: visits whose last action is at or after it
    first_day: date
    last_day: date
    lookback_seconds: int
    recent_visits: RecentVisits  # from state, and updated with what this run emits
    include_ip: bool
    logger: logging.Logger
    started_at: int  # UTC epoch: the SDK caps the new bookmark at about the run's start
    page_limit: int  # visits per request for days that start now (smaller after a query timeout)
    whole_days: bool = False  # reconcile mode: count visits per day, to report the days listed in full
    visits_emitted: int = 0
    actions_emitted: int = 0
    visits_unchanged: int = 0
    max_last_action: int = 0
    # Ids emitted per listing day. A visit is listed on the day of its last action, and on the day
    # before too when it ends exactly at midnight; a day's ids are forgotten once it and both its
    # neighbours are done, so memory holds the ids of the days in flight only.
    _seen: dict[date, set[int]] = field(default_factory=dict)
    _done: set[date] = field(default_factory=set)
    _day_counts: dict[date, list[int]] = field(default_factory=dict)
    #: whole_days: visits and actions per site-local day of the visit's last action (the day dbt gives it).
    _by_last_day: dict[date, list[int]] = field(default_factory=dict)
    complete_days: list[ListedDay] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"site {self.site['idsite']}"

    def days(self) -> list[date]:
        """The site-local days to read, in order."""
        return [self.first_day + timedelta(days=n) for n in range((self.last_day - self.first_day).days + 1)]

    def days_at_once(self, parallel: int) -> int:
        """How many days to read at once: one when the window is the last day and the end of the day before
        (an hourly run after midnight). Read at once, the last day is read again for the visits that moved
        into it meanwhile (day_fetch.py): three requests where one after the other makes two, for a tail that
        takes one page."""
        if len(self.days()) == 2 and self.lower_bound > day_start(self.first_day, self.tz).timestamp():
            return 1
        return parallel

    def first_page(self, day: date) -> VisitPage:
        """Where reading a day starts, at the page size the run has now."""
        return first_page(day, self.tz, self.lower_bound, self.page_limit)

    def moved_in_page(self, day: date) -> VisitPage:
        """Where reading `day` again starts: the visits whose last action is after the run began (with
        a margin for clocks), which holds every visit that got a hit, and so moved, during the run."""
        return first_page(
            day, self.tz, max(self.lower_bound, self.started_at - _HORIZON_SLACK_SECONDS), self.page_limit
        )

    def shrink_pages(self, limit: int) -> None:
        """Matomo timed out on a larger page: days that start later ask for `limit` visits."""
        self.page_limit = min(self.page_limit, limit)

    def records_of_page(self, visits: t.Iterable[t.Any], day: date) -> t.Iterator[dict[str, t.Any]]:
        """The records of the visits of a page of `day`'s listing that this run has not emitted yet."""
        seen = self._seen.setdefault(day, set())
        before = self._seen.get(day - _ONE_DAY, set())
        after = self._seen.get(day + _ONE_DAY, set())
        counts = self._day_counts.setdefault(day, [0, 0])
        for visit in visits:
            if not isinstance(visit, dict):
                msg = f"{self.label}: a visit is not an object: {str(visit)[:80]!r}"
                raise InvalidVisitError(msg)
            idvisit = integer(visit.get("idVisit"))
            if idvisit is None:
                msg = f"{self.label}: visit without a numeric idVisit: {visit.get('idVisit')!r}"
                raise InvalidVisitError(msg)
            if idvisit in seen or idvisit in before or idvisit in after:
                continue
            last_action = integer(visit.get("lastActionTimestamp")) or 0
            seen.add(idvisit)
            mapped = map_visit(visit, self.tz, self.site, include_ip=self.include_ip)
            # The digest serves to skip a visit read before, and to remember one the next run reads again.
            digest = None
            if idvisit in self.recent_visits.entries or last_action >= self._horizon():
                digest = visit_digest((mapped.shared, mapped.actions))
                if self.recent_visits.unchanged(idvisit, digest):
                    self.visits_unchanged += 1
                    continue
            if visit.get("truncatedActionsCount"):
                self.logger.warning(
                    "%s: visit %s was cut by Matomo (%s actions not returned, see "
                    "visitor_log_maximum_actions_per_visit); its rows carry truncated_actions_count",
                    self.label,
                    idvisit,
                    visit["truncatedActionsCount"],
                )
            yield from mapped.records()
            self.max_last_action = max(self.max_last_action, last_action)
            horizon = self._horizon()
            if digest is not None and last_action >= horizon:  # older: not kept for the next run
                self.recent_visits.remember(idvisit, last_action, digest, horizon=horizon)
            self.visits_emitted += 1
            self.actions_emitted += len(mapped.actions)
            counts[0] += 1
            counts[1] += len(mapped.actions)
            if self.whole_days:
                by_day = self._by_last_day.setdefault(local_date(last_action, self.tz), [0, 0])
                by_day[0] += 1
                by_day[1] += len(mapped.actions)

    def day_done(self, day: date) -> None:
        """Log the day's progress and forget ids that can no longer come back."""
        visits, actions = self._day_counts.pop(day, [0, 0])
        self.logger.info("%s %s: %d visits, %d actions emitted", self.label, day.isoformat(), visits, actions)
        self._done.add(day)
        if self.whole_days:
            self.complete_days.append(ListedDay(day, *self._by_last_day.pop(day, [0, 0])))
        for near in (day - _ONE_DAY, day, day + _ONE_DAY):
            if all(self._finished(d) for d in (near - _ONE_DAY, near, near + _ONE_DAY)):
                self._seen.pop(near, None)

    def _finished(self, day: date) -> bool:
        return day in self._done or not self.first_day <= day <= self.last_day

    def recent_visits_to_keep(self, bookmark: str | None) -> dict[str, t.Any]:
        """Digests of the visits the next run's lookback window will read again, in their state form.

        The next run starts `lookback` before the new bookmark: the newest action emitted, capped
        at the run's start (visits that moved later during the run are read again, not skipped).
        """
        horizon = self._horizon()
        if bookmark:
            horizon = max(horizon, int(datetime.fromisoformat(bookmark).timestamp()) - self._lookback_and_slack())
        return self.recent_visits.kept(horizon).encode()

    def _horizon(self) -> int:
        """The oldest last action the next run's lookback can reach, as far as this run knows; it only rises."""
        return min(self.max_last_action, self.started_at) - self._lookback_and_slack()

    def _lookback_and_slack(self) -> int:
        return self.lookback_seconds + _HORIZON_SLACK_SECONDS
