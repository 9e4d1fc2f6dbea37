"""The base stream for Matomo's HTTP API: POST with the token in the body, response checks, retries; and
`MatomoStream.send`, the one way this tap's own loops send a request.

Matomo's HTTP status is not reliable (most errors come back as 200 with an error envelope), so every body
is parsed and checked (answers.check), whatever its status. Every request goes through the same session
(its transport waits for the run's rate limiter, throttle.py), the same retries with backoff (the SDK's
`request_decorator`), the same checks and the same metrics: the SDK's paging loop sends the requests of
the sites and configuration streams; `send` those of the loops that read several pages at once (a site's
days, raw/day_fetch.py; a report's periods, reports/plan.py).
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import typing as t
from contextlib import contextmanager, suppress
from functools import cached_property
from http import HTTPStatus
from importlib.metadata import version
from urllib.parse import parse_qsl, urlsplit

from singer_sdk import metrics
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import PageContext

from tap_matomo import output
from tap_matomo.answers import check, matomo_json, public_url, retry_after, safe_error
from tap_matomo.compat import override
from tap_matomo.throttle import RateLimitedAdapter, RequestRateLimiter

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    import requests
    from backoff.types import Details
    from singer_sdk.helpers.types import Context


class ReadStoppedError(FatalAPIError):
    """A read stopped because another of its requests failed for good (never the error shown)."""


#: Counters are incremented from the threads that send requests.
_COUNT_LOCK = threading.Lock()


class MatomoStream(RESTStream):
    """Calls `{url}/index.php?module=API&method=...&format=JSON` by POST, `token_auth` in the form body."""

    http_method = "POST"
    path = "/index.php"
    payload_as_json = False
    records_jsonpath = "$[*]"
    #: The API method, e.g. `SitesManager.getSitesWithAtLeastViewAccess`.
    api_method: str
    #: The run's one limiter, shared by every stream (set by the tap; none means no limit).
    rate_limiter: RequestRateLimiter = RequestRateLimiter(None)
    #: The counter of `send`'s requests while `counting_requests` is open.
    _sent_counter: metrics.Counter | None = None

    @override
    def log_sync_costs(self) -> None:
        super().log_sync_costs()
        output.write_held_states()  # the SDK calls this once a sync has ended: its last STATE is written now

    @override
    @property
    def url_base(self) -> str:
        url: str = self.config["url"].rstrip("/")
        return url.removesuffix("/index.php")

    @override
    @property
    def timeout(self) -> int:
        return int(self.config["request_timeout"])

    @override
    @cached_property
    def user_agent(self) -> str:
        return f"tap-matomo/{version('tap-matomo')} (+singer-sdk)"

    @override
    @property
    def requests_session(self) -> requests.Session:
        """The SDK's session, its transport waiting for the run's rate limiter before every attempt."""
        session = super().requests_session
        if not isinstance(session.get_adapter("https://"), RateLimitedAdapter):
            adapter = RateLimitedAdapter(self.rate_limiter)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        return session

    def build_page_request(self, context: Context | None, token: t.Any) -> requests.PreparedRequest:
        """The prepared request for one page, built as the SDK's own paging loop builds it."""
        request = self.get_http_request(page=PageContext(stream_context=context, next_page_token=token))
        body = {"json": request.data} if self.payload_as_json else {"data": request.data}
        return self.build_prepared_request(
            method=request.method, url=request.url, params=request.encode_params(), headers=request.headers, **body
        )

    @contextmanager
    def counting_requests(self, context: Context | None) -> Iterator[None]:
        """While open, the requests `send` makes (from any thread) are counted in the SDK's `http_request_count`
        for `context`, as the SDK's paging loop counts its own."""
        with self.get_http_request_counter() as counter:
            counter.with_context(context)
            self._sent_counter = counter
            try:
                yield
            finally:
                self._sent_counter = None

    def send(
        self,
        context: Context | None,
        token: t.Any,
        *,
        stop: threading.Event | None = None,
        tolerate: tuple[type[Exception], ...] = (),
    ) -> requests.Response:
        """Send the request for `token` (a page, a period) as the SDK's paging loop sends its own, from any thread:
        through the rate-limited session, checked, retried with backoff, timed, counted. `tolerate`: errors of the
        check handed back as an answer (a query timeout, when the page can shrink); `stop`: once set, no further
        attempt is made (another request of the read failed for good)."""

        def attempt(prepared: requests.PreparedRequest, context: Context | None) -> requests.Response:
            if stop is not None and stop.is_set():
                raise ReadStoppedError(self.name)
            response = self.requests_session.send(prepared, timeout=self.timeout, allow_redirects=self.allow_redirects)
            self.log_request_duration(response, context)
            with suppress(*tolerate):  # the caller reads such an answer (it asks again, differently)
                self.validate_response(response)
            return response

        response = self.request_decorator(attempt)(self.build_page_request(context, token), context)
        self.update_sync_costs(response.request, response, context)
        if self._sent_counter is not None:
            with _COUNT_LOCK:
                self._sent_counter.increment()
        return response

    @override
    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        params: dict[str, t.Any] = {"module": "API", "method": self.api_method, "format": "JSON"}
        if context and "idsite" in context:
            params["idSite"] = context["idsite"]
        return params

    @override
    def prepare_request_payload(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        # Matomo 5 rejects "secure only" tokens found in the URL: the body is the only place.
        return {"token_auth": self.config["token_auth"]}

    def _describe(self, response: requests.Response) -> str:
        params = dict(parse_qsl(urlsplit(response.request.url or "").query))
        where = f"site {params['idSite']}" if "idSite" in params else public_url(self.url_base)
        return f"Matomo {params.get('method', self.api_method)} for {where}"

    def log_request_duration(self, response: requests.Response, context: Context | None) -> None:
        """The SDK's `http_request_duration` metric for a request this stream sent itself (the SDK
        writes it only for requests of its own paging loop): same metric, same tags."""
        tags: dict[str, t.Any] = {
            metrics.Tag.STREAM: self.name,
            metrics.Tag.ENDPOINT: self.path,
            metrics.Tag.HTTP_STATUS_CODE: response.status_code,
            metrics.Tag.STATUS: (
                metrics.Status.SUCCEEDED if response.status_code < HTTPStatus.BAD_REQUEST else metrics.Status.FAILED
            ),
        }
        if context:
            tags[metrics.Tag.CONTEXT] = context
        point = metrics.Point(
            "timer", metric=metrics.Metric.HTTP_REQUEST_DURATION, value=response.elapsed.total_seconds(), tags=tags
        )
        metrics.log(self.metrics_logger, point)

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Check status and body: Matomo's error envelope can come with any status (answers.check)."""
        check(response, self._describe(response), self.config["token_auth"])

    def json_list(self, response: requests.Response) -> list[t.Any]:
        """The body, which must be a JSON list (every Matomo method read here answers one)."""
        body = matomo_json(response)
        if not isinstance(body, list):
            msg = f"{self._describe(response)}: expected a JSON list, got {type(body).__name__}"
            raise FatalAPIError(msg)
        return body

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        yield from self.json_list(response)

    # Retries: exponential backoff, Retry-After honoured.

    @override
    def backoff_max_tries(self) -> int:
        return int(self.config["max_retries"]) + 1

    @override
    def backoff_wait_generator(self) -> t.Generator[float, None, None]:
        base = int(self.config["retry_backoff_ms"]) / 1000

        attempts = itertools.count()

        def wait(exception: Exception) -> float:
            response = getattr(exception, "response", None)
            asked = retry_after(response.headers.get("Retry-After") if response is not None else None)
            if asked is not None:
                return min(asked, float(self.config["max_retry_after_seconds"]))
            return float(base * 2 ** next(attempts))

        return self.backoff_runtime(value=wait)

    @override
    def backoff_jitter(self, value: float) -> float:
        return value + random.uniform(0, value / 4)  # noqa: S311 - jitter, not crypto

    @override
    def backoff_handler(self, details: Details) -> None:
        error = details.get("exception")
        self.log(
            "Retrying in %.1f s (try %d of %d): %s",
            details.get("wait", 0),
            details.get("tries", 0),
            self.backoff_max_tries(),
            safe_error(error if isinstance(error, BaseException) else None, self.config["token_auth"]),
            level=logging.WARNING,
        )
