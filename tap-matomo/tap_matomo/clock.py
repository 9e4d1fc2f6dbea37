"""The tap's one source of the current time, so that tests can inject a clock.

Every "now" of the tap (the default start, "today" in a site's timezone, the run's start that
caps bookmarks, the check that start_date is not in the future) comes from `utc_now`; tests
replace it (pytest's monkeypatch) instead of waiting for real dates or hard-coding them.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current instant, timezone-aware in UTC."""
    return datetime.now(UTC)
