"""tap-matomo: Matomo's visits and actions as Singer records."""

from __future__ import annotations

import sys
import typing as t

import requests
from singer_sdk import Tap
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError

from tap_matomo import settings, streams
from tap_matomo.compat import override
from tap_matomo.records import InvalidVisitError
from tap_matomo.timezones import UnknownTimezoneError

#: Failures with a message that says it all: logged as one line, no traceback.
EXPECTED_FAILURES = (FatalAPIError, RetriableAPIError, InvalidVisitError, UnknownTimezoneError)


class TapMatomo(Tap):
    """Singer tap for Matomo (Live API), one record per action."""

    name = "tap-matomo"
    config_jsonschema = settings.SCHEMA
    message_writer_class = MsgSpecWriter  # faster than the SDK's default JSON writer

    @override
    def __init__(self, *args: t.Any, validate_config: bool = True, **kwargs: t.Any) -> None:
        # The SDK checks the config against the JSON schema; the cross-field checks follow here.
        super().__init__(*args, validate_config=validate_config, **kwargs)
        found = settings.problems(self.config)
        if found and validate_config:
            raise ConfigValidationError("Config validation failed", errors=found)

    @override
    def discover_streams(self) -> list[streams.MatomoStream]:
        return [
            streams.SitesStream(self),
            streams.VisitsActionsStream(self),
            streams.CustomDimensionsStream(self),
            streams.GoalsStream(self),
        ]

    @override
    def sync_all(self) -> None:
        try:
            super().sync_all()
        except EXPECTED_FAILURES as exc:
            self.logger.error("tap-matomo failed: %s", exc)
            sys.exit(1)
        except requests.exceptions.RequestException as exc:
            url = self.config["url"]
            self.logger.error("tap-matomo failed: cannot reach Matomo at %s (%s)", url, type(exc).__name__)
            sys.exit(1)


if __name__ == "__main__":
    TapMatomo.cli()
