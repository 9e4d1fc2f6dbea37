"""Several site-local days of one site fetched at once, their pages handed over as they arrive.

A real Matomo takes 0.3 s to compute a page of 500 visits and more on big sites, so a backfill
that asks for one page after another spends its time waiting. Days are independent queries
(each page of a day depends on the previous one, see paging.py), so up to `parallel` days are
paged at once, each in its own thread, and the reader takes pages in the order they arrive: each
day's pages in their order, followed by a `None` that says the day is done. Handing days over
strictly one after another would need the days ahead buffered whole while the first is read,
that is memory growing with the size of a day; here at most PAGES_AHEAD pages per day in flight
wait for the reader, whatever the size of a day. What a site's run emits (site_run.py drops a visit
listed on two days) and its bookmark (set once the site's last day is done) do not depend on
the order in which pages arrive.

One order matters: a visit that gets a new hit moves to the end of the list, into the window's
last day (today, where hits arrive; with `create_new_visit_after_midnight=0` a visit of yesterday
can cross midnight). Read one day after another, that day comes last and finds it. Read at once,
the visit can leave an earlier day before that day's pages reach it and join the last day where
its pages have passed (a second read by offset, where a lower idvisit sorts first): it would be in
neither. So the last day, when it started before the earlier days were done, waits for them
(`wait_for_earlier_days`) and then reads again the visits whose last action is after the run
began: every visit that moved meanwhile is among them.
"""

from __future__ import annotations

import queue
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

_T = t.TypeVar("_T")

#: Pages each day in flight may fetch before the reader gets to them.
PAGES_AHEAD = 1
_POLL_SECONDS = 0.1


class _Stopped(Exception):
    """The reader has gone (done or failed): the day's worker ends."""


@dataclass(frozen=True)
class _Failed:
    error: BaseException


#: fetch_day(day, emit, wait_for_earlier_days): pages through one day, calling emit(page) for each.
DayFetch = t.Callable[[date, t.Callable[[_T], None], t.Callable[[], bool]], None]


class _Days(t.Generic[_T]):
    """The days of one `fetch_pages` call: what their workers hand over, and whether the earlier days are done."""

    def __init__(self, days: t.Sequence[date], fetch_day: DayFetch[_T], in_flight: int) -> None:
        self.days, self.fetch_day = days, fetch_day
        self.stop = threading.Event()  # the reader has gone
        self.earlier_done = threading.Event()  # every day but the last one is fetched
        self.earlier_left = len(days) - 1
        self.lock = threading.Lock()
        if not self.earlier_left:
            self.earlier_done.set()
        self.arrived: queue.Queue[tuple[date, object]] = queue.Queue(maxsize=in_flight * PAGES_AHEAD)

    def put(self, day: date, item: object) -> None:
        while not self.stop.is_set():
            try:
                self.arrived.put((day, item), timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return
        raise _Stopped

    def wait_for_earlier_days(self, overlapped: bool) -> bool:
        if not overlapped:
            return False
        while not self.earlier_done.wait(_POLL_SECONDS):
            if self.stop.is_set():
                raise _Stopped
        return True

    def work(self, day: date) -> None:
        """A worker thread's day: its pages, then None (or the failure)."""
        last = self.days[-1]
        overlapped = day == last and not self.earlier_done.is_set()  # earlier days still read as it starts
        try:
            self.fetch_day(day, lambda page: self.put(day, page), lambda: self.wait_for_earlier_days(overlapped))
            if day != last:
                with self.lock:
                    self.earlier_left -= 1
                    if not self.earlier_left:
                        self.earlier_done.set()
            self.put(day, None)
        except _Stopped:
            return
        except BaseException as exc:
            try:
                self.put(day, _Failed(exc))
            except _Stopped:
                return


def fetch_pages(days: t.Sequence[date], fetch_day: DayFetch[_T], parallel: int) -> t.Iterator[tuple[date, _T | None]]:
    """(day, page) as pages arrive, each day's in order, then (day, None) once the day is done.

    `fetch_day(day, emit, wait_for_earlier_days)` pages through one day and calls `emit(page)` for
    each page; it runs in a worker thread. Once through, it calls `wait_for_earlier_days()`: for the
    window's last day, when it started before every earlier day was done, this waits for them and is
    True (then the day reads again what moved into it); otherwise it is False at once. A failure in
    a worker is raised to the reader, and the other days stop.
    """
    in_flight = max(1, min(parallel, len(days)))  # a one-day window has one day in flight, whatever `parallel`
    state = _Days(days, fetch_day, in_flight)
    executor = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="matomo-day")
    try:
        for day in days:  # taken in this order by at most `parallel` threads
            executor.submit(state.work, day)
        remaining = len(days)
        while remaining:
            day, item = state.arrived.get()
            if isinstance(item, _Failed):
                raise item.error
            if item is None:
                remaining -= 1
            yield day, t.cast("_T | None", item)
    finally:
        state.stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
