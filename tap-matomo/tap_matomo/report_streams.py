"""Matomo's reports as streams: every row of a report, per site, period and period start.

Per site and period type (day, week, month, year) a report stream keeps, in its state partition:
`through`, the newest closed period read; `refreshed_on`, the site-local day its trailing window was
last read again; and VisitsSummary.get's stream, `totals`, each recent day's visits and actions as last
read. A run reads:

- the closed periods after `through` (a first run: from `start_date`, or the site's creation when
  later, so no period before the site existed is asked for), each once `report_final_after_hours` have
  passed since its end in the site's timezone (by then `core:archive`, hourly by default, has archived
  it, and late hits have arrived): a closed day is read once, when its answer can be final;
- once a site-local day, with the newest closed period, the last `report_trailing_*` closed periods
  again, because late hits, invalidations and GDPR erasures change archives after a period ends;
- with that window, VisitsSummary.get (the site's totals, read first in the default set) of the last
  `reconcile_days` closed days, as far back as the nightly reconcile reaches: a day whose totals differ
  from those it was last read with was changed by Matomo after (late hits, an erasure), and every
  report reads it again, with its closed week, month and year;
- the unfinished current period, only with `report_include_current_period` (never final, read again
  by every run). Without it, no request names a period holding today: with browser-triggered
  archiving (Matomo's default) each would make Matomo archive today again.

A row is final (`is_final`) when its period had ended in the site's timezone and Matomo answered at
least `report_final_after_hours` after that end, and the answer was not empty, or was empty while
VisitsSummary.get (read first, in the default set) had visits for the period: Matomo answers a period
it has not archived with zeros or `[]`, never an error, and a zero must not pass for a final number,
but an archived period without, say, social referrers has none. Final means "Matomo's archive, as
read": a re-archive (late hits, an erasure, an invalidation) can still change it, which the trailing
window and the nightly reconcile read again. What each run read is reported in `report_fetches` (one
row per report, site, period and parameters), so that the warehouse keeps each period's latest answer
whole, also when a later answer has fewer rows. Rows are keyed by their position in the answer
(`row_index`): Matomo's labels are not unique.

Requests go up to `max_parallel_requests` at once, never two for one period (report_plan.py);
`report_bulk_size` > 1 asks for that many periods in one `API.getBulkRequest`; a report longer than
`report_page_size` rows is paged with `filter_limit`/`filter_offset` (archives do not change between
pages, unlike the visitor log).
"""

from __future__ import annotations

import functools
import html
import threading
import typing as t
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from singer_sdk import metrics
from singer_sdk.exceptions import FatalAPIError

from tap_matomo import clock, schemas, settings
from tap_matomo.client import error_message, matomo_json
from tap_matomo.coerce import integer
from tap_matomo.compat import override
from tap_matomo.periods import Period, PeriodWindow, archived_by, next_start, period_end, period_start
from tap_matomo.report_plan import at_once, spread
from tap_matomo.report_rows import is_empty, map_row, rows_of
from tap_matomo.report_specs import KEY, ReportMetadata, ReportSpec, declared_metrics, report_schema
from tap_matomo.streams import PluginStream, SiteChildStream
from tap_matomo.timezones import local_date, site_timezone

if t.TYPE_CHECKING:
    import requests
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

PERIODS_KEY = "periods"
#: The setting that says how many closed periods of a type are read again.
_TRAILING_SETTING: dict[Period, str] = {
    "day": "report_trailing_days",
    "week": "report_trailing_weeks",
    "month": "report_trailing_months",
    "year": "report_trailing_years",
}


#: What `_fetch` gives for a batch: each request's rows (None: the report's plugin is off), and when.
BatchAnswers = tuple[list[list[dict[str, t.Any]] | None], datetime]


def window_days(config: t.Mapping[str, t.Any], window: PeriodWindow) -> list[date]:
    """The closed days whose totals the totals stream checks once a day: as far back as the nightly reconcile
    reads the raw log (`reconcile_days`), and the trailing window at least."""
    return window.trailing(max(int(config["reconcile_days"]), int(config["report_trailing_days"])))


