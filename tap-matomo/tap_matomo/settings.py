"""The tap's settings: their JSON schema (with every constraint JSON Schema can say), and the
cross-field checks it cannot (`problems`, run by the tap's constructor).

Every problem is one line naming the setting, found before any request is sent.
"""

from __future__ import annotations

import copy
import typing as t
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from singer_sdk import typing as th
from singer_sdk.helpers.capabilities import BATCH_CONFIG

from tap_matomo import batch_files, clock
from tap_matomo.periods import PERIODS
from tap_matomo.report_specs import ReportSettingError, specs_from_setting

#: Without start_date, a first run reads the last this many site-local days (as the Node tool did).
DEFAULT_START_DAYS = 3

SCHEMA = th.PropertiesList(
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
        "page_size",
        th.IntegerType(minimum=1),
        default=500,
        title="Page size",
        description="Visits per Live API request (Matomo's own default of 10 never applies)",
    ),
    th.Property(
        "lookback_minutes",
        th.IntegerType(minimum=0),
        default=60,
        title="Lookback minutes",
        description="How far before the bookmark a run reads again, for visits that grew or hits that landed late",
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
    th.Property(
        "mode",
        th.StringType(allowed_values=["incremental", "reconcile"]),
        default="incremental",
        title="Mode",
        description=(
            "incremental: from the bookmark (minus the lookback) to now; reconcile: every visit of whole closed "
            "site-local days again, each finished day reported in `reconciled_days`, so that the warehouse "
            "drops visits Matomo no longer has (GDPR erasures) and takes changed ones (anonymisation)"
        ),
    ),
    th.Property(
        "reconcile_days",
        th.IntegerType(minimum=1),
        default=7,
        title="Reconcile days",
        description=(
            "reconcile mode: the closed site-local days to read, the last N before today; with reports, also the "
            "closed days whose VisitsSummary.get totals are checked once a day (a changed day's reports are read again)"
        ),
    ),
    th.Property(
        "reconcile_start_date",
        th.DateType,
        title="Reconcile start date",
        description="reconcile mode: first site-local day of a one-off range (instead of reconcile_days)",
    ),
    th.Property(
        "reconcile_end_date",
        th.DateType,
        title="Reconcile end date",
        description=(
            "reconcile mode: last day of that range (default yesterday); up to today, whose listing is taken "
            "at the run's start: visits whose last action is before it and that Matomo no longer lists are gone"
        ),
    ),
    th.Property(
        "include_visitor_ip",
        th.BooleanType,
        default=False,
        title="Include visitor IP",
        description="Emit visitIp (personal data) in the visitip column",
    ),
    th.Property(
        "reports",
        th.ArrayType(
            th.ObjectType(
                th.Property("method", th.StringType, required=True, description="e.g. Referrers.getReferrerType"),
                th.Property("params", th.ObjectType(additional_properties=True), description="e.g. {idGoal: 1}"),
                th.Property(
                    "periods",
                    th.ArrayType(th.StringType(allowed_values=list(PERIODS))),
                    description="day, week, month, year (default: day, week, month)",
                ),
                th.Property("segment", th.StringType, description="a Matomo segment, e.g. deviceType==smartphone"),
                th.Property("name", th.StringType, description="the stream's name (default: from the method)"),
            )
        ),
        title="Reports",
        description=(
            "Matomo reports to copy, one stream each (docs/reports.md); absent: the default set "
            "(summaries, pages, referrers, locations, devices, events, goals, ecommerce, custom dimensions, "
            "server hours); [] for none"
        ),
    ),
    th.Property(
        "report_trailing_days",
        th.IntegerType(minimum=0),
        default=3,
        title="Report trailing days",
        description="Closed days of every report read again once a day (late hits, invalidations, erasures)",
    ),
    th.Property(
        "report_trailing_weeks",
        th.IntegerType(minimum=0),
        default=1,
        title="Report trailing weeks",
        description="Closed weeks read again once a day",
    ),
    th.Property(
        "report_trailing_months",
        th.IntegerType(minimum=0),
        default=1,
        title="Report trailing months",
        description="Closed months read again once a day",
    ),
    th.Property(
        "report_trailing_years",
        th.IntegerType(minimum=0),
        default=1,
        title="Report trailing years",
        description="Closed years read again once a day",
    ),
    th.Property(
        "report_include_current_period",
        th.BooleanType,
        default=False,
        title="Report current period",
        description="Also read the unfinished current day, week, month and year (never final; read again by every run)",
    ),
    th.Property(
        "report_final_after_hours",
        th.IntegerType(minimum=0),  # whole hours: Meltano cannot pass a `decimal` setting from the environment
        default=3,
        title="Report final after hours",
        description=(
            "Hours after a period's end in the site's timezone before it is first read (core:archive runs hourly by "
            "default; hits can arrive late): its answer is then final (is_final) unless empty while VisitsSummary.get "
            "has no visit for it. Final means Matomo's archive as read; a re-archive can still change it"
        ),
    ),
    th.Property(
        "report_page_size",
        th.IntegerType(minimum=1),
        default=10000,
        title="Report page size",
        description="Rows per report request (filter_limit); a longer report is read page by page",
    ),
    th.Property(
        "report_bulk_size",
        th.IntegerType(minimum=1),
        default=1,
        title="Report bulk size",
        description="Periods asked for in one API.getBulkRequest (1: one request per period)",
    ),
).to_dict()


