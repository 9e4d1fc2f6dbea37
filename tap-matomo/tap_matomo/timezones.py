"""Site timezones: Matomo's IANA names and `UTC+5.5`-style offsets, and its localised timestamps.

Matomo encodes `actionDetails[].timestamp` as the site-local wall clock written as if it
were UTC; the true instant needs the site's timezone (see docs/matomo-api.md).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_FIXED_OFFSET = re.compile(r"^UTC(?P<sign>[+-])(?P<hours>\d{1,2}(?:\.\d+)?)$")


class UnknownTimezoneError(ValueError):
    """A site's timezone is neither an IANA name nor a Matomo `UTC±h` offset."""


def site_timezone(name: str) -> tzinfo:
    """Return the tzinfo for a Matomo site timezone (`Europe/Paris`, `UTC`, `UTC+5.5`, `UTC-3`)."""
    if name in ("UTC", "UTC+0", "UTC-0"):
        return UTC
    match = _FIXED_OFFSET.match(name)
    if match:
        minutes = round(float(match["hours"]) * 60)
        sign = -1 if match["sign"] == "-" else 1
        return timezone(timedelta(minutes=sign * minutes), name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        msg = f"unknown site timezone {name!r}"
        raise UnknownTimezoneError(msg) from exc


def local_wall_clock_to_utc(
    localised: int,
    tz: tzinfo,
    earliest: int | None = None,
    latest: int | None = None,
) -> datetime:
    """Turn a Matomo localised epoch into the true UTC instant.

    In the hour a DST zone repeats, a wall-clock time stands for two instants; the one
    inside the visit's true bounds [earliest, latest] (UTC epochs) is chosen.
    """
    wall = datetime(1970, 1, 1) + timedelta(seconds=localised)  # noqa: DTZ001 - naive on purpose
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second or earliest is None or latest is None:
        return first
    for candidate in (first, second):
        if earliest <= candidate.timestamp() <= latest:
            return candidate
    return first


def local_date(instant: datetime | int, tz: tzinfo) -> date:
    """The calendar date of an instant (aware datetime or UTC epoch) in a timezone."""
    if isinstance(instant, int):
        instant = datetime.fromtimestamp(instant, UTC)
    return instant.astimezone(tz).date()


def day_start(day: date, tz: tzinfo) -> datetime:
    """The instant a site-local day begins (00:00 local), as an aware UTC datetime."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def day_archived_by(day: date, tz: tzinfo, hours: int) -> datetime:
    """When Matomo has archived a closed site-local day, taken as `hours` (`report_final_after_hours`) after its
    end in the site's timezone: core:archive runs hourly by default, and hits can arrive late."""
    return day_start(day + timedelta(days=1), tz) + timedelta(hours=hours)
