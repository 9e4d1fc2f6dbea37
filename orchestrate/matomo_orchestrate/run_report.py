"""What a Meltano run of tap-matomo did, read from its log as it streams by.

The run is started with `meltano --log-format=json`: each line of Meltano's log is then one JSON
object, and the Singer SDK's metrics keep their tags (`record_count` per stream, `http_request_count`),
which Meltano's console format drops. Each line is read for the counts and written back for people
(`render`). Per site, the actions are the tap's `record_count` of `visits_actions` for the site's
context, and the visits its `record_count` tagged `count_of: visits` (tap-matomo's own metric of a
site's visits): metrics with tags, a contract, never the wording of a log line.
"""

from __future__ import annotations

import json
import typing as t
from dataclasses import dataclass, field

_ERROR_WORDS = ("error", "failed")
#: Fields of Meltano's JSON log lines that are context, not message: not repeated in a rendered line.
_CONTEXT = frozenset(
    {"stdio", "consumer", "producer", "string_id", "cmd_type", "job_name", "pid", "thread_name", "app_name", "name"}
    | {"plugin_logger", "event", "run_id", "level", "timestamp", "_logger", "_name", "metric_info", "state_id"}
)
TAP = "tap-matomo"


def is_error_line(line: str) -> bool:
    """A line of Meltano's output that reads like an error (the one a failure is reported with)."""
    lowered = line.lower()
    return bool(line.strip()) and any(word in lowered for word in _ERROR_WORDS)


def render(entry: dict[str, t.Any]) -> str:
    """A JSON log line as Meltano's console would show it, with a metric's stream."""
    text = str(entry.get("event", ""))
    metric = entry.get("metric_info")
    if isinstance(metric, dict):
        stream = (metric.get("tags") or {}).get("stream")
        text += f" {metric.get('metric')}={metric.get('value')}" + (f" stream={stream}" if stream else "")
    extra = " ".join(f"{key}={value}" for key, value in entry.items() if key not in _CONTEXT)
    source = entry.get("string_id") or "meltano"
    return f"{entry.get('timestamp', '')} [{entry.get('level', '')}] {source} {text}{' ' + extra if extra else ''}"


@dataclass
class RunReport:
    """Counts of one run, summed as its log lines arrive (`feed`), and the line that says why it failed."""

    records: dict[str, int] = field(default_factory=dict)  # stream -> records emitted
    requests: int = 0
    visits: dict[int, int] = field(default_factory=dict)  # site -> visits emitted
    actions: dict[int, int] = field(default_factory=dict)  # site -> actions emitted
    last_error: str = ""
    plugin_error: str = ""  # the last error a plugin logged (the tap's own one line), before Meltano's summary

    @property
    def error(self) -> str:
        """The line that says why the run failed: the plugin's own error, else the last error-like line."""
        return self.plugin_error or self.last_error

    def feed(self, line: str) -> str:
        """Reads one line of the log; returns it as people read it."""
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):  # not Meltano's log (a plugin's stray print): as it is
            text = line.rstrip("\n")
        else:
            text = render(entry)
            if entry.get("string_id") and entry.get("level") == "error":
                self.plugin_error = text.strip()[:300]
            if entry.get("string_id") == TAP:  # the loader's metrics count what it wrote, not the tap
                self._metric(entry.get("metric_info"))
        if is_error_line(text):
            self.last_error = text.strip()[:300]
        return text

    def _metric(self, point: t.Any) -> None:
        if not isinstance(point, dict) or point.get("type") != "counter":
            return
        tags = point.get("tags") or {}
        value = int(point.get("value") or 0)
        site = (tags.get("context") or {}).get("idsite")
        if point.get("metric") == "record_count" and tags.get("count_of") == "visits" and site is not None:
            self.visits[int(site)] = self.visits.get(int(site), 0) + value
        elif point.get("metric") == "record_count" and tags.get("stream"):
            self.records[tags["stream"]] = self.records.get(tags["stream"], 0) + value
            if tags["stream"] == "visits_actions" and site is not None:
                self.actions[int(site)] = self.actions.get(int(site), 0) + value
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
