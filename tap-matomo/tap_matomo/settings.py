"""The tap's settings: their JSON schema (with every constraint JSON Schema can say), and the
cross-field checks it cannot (`problems`, run by the tap's constructor).

Every problem is one line naming the setting, found before any request is sent.
"""

from __future__ import annotations

import copy
import typing as t
from datetime import date, datetime
from urllib.parse import urlsplit

from singer_sdk import typing as th
from singer_sdk.helpers.capabilities import BATCH_CONFIG

from tap_matomo import batch_files, clock

#: Without start_date, a first run reads the last this many site-local days (as the Node tool did).
DEFAULT_START_DAYS = 3

#: The settings of the connection and the run (the raw log's: raw/settings.py; the reports': reports/settings.py).
PROPERTIES = th.PropertiesList(
    th.Property(
        "url",
        th.StringType,  # its form is checked in `problems`, in words (a schema pattern would say its regex)
        required=True,
        title="Matomo URL",
        description=(
            "Base URL of the Matomo server, e.g. https://matomo.example.org; over plain http:// the token "
            "crosses the network unencrypted (the tap warns, except on this machine's loopback)"
        ),
    ),
    th.Property(
        "token_auth",
        th.StringType(min_length=1),
        required=True,
        secret=True,
        title="API token",
        description="Matomo token_auth of a user with view access; sent only in POST bodies",
    ),
    th.Property(
        "site_ids",
        th.ArrayType(th.IntegerType),  # widened below
        title="Site ids",
        description=(
            "Sites to extract: a list, one id, or a comma list such as '1,3' (as MATOMO_SITE gives it); "
            "absent or empty means every site the token can view"
        ),
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description=(
            f"First instant (or site-local date) to extract when there is no state (raw log and reports); "
            f"default {DEFAULT_START_DAYS} days ago"
        ),
    ),
    th.Property(
        "end_date",
        th.DateType,
        title="End date",
        description="Last site-local day to extract (inclusive); default today",
    ),
    th.Property(
        "request_timeout",
        th.IntegerType(minimum=1),
        default=120,
        title="Request timeout",
        description="Seconds to wait for one Matomo answer",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0),
        default=5,
        title="Max retries",
        description="Retries of a failed request (5xx, 429, timeouts, bad bodies) before the run fails",
    ),
    th.Property(
        "retry_backoff_ms",
        th.IntegerType(minimum=0),
        default=2000,
        title="Retry backoff (ms)",
        description="First wait before a retry in milliseconds, doubled each time (Retry-After wins when sent)",
    ),
    th.Property(
        "max_retry_after_seconds",
        th.IntegerType(minimum=0),
        default=300,
        title="Max Retry-After (s)",
        description="Longest wait a 429 or 503 answer's Retry-After (seconds or an HTTP date) is obeyed for",
    ),
    th.Property(
        "max_parallel_requests",
        th.IntegerType(minimum=1),
        default=4,
        title="Max parallel requests",
        description=(
            "Live requests in flight at once, one site-local day each (1 reads one page after another); "
            "Matomo Cloud runs at most 8 raw-data queries at once per account"
        ),
    ),
    th.Property(
        "max_requests_per_minute",
        th.IntegerType(minimum=1),
        title="Max requests per minute",
        description="Cap on requests to Matomo per minute, all streams and sites together (Matomo Cloud: 200 per IP); "
        "unset means no cap",
    ),
    th.Property(
        "log_metrics",
        th.BooleanType,
        default=False,
        title="Log metrics",
        description=(
            "Log the Singer SDK's METRIC lines (records, requests and their durations, per stream and site): off, "
            "a run's log is its progress lines; the Dagster shards turn it on to count what each shard did"
        ),
    ),
)


def _state_limits(schema: dict[str, t.Any]) -> None:
    """Each setting's limits (minimum, allowed values, pattern) at the end of its description, where
    `--about --format=markdown` and Meltano show them; the schema keeps enforcing them."""
    for prop in schema.get("properties", {}).values():
        limits = []
        if "minimum" in prop:
            limits.append(f"at least {prop['minimum']}")
        if "maximum" in prop:
            limits.append(f"at most {prop['maximum']}")
        if prop.get("minLength"):
            limits.append("not empty")
        if "pattern" in prop:
            limits.append(f"matching `{prop['pattern']}`")
        if prop.get("enum"):
            limits.append("one of " + ", ".join(f"`{value}`" for value in prop["enum"] if value is not None))
        if limits:
            prop["description"] = f"{prop.get('description', '').rstrip('.')} ({'; '.join(limits)})".lstrip()
        _state_limits(prop)


