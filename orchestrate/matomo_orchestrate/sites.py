"""The sites to split into shards: those the token can view (narrowed by `site_ids` when set).

Asked through the tap's own `sites` stream, so that the orchestrator reads Matomo exactly as the
tap does (POST token, retries, the same one-line errors).
"""

from __future__ import annotations

import typing as t

from tap_matomo.tap import TapMatomo


def viewable_sites(tap_config: t.Mapping[str, t.Any]) -> list[int]:
    """Site ids from Matomo, given the tap's configuration as Meltano resolves it."""
    tap = TapMatomo(config=dict(tap_config), parse_env_config=False, validate_config=True)
    records = t.cast("t.Iterable[dict[str, t.Any]]", tap.streams["sites"].get_records(None))
    return sorted(int(site["idsite"]) for site in records)
