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
"""

from __future__ import annotations

import queue
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

if t.TYPE_CHECKING:
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


def fetch_pages(
    days: t.Sequence[date],
    fetch_day: t.Callable[[date, t.Callable[[_T], None]], None],
    parallel: int,
) -> t.Iterator[tuple[date, _T | None]]:
    """(day, page) as pages arrive, each day's in order, then (day, None) once the day is done.

    `fetch_day(day, emit)` pages through one day and calls `emit(page)` for each page; it runs in
    a worker thread. A failure in a worker is raised to the reader, and the other days stop.
    """
    stop = threading.Event()
    in_flight = max(1, min(parallel, len(days)))  # a one-day window has one day in flight, whatever `parallel`
    arrived: queue.Queue[tuple[date, object]] = queue.Queue(maxsize=in_flight * PAGES_AHEAD)

    def put(day: date, item: object) -> None:
        while not stop.is_set():
            try:
                arrived.put((day, item), timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return
        raise _Stopped

    def work(day: date) -> None:
        try:
            fetch_day(day, lambda page: put(day, page))
            put(day, None)
        except _Stopped:
            return
        except BaseException as exc:
            try:
                put(day, _Failed(exc))
            except _Stopped:
                return

    executor = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="matomo-day")
    try:
        for day in days:  # taken in this order by at most `parallel` threads
            executor.submit(work, day)
        remaining = len(days)
        while remaining:
            day, item = arrived.get()
            if isinstance(item, _Failed):
                raise item.error
            if item is None:
                remaining -= 1
            yield day, t.cast("_T | None", item)
    finally:
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