def config_schema(*more: th.PropertiesList) -> dict[str, t.Any]:
    """The tap's JSON schema: these settings, then `more` (the reports'), and the SDK's `batch_config`."""
    schema = PROPERTIES.to_dict()
    for properties in more:
        extra = properties.to_dict()
        schema["properties"].update(extra["properties"])
        schema.setdefault("required", []).extend(extra.get("required", []))
    # site_ids also takes one id or a comma list (MATOMO_SITE); written by hand because the SDK's
    # AnyOf helper marks it nullable with a bare "null" that JSON Schema rejects.
    schema["properties"]["site_ids"]["anyOf"] = [
        {"type": "array", "items": {"type": "integer"}},
        {"type": "string"},
        {"type": "integer"},
        {"type": "null"},
    ]
    del schema["properties"]["site_ids"]["type"], schema["properties"]["site_ids"]["items"]

    # BATCH messages: the SDK's own batch_config, whose formats gain this tap's `jsonl-plain` (batch_files.py),
    # and with the SDK's `batch_size` (records per file) declared.
    schema["properties"]["batch_config"] = copy.deepcopy(BATCH_CONFIG["properties"]["batch_config"])
    batch = schema["properties"]["batch_config"]["properties"]
    batch["encoding"]["properties"]["format"]["enum"].append(batch_files.FORMAT)
    batch["encoding"]["properties"]["format"]["description"] = (
        "Format of the batch files; jsonl-plain (uncompressed JSON Lines) is this tap's, read by the project's loader"
    )
    schema["properties"]["batch_config"]["description"] = (
        "BATCH messages: records handed to the loader as files, e.g. "
        '{"encoding": {"format": "jsonl-plain"}, "storage": {"root": "file:///path"}}; encoding.format is one of '
        "jsonl, parquet (the SDK's) and jsonl-plain (uncompressed JSON Lines, read by this project's loader)"
    )
    batch["batch_size"] = th.Property(
        "batch_size", th.IntegerType(minimum=1), description="Records per batch file (the SDK's default: 10,000)"
    ).to_dict()["batch_size"]
    _state_limits(schema)
    return schema


def _parse_instant(value: str) -> datetime | date:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return date.fromisoformat(value)


def sends_token_in_clear(config: t.Mapping[str, t.Any]) -> bool:
    """Whether `url` is plain http:// to another machine: the token, in the POST body, is readable on the way."""
    parts = urlsplit(str(config.get("url") or ""))
    loopback = parts.hostname in ("localhost", "::1") or (parts.hostname or "").startswith("127.")
    return parts.scheme == "http" and not loopback


def site_ids(config: t.Mapping[str, t.Any]) -> list[int]:
    """`site_ids` as a list: it may come as a list, one id, or a comma list from an environment variable."""
    value = config.get("site_ids")
    if value in (None, "", []):
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str) and not value.strip("[] "):
        return []  # "[]" is how an empty MATOMO_SITE reaches a config file: every site, like ""
    items = value if isinstance(value, list) else str(value).strip("[] ").split(",")
    try:
        ids = [int(str(item).strip()) for item in items if str(item).strip()]
    except ValueError:
        ids = []
    if not ids or any(i < 1 for i in ids) or any(isinstance(i, float) for i in items):
        msg = f"site_ids: {value!r} is not a site id, a list of ids or a comma list such as '1,3'"
        raise ValueError(msg)
    return ids


def _url_problems(url: str) -> list[str]:
    """What is wrong with the Matomo URL, in words."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        shown = url if "token_auth" not in url else "(a URL with token_auth)"
        return [f"url: {shown!r} must start with https:// (or http://), as in https://matomo.example.org"]
    if "token_auth" in parts.query:
        return ["url: must not carry token_auth (set it in token_auth, it is sent in the body)"]
    return []


def problems(config: t.Mapping[str, t.Any]) -> list[str]:
    """What is wrong with the config, one line each (the token's value is never quoted)."""
    found: list[str] = []
    try:
        site_ids(config)
    except ValueError as exc:
        found.append(str(exc))
    url = config.get("url")
    if isinstance(url, str):
        found += _url_problems(url)
    start, end = None, None
    for name in ("start_date", "end_date"):
        value = config.get(name)
        if value in (None, ""):
            continue
        try:
            parsed = _parse_instant(str(value))
        except ValueError:
            found.append(f"{name}: {value!r} is not a date (YYYY-MM-DD) or ISO 8601 date-time")
            continue
        if name == "start_date":
            start = parsed.date() if isinstance(parsed, datetime) else parsed
        else:
            end = parsed.date() if isinstance(parsed, datetime) else parsed
    if start and end and end < start:
        found.append(f"end_date: {end} is before start_date {start}")
    # A day's slack: "today" somewhere on Earth may be tomorrow here.
    if start and (start - clock.utc_now().date()).days > 1:
        found.append(f"start_date: {start} is in the future")
    return found
