"""The order a report's requests go in, so that the ones in flight at once do not wait for each other in Matomo.

With browser-triggered archiving (Matomo's default) Matomo archives a period on the request that first
needs it, under a lock per site, period, dates, segment and plugin (`ArchiveProcessor\\LoaderLock`): a
second request for the same period of a report of the same plugin waits until the first is done (seen on
a real Matomo: 1.5% of report requests took exactly 5.0 s). A report read per goal or per custom dimension
asks for each period once per goal; in the plan's order, a period's goals went at once. Here a plan is
sent in rounds, one request of each period per round, and no more requests go at once than there are
periods in the plan: the ones in flight always name different periods. A report read once per period
keeps its order and its parallelism. `in_order` sends a plan so.
"""

from __future__ import annotations

import itertools
import threading
import typing as t
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

_R = t.TypeVar("_R")


def spread(plan: t.Sequence[_R], key: t.Callable[[_R], t.Hashable]) -> list[_R]:
    """`plan` in rounds: the first request of each key, then the second of each, and so on (keys in the order
    they first appear). For a plan of every key times the same parameter sets, any run of as many
    consecutive requests as there are keys holds each key once."""
    groups: dict[t.Hashable, list[_R]] = {}
    for request in plan:
        groups.setdefault(key(request), []).append(request)
    rounds = itertools.zip_longest(*groups.values())
    return [request for round_ in rounds for request in round_ if request is not None]


def at_once(plan: t.Sequence[_R], key: t.Callable[[_R], t.Hashable], parallel: int, bulk: int) -> int:
    """How many requests of `bulk` answers each may be in flight, at most `parallel`, so that a spread plan's
    requests in flight (consecutive ones) name different keys."""
    keys = len({key(request) for request in plan})
    return max(1, min(parallel, keys // max(1, bulk)))


_I = t.TypeVar("_I")


def in_order(
    items: t.Iterable[_I], fetch: t.Callable[[_I], _R], parallel: int, stop: threading.Event
) -> t.Iterator[tuple[_I, _R]]:
    """Each item with what `fetch` gave for it, in the items' order; up to `parallel` fetched at once (always
    consecutive items: a spread plan's requests in flight name different periods), the next one sent as the
    reader takes a result, so that memory holds that many results whatever the plan's length (a year of days).
    When a fetch fails, or the reader is done, `stop` is set (the fetches in flight make no further attempt,
    client.MatomoStream.send) and the call returns once they have ended; a failure is raised to the reader."""
    pending = iter(items)
    in_flight: deque[tuple[_I, Future[_R]]] = deque()
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="matomo-report")

    def send_next() -> None:
        item = next(pending, None)
        if item is not None:
            in_flight.append((item, pool.submit(fetch, item)))

    try:
        for _ in range(parallel):
            send_next()
        while in_flight:
            item, future = in_flight.popleft()
            result = future.result()
            send_next()
            yield item, result
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
