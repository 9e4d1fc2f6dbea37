"""tap-matomo: Matomo's visits and actions as Singer records."""

from __future__ import annotations

import logging
import sys
import typing as t
from pathlib import Path

import requests
from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError

from tap_matomo import clock, settings, site_streams
from tap_matomo.allocator import return_large_blocks_to_the_system
from tap_matomo.answers import public_url
from tap_matomo.client import MatomoStream
from tap_matomo.compat import override
from tap_matomo.output import RunOutputWriter
from tap_matomo.quiet import quiet
from tap_matomo.raw import settings as raw_settings
from tap_matomo.raw.day_ledger import DayLedger
from tap_matomo.raw.day_streams import ReconciledDaysStream, VisitsSummaryStream
from tap_matomo.raw.records import InvalidVisitError
from tap_matomo.raw.visits_actions import VisitsActionsStream
from tap_matomo.reports import settings as report_settings
from tap_matomo.reports.ledger import ReportFetchesStream, ReportLedger
from tap_matomo.reports.metadata_call import ReportMetadataCall
from tap_matomo.reports.report_stream import ReportStream
from tap_matomo.reports.specs import ReportMetadata, ReportSettingError, specs_from_setting
from tap_matomo.throttle import RequestRateLimiter
from tap_matomo.timezones import UnknownTimezoneError

#: Failures with a message that says it all: logged as one line, no traceback.
EXPECTED_FAILURES = (FatalAPIError, RetriableAPIError, InvalidVisitError, UnknownTimezoneError)
#: ... and the end of a run whose output is no longer read (the loader failed and said why; click exits 1).
QUIET_FAILURES = (*EXPECTED_FAILURES, BrokenPipeError)


