"""The recent-visit digests in the state: exact, compact and bounded."""

from __future__ import annotations

import json

import pytest
from tap_matomo.raw.recent_visits import CAP, RecentVisits, visit_digest

pytestmark = pytest.mark.unit


def test_any_changed_field_changes_the_digest() -> None:
    rows = [{"action_id": "5_0", "visitduration": 30, "userid": None}, {"action_id": "5_1", "visitduration": 30}]
    same = [dict(row) for row in rows]
    pinged = [{**row, "visitduration": 75} for row in rows]
    identified = [{**rows[0], "userid": "jane"}, rows[1]]
    assert visit_digest(rows) == visit_digest(same)
    assert len({visit_digest(rows), visit_digest(pinged), visit_digest(identified)}) == 3


def test_state_form_round_trips_and_prunes_by_horizon() -> None:
    recent = RecentVisits()
    for idvisit in range(1_000_000, 1_000_050):
        recent.remember(idvisit, 1_800_000_000 + idvisit % 50, visit_digest([{"id": idvisit}]))
    kept = recent.kept(horizon=1_800_000_025)
    assert set(kept.entries) == {i for i in recent.entries if recent.entries[i][0] >= 1_800_000_025}
    decoded = RecentVisits.decode(json.loads(json.dumps(kept.encode())))
    assert decoded.entries == kept.entries


def test_the_cap_keeps_the_newest_visits_and_bounds_the_size() -> None:
    recent = RecentVisits()
    for idvisit in range(3 * CAP):
        recent.remember(idvisit, idvisit, visit_digest([{"id": idvisit}]))
    kept = recent.kept(horizon=0)
    assert len(kept.entries) == CAP
    assert min(kept.entries) == 2 * CAP  # the newest by last action
    assert len(json.dumps(kept.encode())) < 16 * CAP * 4 / 3 + 100  # 16 bytes a visit, base64


def test_memory_stays_within_twice_the_cap_and_the_kept_state_is_the_same() -> None:
    """A backfill reads a day's oldest visits while the horizon is still low: what is held is trimmed as
    it goes, and the state kept at the end is what keeping everything would have given."""
    trimmed, everything = RecentVisits(), {}
    horizon = 0
    for idvisit in range(10 * CAP):
        last_action = (idvisit * 7919) % (10 * CAP)  # out of order, as parallel days and pages arrive
        horizon = max(horizon, idvisit // 2)  # rises as the run goes
        digest = visit_digest([{"id": idvisit}])
        trimmed.remember(idvisit, last_action, digest, horizon=horizon)
        everything[idvisit] = (last_action, digest)
        assert len(trimmed.entries) <= 2 * CAP
    assert trimmed.kept(horizon).entries == RecentVisits(everything).kept(horizon).entries


def test_older_state_forms_read_as_empty() -> None:
    assert RecentVisits.decode({"123": [1_800_000_000, 4]}).entries == {}  # the signature form of tap-matomo 0.1
    assert RecentVisits.decode(None).entries == {}
