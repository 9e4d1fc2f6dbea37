"""Matomo's report periods in a site's own calendar: days, ISO weeks (Monday first), months and years.

A period is named by its first day (what the tap sends as `date` and keys rows by). It is *closed* once
its last day is over in the site's timezone; until then Matomo's answer for it keeps changing (and a
week or month containing today is answered from the last archive, without today).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from tap_matomo.timezones import day_archived_by

Period = t.Literal["day", "week", "month", "year"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "year")


def period_start(period: Period, day: date) -> date:
    """The first day of the period containing `day`."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def next_start(period: Period, start: date) -> date:
    """The first day of the period after the one starting on `start`."""
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start.replace(year=start.year + 1, month=1, day=1)


def period_end(period: Period, start: date) -> date:
    """The last day of the period starting on `start`."""
    return next_start(period, start) - timedelta(days=1)


def archived_by(period: Period, start: date, tz: tzinfo, hours: int) -> datetime:
    """When Matomo has archived a closed period: when it has archived the period's last day."""
    return day_archived_by(period_end(period, start), tz, hours)


def previous_start(period: Period, start: date) -> date:
    """The first day of the period before the one starting on `start`."""
    return period_start(period, start - timedelta(days=1))


@dataclass(frozen=True)
class PeriodWindow:
    """What a run reads of one period type for one site, given its local today."""

    period: Period
    today: date  # site-local

    @property
    def current(self) -> date:
        """The period containing today: unfinished."""
        return period_start(self.period, self.today)

    @property
    def last_closed(self) -> date:
        """The newest period that has ended."""
        return previous_start(self.period, self.current)

    def closed_since(self, first: date) -> list[date]:
        """Every closed period from the one containing `first` on, oldest first."""
        starts, start = [], period_start(self.period, first)
        while start <= self.last_closed:
            starts.append(start)
            start = next_start(self.period, start)
        return starts

    def trailing(self, count: int) -> list[date]:
        """The last `count` closed periods, oldest first."""
        starts: list[date] = []
        start = self.last_closed
        for _ in range(count):
            starts.insert(0, start)
            start = previous_start(self.period, start)
        return starts
