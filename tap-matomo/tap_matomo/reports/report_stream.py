"""Matomo's reports as streams: every row of a report, per site, period and period start.

What a run reads of each report for a site, and when, is in reports/schedule.py; how it asks, in
reports/requests.py.

A row is final (`is_final`) when its period had ended in the site's timezone and Matomo answered at
least `report_final_after_hours` after that end, and the answer was not empty, or was empty while
VisitsSummary.get (read first, in the default set) had visits for the period: Matomo answers a period
it has not archived with zeros or `[]`, never an error, and a zero must not pass for a final number,
but an archived period without, say, social referrers has none. Final means "Matomo's archive, as
read": a re-archive (late hits, an erasure, an invalidation) can still change it, which the trailing
window and the nightly reconcile read again. What each run read goes to `report_fetches` (reports/ledger.py).
Rows are keyed by their position in the answer (`row_index`): Matomo's labels are not unique.
"""

from __future__ import annotations

import functools
import html
import threading
import typing as t
from dataclasses import replace
from datetime import date, datetime

from singer_sdk.exceptions import FatalAPIError

from tap_matomo import clock
from tap_matomo.answers import error_message, matomo_json
from tap_matomo.coerce import integer
from tap_matomo.compat import override
from tap_matomo.reports.ledger import Fetched, ReportLedger
from tap_matomo.reports.periods import Period, PeriodWindow, period_end, period_start
from tap_matomo.reports.plan import at_once, in_order, spread
from tap_matomo.reports.requests import BatchAnswers, ReportRequest, SiteCall, archive_of, request_params
from tap_matomo.reports.rows import is_empty, map_row, rows_of
from tap_matomo.reports.schedule import SiteSchedule, bookmark, window_days
from tap_matomo.reports.specs import KEY, ReportMetadata, ReportSpec, declared_metrics, report_schema
from tap_matomo.site_streams import PluginStream
from tap_matomo.timezones import local_date, site_timezone

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

PERIODS_KEY = "periods"
#: Each period type's starts to read, and the period types whose trailing window is among them.
Plan = tuple[dict[Period, set[date]], set[Period]]