# site_ids also takes one id or a comma list (MATOMO_SITE); written by hand because the SDK's
# AnyOf helper marks it nullable with a bare "null" that JSON Schema rejects.
SCHEMA["properties"]["site_ids"]["anyOf"] = [
    {"type": "array", "items": {"type": "integer"}},
    {"type": "string"},
    {"type": "integer"},
    {"type": "null"},
]
del SCHEMA["properties"]["site_ids"]["type"], SCHEMA["properties"]["site_ids"]["items"]

# BATCH messages: the SDK's own batch_config, whose formats gain this tap's `jsonl-plain` (batch_files.py),
# and with the SDK's `batch_size` (records per file) declared.
SCHEMA["properties"]["batch_config"] = copy.deepcopy(BATCH_CONFIG["properties"]["batch_config"])
_BATCH = SCHEMA["properties"]["batch_config"]["properties"]
_BATCH["encoding"]["properties"]["format"]["enum"].append(batch_files.FORMAT)
_BATCH["encoding"]["properties"]["format"]["description"] = (
    "Format of the batch files; jsonl-plain (uncompressed JSON Lines) is this tap's, read by the project's loader"
)
SCHEMA["properties"]["batch_config"]["description"] = (
    "BATCH messages: records handed to the loader as files, e.g. "
    '{"encoding": {"format": "jsonl-plain"}, "storage": {"root": "file:///path"}}; encoding.format is one of '
    "jsonl, parquet (the SDK's) and jsonl-plain (uncompressed JSON Lines, read by this project's loader)"
)
_BATCH["batch_size"] = th.Property(
    "batch_size", th.IntegerType(minimum=1), description="Records per batch file (the SDK's default: 10,000)"
).to_dict()["batch_size"]


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


_state_limits(SCHEMA)


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


def reconcile_window(config: t.Mapping[str, t.Any], today: date) -> tuple[date, date]:
    """The site-local days a reconcile run reads, given the site's today: the last `reconcile_days`
    closed days, or a one-off range, which may end today (an erasure applied at once, docs/reconcile.md)."""
    yesterday = today - timedelta(days=1)
    if config.get("reconcile_start_date"):
        first = date.fromisoformat(str(config["reconcile_start_date"])[:10])
        last = date.fromisoformat(str(config.get("reconcile_end_date") or yesterday)[:10])
        return first, min(last, today)
    return today - timedelta(days=int(config["reconcile_days"])), yesterday


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
    first, last = config.get("reconcile_start_date"), config.get("reconcile_end_date")
    if last and not first:
        found.append("reconcile_end_date: set reconcile_start_date too (the range's first day)")
    if first and last and str(last) < str(first):
        found.append(f"reconcile_end_date: {last} is before reconcile_start_date {first}")
    # A day's slack: "today" somewhere on Earth may be tomorrow here.
    if start and (start - clock.utc_now().date()).days > 1:
        found.append(f"start_date: {start} is in the future")
    try:
        specs_from_setting(config.get("reports"))
    except ReportSettingError as exc:
        found.append(str(exc))
    return found
