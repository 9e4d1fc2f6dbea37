"""The streams: `sites` (parent), and per site `visits_actions`, `custom_dimensions`, `goals`."""

from __future__ import annotations

import html
import logging
import typing as t
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from urllib.parse import parse_qsl, urlsplit

import msgspec
from singer_sdk import metrics
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator

from tap_matomo import batch_files, clock, schemas, settings
from tap_matomo.client import (
    MatomoQueryTimeoutError,
    MatomoStream,
    error_message,
    is_query_timeout,
    json_shape,
    matomo_json,
)
from tap_matomo.coerce import integer, number, text
from tap_matomo.compat import override
from tap_matomo.day_fetch import fetch_pages
from tap_matomo.day_ledger import DayLedger
from tap_matomo.paging import VisitDayPaginator, VisitPage
from tap_matomo.periods import archived_by
from tap_matomo.recent_visits import RecentVisits
from tap_matomo.report_specs import ReportMetadata
from tap_matomo.site_run import SiteRun
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
#: How Matomo answers a call to a plugin that is deactivated or not installed.
PLUGIN_MISSING_MESSAGES = ("is not enabled", "does not exist or is not available in the module")


def _flag(value: t.Any) -> bool | None:
    number_value = integer(value)
    return None if number_value is None else bool(number_value)


class SitesStream(MatomoStream):
    """The sites the token can view, narrowed to `site_ids`; parent of the per-site streams."""

    name = "sites"
    api_method = "SitesManager.getSitesWithAtLeastViewAccess"
    primary_keys = ("idsite",)
    schema = schemas.SITES

    @override
    def backoff_max_tries(self) -> int:
        # The first call checks URL and token: a wrong one should fail fast, not after minutes.
        return min(2, super().backoff_max_tries())

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        self._remove_leftover_batch_files()  # the sync's first stream: once per run
        sites = [self._site(raw) for raw in self.request_records(context)]
        wanted = settings.site_ids(self.config)
        if wanted:
            known = {site["idsite"] for site in sites}
            missing = [s for s in wanted if s not in known]
            if missing:
                msg = (
                    f"site_ids: site {', '.join(map(str, missing))} is unknown or token_auth "
                    f"has no view access to it (the token can view: {sorted(known) or 'no site'})"
                )
                raise FatalAPIError(msg)
            sites = [site for site in sites if site["idsite"] in wanted]
        self.log("Sites to extract: %s", ", ".join(f"{s['idsite']} ({s['timezone']})" for s in sites))
        yield from sites

    def _remove_leftover_batch_files(self) -> None:
        if not self.config.get("batch_config"):
            return
        removed = batch_files.remove_leftovers(self.config["batch_config"], self.tap_name)
        if removed:
            age = batch_files.LEFTOVER_AGE
            self.log("Removed %d batch files older than %s that earlier runs left unread", removed, age)

    @staticmethod
    def _site(raw: dict[str, t.Any]) -> dict[str, t.Any]:
        created = text(raw.get("ts_created"))
        return {
            "idsite": integer(raw.get("idsite")),
            "name": text(raw.get("name")),
            "main_url": text(raw.get("main_url")),
            "timezone": text(raw.get("timezone")) or "UTC",
            "currency": text(raw.get("currency")),
            "ecommerce": _flag(raw.get("ecommerce")),
            "sitesearch": _flag(raw.get("sitesearch")),
            "type": text(raw.get("type")),
            "ts_created": (datetime.fromisoformat(created).replace(tzinfo=UTC).isoformat() if created else None),
        }

    @override
    def get_child_context(self, record: dict[str, t.Any], context: Context | None) -> dict[str, t.Any]:
        created = record["ts_created"]
        return {
            "idsite": record["idsite"],
            "timezone": record["timezone"],
            "currency": record["currency"],
            "ecommerce": bool(record["ecommerce"]),
            # the site-local day it was created: no report is asked for before it
            "created_on": local_date(datetime.fromisoformat(created), site_timezone(record["timezone"])).isoformat()
            if created
            else None,
        }


