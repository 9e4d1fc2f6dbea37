"""Which periods of a report a run reads for a site, and the bookmark it leaves.

Per site and period type (day, week, month, year) a report stream keeps, in its state partition:
`through`, the newest closed period read; `refreshed_on`, the site-local day its trailing window was
last read again; and VisitsSummary.get's stream, `totals`, each recent day's visits and actions as last
read. A run reads:

- the closed periods after `through` (a first run: from `start_date`, or the site's creation when
  later, so no period before the site existed is asked for), each once `report_final_after_hours` have
  passed since its end in the site's timezone (by then `core:archive`, hourly by default, has archived
  it, and late hits have arrived): a closed day is read once, when its answer can be final;
- once a site-local day, with the newest closed period, the last `report_trailing_*` closed periods
  again, because late hits, invalidations and GDPR erasures change archives after a period ends;
- with that window, VisitsSummary.get (the site's totals, read first in the default set) of the last
  `reconcile_days` closed days, as far back as the nightly reconcile reaches: a day whose totals differ
  from those it was last read with was changed by Matomo after (late hits, an erasure), and every
  report reads it again, with its closed week, month and year;
- the unfinished current period, only with `report_include_current_period` (never final, read again
  by every run). Without it, no request names a period holding today: with browser-triggered
  archiving (Matomo's default) each would make Matomo archive today again.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from tap_matomo import clock, settings
from tap_matomo.reports.periods import Period, PeriodWindow, archived_by, next_start, period_end

#: The setting that says how many closed periods of a type are read again.
TRAILING_SETTING: dict[Period, str] = {
    "day": "report_trailing_days",
    "week": "report_trailing_weeks",
    "month": "report_trailing_months",
    "year": "report_trailing_years",
}


def window_days(config: t.Mapping[str, t.Any], window: PeriodWindow) -> list[date]:
    """The closed days whose totals the totals stream checks once a day: as far back as the nightly reconcile
    reads the raw log (`reconcile_days`), and the trailing window at least."""
    return window.trailing(max(int(config["reconcile_days"]), int(config["report_trailing_days"])))


def bookmark(
    window: PeriodWindow, before: dict[str, t.Any], fetched: list[date], *, refreshed: bool
) -> dict[str, t.Any]:
    """The period type's new bookmark: the newest closed period read, and when the trailing window was last
    read (a period whose answer was not final is read again with it, once a site-local day)."""
    closed = [start.isoformat() for start in fetched if start <= window.last_closed]
    return {
        "through": max([before.get("through") or "", *closed]) or None,
        "refreshed_on": window.today.isoformat() if refreshed else before.get("refreshed_on"),
    }


@dataclass(frozen=True)
class SiteSchedule:
    """The periods a site's report reads, given the tap's settings and the site (its timezone, creation day)."""

    config: t.Mapping[str, t.Any]
    site: t.Mapping[str, t.Any]
    tz: tzinfo

    def archived_by(self, period: Period, start: date) -> datetime:
        return archived_by(period, start, self.tz, int(self.config["report_final_after_hours"]))

    def first_day(self, window: PeriodWindow) -> date:
        """The first site-local day to read: start_date (by default a few days ago), not before the site existed."""
        configured = self.config.get("start_date")
        default = window.today - timedelta(days=settings.DEFAULT_START_DAYS)
        first = date.fromisoformat(str(configured)[:10]) if configured else default
        created = self.site.get("created_on")
        return max(first, date.fromisoformat(created)) if created else first

    def trailing(self, window: PeriodWindow) -> list[date]:
        return window.trailing(int(self.config[TRAILING_SETTING[window.period]]))

    def starts(self, window: PeriodWindow, bookmark: dict[str, t.Any]) -> tuple[list[date], bool]:
        """The period starts to read this run, oldest first (the current period last, when asked for), and
        whether they hold the trailing window (read once a site-local day).

        A closed period is first read once its answer can be final (`report_final_after_hours` after its
        end): read earlier, it would be read again on every run until then. The trailing window is read
        again with the newest closed period, on the first run of the day that can read it."""
        first = self.first_day(window)
        through = bookmark.get("through")
        now, period = clock.utc_now(), window.period
        if through:
            starts = set(window.closed_since(next_start(period, date.fromisoformat(through))))
            newest_ready = self.archived_by(period, window.last_closed) <= now
            reads_trailing = newest_ready and bookmark.get("refreshed_on") != window.today.isoformat()
            if reads_trailing:
                starts |= set(self.trailing(window))
        else:  # a first run: every closed period since the first day, the trailing window among them
            starts, reads_trailing = set(window.closed_since(first)), True
        ready = [s for s in starts if self.archived_by(period, s) <= now]
        ordered = sorted(s for s in ready if period_end(period, s) >= first)
        if self.config["report_include_current_period"]:
            ordered.append(window.current)
        return ordered, reads_trailing

    def ready(self, window: PeriodWindow, starts: t.Iterable[date]) -> set[date]:
        """Of these period starts, the closed ones Matomo has archived by now, not before the first day."""
        first, now = self.first_day(window), clock.utc_now()
        return {
            start
            for start in starts
            if start <= window.last_closed
            and self.archived_by(window.period, start) <= now
            and period_end(window.period, start) >= first
        }
