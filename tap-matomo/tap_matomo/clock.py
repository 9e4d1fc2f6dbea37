"""The tap's one source of the current time, so that tests (and a replay) can set it.

Every "now" of the tap (the default start, "today" in a site's timezone, the run's start that
caps bookmarks, the check that start_date is not in the future, when an answer was fetched) comes
from `utc_now`. It is the real time unless the environment variable `MATOMO_NOW` names another:

    MATOMO_NOW=2026-03-29T00:30:00+00:00              the clock stands at that instant
    MATOMO_NOW=2026-03-29T00:30:00+00:00@1774744200.5 that instant was the real time 1774744200.5
                                                      (Unix seconds): the clock runs on from it

The second form is what the test suite sets (tests/conftest.py), so that every process of a test
(the tap, the simulator, the test itself) agrees on the time and sees it move forward. The Matomo
simulator reads the same variable (matomo_simulator/clock.py). Python's own clock cannot be moved
here instead: libfaketime makes Python 3.11's `time.sleep` fail.
"""

from __future__ import annotations

import functools
import os
import time
from datetime import UTC, datetime, timedelta

NOW_VARIABLE = "MATOMO_NOW"


class ClockError(ValueError):
    """MATOMO_NOW is not an instant (with an optional `@` and Unix seconds)."""


@functools.lru_cache(maxsize=4)
def injected(value: str) -> tuple[datetime, float | None]:
    """MATOMO_NOW's instant, and the real time (Unix seconds) it was set at, if it runs on."""
    instant, _, anchor = value.strip().partition("@")
    try:
        moment = datetime.fromisoformat(instant)
        real = float(anchor) if anchor else None
    except ValueError:
        msg = f"{NOW_VARIABLE}: {value!r} is not an ISO 8601 instant with its offset, optionally @<Unix seconds>"
        raise ClockError(msg) from None
    if moment.tzinfo is None:
        msg = f"{NOW_VARIABLE}: {value!r} has no UTC offset (write 2026-03-29T00:30:00+00:00)"
        raise ClockError(msg)
    return moment.astimezone(UTC), real


def utc_now() -> datetime:
    """The current instant, timezone-aware in UTC."""
    value = os.environ.get(NOW_VARIABLE)
    if not value:
        return datetime.now(UTC)
    moment, real = injected(value)
    return moment if real is None else moment + timedelta(seconds=time.time() - real)
