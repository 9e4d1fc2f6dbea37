"""`visits_actions`: one record per action of every visit, with its visit's fields, read one site-local day
at a time (raw/site_run.py holds what a site's run knows; raw/day_fetch.py reads its days at once)."""

from __future__ import annotations

import typing as t
from datetime import UTC, date, datetime, time, timedelta
from functools import partial

import msgspec
from singer_sdk import metrics
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_matomo import clock, schemas, settings
from tap_matomo.answers import MatomoQueryTimeoutError, is_query_timeout, json_shape
from tap_matomo.compat import override
from tap_matomo.raw import settings as raw_settings
from tap_matomo.raw.day_fetch import fetch_pages
from tap_matomo.raw.day_ledger import DayLedger
from tap_matomo.raw.paging import VisitDayPaginator, VisitPage
from tap_matomo.raw.recent_visits import RecentVisits
from tap_matomo.raw.site_run import SiteRun
from tap_matomo.site_streams import SiteChildStream
from tap_matomo.timezones import day_start, local_date, site_timezone

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

RECENT_VISITS_KEY = "recent_visits"
#: visits_actions' state beside the SDK's bookmark: the instant through which the site's Live log was read
#: whole (the last incremental run's start), which moves on when the site has no new visit.
LISTED_THROUGH_KEY = "listed_through"
#: The tag of the `record_count` metric that counts a site's visits (not records) of a run.
COUNT_OF = "count_of"


