"""What a report stream asks Matomo for: a period of the report (with its expanded parameters, from an
offset), several at once in one `API.getBulkRequest`, or a call about the site (its goals).

Requests go up to `max_parallel_requests` at once, never two for one period (reports/plan.py);
`report_bulk_size` > 1 asks for that many periods in one `API.getBulkRequest`; a report longer than
`report_page_size` rows is paged with `filter_limit`/`filter_offset` (archives do not change between
pages, unlike the visitor log).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlencode

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_matomo.reports.periods import Period
    from tap_matomo.reports.specs import ReportSpec

#: What a stream reads of a batch of requests: each request's rows (None: the report's plugin is off), and when.
BatchAnswers = tuple[list[list[dict[str, t.Any]] | None], datetime]


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
    stream's): a period; requests in flight at once name different ones (reports/plan.py)."""
    return request.period, request.start


@dataclass(frozen=True)
class SiteCall:
    """A call about the site itself (its goals, its custom dimensions), which a report read per goal needs."""

    method: str


def report_params(
    spec: ReportSpec, config: t.Mapping[str, t.Any], context: Context, request: ReportRequest
) -> dict[str, t.Any]:
    """The API parameters of one request of a report: flat rows, raw metric values, a page of rows."""
    params: dict[str, t.Any] = {
        "method": spec.method,
        "idSite": context["idsite"],
        "period": request.period,
        "date": request.start.isoformat(),
        "flat": 1,
        "format_metrics": 0,
        "filter_limit": int(config["report_page_size"]),
        **dict(request.params),
    }
    if request.offset:
        params["filter_offset"] = request.offset
    if spec.segment:
        params["segment"] = spec.segment
    return params


def request_params(
    spec: ReportSpec,
    config: t.Mapping[str, t.Any],
    context: Context,
    token: ReportRequest | list[ReportRequest] | SiteCall,
) -> dict[str, t.Any]:
    """The API parameters of what a report stream asks for: a period, a bulk of them, or a call about the site."""
    api = {"module": "API", "format": "JSON"}
    if isinstance(token, SiteCall):
        return {**api, "method": token.method, "idSite": context["idsite"]}
    if isinstance(token, list):
        urls = {f"urls[{n}]": urlencode(report_params(spec, config, context, r)) for n, r in enumerate(token)}
        return {**api, "method": "API.getBulkRequest", **urls}
    return {**api, **report_params(spec, config, context, token)}
