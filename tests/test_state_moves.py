"""Bookmarks that follow sites between shards: a report stream's pending periods survive a reshard."""

from __future__ import annotations

import pytest
from matomo_orchestrate.state_moves import resharded


def report_state(site: int, day: dict) -> dict:
    """A Meltano state with one report stream's partition for `site` (the tap's per-period state only)."""
    partition = {"context": {"idsite": site}, "periods": {"day": day}}
    return {"singer_state": {"bookmarks": {"report_visits_summary": {"partitions": [partition]}}}}


@pytest.mark.unit
def test_a_reshard_keeps_every_pending_report_period_and_the_newest_through() -> None:
    """Site 1 was read by the unsharded job, then by shard_0: each copy has periods the other lacks."""
    states = {
        "dev:x": report_state(1, {"through": "2031-01-05", "refreshed_on": "2031-01-06", "pending": ["2031-01-05"]}),
        "dev:x:shard_0": report_state(
            1, {"through": "2031-01-03", "refreshed_on": "2031-01-04", "pending": ["2031-01-02", "2031-01-03"]}
        ),
    }
    moves = resharded(states, {"dev:x:shard_1": [1], "dev:x:shard_0": []})
    (partition,) = moves["dev:x:shard_1"]["singer_state"]["bookmarks"]["report_visits_summary"]["partitions"]
    assert partition == {
        "context": {"idsite": 1},
        "periods": {
            "day": {
                "through": "2031-01-05",
                "refreshed_on": "2031-01-06",
                "pending": ["2031-01-02", "2031-01-03", "2031-01-05"],
            }
        },
    }
    assert "replication_key_value" not in partition  # one bookmark per report stream
    assert moves["dev:x:shard_0"]["singer_state"]["bookmarks"]["report_visits_summary"]["partitions"] == []
