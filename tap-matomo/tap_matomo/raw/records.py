"""Mapping of one Matomo visit (Live.getLastVisitsDetails item) to `visits_actions` records.

Pure functions, no I/O: one record per `actionDetails` item, in order, each carrying its
visit's fields. The columns are columns.py's (docs/data-contract.md describes them).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from tap_matomo.coerce import integer, number, text
from tap_matomo.columns import DIMENSION_NAMES
from tap_matomo.columns import VISITS_ACTIONS as COLUMNS
from tap_matomo.timezones import local_date, local_wall_clock_to_utc

CONTENT_TYPE = "13"
_ITEM_LISTS = ("ecommerceOrder", "ecommerceAbandonedCart")


class InvalidVisitError(ValueError):
    """A visit that cannot be mapped (no id, no action list)."""


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant else None


def _epoch_iso(value: t.Any) -> str | None:
    epoch = integer(value)
    return _iso(datetime.fromtimestamp(epoch, UTC)) if epoch is not None else None


def _dimensions(source: dict[str, t.Any]) -> dict[str, str]:
    """`dimensionN` keys with a value."""
    return {
        key: str(value)
        for key, value in source.items()
        if key.startswith("dimension") and key[9:].isdigit() and text(value) is not None
    }


def _custom_variables(raw: t.Any, prefix: str) -> dict[str, t.Any] | None:
    """`{"1": {"<prefix>Name1": n, "<prefix>Value1": v}}` as `{n: v}`; None when there are none."""
    if not isinstance(raw, dict) or not raw:
        return None
    result = {}
    for slot, pair in raw.items():
        if not isinstance(pair, dict):
            continue
        name = text(pair.get(f"{prefix}Name{slot}"))
        if name is not None:
            result[name] = pair.get(f"{prefix}Value{slot}")
    return result or None


def _items(raw: t.Any) -> list[dict[str, t.Any]] | None:
    if not isinstance(raw, list):
        return None
    return [
        {
            "sku": text(item.get("itemSKU")),
            "name": text(item.get("itemName")),
            "category": text(item.get("itemCategory")),
            "categories": [c for c in (item.get("categories") or []) if text(c) is not None],
            "price": number(item.get("price")),
            "quantity": number(item.get("quantity")),
        }
        for item in raw
        if isinstance(item, dict)
    ]


def action_type(raw: t.Any) -> str | None:
    """Matomo's action type as a word; content items (`13` or `"13"`) become `content`."""
    word = text(raw)
    return "content" if word == CONTENT_TYPE else word


def _plain(scope: str) -> tuple[tuple[str, str, t.Callable[[t.Any], t.Any]], ...]:
    """(column, Matomo key, coercion) of the registry's columns read straight from one key."""
    return tuple((c.name, c.source, _COERCE[c.sql_type]) for c in COLUMNS if c.scope == scope and c.source)


_COERCE: dict[str, t.Callable[[t.Any], t.Any]] = {
    "text": text,
    "integer": integer,
    "bigint": integer,
    "numeric": number,
}
VISIT_PLAIN = _plain("visit")
ACTION_PLAIN = _plain("action")


def visit_fields(visit: dict[str, t.Any], tz: tzinfo, site: dict[str, t.Any], *, include_ip: bool) -> dict[str, t.Any]:
    """The columns every action of a visit shares: the registry's plain ones, then the derived ones."""
    fields = {name: coerce(visit.get(key)) for name, key, coerce in VISIT_PLAIN}
    first_at = integer(visit.get("firstActionTimestamp"))
    experiments = visit.get("experiments")
    fields |= {
        "idsite": integer(visit.get("idSite")) or site.get("idsite"),
        "serverdateprettyfirstaction": (local_date(first_at, tz).isoformat() if first_at is not None else None),
        "experiments": experiments if isinstance(experiments, list) else None,
        "visit_first_action_at": _epoch_iso(first_at),
        "visit_last_action_at": _epoch_iso(visit.get("lastActionTimestamp")),
        "visit_custom_variables": _custom_variables(visit.get("customVariables"), "customVariable"),
        "site_timezone": site.get("timezone"),
        "site_currency": text(visit.get("siteCurrency")) or site.get("currency"),
    }
    if include_ip:
        fields["visitip"] = text(visit.get("visitIp"))
    return fields


def action_fields(
    action: dict[str, t.Any],
    position: int,
    visit_dimensions: dict[str, str],
    tz: tzinfo,
    bounds: tuple[int | None, int | None],
) -> dict[str, t.Any]:
    """The columns of one `actionDetails` item: the registry's plain ones, then the derived ones."""
    fields = {name: coerce(action.get(key)) for name, key, coerce in ACTION_PLAIN}
    localised = integer(action.get("timestamp"))
    instant = local_wall_clock_to_utc(localised, tz, *bounds) if localised is not None else None
    dimensions = {**visit_dimensions, **_dimensions(action)}
    kind = action_type(action.get("type"))
    fields |= {
        "action_type": kind,
        "action_timestamp": _iso(instant),
        "usercustomproperties": _custom_variables(action.get("customVariables"), "customVariablePage"),
        "usercustomdimensions": dimensions or None,
        **{name: dimensions.get(name) for name in DIMENSION_NAMES},
        "action_position": position,
        "action_page_load_ms": integer(
            action.get("pageLoadTimeMilliseconds", action.get("generationTimeMilliseconds"))
        ),
        "items_count": integer(action.get("items")) if kind in _ITEM_LISTS else None,
        "items": _items(action.get("itemDetails")),
    }
    return fields


@dataclass(frozen=True)
class MappedVisit:
    """A visit's columns, mapped once: those all its actions share, and each action's own."""

    idvisit: int
    shared: dict[str, t.Any]
    actions: list[dict[str, t.Any]]

    def records(self) -> t.Iterator[dict[str, t.Any]]:
        """One record per action, keyed `{idVisit}_{position}`, carrying the shared columns."""
        for position, action in enumerate(self.actions):
            yield {"action_id": f"{self.idvisit}_{position}", **self.shared, **action}


def map_visit(visit: dict[str, t.Any], tz: tzinfo, site: dict[str, t.Any], *, include_ip: bool = False) -> MappedVisit:
    """The visit's columns, or InvalidVisitError when it has no numeric id or no action list."""
    idvisit = integer(visit.get("idVisit"))
    if idvisit is None:
        msg = f"visit without a numeric idVisit: {visit.get('idVisit')!r}"
        raise InvalidVisitError(msg)
    actions = visit.get("actionDetails")
    if not isinstance(actions, list):
        msg = f"visit {idvisit} has no actionDetails list"
        raise InvalidVisitError(msg)
    visit_dimensions = _dimensions(visit)
    # A little slack around the visit's true bounds, for the DST fold choice only.
    first, last = integer(visit.get("firstActionTimestamp")), integer(visit.get("lastActionTimestamp"))
    bounds = (first - 1 if first is not None else None, last + 1 if last is not None else None)
    return MappedVisit(
        idvisit,
        visit_fields(visit, tz, site, include_ip=include_ip),
        [action_fields(action, position, visit_dimensions, tz, bounds) for position, action in enumerate(actions)],
    )


def visit_to_records(
    visit: dict[str, t.Any], tz: tzinfo, site: dict[str, t.Any], *, include_ip: bool = False
) -> t.Iterator[dict[str, t.Any]]:
    """One record per item of the visit's `actionDetails`, keyed `{idVisit}_{position}`."""
    return map_visit(visit, tz, site, include_ip=include_ip).records()
