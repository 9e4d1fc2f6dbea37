"""The simulator's HTTP server: Matomo's API rules (see docs/matomo-api.md), faults, and a request log.

Bound to 127.0.0.1 only. Tokens are accepted only in the POST body, as Matomo 5 does with its
"secure only" tokens; one found in the URL is refused and remembered (`token_in_url`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
import typing as t
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from matomo_simulator import clock, reports
from matomo_simulator.dataset import Site, Visit, World
from matomo_simulator.render import render_custom_dimensions, render_goals, render_site, render_visit

VERSION = "5.0.2"
QUERY_TIMEOUT = (
    "Could not run the query in time. Please try again later or reduce the date range (live_query_max_execution_time)."
)
BAD_TOKEN = "Unable to authenticate with the provided token. It is either invalid or expired."  # noqa: S105 - a message
BAD_DATE = (
    "Date format must be: YYYY-MM-DD, or 'today' or 'yesterday' or any keyword supported by the "
    "strtotime function (see http://php.net/strtotime for more information): {value}"
)
#: Reporting API calls besides the reports themselves, which take a report's time to answer too.
REPORT_CALLS = {"API.getBulkRequest", "API.getReportMetadata"}
HTML_PAGE = "<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Oops</h1></body></html>"


class MatomoError(Exception):
    """Answered as Matomo's `{"result":"error"}` envelope with the given HTTP status."""

    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Fault:
    """One misbehaviour, served instead of (or around) the next `times` matching answers.

    kinds: `status` (HTTP `status` with an HTML body), `rate_limit` (429 + Retry-After),
    `slow` (answers after `delay` s), `reset` (closes the connection), `truncated` (half a
    JSON body), `html` (200 with a web page), `echo` (HTTP `status` with a debug page quoting the
    request's form body, as a misconfigured proxy may serve), `empty` (200, no body), `query_timeout`
    (Matomo's "Could not run the query in time" envelope), `envelope` (any error `message`),
    `mangle` (the normal answer passed through `transform` first). With `idsite`, only requests
    for that site match (a site whose database shard is down, say).
    """

    kind: str
    times: int = 1
    method: str | None = "Live.getLastVisitsDetails"
    idsite: int | None = None
    status: int = 500
    delay: float = 0.0
    #: Seconds, or an HTTP date (`email.utils.format_datetime(..., usegmt=True)`), as RFC 9110 allows.
    retry_after: int | str = 1
    message: str = ""
    transform: t.Callable[[t.Any], t.Any] | None = None


@dataclass
class RecordedRequest:
    http_method: str
    raw_url: str
    params: dict[str, str]
    token_in_body: bool
    #: When it arrived (time.monotonic()): the request rate a client kept.
    at: float = 0.0


