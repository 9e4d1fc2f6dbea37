"""The sites and their configuration: `sites` (the parent of every per-site stream), `custom_dimensions`
and `goals`; and the base classes of a per-site stream and of one served by a plugin that may be off."""

from __future__ import annotations

import html
import logging
import typing as t
from datetime import UTC, datetime, timedelta

from singer_sdk.exceptions import FatalAPIError

from tap_matomo import batch_files, clock, schemas, settings
from tap_matomo.answers import error_message, matomo_json
from tap_matomo.client import MatomoStream
from tap_matomo.coerce import integer, number, text
from tap_matomo.compat import override
from tap_matomo.timezones import local_date, site_timezone

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

#: How Matomo answers a call to a plugin that is deactivated or not installed.
PLUGIN_MISSING_MESSAGES = ("is not enabled", "does not exist or is not available in the module")


def _flag(value: t.Any) -> bool | None:
    number_value = integer(value)
    return None if number_value is None else bool(number_value)


class SitesStream(MatomoStream):
    """The sites the token can view, narrowed to `site_ids`; parent of the per-site streams."""

    name = "sites"
    api_method = "SitesManager.getSitesWithAtLeastViewAccess"
    primary_keys = ("idsite",)
    schema = schemas.SITES

    @override
    def backoff_max_tries(self) -> int:
        # The first call checks URL and token: a wrong one should fail fast, not after minutes.
        return min(2, super().backoff_max_tries())

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        self._remove_leftover_batch_files()  # the sync's first stream: once per run
        sites = [self._site(raw) for raw in self.request_records(context)]
        wanted = settings.site_ids(self.config)
        if wanted:
            known = {site["idsite"] for site in sites}
            missing = [s for s in wanted if s not in known]
            if missing:
                msg = (
                    f"site_ids: site {', '.join(map(str, missing))} is unknown or token_auth "
                    f"has no view access to it (the token can view: {sorted(known) or 'no site'})"
                )
                raise FatalAPIError(msg)
            sites = [site for site in sites if site["idsite"] in wanted]
        self.log("Sites to extract: %s", ", ".join(f"{s['idsite']} ({s['timezone']})" for s in sites))
        yield from sites

    def _remove_leftover_batch_files(self) -> None:
        if not self.config.get("batch_config"):
            return
        removed = batch_files.remove_leftovers(self.config["batch_config"], self.tap_name)
        if removed:
            age = batch_files.LEFTOVER_AGE
            self.log("Removed %d batch files older than %s that earlier runs left unread", removed, age)

    @staticmethod
    def _site(raw: dict[str, t.Any]) -> dict[str, t.Any]:
        created = text(raw.get("ts_created"))
        return {
            "idsite": integer(raw.get("idsite")),
            "name": text(raw.get("name")),
            "main_url": text(raw.get("main_url")),
            "timezone": text(raw.get("timezone")) or "UTC",
            "currency": text(raw.get("currency")),
            "ecommerce": _flag(raw.get("ecommerce")),
            "sitesearch": _flag(raw.get("sitesearch")),
            "type": text(raw.get("type")),
            "ts_created": (datetime.fromisoformat(created).replace(tzinfo=UTC).isoformat() if created else None),
        }

    @override
    def get_child_context(self, record: dict[str, t.Any], context: Context | None) -> dict[str, t.Any]:
        created = record["ts_created"]
        return {
            "idsite": record["idsite"],
            "timezone": record["timezone"],
            "currency": record["currency"],
            "ecommerce": bool(record["ecommerce"]),
            # the site-local day it was created: no report is asked for before it
            "created_on": local_date(datetime.fromisoformat(created), site_timezone(record["timezone"])).isoformat()
            if created
            else None,
        }


class SiteChildStream(MatomoStream):
    """A stream read once per site; its state and records are keyed by `idsite` alone."""

    parent_stream_type = SitesStream
    state_partitioning_keys = ("idsite",)


