"""A dashboard of dashboards.yml in Superset's format: its layout (rows of charts) and its filter bar."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matomo_dashboards.ids import VERSION, object_uuid

#: Superset's layout height of a chart (grid units), a number's lower than a chart's.
CHART_HEIGHT = 50
NUMBER_HEIGHT = 25


def dashboard_file(dashboard: Mapping[str, Any], charts: list[dict[str, Any]]) -> dict[str, Any]:
    slug = dashboard["slug"]
    return {
        "dashboard_title": dashboard["title"],
        "description": None,
        "css": "",
        "slug": slug,
        "certified_by": "",
        "certification_details": "",
        "published": True,
        "uuid": object_uuid("dashboard", slug),
        "position": _position(dashboard, charts),
        "metadata": {
            "native_filter_configuration": [_native_filter(slug, spec) for spec in dashboard.get("filters", [])],
            "color_scheme": "supersetColors",
            "cross_filters_enabled": False,
            "refresh_frequency": 0,
            "expanded_slices": {},
            "timed_refresh_immune_slices": [],
            "default_filters": "{}",
            "chart_configuration": {},
        },
        "version": VERSION,
    }


def _position(dashboard: Mapping[str, Any], charts: list[dict[str, Any]]) -> dict[str, Any]:
    """Superset's layout: a header, then a grid of rows, each chart in its row with its width."""
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": dashboard["title"]}},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
    }
    numbered = iter(enumerate(charts, start=1))
    for row_number, row in enumerate(dashboard["rows"], start=1):
        row_id = f"ROW-{row_number}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {
            "type": "ROW",
            "id": row_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        for spec in row:
            chart_id, chart = next(numbered)
            chart_key = f"CHART-{chart_id}"
            position[row_id]["children"].append(chart_key)
            position[chart_key] = {
                "type": "CHART",
                "id": chart_key,
                "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {
                    "chartId": chart_id,
                    "uuid": chart["uuid"],
                    "sliceName": chart["slice_name"],
                    "width": spec["width"],
                    "height": NUMBER_HEIGHT if spec["type"] == "number" else CHART_HEIGHT,
                },
            }
    return position


def _native_filter(slug: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A filter of the dashboard's filter bar: a column's values, the time range or the time grain."""
    kind = spec.get("type", "values")
    filter_type = {"values": "filter_select", "time_range": "filter_time", "time_grain": "filter_timegrain"}[kind]
    target: dict[str, Any] = {}
    if "dataset" in spec:
        target["datasetUuid"] = object_uuid("dataset", spec["dataset"])
    if "column" in spec:
        target["column"] = {"name": spec["column"]}
    return {
        "id": filter_id(slug, spec["name"]),
        "name": spec["name"],
        "type": "NATIVE_FILTER",
        "filterType": filter_type,
        "targets": [target],
        "controlValues": {"multiSelect": True, "enableEmptyFilter": False, "searchAllOptions": False},
        "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
        "cascadeParentIds": [],
        "scope": {"rootPath": ["ROOT_ID"], "excluded": []},
        "description": "",
    }


def filter_id(slug: str, name: str) -> str:
    """A filter's id, the same at every import: a link can preset the filter (`?native_filters=...`)."""
    return "NATIVE_FILTER-" + object_uuid("filter", f"{slug}:{name}")[:20]
