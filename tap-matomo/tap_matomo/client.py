"""The base stream for Matomo's HTTP API: POST with the token in the body, response checks, retries.

Matomo's HTTP status is not reliable (most errors come back as 200 with an error envelope),
so every body is parsed and checked here, whatever its status.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
import typing as t
import weakref
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import cached_property
from http import HTTPStatus
from importlib.metadata import version
from urllib.parse import parse_qsl, urlsplit

import msgspec
import requests
from singer_sdk import metrics
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import PageContext

from tap_matomo import clock, output
from tap_matomo.compat import override
from tap_matomo.throttle import RateLimitedAdapter, RequestRateLimiter

if t.TYPE_CHECKING:
    from backoff.types import Details
    from singer_sdk.helpers.types import Context

QUERY_TIMEOUT_MESSAGE = "Could not run the query in time"
_AUTH_MESSAGES = ("Unable to authenticate", "requires 'view' access", "token_auth")
_BODY_EXCERPT = 160


class MatomoAuthError(FatalAPIError):
    """Matomo refused the token (bad, expired, or without view access to a site)."""


class MatomoQueryTimeoutError(RetriableAPIError):
    """Matomo hit live_query_max_execution_time: retried with a smaller page."""


def _is_transient(status: int) -> bool:
    """Statuses worth another try: the server's errors and rate limiting."""
    return status >= HTTPStatus.INTERNAL_SERVER_ERROR or status == HTTPStatus.TOO_MANY_REQUESTS


_USER_INFO = re.compile(r"(?<=//)[^/@\s]+@")


def public_url(url: str) -> str:
    """`scheme://host[:port]` of a URL, for messages: never its user info (a password may sit there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def redact(text: str, secret: str | None) -> str:
    """`text` without the token and without any URL's user info, fit for a log line or an error."""
    if secret:
        text = text.replace(secret, "***")
    return _USER_INFO.sub("***@", text)


def _excerpt(response: requests.Response, secret: str | None) -> str:
    """The start of a body that is not JSON (an HTML error page may echo the request: redacted)."""
    body = redact(response.text.strip().replace("\n", " "), secret)
    return body[:_BODY_EXCERPT] + ("..." if len(body) > _BODY_EXCERPT else "")


def error_message(body: t.Any) -> str | None:
    """The message of Matomo's `{"result": "error"}` envelope, None for any other body."""
    if isinstance(body, dict) and body.get("result") == "error":
        return str(body.get("message", "")).strip()
    return None


def is_query_timeout(body: t.Any) -> bool:
    """Whether Matomo answered "Could not run the query in time" (live_query_max_execution_time)."""
    return QUERY_TIMEOUT_MESSAGE in (error_message(body) or "")


_decoded: weakref.WeakKeyDictionary[requests.Response, t.Any] = weakref.WeakKeyDictionary()


def matomo_json(response: requests.Response) -> t.Any:
    """The decoded body, parsed once per response; validation and paging read less of it (`json_shape`,
    paging.visit_keys). msgspec decodes a page of visits about four times faster than
    `response.json()`; its errors are ValueErrors, as requests' are.
    """
    if response not in _decoded:
        _decoded[response] = msgspec.json.decode(response.content)
    return _decoded[response]


#: A body's shape without building its list items: an object decoded, a list left as raw items.
_SHAPE = msgspec.json.Decoder(list[msgspec.Raw] | dict[str, t.Any])


def json_shape(response: requests.Response) -> list[msgspec.Raw] | dict[str, t.Any]:
    """The body checked as JSON, an object decoded (Matomo's error envelope is one), a list's items
    left undecoded: a fraction of a full decode for a page of visits. ValueError when not JSON."""
    return _SHAPE.decode(response.content)


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
        """Check status and body: Matomo's error envelope can come with any status."""
        status = response.status_code
        what = self._describe(response)
        try:
            body = json_shape(response)
        except ValueError as exc:
            excerpt = _excerpt(response, self.config["token_auth"]) or "empty body"
            msg = f"{what}: HTTP {status}, body is not JSON ({excerpt})"
            if status == HTTPStatus.OK or _is_transient(status):
                # A truncated or garbled answer: worth another try.
                raise RetriableAPIError(msg, response) from exc
            raise FatalAPIError(msg) from exc

        message = error_message(body)
        if message is not None:
            if QUERY_TIMEOUT_MESSAGE in message:
                raise MatomoQueryTimeoutError(f"{what}: {message}", response)
            if status == HTTPStatus.UNAUTHORIZED or any(m in message for m in _AUTH_MESSAGES):
                msg = (
                    f"{what}: Matomo rejected token_auth (HTTP {status}): {message} "
                    "Check token_auth and that its user has view access to the site."
                )
                raise MatomoAuthError(msg)
            if _is_transient(status):
                raise RetriableAPIError(f"{what}: HTTP {status}: {message}", response)
            raise FatalAPIError(f"{what}: Matomo error (HTTP {status}): {message}")

        if _is_transient(status):
            raise RetriableAPIError(f"{what}: HTTP {status} {response.reason}", response)
        if status >= HTTPStatus.BAD_REQUEST:
            excerpt = _excerpt(response, self.config["token_auth"])
            raise FatalAPIError(f"{what}: HTTP {status} {response.reason}: {excerpt}")

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
            _safe_error(error if isinstance(error, BaseException) else None, self.config["token_auth"]),
            level=logging.WARNING,
        )


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: a number of seconds or an HTTP date (RFC 9110);
    None when absent or unreadable (the usual backoff applies)."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT
        return None
    return max(0.0, (when - (now or clock.utc_now())).total_seconds())


def _safe_error(exc: BaseException | None, secret: str | None) -> str:
    """An exception as one line; requests' own messages hold URLs (the token is in the body, but a URL
    may carry user info), redacted all the same."""
    if exc is None:
        return "unknown error"
    return redact(f"{type(exc).__name__}: {exc}".replace("\n", " "), secret)[:300]