class SiteChildStream(MatomoStream):
    """A stream read once per site; its state and records are keyed by `idsite` alone."""

    parent_stream_type = SitesStream
    state_partitioning_keys = ("idsite",)


class PluginStream(SiteChildStream):
    """A stream served by a Matomo plugin that may be deactivated: then one warning, and the run goes on
    (the plugin is off for every site)."""

    plugin_missing = False

    @override
    def validate_response(self, response: requests.Response) -> None:
        try:
            super().validate_response(response)
        except FatalAPIError:
            if not self.missing_plugin(matomo_json(response)):
                raise

    def missing_plugin(self, body: t.Any) -> bool:
        """Whether `body` says the stream's plugin is off or not installed; said once, as a warning."""
        message = error_message(body) or ""
        if not any(missing in message for missing in PLUGIN_MISSING_MESSAGES):
            return False
        if not self.plugin_missing:
            self.plugin_missing = True
            self.log(
                "%s skipped: Matomo's %s plugin is not available (%s)",
                self.name,
                self.api_method.split(".")[0],
                html.unescape(message),  # Matomo writes "Settings &gt; Plugins"
                level=logging.WARNING,
            )
        return True


class OptionalPluginStream(PluginStream):
    """A plugin's configuration read per site (custom dimensions, goals): nothing when the plugin is off.

    Read once a site-local day (`read_on` in its state partition), on the run that reads the day that
    closed (`report_final_after_hours` after midnight), not hourly: a configuration changes seldom, and the
    reports that read per goal or dimension ask for it themselves.
    """

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        assert context is not None
        state = self.get_context_state(context)
        hours = timedelta(hours=int(self.config["report_final_after_hours"]))
        day = local_date(clock.utc_now() - hours, site_timezone(context["timezone"])).isoformat()
        if state.get("read_on") == day:
            return
        yield from super().get_records(context)
        state["read_on"] = day

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        if self.missing_plugin(matomo_json(response)):
            return
        yield from super().parse_response(response)


class CustomDimensionsStream(OptionalPluginStream):
    """Names and scopes of `dimensionN` (N is per site)."""

    name = "custom_dimensions"
    api_method = "CustomDimensions.getConfiguredCustomDimensions"
    primary_keys = ("idsite", "idcustomdimension")
    schema = schemas.CUSTOM_DIMENSIONS

    @override
    def post_process(self, row: dict[str, t.Any], context: Context | None = None) -> dict[str, t.Any] | None:
        return {
            "idsite": integer(row.get("idsite")),
            "idcustomdimension": integer(row.get("idcustomdimension")),
            "name": text(row.get("name")),
            "scope": text(row.get("scope")),
            "index": integer(row.get("index")),
            "active": _flag(row.get("active")),
            "case_sensitive": _flag(row.get("case_sensitive")),
            "extractions": row.get("extractions") if isinstance(row.get("extractions"), list) else None,
        }