class TapMatomo(Tap):
    """Singer tap for Matomo (Live API), one record per action."""

    name = "tap-matomo"
    config_jsonschema = settings.config_schema(raw_settings.PROPERTIES, report_settings.PROPERTIES)
    message_writer_class = RunOutputWriter  # msgspec's, with fewer STATE messages (output.py)
    #: Whether report schemas come from the server's own metadata: only when discovering (`--discover`).
    #: A tap built for a sync, a test or a listing of sites asks Matomo nothing before it syncs; its
    #: report records follow the catalog's schemas (see `reports.specs.declared_metrics`).
    reads_server_metadata = False
    #: Whether `streams` has built the streams (and set their loggers) once.
    streams_built = False

    @override
    def __init__(self, *args: t.Any, validate_config: bool = True, **kwargs: t.Any) -> None:
        # The SDK checks the config against the JSON schema, then builds the streams (`setup_mapper`), where the
        # cross-field checks come first.
        self.validates_config = validate_config
        super().__init__(*args, validate_config=validate_config, **kwargs)
        if not self.config.get("log_metrics"):  # the SDK's METRIC lines (most of a run's log) only when asked
            self.metrics_logger.setLevel(max(self.metrics_logger.getEffectiveLevel(), logging.WARNING))
        if settings.sends_token_in_clear(self.config):
            self.logger.warning(
                "url: %s is plain http://: token_auth crosses the network unencrypted; use https://",
                public_url(self.config["url"]),
            )

    @override
    def setup_mapper(self) -> None:
        """The cross-field checks JSON Schema cannot make, before any stream is built: a bad `reports` entry
        fails as the SDK's own validation does (one line per problem), not while its stream is made."""
        found = [
            *settings.problems(self.config),
            *raw_settings.problems(self.config),
            *report_settings.problems(self.config),
        ]
        if found and self.validates_config:
            raise ConfigValidationError("Config validation failed", errors=found)
        super().setup_mapper()

    @property
    @override
    def streams(self) -> dict[str, Stream]:
        # At info level, two kinds of SDK lines are left out of the log: "Added 'report_...' as child stream to
        # 'sites'" as the streams are built (36 lines atop every run) and each report's "Beginning sync" for
        # each site (31 a site; report_fetches logs a site's report progress in one line). Shown at debug level.
        if self.streams_built or not logging.DEBUG < self.logger.getEffectiveLevel() < logging.WARNING:
            return super().streams
        level = self.logger.level
        self.logger.setLevel(logging.WARNING)
        try:
            found = super().streams
        finally:
            self.logger.setLevel(level)
        for stream in found.values():
            if isinstance(stream, ReportStream):
                stream.logger.setLevel(logging.WARNING)
        self.streams_built = True
        return found

    @override
    def discover_streams(self) -> list[Stream]:
        ledger = DayLedger(started_at=clock.utc_now())
        visits = VisitsActionsStream(self)
        summary = VisitsSummaryStream(self)
        visits.ledger = summary.ledger = ledger
        found: list[MatomoStream] = [site_streams.SitesStream(self), visits]
        if self.config["mode"] == "reconcile":  # incremental runs list no whole day: no empty table anywhere
            reconciled = ReconciledDaysStream(self)  # after visits_actions: children sync in this order
            reconciled.ledger = ledger
            found.append(reconciled)
        found += [summary, site_streams.CustomDimensionsStream(self), site_streams.GoalsStream(self)]
        if self.config["mode"] == "incremental":  # a reconcile re-reads raw days only
            found += self._report_streams()
        limiter = RequestRateLimiter(self.config.get("max_requests_per_minute"))  # one for the whole run
        for stream in found:
            stream.rate_limiter = limiter
            quiet(stream.logger, QUIET_FAILURES)
        quiet(logging.getLogger("singer_sdk"), QUIET_FAILURES)  # the SDK's state helpers log there
        return list(found)

    @override
    def run_discovery(self) -> str:
        self.reads_server_metadata = True  # streams are discovered lazily, by the catalog written here
        return super().run_discovery()

    def _report_streams(self) -> list[MatomoStream]:
        """A stream per report of the `reports` setting (or the default set), then `report_fetches`.

        Their schemas come, when discovering with a Matomo to ask, from its own report metadata (one
        request for a site of each kind, ecommerce or not), else from Matomo 5's (shipped with the tap).
        """
        try:
            specs = specs_from_setting(self.config.get("reports"))
        except ReportSettingError:
            if self.validates_config:
                raise
            # Discovery (no validation): no report stream, and the sync fails with the problem in one line
            # (setup_mapper). Failing here, Meltano, which discovers first, would print it again raw.
            return []
        if not specs:
            return []
        metadata = ReportMetadata.built_in()
        if self.reads_server_metadata and self.config.get("url") and self.config.get("token_auth"):
            try:
                sites = site_streams.SitesStream(self).get_records(None)
                metadata = ReportMetadataCall(self).report_metadata(sites)
            except (*EXPECTED_FAILURES, requests.exceptions.RequestException):
                # Matomo cannot be asked (a wrong token, an unreachable server): the catalog follows Matomo 5's
                # metadata, and the sync fails with its one line. Failing here, the reason would be printed
                # twice under Meltano, which discovers first and repeats a failed discovery's output raw.
                self.logger.info("report schemas from Matomo 5's metadata: Matomo could not be asked")
        ledger = ReportLedger()
        found: list[MatomoStream] = []
        for spec in specs:
            stream = ReportStream(self, spec, metadata)
            stream.ledger = ledger
            found.append(stream)
        fetches = ReportFetchesStream(self)
        fetches.ledger = ledger
        return [*found, fetches]


def without_empty_state_file(args: list[str]) -> list[str]:
    """The arguments, without `--state FILE` when FILE is empty: the state a first run's target printed
    (`target ... | tail -1 > state.json` prints nothing when no state was committed) means no state yet."""
    for index, arg in enumerate(args):
        path = args[index + 1] if arg == "--state" and index + 1 < len(args) else arg.partition("--state=")[2]
        if path and Path(path).is_file() and not Path(path).read_text().strip():
            return [*args[:index], *args[index + (2 if arg == "--state" else 1) :]]
    return args


def main() -> None:
    """The `tap-matomo` command: the SDK's CLI, with expected failures reported as one line.

    The SDK would log them with a traceback; a wrong token or an unreachable server needs none.
    """
    return_large_blocks_to_the_system()  # memory that does not grow with the size of a day
    sys.argv[1:] = without_empty_state_file(sys.argv[1:])
    try:
        TapMatomo.cli()
    except EXPECTED_FAILURES as exc:
        logging.getLogger(TapMatomo.name).error("tap-matomo failed: %s", exc)
        sys.exit(1)
    except requests.exceptions.RequestException as exc:
        request = exc.request
        where = public_url(request.url or "") if request is not None else "the configured url"
        logging.getLogger(TapMatomo.name).error(
            "tap-matomo failed: cannot reach Matomo at %s (%s)", where, type(exc).__name__
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
