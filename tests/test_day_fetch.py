"""Days fetched at once, pages handed over as they arrive with a cap on those waiting; the request-rate cap."""

from __future__ import annotations

import itertools
import threading
import time
import typing as t
from datetime import date, timedelta

import pytest
from tap_matomo import throttle
from tap_matomo.raw import day_fetch
from tap_matomo.raw.day_fetch import fetch_pages
from tap_matomo.throttle import RequestRateLimiter

pytestmark = pytest.mark.unit

DAYS = [date(2031, 3, 1) + timedelta(days=n) for n in range(9)]


class Recorder:
    """A fake day fetch: `pages` pages per day, noting how many days run at once and pages waiting."""

    def __init__(self, pages: int = 5, fail_on: date | None = None, slow: dict[date, float] | None = None) -> None:
        self.pages = pages
        self.fail_on = fail_on
        self.slow = slow or {}  # seconds per page of some days
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0
        self.emitted = 0
        self.waited: list[date] = []  # the days told to read again what moved into them
        self.done: list[date] = []
        self.done_when_waited: set[date] = set()

    def __call__(
        self, day: date, emit: t.Callable[[tuple[date, int]], None], wait_for_earlier_days: t.Callable[[], bool]
    ) -> None:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            for n in range(self.pages):
                time.sleep(self.slow.get(day, 0.002))
                if day == self.fail_on and n == 2:
                    msg = f"Matomo failed on {day}"
                    raise RuntimeError(msg)
                emit((day, n))
                with self.lock:
                    self.emitted += 1
            if wait_for_earlier_days():
                with self.lock:
                    self.waited.append(day)
                    self.done_when_waited = set(self.done)
            with self.lock:
                self.done.append(day)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("parallel", [1, 4])
def test_every_page_comes_each_day_in_order_then_its_end(parallel: int) -> None:
    recorder = Recorder()
    pages: dict[date, list[tuple[date, int]]] = {}
    ended: list[date] = []
    for day, page in fetch_pages(DAYS, recorder, parallel):
        assert day not in ended
        if page is None:
            ended.append(day)
        else:
            pages.setdefault(day, []).append(page)
    assert sorted(ended) == DAYS
    assert pages == {day: [(day, n) for n in range(5)] for day in DAYS}
    assert recorder.most_running == parallel
    if parallel == 1:
        assert ended == DAYS  # one at a time: in order
        assert recorder.waited == []  # the last day started after the others: nothing moved in unseen


def test_the_last_day_read_with_earlier_days_waits_for_them_then_reads_again() -> None:
    """A visit moving into the last day (a new hit) while an earlier day is read is not missed by both."""
    recorder = Recorder(slow={DAYS[0]: 0.03})  # the first day is still read when the others are done
    ended = [day for day, page in fetch_pages(DAYS, recorder, 4) if page is None]
    assert recorder.waited == [DAYS[-1]]
    assert recorder.done_when_waited == set(DAYS[:-1])  # it waited for every earlier day
    assert ended[-1] == DAYS[-1]
    assert sorted(ended) == DAYS


def test_pages_waiting_for_the_reader_are_capped() -> None:
    recorder = Recorder(pages=50)
    consumed = 0
    worst = 0
    for _, page in fetch_pages(DAYS[:4], recorder, 4):
        if page is None:
            continue
        consumed += 1
        time.sleep(0.005)  # a slow reader
        worst = max(worst, recorder.emitted - consumed)
    # the queue holds 4 * PAGES_AHEAD pages, and each worker at most one more it is handing over
    assert worst <= 4 * day_fetch.PAGES_AHEAD + 4
    assert consumed == 200


def test_a_failing_day_fails_the_reader_and_stops_the_others() -> None:
    recorder = Recorder(fail_on=DAYS[2])
    ended: list[date] = []

    def read_all() -> None:
        for day, page in fetch_pages(DAYS, recorder, 3):
            if page is None:
                ended.append(day)

    with pytest.raises(RuntimeError, match="Matomo failed on 2031-03-03"):
        read_all()
    assert DAYS[2] not in ended
    assert recorder.running == 0  # every worker ended


class FakeClock:
    """time.monotonic and time.sleep of a clock that moves only when slept on (the limiter's only clock)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_requests_per_minute_are_spaced_evenly(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(throttle, "time", clock)
    limiter = RequestRateLimiter(1200)  # one every 50 ms
    starts = []
    for _ in range(5):
        limiter.wait()
        starts.append(clock.now)
    assert [round(b - a, 6) for a, b in itertools.pairwise(starts)] == [0.05] * 4
    clock.slept.clear()
    unlimited = RequestRateLimiter(None)
    for _ in range(1000):
        unlimited.wait()
    assert clock.slept == []
