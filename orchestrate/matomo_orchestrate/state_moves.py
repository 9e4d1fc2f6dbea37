"""Per-site bookmarks moved between the shards' Meltano states when the shards change.

The tap keeps one state partition per site (context `idsite`) in each stream's bookmark: the
site's bookmark and the digests of its recent visits. A shard's state is that of the sites it
extracts; when a site changes shard (a new shard count, edited lists, or the move from one
unsharded job to shards), its partition must follow it, or the new shard would extract the site
again from `start_date`. Here: given every state and the plan, each shard's new state, holding
for each of its sites the most advanced partition found in any state; a report stream's partition
merged from every copy, per period type the most advanced one (a period whose answer was not final is
read again with the trailing window, by whichever shard holds the site).
"""

from __future__ import annotations

import copy
import typing as t
from datetime import UTC, datetime

State = dict[str, t.Any]
#: Where a report stream keeps its per-site state (tap_matomo.reports.report_stream.PERIODS_KEY).
REPORT_PERIODS_KEY = "periods"
#: Where the raw log's partition says through when its Live log was read whole
#: (tap_matomo.raw.visits_actions.LISTED_THROUGH_KEY).
LISTED_THROUGH_KEY = "listed_through"
_OLDEST = datetime.min.replace(tzinfo=UTC)


def _partitions(state: State) -> t.Iterator[tuple[str, int, dict[str, t.Any]]]:
    """(stream, idsite, partition) of every per-site partition in a Meltano state."""
    bookmarks = state.get("singer_state", {}).get("bookmarks", {})
    for stream, bookmark in bookmarks.items():
        for partition in bookmark.get("partitions", []):
            idsite = partition.get("context", {}).get("idsite")
            if isinstance(idsite, int):
                yield stream, idsite, partition


def sites_in(state: State) -> set[int]:
    """The sites a state holds a partition for, in any stream."""
    return {idsite for _, idsite, _ in _partitions(state)}


def _instant(value: t.Any) -> datetime:
    """A state's instant (the tap writes UTC ISO 8601); none is the oldest."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return _OLDEST
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _progress(partition: dict[str, t.Any]) -> datetime:
    """How far a partition's raw log was read: its bookmark, or when its Live log was read whole if later."""
    return max(_instant(partition.get("replication_key_value")), _instant(partition.get(LISTED_THROUGH_KEY)))


def _merged_periods(copies: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    """One report partition from every copy of it: per period type, the copy with the newest `through` (with
    the day its trailing window was read and, for days, the totals it read them with)."""
    merged = copy.deepcopy(copies[0])
    periods: dict[str, dict[str, t.Any]] = {}
    for partition in copies:
        for period, bookmark in partition.get(REPORT_PERIODS_KEY, {}).items():
            best = periods.get(period)
            if best is None or (bookmark.get("through") or "") > (best.get("through") or ""):
                periods[period] = copy.deepcopy(bookmark)
    merged[REPORT_PERIODS_KEY] = periods
    return merged


def most_advanced(states: t.Mapping[str, State]) -> dict[tuple[str, int], dict[str, t.Any]]:
    """For each (stream, site), its partition as the states hold it: the raw log's with the latest bookmark;
    a report's (its per-period state, no SDK bookmark) merged from every copy."""
    copies: dict[tuple[str, int], list[dict[str, t.Any]]] = {}
    for state in states.values():
        for stream, idsite, partition in _partitions(state):
            copies.setdefault((stream, idsite), []).append(partition)
    best: dict[tuple[str, int], dict[str, t.Any]] = {}
    for key, found in copies.items():
        if any(REPORT_PERIODS_KEY in partition for partition in found):
            best[key] = _merged_periods(found)
        else:
            best[key] = max(found, key=_progress)  # the first of equals, as the states are listed
    return best


def resharded(states: t.Mapping[str, State], plan: t.Mapping[str, t.Sequence[int]]) -> dict[str, State]:
    """The new state of each plan state id whose partitions change; the others are left out.

    `states`: every state that may hold a site's partition (all shard ids, the unsharded id);
    `plan`: state id -> its sites. A shard keeps its own stream-level keys; its partitions become
    those of its sites, the most advanced copy of each; sites of no state start afresh.
    """
    best = most_advanced(states)
    changed: dict[str, State] = {}
    for state_id, sites in plan.items():
        current = states.get(state_id, {})
        new = copy.deepcopy(current) if current else {"singer_state": {"bookmarks": {}}}
        bookmarks = new.setdefault("singer_state", {}).setdefault("bookmarks", {})
        wanted = set(sites)
        streams = {stream for stream, _ in best} | set(bookmarks)
        for stream in sorted(streams):
            partitions = [copy.deepcopy(best[stream, site]) for site in sorted(wanted) if (stream, site) in best]
            bookmark = bookmarks.get(stream)
            if bookmark is None and not partitions:
                continue
            bookmark = bookmarks.setdefault(stream, {})
            if "partitions" in bookmark or partitions:
                bookmark["partitions"] = partitions
        if new != current and (current or any(_partitions(new))):
            changed[state_id] = new
    return changed


def visit_bookmarks(state: State) -> dict[int, str]:
    """Each site's `visits_actions` bookmark in a Meltano state: how far its raw log is loaded."""
    return {
        idsite: str(partition["replication_key_value"])
        for stream, idsite, partition in _partitions(state)
        if stream == "visits_actions" and "replication_key_value" in partition
    }