class GoalsStream(OptionalPluginStream):
    """Goal definitions (a list in Matomo 5.0, an object keyed by id elsewhere)."""

    name = "goals"
    api_method = "Goals.getGoals"
    primary_keys = ("idsite", "idgoal")
    schema = schemas.GOALS

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        body = matomo_json(response)
        if isinstance(body, dict) and error_message(body) is None:  # an object keyed by idgoal outside Matomo 5.0
            yield from body.values()
            return
        yield from super().parse_response(response)

    @override
    def post_process(self, row: dict[str, t.Any], context: Context | None = None) -> dict[str, t.Any] | None:
        return {
            "idsite": integer(row.get("idsite")),
            "idgoal": integer(row.get("idgoal")),
            "name": text(row.get("name")),
            "description": text(row.get("description")),
            "match_attribute": text(row.get("match_attribute")),
            "pattern": text(row.get("pattern")),
            "pattern_type": text(row.get("pattern_type")),
            "case_sensitive": _flag(row.get("case_sensitive")),
            "allow_multiple": _flag(row.get("allow_multiple")),
            "revenue": number(row.get("revenue")),
            "deleted": _flag(row.get("deleted")),
            "event_value_as_revenue": _flag(row.get("event_value_as_revenue")),
        }


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
            first_day, last_day = settings.reconcile_window(self.config, today)
            lower = day_start(first_day, tz)
            origin = "reconcile mode: whole closed days"
        elif resume := resume_point(state):
            lower = datetime.fromisoformat(resume) - lookback
            since = "bookmark" if resume == state.get("replication_key_value") else "listed through"
            origin = f"{since} {resume} - {lookback}"
        else:
            # Read here, not through the SDK, which would take a plain date as UTC midnight.
            configured = self.config.get("start_date")
            if configured:
                start = datetime.fromisoformat(configured)
                origin = "start_date"
            else:  # like the Node tool: the last days, from site-local midnight
                days = settings.DEFAULT_START_DAYS
                start = datetime.combine(local_date(clock.utc_now(), tz) - timedelta(days=days), time(0))
                origin = f"default start, {days} days ago"
            lower = start if start.tzinfo else start.replace(tzinfo=tz)  # a date or naive time: site-local
        if not reconcile:
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

    @override
    def request_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The site's days, up to `max_parallel_requests` fetched at once, pages read as they arrive (day_fetch.py)."""
        run = self._require_run()
        parallel = run.days_at_once(int(self.config["max_parallel_requests"]))
        with self.get_http_request_counter() as request_counter:
            request_counter.with_context(context)
            for day, response in fetch_pages(run.days(), partial(self._fetch_day, context), parallel):
                if response is None:
                    run.day_done(day)
                    continue
                request_counter.increment()
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
            send = self.request_decorator(self._page_sender(page))  # retried with backoff
            response = send(self.build_page_request(context, page), context)
            self.update_sync_costs(response.request, response, context)
            paginator.advance(response)  # paging decodes only ids and times: the reader decodes the page
            emit(response)

    def _page_sender(
        self, page: VisitPage
    ) -> t.Callable[[requests.PreparedRequest, Context | None], requests.Response]:
        """Sends one page's request and checks the answer; a query timeout passes while the page can shrink."""

        def send_page(prepared: requests.PreparedRequest, context: Context | None) -> requests.Response:
            response = self.requests_session.send(prepared, timeout=self.timeout, allow_redirects=self.allow_redirects)
            self.log_request_duration(response, context)
            try:
                self.validate_response(response)
            except MatomoQueryTimeoutError:
                if page.smaller() is None:
                    raise  # retried as is with backoff, then the run fails
                # Otherwise the paginator asks for the same visits with a smaller page.
            return response

        return send_page

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


class ReconciledDaysStream(SiteChildStream):
    """Reconcile mode: one record per site-local day whose whole listing was read and emitted.

    Synced after `visits_actions` for the same site, so the loader has the day's visits before it
    hears the day is complete; dbt deletes a day's visits only when the day is here (matomo_erasures).
    """

    name = "reconciled_days"
    primary_keys = ("idsite", "site_day")
    schema = schemas.RECONCILED_DAYS
    api_method = ""  # reports what visits_actions read: no request
    ledger: DayLedger

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        assert context is not None
        for day in self.ledger.complete.get(context["idsite"], []):
            yield {
                "idsite": context["idsite"],
                "site_day": day.site_day.isoformat(),
                "visits_listed": day.visits,
                "actions_listed": day.actions,
                "listed_at": self.ledger.started_at.isoformat(),
            }


#: visits_summary's state: the newest closed day whose totals were fetched once Matomo had archived it.
FINAL_THROUGH = "final_through"


