"""Which Matomo reports the tap copies (the `reports` setting, or the default set) and their schemas.

A report is a Reporting API method (`Referrers.getReferrerType`), maybe with fixed parameters
(`idGoal=ecommerceOrder`), for some periods and a segment. Its stream's schema comes from Matomo's own
report metadata (`API.getReportMetadata`): each metric the metadata declares is a typed column; any
other metric of a row lands in `other_metrics` (typed numbers too), goal metrics in `goals`, and the
row's non-metric fields (its URL, logo, Matomo's segment for the row...) in `attributes`.
"""

from __future__ import annotations

import json
import re
import typing as t
from dataclasses import dataclass, field
from importlib import resources

from singer_sdk import typing as th

from tap_matomo.reports.periods import PERIODS, Period

#: The periods of the default set; a year of history costs 365 + 53 + 12 requests per report and site.
DEFAULT_PERIODS: tuple[Period, ...] = ("day", "week", "month")
#: Key columns of every report row: a row per site, period, period start, segment, expanded parameters
#: (`idGoal=1` for a report read once per goal) and position in Matomo's answer. Not the label: Matomo's
#: labels are not unique (events "Video - Play" / "HD" and "Video" / "Play - HD" are both labelled
#: "Video - Play - HD"; a country appears under two codes), and an answer is always replaced whole.
KEY = ("idsite", "period", "period_start", "segment", "params", "row_index")
Expansion = t.Literal["goals", "custom_dimensions"]
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class ReportSpec:
    """One report stream: what it asks Matomo, and for which periods."""

    name: str
    method: str
    params: tuple[tuple[str, str], ...] = ()
    periods: tuple[Period, ...] = DEFAULT_PERIODS
    segment: str = ""
    #: Read once per goal of the site (Goals.get per idGoal), or per active custom dimension.
    expand: Expansion | None = None
    #: Asked only of ecommerce sites (the methods do not exist for the others).
    ecommerce_only: bool = False

    @property
    def module(self) -> str:
        return self.method.split(".", 1)[0]

    @property
    def action(self) -> str:
        return self.method.split(".", 1)[1]


def _spec(name: str, method: str, **kwargs: t.Any) -> ReportSpec:
    return ReportSpec(f"report_{name}", method, **kwargs)


#: What dashboards read, as the default of the `reports` setting (docs/reports.md lists it).
DEFAULT_REPORTS: tuple[ReportSpec, ...] = (
    _spec("visits_summary", "VisitsSummary.get"),
    _spec("actions_summary", "Actions.get"),
    _spec("page_urls", "Actions.getPageUrls"),
    _spec("page_titles", "Actions.getPageTitles"),
    _spec("entry_pages", "Actions.getEntryPageUrls"),
    _spec("exit_pages", "Actions.getExitPageUrls"),
    _spec("site_search_keywords", "Actions.getSiteSearchKeywords"),
    _spec("downloads", "Actions.getDownloads"),
    _spec("outlinks", "Actions.getOutlinks"),
    _spec("referrer_types", "Referrers.getReferrerType"),
    _spec("referrers", "Referrers.getAll"),
    _spec("websites", "Referrers.getWebsites"),
    _spec("search_engines", "Referrers.getSearchEngines"),
    _spec("keywords", "Referrers.getKeywords"),
    _spec("campaigns", "Referrers.getCampaigns"),
    _spec("social_networks", "Referrers.getSocials"),
    _spec("countries", "UserCountry.getCountry"),
    _spec("cities", "UserCountry.getCity"),
    _spec("device_types", "DevicesDetection.getType"),
    _spec("browsers", "DevicesDetection.getBrowsers"),
    _spec("operating_systems", "DevicesDetection.getOsFamilies"),
    _spec("event_categories", "Events.getCategory"),
    _spec("event_actions", "Events.getAction"),
    _spec("event_names", "Events.getName"),
    _spec("goals", "Goals.get"),
    _spec("goals_by_goal", "Goals.get", expand="goals"),
    _spec("ecommerce_orders", "Goals.get", params=(("idGoal", "ecommerceOrder"),), ecommerce_only=True),
    _spec("product_names", "Goals.getItemsName", ecommerce_only=True),
    _spec("product_skus", "Goals.getItemsSku", ecommerce_only=True),
    _spec("custom_dimensions", "CustomDimensions.getCustomDimension", expand="custom_dimensions"),
    _spec("visits_per_server_hour", "VisitTime.getVisitInformationPerServerTime"),
)

#: Methods that exist only for ecommerce sites.
_ECOMMERCE_METHODS = {"Goals.getItemsName", "Goals.getItemsSku", "Goals.getItemsCategory"}


class ReportSettingError(ValueError):
    """An entry of the `reports` setting that cannot be used (one line, naming the entry)."""