class PluginStream(SiteChildStream):
    """A stream served by a Matomo plugin that may be deactivated: then one warning, and the run goes on
    (the plugin is off for every site)."""

    plugin_missing = False

    @override
    def validate_response(self, response: requests.Response) -> None:
        try:
            super().validate_response(response)
        except FatalAPIError:
            if not self.missing_plugin(matomo_json(response)):
                raise

    def missing_plugin(self, body: t.Any) -> bool:
        """Whether `body` says the stream's plugin is off or not installed; said once, as a warning."""
        message = error_message(body) or ""
        if not any(missing in message for missing in PLUGIN_MISSING_MESSAGES):
            return False
        if not self.plugin_missing:
            self.plugin_missing = True
            self.log(
                "%s skipped: Matomo's %s plugin is not available (%s)",
                self.name,
                self.api_method.split(".")[0],
                html.unescape(message),  # Matomo writes "Settings &gt; Plugins"
                level=logging.WARNING,
            )
        return True


class OptionalPluginStream(PluginStream):
    """A plugin's configuration read per site (custom dimensions, goals): nothing when the plugin is off.

    Read once a site-local day (`read_on` in its state partition), on the run that reads the day that
    closed (`report_final_after_hours` after midnight), not hourly: a configuration changes seldom, and the
    reports that read per goal or dimension ask for it themselves.
    """

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        assert context is not None
        state = self.get_context_state(context)
        hours = timedelta(hours=int(self.config["report_final_after_hours"]))
        day = local_date(clock.utc_now() - hours, site_timezone(context["timezone"])).isoformat()
        if state.get("read_on") == day:
            return
        yield from super().get_records(context)
        state["read_on"] = day

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        if self.missing_plugin(matomo_json(response)):
            return
        yield from super().parse_response(response)


class CustomDimensionsStream(OptionalPluginStream):
    """Names and scopes of `dimensionN` (N is per site)."""

    name = "custom_dimensions"
    api_method = "CustomDimensions.getConfiguredCustomDimensions"
    primary_keys = ("idsite", "idcustomdimension")
    schema = schemas.CUSTOM_DIMENSIONS

    @override
    def post_process(self, row: dict[str, t.Any], context: Context | None = None) -> dict[str, t.Any] | None:
        return {
            "idsite": integer(row.get("idsite")),
            "idcustomdimension": integer(row.get("idcustomdimension")),
            "name": text(row.get("name")),
            "scope": text(row.get("scope")),
            "index": integer(row.get("index")),
            "active": _flag(row.get("active")),
            "case_sensitive": _flag(row.get("case_sensitive")),
            "extractions": row.get("extractions") if isinstance(row.get("extractions"), list) else None,
        }


class GoalsStream(OptionalPluginStream):
    """Goal definitions (a list in Matomo 5.0, an object keyed by id elsewhere)."""

    name = "goals"
    api_method = "Goals.getGoals"
    primary_keys = ("idsite", "idgoal")
    schema = schemas.GOALS

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        body = matomo_json(response)
        if isinstance(body, dict) and error_message(body) is None:  # an object keyed by idgoal outside Matomo 5.0
            yield from body.values()
            return
        yield from super().parse_response(response)

    @override
    def post_process(self, row: dict[str, t.Any], context: Context | None = None) -> dict[str, t.Any] | None:
        return {
            "idsite": integer(row.get("idsite")),
            "idgoal": integer(row.get("idgoal")),
            "name": text(row.get("name")),
            "description": text(row.get("description")),
            "match_attribute": text(row.get("match_attribute")),
            "pattern": text(row.get("pattern")),
            "pattern_type": text(row.get("pattern_type")),
            "case_sensitive": _flag(row.get("case_sensitive")),
            "allow_multiple": _flag(row.get("allow_multiple")),
            "revenue": number(row.get("revenue")),
            "deleted": _flag(row.get("deleted")),
            "event_value_as_revenue": _flag(row.get("event_value_as_revenue")),
        }