class VisitsSummaryStream(SiteChildStream):
    """Matomo's own daily totals (VisitsSummary.get) of closed site-local days: in an hourly run each day once
    Matomo has archived it, in a reconcile every day it read.

    Not today's (unless `report_include_current_period` asks for current periods): with browser-triggered
    archiving, Matomo's default, asking for today makes Matomo archive today again, for every site on
    every hourly run; and today's totals are not comparable with anything yet.
    """

    name = "visits_summary"
    api_method = "VisitsSummary.get"
    primary_keys = ("idsite", "site_day")
    schema = schemas.VISITS_SUMMARY
    ledger: DayLedger
    _days: list[date]  # the site's days to ask for, set per site before any request

    @override
    def get_new_paginator(self) -> DayListPaginator:
        return DayListPaginator(self._days)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        assert context is not None
        tz = site_timezone(context["timezone"])
        today = local_date(clock.utc_now(), tz)
        read = self.ledger.read.get(context["idsite"], [])
        current = [day for day in read if day >= today] if self.config["report_include_current_period"] else []
        if self.config["mode"] == "incremental":
            closed = self._archived_days(self.get_context_state(context), [d for d in read if d < today], today, tz)
        else:  # a reconcile asks for each of its days, every night: Matomo's totals now are what it compares
            closed = [day for day in read if day < today]
        self._days = closed + current
        if self._days:
            yield from super().get_records(context)

    def _archived_days(self, state: dict[str, t.Any], read: list[date], today: date, tz: t.Any) -> list[date]:
        """The closed days an hourly run asks for: each once, when Matomo has archived it (report_final_after_hours
        after its end; the reconciliation tests only such totals), among those it read and those that closed
        since the last one asked for; not every hour while the site's newest visit is from a closed day."""
        done = date.fromisoformat(state[FINAL_THROUGH]) if state.get(FINAL_THROUGH) else None
        since = done + timedelta(days=1) if done else today
        candidates = set(read) | {since + timedelta(days=n) for n in range((today - since).days)}
        hours, now = int(self.config["report_final_after_hours"]), clock.utc_now()
        ready = sorted(
            day for day in candidates if (done is None or day > done) and archived_by("day", day, tz, hours) <= now
        )
        if ready:
            state[FINAL_THROUGH] = ready[-1].isoformat()
        return ready

    @override
    def get_url_params(self, context: Context | None, next_page_token: date | None) -> dict[str, t.Any]:
        day = next_page_token or self._days[0]
        return {**super().get_url_params(context, next_page_token), "period": "day", "date": day.isoformat()}

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        body = matomo_json(response)
        totals = body if isinstance(body, dict) else {}  # Matomo answers [] for a day without data
        params = dict(parse_qsl(urlsplit(response.request.url or "").query))
        yield {
            "idsite": integer(params.get("idSite")),
            "site_day": params["date"],
            "nb_visits": integer(totals.get("nb_visits")) or 0,
            "nb_actions": integer(totals.get("nb_actions")) or 0,
            "nb_uniq_visitors": integer(totals.get("nb_uniq_visitors")),
            "fetched_at": clock.utc_now().isoformat(),
        }


class DayListPaginator(BaseAPIPaginator[date]):
    """One request per day of a list."""

    def __init__(self, days: list[date]) -> None:
        super().__init__(days[0])  # VisitsSummaryStream asks only when there are days
        self.days = days

    @override
    def get_next(self, response: requests.Response) -> date | None:
        following = self.days.index(self.current_value) + 1
        return self.days[following] if following < len(self.days) else None


class ReportMetadataCall(MatomoStream):
    """`API.getReportMetadata`: which reports a site has, their metrics and types (not a stream of records)."""

    name = "api_report_metadata"  # not a stream of the catalog: only its requests carry this name
    api_method = "API.getReportMetadata"
    schema: t.ClassVar[dict[str, t.Any]] = {"type": "object", "properties": {}}

    @override
    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        return {**super().get_url_params(context, next_page_token), "hideMetricsDoc": 1}

    def report_metadata(self, sites: t.Iterable[dict[str, t.Any]]) -> ReportMetadata:
        """The metadata of one of `sites` of each kind (ecommerce or not): the reports of both."""
        by_kind: dict[bool, dict[str, t.Any]] = {}
        for site in sites:
            by_kind.setdefault(bool(site["ecommerce"]), site)
        metadata = ReportMetadata()
        for site in by_kind.values():
            metadata.add(self.request_records({"idsite": site["idsite"]}))
        return metadata
