"""What a run read of each report, per site: kept by the report streams, reported by `report_fetches`
(one row per report, site, period and parameters), from which the warehouse keeps each period's latest
answer whole, also when a later answer has fewer rows."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field
from datetime import date, datetime

from tap_matomo import schemas
from tap_matomo.compat import override
from tap_matomo.site_streams import SiteChildStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_matomo.reports.periods import Period


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
