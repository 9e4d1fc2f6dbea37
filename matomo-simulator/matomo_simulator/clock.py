"""The simulator's "now": the real time, or the one `MATOMO_NOW` names, read as tap-matomo reads it.

The format is tap-matomo's (tap_matomo/clock.py): an ISO 8601 instant with its offset, optionally
followed by `@` and the real Unix time it was set at (then the clock runs on from it). The simulator
has no dependency on the tap, so it reads the variable itself; tests/test_clock.py checks that both
read it alike.
"""

from __future__ import annotations

import os
import time
from datetime import datetime


def now() -> float:
    """The current instant in Unix seconds."""
    value = os.environ.get("MATOMO_NOW", "").strip()
    if not value:
        return time.time()
    instant, _, anchor = value.partition("@")
    moment = datetime.fromisoformat(instant).timestamp()
    return moment + (time.time() - float(anchor)) if anchor else moment
