"""tap-matomo: Matomo's visits and actions as Singer records."""

from __future__ import annotations

from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError

from tap_matomo import settings, streams


class TapMatomo(Tap):
    """Singer tap for Matomo (Live API), one record per action."""

    name = "tap-matomo"
    config_jsonschema = settings.SCHEMA

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        errors = super()._validate_config(raise_errors=raise_errors)
        extra = settings.problems(self.config)
        if extra and raise_errors:
            raise ConfigValidationError("Config validation failed", errors=extra)
        return errors + extra

    def discover_streams(self) -> list[streams.MatomoStream]:
        return [
            streams.SitesStream(self),
            streams.VisitsActionsStream(self),
            streams.CustomDimensionsStream(self),
            streams.GoalsStream(self),
        ]


if __name__ == "__main__":
    TapMatomo.cli()
