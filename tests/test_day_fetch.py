"""Days fetched at once, handed over in order, with bounded pages in flight; the request-rate cap."""

from __future__ import annotations

import threading
import time
import typing as t
from datetime import date, timedelta

import pytest
from tap_matomo import day_fetch
from tap_matomo.day_fetch import fetch_days_in_order
from tap_matomo.throttle import RequestRateLimiter

DAYS = [date(2031, 3, 1) + timedelta(days=n) for n in range(9)]


class Recorder:
    """A fake day fetch: `pages` pages per day, noting how many days run at once and pages waiting."""

    def __init__(self, pages: int = 5, fail_on: date | None = None) -> None:
        self.pages = pages
        self.fail_on = fail_on
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0
        self.emitted = 0

    def __call__(self, day: date, emit: t.Callable[[tuple[date, int]], None]) -> None:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            for n in range(self.pages):
                time.sleep(0.002)
                if day == self.fail_on and n == 2:
                    msg = f"Matomo failed on {day}"
                    raise RuntimeError(msg)
                emit((day, n))
                with self.lock:
                    self.emitted += 1
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("parallel", [1, 4])
def test_days_come_in_order_whatever_the_parallelism(parallel: int) -> None:
    recorder = Recorder()
    seen = [(day, list(pages)) for day, pages in fetch_days_in_order(DAYS, recorder, parallel)]
    assert [day for day, _ in seen] == DAYS
    assert all(pages == [(day, n) for n in range(5)] for day, pages in seen)
    assert recorder.most_running == parallel


def test_pages_in_flight_are_capped_while_the_reader_is_slow() -> None:
    recorder = Recorder(pages=50)
    consumed = 0
    worst = 0
    for _, pages in fetch_days_in_order(DAYS[:4], recorder, 4):
        for _ in pages:
            consumed += 1
            time.sleep(0.005)
            worst = max(worst, recorder.emitted - consumed)
    # each of the 4 days holds at most PAGES_AHEAD pages in its queue and one being handed over
    assert worst <= 4 * (day_fetch.PAGES_AHEAD + 1)
    assert consumed == 200


def test_a_failing_day_fails_the_reader_when_it_gets_there_and_stops_the_rest() -> None:
    recorder = Recorder(fail_on=DAYS[2])
    read: list[date] = []

    def read_all() -> None:
        for day, pages in fetch_days_in_order(DAYS, recorder, 3):
            list(pages)
            read.append(day)

    with pytest.raises(RuntimeError, match="Matomo failed on 2031-03-03"):
        read_all()
    assert read == DAYS[:2]
    assert recorder.running == 0  # every worker ended


def test_requests_per_minute_are_spaced_evenly() -> None:
    limiter = RequestRateLimiter(1200)  # one every 50 ms
    started = time.monotonic()
    for _ in range(5):
        limiter.wait()
    assert time.monotonic() - started >= 4 * 0.05 * 0.95
    unlimited = RequestRateLimiter(None)
    started = time.monotonic()
    for _ in range(1000):
        unlimited.wait()
    assert time.monotonic() - started < 0.2