def default_name(method: str, params: t.Mapping[str, str]) -> str:
    """`report_referrers_get_referrer_type`, `..._id_goal_1`: a stream name from the method and parameters."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", method.replace(".", "_")).lower()
    for key, value in sorted(params.items()):
        words += "_" + re.sub(r"[^a-z0-9]+", "_", f"{key}_{value}".lower()).strip("_")
    return f"report_{words}"[:63]


def specs_from_setting(entries: t.Sequence[t.Mapping[str, t.Any]] | None) -> tuple[ReportSpec, ...]:
    """The `reports` setting as report specs; absent means the default set, `[]` means none."""
    if entries is None:
        return DEFAULT_REPORTS
    specs = []
    for position, entry in enumerate(entries):
        where = f"reports[{position}]"
        method = str(entry.get("method") or "")
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*\.[a-z][A-Za-z0-9]*", method):
            msg = f"{where}: method {method!r} is not a Reporting API method such as 'Referrers.getReferrerType'"
            raise ReportSettingError(msg)
        params = {str(k): str(v) for k, v in (entry.get("params") or {}).items()}
        periods = tuple(entry.get("periods") or DEFAULT_PERIODS)
        unknown = [p for p in periods if p not in PERIODS]
        if unknown or not periods:
            msg = f"{where}: periods {list(periods)!r} must be among {', '.join(PERIODS)}"
            raise ReportSettingError(msg)
        name = str(entry.get("name") or default_name(method, params))
        if not _NAME.match(name):
            msg = f"{where}: name {name!r} must be lower-case letters, digits and _ (a table name)"
            raise ReportSettingError(msg)
        specs.append(
            ReportSpec(
                name=name,
                method=method,
                params=tuple(sorted(params.items())),
                periods=t.cast("tuple[Period, ...]", periods),
                segment=str(entry.get("segment") or ""),
                ecommerce_only=method in _ECOMMERCE_METHODS or params.get("idGoal", "").startswith("ecommerce"),
            )
        )
    names = [spec.name for spec in specs]
    if len(names) != len(set(names)):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        msg = f"reports: two entries make the stream {duplicated[0]}: give one a `name`"
        raise ReportSettingError(msg)
    return tuple(specs)


# -- schemas -------------------------------------------------------------------------------------------


@dataclass
class ReportMetadata:
    """Matomo's report metadata, keyed by method: the metrics each report declares, with their types."""

    metrics: dict[str, dict[str, str]] = field(default_factory=dict)  # method -> metric -> Matomo type
    names: dict[str, str] = field(default_factory=dict)  # method -> report name

    def add(self, entries: t.Iterable[t.Mapping[str, t.Any]]) -> None:
        """Entries of an `API.getReportMetadata` answer (one per report and parameters, e.g. per goal)."""
        for entry in entries:
            method = f"{entry.get('module')}.{entry.get('action')}"
            types = entry.get("metricTypes") or {}
            declared = self.metrics.setdefault(method, {})
            for group in ("metrics", "processedMetrics"):
                for metric in entry.get(group) or {}:
                    if isinstance(metric, str) and metric != "label":
                        declared.setdefault(metric, str(types.get(metric, "number")))
            self.names.setdefault(method, str(entry.get("name") or method))

    @classmethod
    def built_in(cls) -> ReportMetadata:
        """What Matomo 5.0.2 declares (a snapshot of an ecommerce site's metadata, shipped with the tap)."""
        metadata = cls()
        text = resources.files("tap_matomo.reports").joinpath("report_metadata_matomo5.json").read_text()
        metadata.add(json.loads(text))
        return metadata


def report_schema(spec: ReportSpec, metadata: ReportMetadata) -> dict[str, t.Any]:
    """The stream's JSON schema: keys, then each declared metric typed, then the rest of a row."""
    number = th.NumberType
    declared = metadata.metrics.get(spec.method, {})
    properties = [
        th.Property("idsite", th.IntegerType, required=True),
        th.Property("period", th.StringType, required=True, description="day, week, month or year"),
        th.Property("period_start", th.DateType, required=True, description="first site-local day of the period"),
        th.Property("period_end", th.DateType, description="last site-local day of the period"),
        th.Property("segment", th.StringType, required=True, description="the segment asked for; '' for none"),
        th.Property("params", th.StringType, required=True, description="parameters read per site, e.g. idGoal=1"),
        th.Property("row_index", th.IntegerType, required=True, description="the row's position in the answer, from 1"),
        th.Property("label", th.StringType, required=True, description="the row's label ('' for one-row reports)"),
        th.Property("label_path", th.ArrayType(th.StringType), description="the row's dimension values, parent first"),
        *(th.Property(metric, number, description=f"{kind} (Matomo's {metric})") for metric, kind in declared.items()),
        th.Property("other_metrics", th.ObjectType(additional_properties=True), description="the row's other metrics"),
        th.Property("goals", th.ObjectType(additional_properties=True), description="per-goal metrics, by idgoal=N"),
        th.Property("attributes", th.ObjectType(additional_properties=True), description="the row's other fields"),
        th.Property(
            "is_final",
            th.BooleanType,
            description="Matomo's archive of the ended period, as read (a re-archive can still change it)",
        ),
        th.Property("fetched_at", th.DateTimeType, description="UTC, when Matomo answered"),
    ]
    return th.PropertiesList(*properties).to_dict()


def declared_metrics(schema: t.Mapping[str, t.Any]) -> frozenset[str]:
    """The metrics a report stream's schema has a column for: its properties but the fixed ones.

    Read from the schema the run uses (the catalog's, when one is given), so that a metric is a column
    exactly when the catalog says so, whichever Matomo's metadata the catalog was discovered from.
    """
    fixed = report_schema(ReportSpec("fixed", "fixed.fixed"), ReportMetadata())["properties"]
    return frozenset(schema.get("properties", {})).difference(fixed)
