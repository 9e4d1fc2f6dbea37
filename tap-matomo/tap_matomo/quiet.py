"""Two lines the SDK logs that are not problems for this tap, kept out of a run's log.

A successful run should have no WARNING or ERROR line, and a failed one only the line that says why:

- "Stream is assumed to be unsorted, progress is not resumable if interrupted" (WARNING, once per site and
  run): `visits_actions` is unsorted (visits come by last action, their actions are older), so the SDK
  keeps no mid-site progress. That is by design: a site's bookmark is written once its window is read,
  and an interrupted run starts the site again from its previous bookmark (with the lookback).
- "An unhandled error occurred while syncing '<stream>'" (ERROR): the SDK's line before it re-raises a
  stream's failure. For the failures `tap_matomo.tap.main` reports in one clear line (a wrong token, an
  unreachable server...), it only precedes that line; any other failure keeps it.
"""

from __future__ import annotations

import logging
import sys

from tap_matomo.compat import override

_UNSORTED = "Stream is assumed to be unsorted"
_UNHANDLED = "An unhandled error occurred while syncing"


class QuietWhenExpected(logging.Filter):
    """Drops the two lines above (the second only while an expected failure is being handled)."""

    def __init__(self, expected: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.expected = expected

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith(_UNSORTED):
            return False
        return not (message.startswith(_UNHANDLED) and isinstance(sys.exc_info()[1], self.expected))


def quiet(logger: logging.Logger, expected: tuple[type[BaseException], ...]) -> None:
    """Install the filter on `logger` once (filters apply to the records a logger itself logs)."""
    if not any(isinstance(f, QuietWhenExpected) for f in logger.filters):
        logger.addFilter(QuietWhenExpected(expected))
