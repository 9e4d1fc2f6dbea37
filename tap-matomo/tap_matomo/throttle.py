"""`max_requests_per_minute`: requests to Matomo spaced evenly, across every stream and thread of a run.

Matomo Cloud documents 200 Live requests a minute per IP; a self-hosted Matomo may have its own
proxy limits. Every attempt waits for its slot, 60/N seconds after the previous one's: a retry
waits its backoff (or a 429's Retry-After), then a slot like any request. The wait happens in the
session's transport adapter, which every request of every stream goes through, whoever sends it
(the SDK's paging loop or a stream's parallel pages).
"""

from __future__ import annotations

import threading
import time
import typing as t

from requests.adapters import HTTPAdapter

from tap_matomo.compat import override

if t.TYPE_CHECKING:
    import requests


class RequestRateLimiter:
    """At most `per_minute` request starts a minute, evenly spaced; None means no limit."""

    def __init__(self, per_minute: int | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until this request may start."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class RateLimitedAdapter(HTTPAdapter):
    """requests' HTTP adapter, each send (each attempt) first waiting for a slot of `limiter`."""

    def __init__(self, limiter: RequestRateLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    @override
    def send(self, request: requests.PreparedRequest, *args: t.Any, **kwargs: t.Any) -> requests.Response:
        self.limiter.wait()
        return super().send(request, *args, **kwargs)
