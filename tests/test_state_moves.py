"""Bookmarks that follow sites between shards: a report stream's most advanced periods survive a reshard."""

from __future__ import annotations

import pytest
from matomo_orchestrate.state_moves import resharded


def report_state(site: int, periods: dict) -> dict:
    """A Meltano state with one report stream's partition for `site` (the tap's per-period state only)."""
    partition = {"context": {"idsite": site}, "periods": periods}
    return {"singer_state": {"bookmarks": {"report_visits_summary": {"partitions": [partition]}}}}


@pytest.mark.unit
def test_a_reshard_keeps_each_period_types_newest_bookmark_with_its_totals() -> None:
    """Site 1 was read by the unsharded job, then by shard_0: each copy is ahead for one period type."""
    newer_day = {"through": "2031-01-05", "refreshed_on": "2031-01-06", "totals": {"2031-01-05": [12, 40]}}
    older_day = {"through": "2031-01-03", "refreshed_on": "2031-01-04", "totals": {"2031-01-03": [9, 30]}}
    newer_week = {"through": "2030-12-29", "refreshed_on": "2031-01-05"}
    older_week = {"through": "2030-12-22", "refreshed_on": "2030-12-29"}
    states = {
        "dev:x": report_state(1, {"day": newer_day, "week": older_week}),
        "dev:x:shard_0": report_state(1, {"day": older_day, "week": newer_week}),
    }
    moves = resharded(states, {"dev:x:shard_1": [1], "dev:x:shard_0": []})
    (partition,) = moves["dev:x:shard_1"]["singer_state"]["bookmarks"]["report_visits_summary"]["partitions"]
    assert partition == {"context": {"idsite": 1}, "periods": {"day": newer_day, "week": newer_week}}
    assert "replication_key_value" not in partition  # one bookmark per report stream
    assert moves["dev:x:shard_0"]["singer_state"]["bookmarks"]["report_visits_summary"]["partitions"] == []


@pytest.mark.unit
def test_a_reshard_keeps_the_copy_read_latest_of_an_idle_sites_raw_log() -> None:
    """Site 1 had no new visit since the unsharded job: both copies hold its last visit as bookmark, and the
    shard's copy was read through a later instant (`listed_through`): that copy moves, or the new shard reads
    again the days since the unsharded job's last run."""
    bookmark = "2031-01-02T10:00:00+00:00"

    def raw_state(listed_through: str) -> dict:
        partition = {"context": {"idsite": 1}, "replication_key_value": bookmark, "listed_through": listed_through}
        return {"singer_state": {"bookmarks": {"visits_actions": {"partitions": [partition]}}}}

    states = {"dev:x": raw_state("2031-01-03T08:00:00+00:00"), "dev:x:shard_0": raw_state("2031-01-05T09:00:00+00:00")}
    moves = resharded(states, {"dev:x:shard_1": [1], "dev:x:shard_0": []})
    (partition,) = moves["dev:x:shard_1"]["singer_state"]["bookmarks"]["visits_actions"]["partitions"]
    assert partition["listed_through"] == "2031-01-05T09:00:00+00:00"