class ReportStream(PluginStream):
    """One Matomo report (a `ReportSpec`): its rows for every period the site's state says to read."""

    primary_keys = KEY
    # No SDK replication key: the per-period state below is the one bookmark (an SDK one beside it would
    # be a second, which a reshard could pick instead).
    ledger: ReportLedger
    _stopping: threading.Event  # set when a read of answers ends: the requests still in flight stop

    def __init__(self, tap: Tap, spec: ReportSpec, metadata: ReportMetadata) -> None:
        self.spec = spec
        self.name = spec.name
        self.api_method = spec.method
        super().__init__(tap, schema=report_schema(spec, metadata), name=spec.name)

    @functools.cached_property
    def declared(self) -> frozenset[str]:
        """The metrics with a column, read once the catalog (if any) has been applied."""
        return declared_metrics(self.effective_schema)

    @functools.cached_property
    def reads_totals(self) -> bool:
        """Whether this stream is VisitsSummary.get of the whole site: the totals that tell a changed day."""
        return self.spec.method == "VisitsSummary.get" and not self.spec.segment and not self.spec.params

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        assert context is not None
        if self.plugin_missing or (self.spec.ecommerce_only and not context.get("ecommerce")):
            return
        with self.counting_requests(context):  # the SDK's http_request_count, as for its own paging
            self._stopping = threading.Event()
            yield from self._site_records(context)

    def _site_records(self, context: Context) -> t.Iterator[dict[str, t.Any]]:
        schedule = SiteSchedule(self.config, context, site_timezone(context["timezone"]))
        today = local_date(clock.utc_now(), schedule.tz)
        bookmarks: dict[str, dict[str, t.Any]] = self.get_context_state(context).setdefault(PERIODS_KEY, {})
        windows = {period: PeriodWindow(period, today) for period in self.spec.periods}
        starts_of, refreshed = self._plan(schedule, windows, bookmarks)
        changed = self.ledger.changed.setdefault(context["idsite"], set())
        # The site's goals or dimensions are asked for only when there is a period to read.
        expansions = self._expansions(context) if any(starts_of.values()) or changed else []
        fetched_now: dict[Period, list[date]] = {period: [] for period in windows}
        totals: dict[str, list[int]] = dict(bookmarks.get("day", {}).get("totals", {}))
        # Days first: the totals stream finds there which days Matomo changed, and every stream reads the
        # week, month and year of those days after them.
        for periods in ([p for p in windows if p == "day"], [p for p in windows if p != "day"]):
            for period in periods:
                containing = {period_start(period, day) for day in changed}
                starts_of[period] |= schedule.ready(windows[period], containing)
            if not expansions:  # a site without goals (or dimensions): nothing to read, its periods are done
                for period in periods:
                    fetched_now[period] = sorted(starts_of[period])
            plan = [
                ReportRequest(p, start, params)
                for p in periods
                for start in sorted(starts_of[p])
                for params in expansions
            ]
            for request, rows, fetched_at in self._answers(context, spread(plan, archive_of)):
                self._note_visits(context, request, rows, totals, changed)
                final = self._is_final(context, request, rows, fetched_at, windows[request.period], schedule)
                self._note_fetched(context, request, len(rows), final, fetched_at)
                fetched_now[request.period].append(request.start)
                yield from self._records(context, request, rows, final, fetched_at)
        if not self.plugin_missing:  # else nothing was read: the bookmarks stay
            self._save_bookmarks(bookmarks, windows, fetched_now, refreshed, totals)

    def _plan(
        self, schedule: SiteSchedule, windows: dict[Period, PeriodWindow], bookmarks: dict[str, dict[str, t.Any]]
    ) -> Plan:
        """The period starts to read before any day is found changed: new closed periods, trailing windows, and
        (once a site-local day, by the totals stream) the days the reconcile reaches."""
        starts_of: dict[Period, set[date]] = {}
        refreshed: set[Period] = set()
        for period, window in windows.items():
            starts, reads_trailing = schedule.starts(window, bookmarks.get(period, {}))
            starts_of[period] = set(starts)
            if reads_trailing:
                refreshed.add(period)
        if self.reads_totals and "day" in refreshed:
            starts_of["day"] |= schedule.ready(windows["day"], window_days(self.config, windows["day"]))
        return starts_of, refreshed

    def _save_bookmarks(
        self,
        bookmarks: dict[str, dict[str, t.Any]],
        windows: dict[Period, PeriodWindow],
        fetched_now: dict[Period, list[date]],
        refreshed: set[Period],
        totals: dict[str, list[int]],
    ) -> None:
        for period, window in windows.items():
            bookmarks[period] = bookmark(
                window, bookmarks.get(period, {}), fetched_now[period], refreshed=period in refreshed
            )
        if self.reads_totals and "day" in windows:
            keep = {day.isoformat() for day in window_days(self.config, windows["day"])}
            bookmarks["day"]["totals"] = {day: pair for day, pair in sorted(totals.items()) if day in keep}

    def _note_fetched(
        self, context: Context, request: ReportRequest, rows: int, final: bool, fetched_at: datetime
    ) -> None:
        """What was read, for `report_fetches`."""
        site, segment = context["idsite"], self.spec.segment
        fetched = Fetched(
            self.name, site, request.period, request.start, segment, request.params_text, rows, final, fetched_at
        )
        self.ledger.fetched.setdefault(context["idsite"], []).append(fetched)

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

    def _is_final(
        self,
        context: Context,
        request: ReportRequest,
        rows: list[dict[str, t.Any]],
        fetched_at: datetime,
        window: PeriodWindow,
        schedule: SiteSchedule,
    ) -> bool:
        """Whether the answer is Matomo's archive of a closed period: read after `_archived_by`, and not an
        empty answer unless VisitsSummary.get had visits for the period (then empty is the answer)."""
        if request.start > window.last_closed or fetched_at < schedule.archived_by(request.period, request.start):
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
        for batch, (answers, fetched_at) in in_order(
            batches, functools.partial(self._fetch, context), parallel, self._stopping
        ):
            for request, rows in zip(batch, answers, strict=True):
                if rows is None:  # the report's plugin is not available: said once, nothing more asked
                    return
                yield request, rows, fetched_at

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
        return matomo_json(self.send(context, token, stop=self._stopping))

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
        if context is None or next_page_token is None:
            msg = f"{self.name} is read per site, period by period: no period to ask for"
            raise RuntimeError(msg)
        return request_params(self.spec, self.config, context, next_page_token)

    def _records(
        self, context: Context, request: ReportRequest, rows: list[dict[str, t.Any]], final: bool, fetched_at: datetime
    ) -> t.Iterator[dict[str, t.Any]]:
        """An answer's records: the request's keys (made once per answer), each row's position in it (from 1, as
        `row_index`) and fields, whether final and when read."""
        keys = {
            "idsite": context["idsite"],
            "period": request.period,
            "period_start": request.start.isoformat(),
            "period_end": period_end(request.period, request.start).isoformat(),
            "segment": self.spec.segment,
            "params": request.params_text,
        }
        read = {"is_final": final, "fetched_at": fetched_at.isoformat()}
        for index, row in enumerate(rows, 1):
            yield {**keys, "row_index": index, **map_row(row, self.declared), **read}