class ReadStoppedError(FatalAPIError):
    """A report read stopped because another of its requests failed for good (never the error shown)."""


@dataclass(frozen=True)
class ReportRequest:
    """One answer to ask for: a period of a report for a site, with its expanded parameters, from an offset."""

    period: Period
    start: date
    params: tuple[tuple[str, str], ...] = ()
    offset: int = 0

    @property
    def params_text(self) -> str:
        return "&".join(f"{key}={value}" for key, value in self.params)


def archive_of(request: ReportRequest) -> tuple[Period, date]:
    """What Matomo archives under one lock for a report's requests (site, segment and plugin being the
    stream's): a period; requests in flight at once name different ones (report_plan.py)."""
    return request.period, request.start


@dataclass(frozen=True)
class SiteCall:
    """A call about the site itself (its goals, its custom dimensions), which a report read per goal needs."""

    method: str


@dataclass(frozen=True)
class Fetched:
    """What a run read of one report period: for `report_fetches`."""

    report: str
    idsite: int
    period: Period
    period_start: date
    segment: str
    params: str
    rows: int
    is_final: bool
    fetched_at: datetime


@dataclass
class ReportLedger:
    """The periods this run read, per site; `report_fetches` reports them after the site's reports.

    `visits`: VisitsSummary.get's visits of each period it read this run (site, period, start), when
    it is among the reports (the default set reads it first): a period with visits has been archived,
    so an empty answer of another report for it is that report's answer, not a missing archive.
    `changed`: the site's days whose totals VisitsSummary.get found changed since they were read: every
    report reads them again, and their week, month and year.
    """

    fetched: dict[int, list[Fetched]] = field(default_factory=dict)
    visits: dict[tuple[int, Period, date], int] = field(default_factory=dict)
    changed: dict[int, set[date]] = field(default_factory=dict)


