"""What a Meltano run of tap-matomo did, read from its output as it streams by.

Two sources, both meant to be read by machines: the Singer SDK's metrics (`METRIC: {...}`, one JSON
object per line: `record_count` per stream and partition, `http_request_count`), which Meltano relays
from the tap's standard error, and tap-matomo's progress line of each site-local day it finished
(`site 3 2026-12-01: 12 visits, 120 actions emitted`).
"""

from __future__ import annotations

import json
import re
import typing as t
from dataclasses import dataclass, field

_METRIC = "METRIC: "
_DAY_DONE = re.compile(r"\bsite (\d+) (\d{4}-\d{2}-\d{2}): (\d+) visits, (\d+) actions emitted\b")
_ERROR_WORDS = ("error", "failed")


def is_error_line(line: str) -> bool:
    """A line of Meltano's output that reads like an error (the one a failure is reported with)."""
    lowered = line.lower()
    return bool(line.strip()) and any(word in lowered for word in _ERROR_WORDS)


@dataclass
class RunReport:
    """Counts of one run, summed as its output lines arrive (`feed`), and its last error line."""

    records: dict[str, int] = field(default_factory=dict)  # stream -> records emitted
    requests: int = 0
    visits: dict[int, int] = field(default_factory=dict)  # site -> visits emitted
    actions: dict[int, int] = field(default_factory=dict)  # site -> actions emitted
    last_error: str = ""

    def feed(self, line: str) -> None:
        if (start := line.find(_METRIC)) >= 0 and "tap-matomo" in line[:start]:  # not the loader's
            self._metric(line[start + len(_METRIC) :])
        elif match := _DAY_DONE.search(line):
            site = int(match[1])
            self.visits[site] = self.visits.get(site, 0) + int(match[3])
            self.actions[site] = self.actions.get(site, 0) + int(match[4])
        if is_error_line(line):
            self.last_error = line.strip()[:300]

    def _metric(self, text: str) -> None:
        try:
            point, _end = json.JSONDecoder().raw_decode(text)
        except ValueError:
            return
        if not isinstance(point, dict) or point.get("type") != "counter":
            return
        tags = point.get("tags") or {}
        value = int(point.get("value") or 0)
        if point.get("metric") == "record_count" and tags.get("stream"):
            self.records[tags["stream"]] = self.records.get(tags["stream"], 0) + value
        elif point.get("metric") == "http_request_count":
            self.requests += value

    def to_message(self) -> dict[str, t.Any]:
        """A JSON-serialisable summary (Dagster Pipes' custom message)."""
        return {
            "records": self.records,
            "requests": self.requests,
            "visits": {str(k): v for k, v in self.visits.items()},
            "actions": {str(k): v for k, v in self.actions.items()},
        }