class MatomoSimulator:
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
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
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

    # -- the API -----------------------------------------------------------------------------

    def answer(self, params: dict[str, str], token: str | None) -> t.Any:
        """The JSON answer to one API call, or MatomoError."""
        method = params.get("method", "")
        module = params.get("module")
        if module != "API":
            raise MatomoError("The parameter 'module' must be API", 400)
        raw_site = params.get("idSite")
        if token is None:
            raise MatomoError(
                f"You can't access this resource as it requires 'view' access for the website id = {raw_site or 1}.",
                401,
            )
        if token not in self.tokens:
            raise MatomoError(BAD_TOKEN, 401)
        allowed = self.tokens[token]
        world = self.world
        plugin = method.partition(".")[0]
        if plugin in self.disabled_plugins:
            raise MatomoError(
                f"The plugin {plugin} is not enabled. You can activate the plugin on Settings &gt; Plugins page in Matomo."
            )
        if method == "API.getMatomoVersion":
            return {"value": VERSION}
        if method == "API.getBulkRequest":
            return self._bulk(params, token)
        if method == "SitesManager.getSitesWithAtLeastViewAccess":
            return [render_site(s) for i, s in sorted(world.sites.items()) if allowed is None or i in allowed]
        handlers = {
            "SitesManager.getSiteFromId": lambda site: render_site(site),
            "CustomDimensions.getConfiguredCustomDimensions": render_custom_dimensions,
            "Goals.getGoals": render_goals,
            "Live.getLastVisitsDetails": lambda site: self._live(site.idsite, params),
            "API.getReportMetadata": reports.metadata,
            **{name: partial(self._report, method=name, params=params) for name in reports.report_methods()},
        }
        if method not in handlers:
            module_name, _, name = method.partition(".")
            raise MatomoError(
                f"The method '{name}' does not exist or is not available in the module '\\Piwik\\Plugins\\{module_name}\\API'."
            )
        try:
            idsite = int(raw_site or "")
        except ValueError as exc:
            raise MatomoError(
                f"An unexpected website was found in the request: website id was set to '{raw_site}' ."
            ) from exc
        if idsite not in world.sites:
            raise MatomoError(f"An unexpected website was found in the request: website id was set to '{idsite}' .")
        if allowed is not None and idsite not in allowed:
            raise MatomoError(
                f"You can't access this resource as it requires 'view' access for the website id = {idsite}.", 401
            )
        return handlers[method](world.sites[idsite])

    def _day(self, value: str) -> date:
        today_utc = datetime.fromtimestamp(self.now(), UTC).date()
        if value == "today":
            return today_utc
        if value == "yesterday":
            return today_utc - timedelta(days=1)
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise MatomoError(BAD_DATE.format(value="false")) from exc

    def _window(self, idsite: int, params: dict[str, str]) -> tuple[int | None, int | None]:
        """[lo, hi] on last action time; `period=day` in the site's timezone, with the 'today' rule."""
        period, value = params.get("period"), params.get("date")
        if not period and not value:
            return None, None
        if not period or not value:
            raise MatomoError("To filter by date, both 'period' and 'date' must be set.")
        if period != "day":
            raise MatomoError(f"The simulator answers period=day only, not '{period}'.")
        day = self._day(value)
        site = self.world.sites[idsite]
        today_local = datetime.fromtimestamp(self.now(), site.tz).date()
        if day == today_local:  # Matomo: from yesterday 00:00, no end bound
            lo, _ = self.world.site_day_bounds(idsite, day - timedelta(days=1))
            return lo, None
        return self.world.site_day_bounds(idsite, day)

    def _live(self, idsite: int, params: dict[str, str]) -> list[dict]:
        lo, hi = self._window(idsite, params)
        min_ts = int(params["minTimestamp"]) if params.get("minTimestamp") else None
        descending = params.get("filter_sort_order", "desc") != "asc"
        limit = int(params.get("filter_limit", 10))
        offset = int(params.get("filter_offset", 0))
        lower = max(lo if lo is not None else -1, min_ts + 1 if min_ts is not None else -1)
        upper = min(hi if hi is not None else 2**62, int(self.now()))
        with self.world.lock:
            rows = self.world.by_last_action(idsite)
            matched = rows[bisect_left(rows, (lower,)) : bisect_left(rows, (upper + 1,))]
            if descending:
                matched = matched[::-1]
            page = matched[offset:] if limit == -1 else matched[offset : offset + limit]
            return [render_visit(self.world, v, numeric_strings=self.numeric_strings) for _, _, v in page]

    def _bulk(self, params: dict[str, str], token: str | None) -> list[t.Any]:
        """API.getBulkRequest: each `urls[n]` answered in turn, an error as its own envelope."""
        answers = []
        for n in itertools.count():  # pragma: no branch - ends at the first missing urls[n]
            url = params.get(f"urls[{n}]")
            if url is None:
                break
            sub = {k: v[-1] for k, v in parse_qs(url, keep_blank_values=True).items()}
            try:
                answers.append(self.answer({"module": "API", "format": "JSON", **sub}, token))
            except MatomoError as exc:
                answers.append({"result": "error", "message": exc.message})
        return answers

    def _report(self, site: Site, *, method: str, params: dict[str, str]) -> t.Any:
        """A report of a period: from its archive once a closed period was archived; else computed when
        browser archiving is on (Matomo's default), or empty (zeros, []) until core:archive ran."""
        period = params.get("period") or ""
        if period not in ("day", "week", "month", "year"):
            raise MatomoError(
                f"The period '{period}' is not supported. Try any of the following instead: day, week, month, year, range"
            )
        start, end = reports.period_range(period, self._day(params.get("date", "today")))
        segment = params.get("segment", "")
        extra = {k: v for k, v in params.items() if k in ("idGoal", "idDimension")}
        query = reports.ReportQuery(method, period, start, end, segment, extra)
        today = datetime.fromtimestamp(self.now(), site.tz).date()
        key = (site.idsite, method, tuple(sorted(extra.items())), segment, period, start)
        with self._lock:
            archived = self.archives.get(key)
        if archived is not None and end < today:
            rows = archived
        elif self.browser_archiving:
            rows = reports.compute(self.world, site, query)
            if end < today:
                with self._lock:
                    self.archives[key] = rows
        else:  # core:archive by cron: what it processed, without the days it has not (today)
            done = self.archived_days.get(site.idsite, set())
            last = min(end, today - timedelta(days=1))
            processed = (not segment or segment in self.processed_segments) and start <= last
            processed = processed and all(start + timedelta(days=n) in done for n in range((last - start).days + 1))
            query.end = last if processed else start - timedelta(days=1)  # nothing processed: no visit
            rows = reports.compute(self.world, site, query)
        limit = int(params.get("filter_limit") or reports.DEFAULT_FILTER_LIMIT)
        return reports.render(
            rows,
            query,
            flat=params.get("flat") == "1",
            format_metrics=params.get("format_metrics", "1") != "0",
            limit=limit,
            offset=int(params.get("filter_offset") or 0),
        )

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


