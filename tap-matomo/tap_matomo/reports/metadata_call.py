"""`API.getReportMetadata`: which reports a site has, their metrics and types; the report streams' schemas
when the tap discovers with a Matomo to ask."""

from __future__ import annotations

import typing as t

from tap_matomo.client import MatomoStream
from tap_matomo.compat import override
from tap_matomo.reports.specs import ReportMetadata

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class ReportMetadataCall(MatomoStream):
    """`API.getReportMetadata`: which reports a site has, their metrics and types (not a stream of records)."""

    name = "api_report_metadata"  # not a stream of the catalog: only its requests carry this name
    api_method = "API.getReportMetadata"
    schema: t.ClassVar[dict[str, t.Any]] = {"type": "object", "properties": {}}

    @override
    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        return {**super().get_url_params(context, next_page_token), "hideMetricsDoc": 1}

    def report_metadata(self, sites: t.Iterable[dict[str, t.Any]]) -> ReportMetadata:
        """The metadata of one of `sites` of each kind (ecommerce or not): the reports of both."""
        by_kind: dict[bool, dict[str, t.Any]] = {}
        for site in sites:
            by_kind.setdefault(bool(site["ecommerce"]), site)
        metadata = ReportMetadata()
        for site in by_kind.values():
            metadata.add(self.request_records({"idsite": site["idsite"]}))
        return metadata