class ReportStream(PluginStream):
    """One Matomo report (a `ReportSpec`): its rows for every period the site's state says to read."""

    primary_keys = KEY
    # No SDK replication key: the per-period state below is the one bookmark (an SDK one beside it would
    # be a second, which a reshard could pick instead).
    ledger: ReportLedger
    _request_counter: metrics.Counter
    _stopping: threading.Event  # set when a read of answers ends: the requests still in flight stop

    def __init__(self, tap: Tap, spec: ReportSpec, metadata: ReportMetadata) -> None:
        self._count_lock = threading.Lock()
        self.spec = spec
        self.name = spec.name
        self.api_method = spec.method
        super().__init__(tap, schema=report_schema(spec, metadata), name=spec.name)

    @functools.cached_property
    def declared(self) -> frozenset[str]:
        """The metrics with a column, read once the catalog (if any) has been applied."""
        return declared_metrics(self.effective_schema)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        assert context is not None
        if self._skipped() or (self.spec.ecommerce_only and not context.get("ecommerce")):
            return
        with self.get_http_request_counter() as counter:  # the SDK's http_request_count, as for its own paging
            counter.with_context(context)
            self._request_counter = counter
            self._stopping = threading.Event()
            yield from self._site_records(context)

    def _site_records(self, context: Context) -> t.Iterator[dict[str, t.Any]]:
        tz = site_timezone(context["timezone"])
        today = local_date(clock.utc_now(), tz)
        state = self.get_context_state(context)
        bookmarks: dict[str, dict[str, t.Any]] = state.setdefault(PERIODS_KEY, {})
        windows = {period: PeriodWindow(period, today) for period in self.spec.periods}
        starts_of: dict[Period, set[date]] = {}
        refreshed: set[Period] = set()
        for period, window in windows.items():
            starts, reads_trailing = self._starts(window, bookmarks.get(period, {}), context, tz)
            starts_of[period] = set(starts)
            if reads_trailing:
                refreshed.add(period)
        if self.reads_totals and "day" in refreshed:  # once a site-local day: the days the reconcile reaches
            starts_of["day"] |= self._ready(windows["day"], window_days(self.config, windows["day"]), context, tz)
        changed = self.ledger.changed.setdefault(context["idsite"], set())
        # The site's goals or dimensions are asked for only when there is a period to read.
        expansions = self._expansions(context) if any(starts_of.values()) or changed else []
        fetched_now: dict[Period, list[date]] = {period: [] for period in windows}
        totals: dict[str, list[int]] = dict(bookmarks.get("day", {}).get("totals", {}))
        # Days first: the totals stream finds there which days Matomo changed, and every stream reads the
        # week, month and year of those days after them.
        phases: list[list[Period]] = [[p for p in windows if p == "day"], [p for p in windows if p != "day"]]
        for periods in phases:
            for period in periods:
                containing = {period_start(period, day) for day in changed}
                starts_of[period] |= self._ready(windows[period], containing, context, tz)
            plan = spread(
                [
                    ReportRequest(period, start, params)
                    for period in periods
                    for start in sorted(starts_of[period])
                    for params in expansions
                ],
                archive_of,
            )
            if not expansions:  # a site without goals (or dimensions): nothing to read, its periods are done
                for period in periods:
                    fetched_now[period] = sorted(starts_of[period])
            for request, rows, fetched_at in self._answers(context, plan):
                self._note_visits(context, request, rows, totals, changed)
                final = self._is_final(context, request, rows, fetched_at, windows[request.period], tz)
                self._note_fetched(context, request, len(rows), final, fetched_at)
                fetched_now[request.period].append(request.start)
                for index, row in enumerate(rows, 1):
                    yield self._record(context, request, index, row, final, fetched_at)
        if self._skipped():
            return  # nothing was read: the bookmarks stay
        for period, window in windows.items():
            bookmarks[period] = self._bookmark(
                window, bookmarks.get(period, {}), fetched_now[period], refreshed=period in refreshed
            )
        if self.reads_totals and "day" in windows:
            keep = {day.isoformat() for day in window_days(self.config, windows["day"])}
            bookmarks["day"]["totals"] = {day: pair for day, pair in sorted(totals.items()) if day in keep}

    @functools.cached_property
    def reads_totals(self) -> bool:
        """Whether this stream is VisitsSummary.get of the whole site: the totals that tell a changed day."""
        return self.spec.method == "VisitsSummary.get" and not self.spec.segment and not self.spec.params

    def _note_fetched(
        self, context: Context, request: ReportRequest, rows: int, final: bool, fetched_at: datetime
    ) -> None:
        """What was read, for `report_fetches`."""
        fetched = Fetched(
            self.name,
            context["idsite"],
            request.period,
            request.start,
            self.spec.segment,
            request.params_text,
            rows,
            final,
            fetched_at,
        )
        self.ledger.fetched.setdefault(context["idsite"], []).append(fetched)

    def _skipped(self) -> bool:
        """Whether the report's plugin turned out to be off (for every site: it is Matomo-wide)."""
        return self.plugin_missing

    # -- what to read ------------------------------------------------------------------------------

    def _expansions(self, context: Context) -> list[tuple[tuple[str, str], ...]]:
        """The parameter sets to read: the spec's, once per goal or per active custom dimension of the site
        (a goal or dimension added later is read from then on, its trailing window included)."""
        fixed = self.spec.params
        if self.spec.expand == "goals":
            goals = self._ask(context, "Goals.getGoals")
            ids = [integer(g.get("idgoal")) for g in (goals.values() if isinstance(goals, dict) else goals or [])]
            return [(*fixed, ("idGoal", str(i))) for i in sorted(i for i in ids if i is not None)]
        if self.spec.expand == "custom_dimensions":
            dimensions = self._ask(context, "CustomDimensions.getConfiguredCustomDimensions") or []
            ids = [integer(d.get("idcustomdimension")) for d in dimensions if d.get("active") in (True, 1, "1")]
            return [(*fixed, ("idDimension", str(i))) for i in sorted(i for i in ids if i is not None)]
        return [fixed]

    def _trailing(self, window: PeriodWindow) -> list[date]:
        return window.trailing(int(self.config[_TRAILING_SETTING[window.period]]))

    def _starts(
        self, window: PeriodWindow, bookmark: dict[str, t.Any], context: Context, tz: t.Any
    ) -> tuple[list[date], bool]:
        """The period starts to read this run, oldest first (the current period last, when asked for), and
        whether they hold the trailing window (read once a site-local day).

        A closed period is first read once its answer can be final (`report_final_after_hours` after its
        end): read earlier, it would be read again on every run until then. The trailing window is read
        again with the newest closed period, on the first run of the day that can read it."""
        first = self._first_day(context, window)
        through = bookmark.get("through")
        now, period = clock.utc_now(), window.period
        if through:
            starts = set(window.closed_since(next_start(period, date.fromisoformat(through))))
            newest_ready = self._archived_by(period, window.last_closed, tz) <= now
            reads_trailing = newest_ready and bookmark.get("refreshed_on") != window.today.isoformat()
            if reads_trailing:
                starts |= set(self._trailing(window))
        else:  # a first run: every closed period since the first day, the trailing window among them
            starts, reads_trailing = set(window.closed_since(first)), True
        ready = [s for s in starts if self._archived_by(period, s, tz) <= now]
        ordered = sorted(s for s in ready if period_end(period, s) >= first)
        if self.config["report_include_current_period"]:
            ordered.append(window.current)
        return ordered, reads_trailing

    def _ready(self, window: PeriodWindow, starts: t.Iterable[date], context: Context, tz: t.Any) -> set[date]:
        """Of these period starts, the closed ones Matomo has archived by now, not before the first day."""
        first, now = self._first_day(context, window), clock.utc_now()
        return {
            start
            for start in starts
            if start <= window.last_closed
            and self._archived_by(window.period, start, tz) <= now
            and period_end(window.period, start) >= first
        }

    def _first_day(self, context: Context, window: PeriodWindow) -> date:
        """The first site-local day to read: start_date (by default a few days ago), not before the site existed."""
        configured = self.config.get("start_date")
        default = window.today - timedelta(days=settings.DEFAULT_START_DAYS)
        first = date.fromisoformat(str(configured)[:10]) if configured else default
        created = context.get("created_on")
        return max(first, date.fromisoformat(created)) if created else first

    def _bookmark(
        self, window: PeriodWindow, before: dict[str, t.Any], fetched: list[date], *, refreshed: bool
    ) -> dict[str, t.Any]:
        """The period type's new bookmark: the newest closed period read, and when the trailing window was
        last read (a period whose answer was not final is read again with it, once a site-local day)."""
        closed = [start.isoformat() for start in fetched if start <= window.last_closed]
        return {
            "through": max([before.get("through") or "", *closed]) or None,
            "refreshed_on": window.today.isoformat() if refreshed else before.get("refreshed_on"),
        }

    def _note_visits(
        self,
        context: Context,
        request: ReportRequest,
        rows: list[dict[str, t.Any]],
        totals: dict[str, list[int]],
        changed: set[date],
    ) -> None:
        """VisitsSummary.get's visits of a period, for the other reports of the site (`ReportLedger.visits`);
        and of a day, Matomo's totals now, against those the day was last read with: when they differ,
        Matomo changed the day after (late hits, an erasure), and every report reads it again."""
        if not self.reads_totals or not rows:
            return
        visits, actions = integer(rows[0].get("nb_visits")) or 0, integer(rows[0].get("nb_actions")) or 0
        self.ledger.visits[context["idsite"], request.period, request.start] = visits
        if request.period == "day":
            before = totals.get(request.start.isoformat())
            if before is not None and before != [visits, actions]:
                changed.add(request.start)
            totals[request.start.isoformat()] = [visits, actions]

    def _archived_by(self, period: Period, start: date, tz: t.Any) -> datetime:
        return archived_by(period, start, tz, int(self.config["report_final_after_hours"]))

    def _is_final(
        self,
        context: Context,
        request: ReportRequest,
        rows: list[dict[str, t.Any]],
        fetched_at: datetime,
        window: PeriodWindow,
        tz: t.Any,
    ) -> bool:
        """Whether the answer is Matomo's archive of a closed period: read after `_archived_by`, and not an
        empty answer unless VisitsSummary.get had visits for the period (then empty is the answer)."""
        if request.start > window.last_closed or fetched_at < self._archived_by(request.period, request.start, tz):
            return False
        return not is_empty(rows) or self.ledger.visits.get((context["idsite"], request.period, request.start), 0) > 0

    # -- asking Matomo -----------------------------------------------------------------------------

    def _answers(
        self, context: Context, plan: list[ReportRequest]
    ) -> t.Iterator[tuple[ReportRequest, list[dict[str, t.Any]], datetime]]:
        """Each request's rows (every page) and when Matomo answered, in the plan's order; up to
        max_parallel_requests requests in flight, the next one sent as the reader takes an answer, so that
        memory holds that many answers whatever the plan's length (a year of days). When a request fails
        for good, the others in flight stop before their next attempt and the run fails at once."""
        self._stopping = threading.Event()  # this read's: set when it ends
        bulk = max(1, int(self.config["report_bulk_size"]))
        batches = (plan[i : i + bulk] for i in range(0, len(plan), bulk))
        parallel = at_once(plan, archive_of, int(self.config["max_parallel_requests"]), bulk)
        in_flight: deque[tuple[list[ReportRequest], Future[BatchAnswers]]] = deque()
        pool = ThreadPoolExecutor(max_workers=parallel)

        def send_next() -> None:
            batch = next(batches, None)
            if batch is not None:
                in_flight.append((batch, pool.submit(self._fetch, context, batch)))

        try:
            for _ in range(parallel):
                send_next()
            while in_flight:
                batch, future = in_flight.popleft()
                answers, fetched_at = future.result()
                send_next()
                for request, rows in zip(batch, answers, strict=True):
                    if rows is None:  # the report's plugin is not available: said once, nothing more asked
                        return
                    yield request, rows, fetched_at
        finally:
            self._stopping.set()  # a failure, or the reader gone: nothing more is sent
            pool.shutdown(wait=True, cancel_futures=True)

    def _fetch(self, context: Context, batch: list[ReportRequest]) -> BatchAnswers:
        """The rows of each request of a batch (one request, or a bulk one; a long report's next pages after)."""
        answers = [self._send(context, batch[0])] if len(batch) == 1 else self._send(context, batch)
        fetched_at = clock.utc_now()
        if not isinstance(answers, list) or len(answers) != len(batch):
            msg = f"Matomo API.getBulkRequest for site {context['idsite']}: expected a list of {len(batch)} answers"
            raise FatalAPIError(msg)
        results: list[list[dict[str, t.Any]] | None] = []
        limit = int(self.config["report_page_size"])
        for request, answer in zip(batch, answers, strict=True):
            if self.missing_plugin(answer):
                results.append(None)
                continue
            self._check(answer, context)
            rows = page = rows_of(answer)
            while len(page) == limit:  # a long report: the next page
                page = rows_of(self._send(context, replace(request, offset=request.offset + len(rows))))
                rows = rows + page
            results.append(rows)
        return results, fetched_at

    def _send(self, context: Context, token: ReportRequest | list[ReportRequest] | SiteCall) -> t.Any:
        send = self.request_decorator(self._sender)  # retried with backoff
        response = send(self.build_page_request(context, token), context)
        with self._count_lock:  # requests are sent from several threads
            self._request_counter.increment()
        self.update_sync_costs(response.request, response, context)
        return matomo_json(response)

    def _sender(self, prepared: requests.PreparedRequest, context: Context | None) -> requests.Response:
        if self._stopping.is_set():  # another request failed for good: no further attempt
            raise ReadStoppedError(self.name)
        response = self.requests_session.send(prepared, timeout=self.timeout, allow_redirects=self.allow_redirects)
        self.log_request_duration(response, context)
        self.validate_response(response)
        return response

    def _ask(self, context: Context, method: str) -> t.Any:
        """A site's configuration (goals, custom dimensions) as the report needs it; [] when its plugin is off."""
        body = self._send(context, SiteCall(method))
        return [] if error_message(body) is not None else body

    def _check(self, answer: t.Any, context: Context) -> None:
        message = error_message(answer)
        if message is not None:
            msg = f"Matomo {self.spec.method} for site {context['idsite']}: Matomo error: {html.unescape(message)}"
            raise FatalAPIError(msg)

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: ReportRequest | list[ReportRequest] | SiteCall | None
    ) -> dict[str, t.Any]:
        assert context is not None
        api = {"module": "API", "format": "JSON"}
        if isinstance(next_page_token, SiteCall):
            return {**api, "method": next_page_token.method, "idSite": context["idsite"]}
        if isinstance(next_page_token, list):
            urls = {f"urls[{n}]": urlencode(self._params(context, r)) for n, r in enumerate(next_page_token)}
            return {**api, "method": "API.getBulkRequest", **urls}
        if next_page_token is None:
            msg = f"{self.name} is read period by period: no period to ask for"
            raise RuntimeError(msg)
        return {**api, **self._params(context, next_page_token)}

    def _params(self, context: Context, request: ReportRequest) -> dict[str, t.Any]:
        params: dict[str, t.Any] = {
            "method": self.spec.method,
            "idSite": context["idsite"],
            "period": request.period,
            "date": request.start.isoformat(),
            "flat": 1,
            "format_metrics": 0,
            "filter_limit": int(self.config["report_page_size"]),
            **dict(request.params),
        }
        if request.offset:
            params["filter_offset"] = request.offset
        if self.spec.segment:
            params["segment"] = self.spec.segment
        return params

    def _record(
        self,
        context: Context,
        request: ReportRequest,
        index: int,
        row: dict[str, t.Any],
        final: bool,
        fetched_at: datetime,
    ) -> dict[str, t.Any]:
        """A row's record: the keys (its position in the answer, from 1, as `row_index`), its fields, when read."""
        return {
            "idsite": context["idsite"],
            "period": request.period,
            "period_start": request.start.isoformat(),
            "period_end": period_end(request.period, request.start).isoformat(),
            "segment": self.spec.segment,
            "params": request.params_text,
            "row_index": index,
            **map_row(row, self.declared),
            "is_final": final,
            "fetched_at": fetched_at.isoformat(),
        }


