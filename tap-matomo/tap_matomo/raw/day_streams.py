"""The streams about whole days of the raw log: `reconciled_days` (the days a reconcile read whole, which
the warehouse may then clean of erased visits) and `visits_summary` (Matomo's own totals of the days read,
which the warehouse's reconciliation compares with the raw log's)."""

from __future__ import annotations

import typing as t
from datetime import date, timedelta
from urllib.parse import parse_qsl, urlsplit

from singer_sdk.pagination import BaseAPIPaginator

from tap_matomo import clock, schemas
from tap_matomo.answers import matomo_json
from tap_matomo.coerce import integer
from tap_matomo.compat import override
from tap_matomo.raw.day_ledger import DayLedger
from tap_matomo.site_streams import SiteChildStream
from tap_matomo.timezones import day_archived_by, local_date, site_timezone

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context


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
            day for day in candidates if (done is None or day > done) and day_archived_by(day, tz, hours) <= now
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