class VisitsActionsStream(SiteChildStream):
    """One record per action of every visit, read one site-local day at a time."""

    name = "visits_actions"
    api_method = "Live.getLastVisitsDetails"
    primary_keys = ("action_id",)
    replication_key = "action_timestamp"
    is_sorted = False  # visits come by last action; their actions are older
    schema = schemas.VISITS_ACTIONS
    # records.py builds every value with its schema type (tests validate records against the
    # schema): the SDK's per-value conformance pass would double the cost of a record.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    _run: SiteRun | None = None
    ledger: DayLedger  # set by the tap, shared with the streams that report the days read

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        assert context is not None
        self._run = run = self._start_site_run(context)
        if run.first_day > run.last_day:
            self.log("%s: nothing to read (window starts %s, after %s)", run.label, run.first_day, run.last_day)
            return
        self.ledger.read[run.site["idsite"]] = run.days()
        yield from super().get_records(context)
        if run.whole_days:  # a reconcile run leaves the hourly runs' digests alone
            self.ledger.complete[run.site["idsite"]] = sorted(run.complete_days, key=lambda d: d.site_day)
        else:
            state = self.get_context_state(context)
            if run.last_day >= local_date(datetime.fromtimestamp(run.started_at, UTC), run.tz):  # read up to now
                state[LISTED_THROUGH_KEY] = datetime.fromtimestamp(run.started_at, UTC).isoformat()
            state[RECENT_VISITS_KEY] = run.recent_visits_to_keep(resume_point(state))
        self._count_visits(context, run.visits_emitted)
        self.log(
            "%s: %d visits, %d actions emitted; %d unchanged visits skipped",
            run.label,
            run.visits_emitted,
            run.actions_emitted,
            run.visits_unchanged,
        )

    def _count_visits(self, context: Context, visits: int) -> None:
        """The site's visits emitted, as the SDK's `record_count` metric tagged `count_of: visits` (its actions
        are the stream's own record_count for the site's context): what an orchestrator reads of a run
        (orchestrate/run_report.py), a tagged metric rather than a log line's wording."""
        tags = {metrics.Tag.STREAM: self.name, metrics.Tag.CONTEXT: {"idsite": context["idsite"]}, COUNT_OF: "visits"}
        metrics.log(self.metrics_logger, metrics.Point("counter", metrics.Metric.RECORD_COUNT, visits, tags))

    def _start_site_run(self, context: Context) -> SiteRun:
        tz = site_timezone(context["timezone"])
        state = self.get_context_state(context)
        lookback = timedelta(minutes=int(self.config["lookback_minutes"]))
        today = local_date(clock.utc_now(), tz)
        reconcile = self.config["mode"] == "reconcile"
        if reconcile:  # whole closed days, every visit emitted again whatever the bookmark
            first_day, last_day = raw_settings.reconcile_window(self.config, today)
            lower, origin = day_start(first_day, tz), "reconcile mode: whole closed days"
        else:
            lower, origin = self._lower_bound(state, lookback, tz)
            end = self.config.get("end_date")
            first_day, last_day = local_date(lower, tz), min(date.fromisoformat(end[:10]), today) if end else today
        run = SiteRun(
            site=dict(context),
            tz=tz,
            lower_bound=int(lower.timestamp()),
            first_day=first_day,
            last_day=last_day,
            lookback_seconds=int(lookback.total_seconds()),
            recent_visits=RecentVisits() if reconcile else RecentVisits.decode(state.get(RECENT_VISITS_KEY)),
            include_ip=bool(self.config["include_visitor_ip"]),
            logger=self.logger,
            started_at=int(clock.utc_now().timestamp()),
            page_limit=int(self.config["page_size"]),
            whole_days=reconcile,
        )
        self.log(
            "%s: visits whose last action is after %s (%s), days %s to %s",
            run.label,
            lower.isoformat(),
            origin,
            run.first_day,
            run.last_day,
        )
        return run

    def _lower_bound(self, state: dict[str, t.Any], lookback: timedelta, tz: t.Any) -> tuple[datetime, str]:
        """An incremental run reads the visits whose last action is after this instant; and why that one."""
        if resume := resume_point(state):
            since = "bookmark" if resume == state.get("replication_key_value") else "listed through"
            return datetime.fromisoformat(resume) - lookback, f"{since} {resume} - {lookback}"
        # Read here, not through the SDK, which would take a plain date as UTC midnight.
        configured = self.config.get("start_date")
        if configured:
            start, origin = datetime.fromisoformat(configured), "start_date"
        else:  # like the Node tool: the last days, from site-local midnight
            days = settings.DEFAULT_START_DAYS
            start = datetime.combine(local_date(clock.utc_now(), tz) - timedelta(days=days), time(0))
            origin = f"default start, {days} days ago"
        return (start if start.tzinfo else start.replace(tzinfo=tz)), origin  # a date or naive time: site-local

    @override
    def request_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The site's days, up to `max_parallel_requests` fetched at once, pages read as they arrive (day_fetch.py)."""
        run = self._require_run()
        parallel = run.days_at_once(int(self.config["max_parallel_requests"]))
        with self.counting_requests(context):
            for day, response in fetch_pages(run.days(), partial(self._fetch_day, context), parallel):
                if response is None:
                    run.day_done(day)
                    continue
                yield from run.records_of_page(self._visits_of(response), day)

    def _visits_of(self, response: requests.Response) -> t.Iterator[t.Any]:
        """A page's visits decoded one at a time: a whole decoded page is five times its JSON."""
        body = json_shape(response)
        if isinstance(body, dict):
            if is_query_timeout(body):
                return  # let through while the page could shrink: the paginator asked again
            self.json_list(response)  # an object where a list belongs: fails with its one-line message
            return
        for visit in body:
            yield msgspec.json.decode(visit)

    def _fetch_day(
        self,
        context: Context | None,
        day: date,
        emit: t.Callable[[requests.Response], None],
        wait_for_earlier_days: t.Callable[[], bool],
    ) -> None:
        """Page through one day (in a worker thread), handing each answer to `emit`; the window's last
        day, read while earlier days were, then reads the visits that moved into it (day_fetch.py)."""
        run = self._require_run()
        self._fetch_pages_from(context, run.first_page(day), emit)
        if wait_for_earlier_days():
            self._fetch_pages_from(context, run.moved_in_page(day), emit)

    def _fetch_pages_from(
        self, context: Context | None, first: VisitPage, emit: t.Callable[[requests.Response], None]
    ) -> None:
        """Page through a day from `first` to its end."""
        run = self._require_run()
        paginator = VisitDayPaginator(first, on_shrink=run.shrink_pages, logger=self.logger)
        while not paginator.finished:
            page = paginator.current_value
            # A query timeout is let through while the page can shrink: the paginator then asks for the same
            # visits with a smaller page; at the smallest, it is retried as is with backoff, then the run fails.
            shrinkable = (MatomoQueryTimeoutError,) if page.smaller() is not None else ()
            response = self.send(context, page, tolerate=shrinkable)
            paginator.advance(response)  # paging decodes only ids and times: the reader decodes the page
            emit(response)

    @override
    def get_url_params(self, context: Context | None, next_page_token: VisitPage | None) -> dict[str, t.Any]:
        page = next_page_token  # request_records always asks for a page
        if page is None:
            msg = "visits_actions is read page by page: no page to ask for"
            raise RuntimeError(msg)
        return {
            **super().get_url_params(context, next_page_token),
            "period": "day",
            "date": page.day.isoformat(),
            "filter_sort_order": "asc",
            "filter_limit": page.limit,
            "filter_offset": page.offset,
            "minTimestamp": page.min_timestamp,
        }

    def _require_run(self) -> SiteRun:
        if self._run is None:
            msg = "visits_actions is read per site: no site run is active"
            raise RuntimeError(msg)
        return self._run


def resume_point(state: t.Mapping[str, t.Any]) -> str | None:
    """Where a site's next incremental run reads from (minus the lookback): its bookmark, the newest action
    emitted, or the instant through which its Live log was read whole if later. A site without new visits
    reads from its last run then, not from its last visit: one more day every day it stays idle otherwise."""
    points = [point for point in (state.get("replication_key_value"), state.get(LISTED_THROUGH_KEY)) if point]
    return max(points, key=datetime.fromisoformat) if points else None