class ReportFetchesStream(SiteChildStream):
    """What each report stream read for a site this run: one row per report, period and parameters.

    Synced after the site's reports. The warehouse keeps, per report period, only the rows of its latest
    answer (those with that `fetched_at`): rows a later answer no longer has are dropped with it.
    """

    name = "report_fetches"
    primary_keys = ("report", "idsite", "period", "period_start", "segment", "params")
    schema = schemas.REPORT_FETCHES
    api_method = ""  # reports what the report streams read: no request
    ledger: ReportLedger

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        assert context is not None
        read = self.ledger.fetched.pop(context["idsite"], [])
        if read:  # the site's report progress in one line (the report streams log at warning level)
            self.log(
                "site %s: %d report periods read (%d reports), %d rows, %d final",
                context["idsite"],
                len(read),
                len({fetched.report for fetched in read}),
                sum(fetched.rows for fetched in read),
                sum(fetched.is_final for fetched in read),
            )
        for fetched in read:
            yield {
                "report": fetched.report,
                "idsite": fetched.idsite,
                "period": fetched.period,
                "period_start": fetched.period_start.isoformat(),
                "segment": fetched.segment,
                "params": fetched.params,
                "rows": fetched.rows,
                "is_final": fetched.is_final,
                "fetched_at": fetched.fetched_at.isoformat(),
            }