def _handler_for(sim: MatomoSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "Apache"
        sys_version = ""

        def log_message(self, format: str, *args: t.Any) -> None:
            return

        def do_GET(self) -> None:
            self._serve(form={})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            self._serve(form={k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()})

        def _serve(self, form: dict[str, str]) -> None:
            parts = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            sim.requests.append(
                RecordedRequest(self.command, self.path, params, "token_auth" in form, time.monotonic())
            )
            method = params.get("method", "")
            if "token_auth" in params:
                sim.token_in_url = True
                self._json(401, {"result": "error", "message": BAD_TOKEN})
                return
            fault = sim.take_fault(method, params.get("idSite"))
            if fault and fault.kind == "echo":
                page = f"<html><body><h1>Bad gateway</h1><pre>{form}\nPOST {self.path}</pre></body></html>"
                self._raw(fault.status, page.encode(), "text/html")
                return
            if fault and self._apply(fault):
                return
            if method == "Live.getLastVisitsDetails":
                for hook in list(sim.before_live_request):
                    hook(sim, params)
                if sim.live_latency:
                    time.sleep(sim.live_latency)
            is_report = method in REPORT_CALLS or method in reports.report_methods()
            with sim.archiving(params) if is_report else contextlib.nullcontext():
                if sim.report_latency and is_report:
                    time.sleep(sim.report_latency)
                try:
                    body = sim.answer(params, form.get("token_auth"))
                    status = 200
                except MatomoError as exc:
                    body, status = {"result": "error", "message": exc.message}, exc.status
            if fault and fault.kind == "mangle" and fault.transform and status == 200:
                body = fault.transform(body)
            if fault and fault.kind == "truncated":
                encoded = json.dumps(body).encode()
                self._raw(200, encoded[: max(1, len(encoded) // 2)], "application/json")
                return
            self._json(status, body)

        def _apply(self, fault: Fault) -> bool:
            """Serve the fault; True when nothing else must be sent."""
            if fault.kind == "slow":
                time.sleep(fault.delay)
                return False
            if fault.kind in ("truncated", "mangle"):
                return False
            if fault.kind == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.close_connection = True
                self.connection.close()
                return True
            if fault.kind == "status":
                self._raw(fault.status, HTML_PAGE.encode(), "text/html")
            elif fault.kind == "rate_limit":
                self._raw(429, b"Too Many Requests", "text/plain", {"Retry-After": str(fault.retry_after)})
            elif fault.kind == "html":
                self._raw(200, HTML_PAGE.encode(), "text/html")
            elif fault.kind == "empty":
                self._raw(200, b"", "application/json")
            elif fault.kind == "query_timeout":
                self._json(200, {"result": "error", "message": QUERY_TIMEOUT})
            elif fault.kind == "envelope":
                self._json(fault.status if fault.status != 500 else 200, {"result": "error", "message": fault.message})
            else:
                msg = f"unknown fault kind {fault.kind!r}"
                raise ValueError(msg)
            return True

        def _json(self, status: int, body: t.Any) -> None:
            self._raw(status, json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8")

        def _raw(self, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

    return Handler
