"""The simulator's HTTP server: Matomo's API rules (api.py, docs/matomo-api.md), faults, and a request log.

Bound to 127.0.0.1 only. Tokens are accepted only in the POST body, as Matomo 5 does with its
"secure only" tokens; one found in the URL is refused and remembered (`token_in_url`).
"""

from __future__ import annotations

import contextlib
import threading
import typing as t
from datetime import date, datetime
from http.server import ThreadingHTTPServer

from matomo_simulator import clock, reports
from matomo_simulator.api import MatomoApi
from matomo_simulator.http_handler import MatomoRequestHandler
from matomo_simulator.wire import REPORT_CALLS, Fault, RecordedRequest

if t.TYPE_CHECKING:
    from matomo_simulator.dataset import World
    from matomo_simulator.model import Visit

__all__ = ["Fault", "MatomoSimulator", "RecordedRequest"]


class MatomoSimulator(MatomoApi):
    """Serves a World over HTTP like Matomo 5; start() / stop(), or use it as a context manager."""

    def __init__(
        self,
        world: World,
        tokens: dict[str, set[int] | None],
        *,
        numeric_strings: bool = False,
        port: int = 0,
        now: t.Callable[[], float] = clock.now,
    ) -> None:
        self.world = world
        self.tokens = tokens  # token -> the site ids it may view (None: every site)
        self.numeric_strings = numeric_strings
        self.now = now
        self.faults: list[Fault] = []
        self.before_live_request: list[t.Callable[[MatomoSimulator, dict[str, str]], None]] = []
        self.requests: list[RecordedRequest] = []
        self.token_in_url = False
        #: Plugins switched off in Settings > Plugins (e.g. "CustomDimensions", "Goals").
        self.disabled_plugins: set[str] = set()
        #: Seconds added to every Live answer, the time a busy Matomo takes (parallel requests wait alike).
        self.live_latency = 0.0
        #: Reports: archived on request (Matomo's default), or only by `archive()` (core:archive by cron).
        self.browser_archiving = True
        #: Reports of closed periods as archived: (idsite, method, parameters, segment, period, start) -> rows.
        self.archives: dict[tuple[t.Any, ...], list[dict[str, t.Any]]] = {}
        #: Site-local days core:archive has processed (browser archiving off), per site.
        self.archived_days: dict[int, set[date]] = {}
        #: Segments core:archive has processed (with browser archiving off, others answer zeros or []).
        self.processed_segments: set[str] = set()
        #: Seconds added to every Reporting API answer (a bulk request's once), the time Matomo takes.
        self.report_latency = 0.0
        #: Reporting API requests that found another one archiving the same site, period, dates, segment and
        #: plugin (Matomo's archiving lock, browser archiving): each waited for it, as Matomo makes it wait.
        self.archive_lock_waits: list[tuple[str, ...]] = []
        self._archiving: dict[tuple[str, ...], threading.Lock] = {}
        self._lock = threading.Lock()
        self._server = _SimulatorServer(("127.0.0.1", port), MatomoRequestHandler, self)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def archiving(self, params: dict[str, str]) -> t.Iterator[None]:
        """Matomo's archiving lock around a report request with browser archiving: one request at a time per
        site, period, dates, segment and plugin (its `LoaderLock`); a second one waits, and is recorded."""
        method = params.get("method", "")
        if not self.browser_archiving or method in REPORT_CALLS or "." not in method:
            yield
            return
        key = (*(params.get(k, "") for k in ("idSite", "period", "date", "segment")), method.split(".")[0])
        with self._lock:
            lock = self._archiving.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=False):
            self.archive_lock_waits.append(key)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> MatomoSimulator:
        self._thread = threading.Thread(target=self._server.serve_forever, name="matomo-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MatomoSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def live_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.params.get("method") == "Live.getLastVisitsDetails"]

    def take_fault(self, method: str, idsite: str | None = None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.idsite is not None and str(fault.idsite) != idsite:
                    continue
                if fault.method in (None, method) and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def archive(self, idsite: int, day: date) -> dict[str, t.Any]:
        """What Matomo's archiver (core:archive) does for a site-local day: its reports from now on are those
        of the raw data at this moment (archives of the day made before are dropped). VisitsSummary's row."""
        with self._lock:
            self.archived_days.setdefault(idsite, set()).add(day)
            for key in [k for k in self.archives if k[0] == idsite and k[5] <= day <= self._period_end(k[4], k[5])]:
                del self.archives[key]
        site = self.world.sites[idsite]
        return reports.compute(self.world, site, reports.ReportQuery("VisitsSummary.get", "day", day, day))[0]

    @staticmethod
    def _period_end(period: str, start: date) -> date:
        return reports.period_range(period, start)[1]

    def delete_data_subjects(self, idvisits: list[int]) -> int:
        """PrivacyManager.deleteDataSubjects: the visits are gone from the Live API at once, and the
        archives of their days are invalidated (remade on the next request)."""
        with self.world.lock:
            days = {
                (v.idsite, datetime.fromtimestamp(v.last_action, self.world.sites[v.idsite].tz).date())
                for i in idvisits
                if (v := self.world.visits.get(i)) is not None
            }
            gone = self.world.erase_visits(idvisits)
        for idsite, day in days:
            self._invalidate(idsite, day)
        return gone

    def track_late_visit(self, idsite: int, at: int) -> Visit:
        """A visit tracked now with a past timestamp (`at`, in a closed day): Matomo records it and invalidates
        the archives of every period holding its day, so the next request (browser archiving) or core:archive
        archives them again with it."""
        visit = self.world.add_visit(idsite, at)
        self._invalidate(idsite, datetime.fromtimestamp(at, self.world.sites[idsite].tz).date())
        return visit

    def _invalidate(self, idsite: int, day: date) -> None:
        """Drop the site's archives of every period holding `day` (remade on the next request)."""
        with self._lock:
            for key in [k for k in self.archives if k[0] == idsite and k[5] <= day <= self._period_end(k[4], k[5])]:
                del self.archives[key]


class _SimulatorServer(ThreadingHTTPServer):
    """The HTTP server, holding the simulator its handlers answer for."""

    def __init__(
        self, address: tuple[str, int], handler: type[MatomoRequestHandler], simulator: MatomoSimulator
    ) -> None:
        super().__init__(address, handler)
        self.simulator = simulator
