"""What crosses the wire besides Matomo's answers: its error messages and envelope (`MatomoError`), the
faults a test injects (`Fault`), and the log of the requests received (`RecordedRequest`)."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

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
