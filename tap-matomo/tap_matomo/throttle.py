"""`max_requests_per_minute`: requests to Matomo spaced evenly, across every stream and thread of a run.

Matomo Cloud documents 200 Live requests a minute per IP; a self-hosted Matomo may have its own
proxy limits. Each request waits for its slot, 60/N seconds after the previous one's; retries of
a failed request wait their backoff instead (and a 429's Retry-After), not a slot.
"""

from __future__ import annotations

import threading
import time


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
