"""Rows of a Reporting API answer (`flat=1&format_metrics=0`) as records: pure functions, no I/O.

What real Matomo 5.0.2 answers look like (tests/fixtures/matomo-5.0.2-reports/, docs/matomo-api.md):

- one-row reports (`VisitsSummary.get`, `Actions.get`, `Goals.get`) answer an object, or a list of one
  object with `flat=1`; they have no label (the record's label is `''`);
- day answers mix JSON strings and numbers for one metric (`"nb_actions":"33"` beside `12`), and
  `min_time_server` may be null: every metric becomes a number (or stays null);
- flat rows name their hierarchy in text fields such as `Events_EventCategory` and `Events_EventAction`
  (parent first; `CoreHome_VisitFirstActionTime` reads "00" for midnight); the label joins them
  ("Forms - Submit"), or is the full path for page URLs;
- a row's other fields are not metrics: its URL, logo, Matomo's segment selecting the row, a
  country code, coordinates, a referrer type code.
"""

from __future__ import annotations

import re
import typing as t

from tap_matomo.coerce import number

#: `Plugin_Dimension` fields: the values of the row's dimensions, parent first.
_DIMENSION_FIELD = re.compile(r"^[A-Z][A-Za-z0-9]*_[A-Za-z0-9]+$")
#: Numeric fields that are not metrics.
_NOT_METRICS = frozenset(
    {"lat", "long", "logoHeight", "logoWidth", "referrer_type", "referer_type", "idsubdatatable", "idgoal"}
)
#: Fields that are never metrics, whatever their value.
_TEXT_FIELDS = frozenset(
    {"label", "segment", "url", "logo", "code", "city_name", "region", "region_name", "country", "country_name"}
)


def rows_of(answer: t.Any) -> list[dict[str, t.Any]]:
    """The rows of an answer: a list of objects, or one object (a one-row report outside flat=1)."""
    if isinstance(answer, dict):
        return [answer]
    if isinstance(answer, list):
        return [row for row in answer if isinstance(row, dict)]
    return []


def is_empty(rows: list[dict[str, t.Any]]) -> bool:
    """No row, or one row of zeros: how Matomo answers a period (or segment) it has not archived."""
    if not rows:
        return True
    if len(rows) == 1 and "label" not in rows[0]:
        values = [number(v) for k, v in rows[0].items() if k not in _NOT_METRICS and not isinstance(v, dict)]
        return all(not v for v in values)
    return False


def _is_metric(key: str, value: t.Any) -> bool:
    if key in _TEXT_FIELDS or key in _NOT_METRICS:
        return False
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return True
    return number(value) is not None


def _goals(value: t.Any) -> dict[str, dict[str, t.Any]] | None:
    if not isinstance(value, dict):
        return None
    return {
        str(goal): {k: number(v) for k, v in metrics.items()} if isinstance(metrics, dict) else metrics
        for goal, metrics in value.items()
    }


def map_row(row: dict[str, t.Any], declared: t.Container[str]) -> dict[str, t.Any]:
    """A row's fields: label, label path, declared metrics (numbers), other metrics, goals, attributes."""
    label = row.get("label")
    record: dict[str, t.Any] = {"label": "" if label is None else str(label)}
    path: list[str] = []
    other: dict[str, t.Any] = {}
    attributes: dict[str, t.Any] = {}
    for key, value in row.items():
        if key == "label":
            continue
        if key == "goals":
            record["goals"] = _goals(value)
        elif _DIMENSION_FIELD.match(key) and not isinstance(value, int | float):  # `Referrers_distinct...` count
            path.append("" if value is None else str(value))
        elif _is_metric(key, value):
            (record if key in declared else other)[key] = number(value)
        else:
            attributes[key] = value
    record["label_path"] = path or ([record["label"]] if record["label"] else [])
    record["other_metrics"] = other or None
    record["attributes"] = attributes or None
    record.setdefault("goals", None)
    return record
