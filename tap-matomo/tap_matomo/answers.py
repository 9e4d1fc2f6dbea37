"""Matomo's answers, read: its error envelope (which can come with any HTTP status), JSON bodies decoded
once, a `Retry-After` header; and how a URL or an error is shown without the token or a URL's user info.
"""

from __future__ import annotations

import re
import typing as t
import weakref
from datetime import datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from urllib.parse import urlsplit

import msgspec
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_matomo import clock

if t.TYPE_CHECKING:
    import requests

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


def check(response: requests.Response, what: str, secret: str | None) -> None:
    """Raise what an answer means when it is not a success: Matomo's error envelope can come with any status.
    `what` names the call in messages ("Matomo Live.getLastVisitsDetails for site 1"); a retriable error is
    worth another attempt, a query timeout asks for a smaller page, a refused token stops the run."""
    status = response.status_code
    try:
        body = json_shape(response)
    except ValueError as exc:
        shown = _excerpt(response, secret) or "empty body"
        msg = f"{what}: HTTP {status}, body is not JSON ({shown})"
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
        raise FatalAPIError(f"{what}: HTTP {status} {response.reason}: {_excerpt(response, secret)}")


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


def safe_error(exc: BaseException | None, secret: str | None) -> str:
    """An exception as one line; requests' own messages hold URLs (the token is in the body, but a URL
    may carry user info), redacted all the same."""
    if exc is None:
        return "unknown error"
    return redact(f"{type(exc).__name__}: {exc}".replace("\n", " "), secret)[:300]
