"""Superset's import bundle from dashboards.yml and the marts' columns.

The dashboards are reviewed as dashboards.yml, a page of YAML; Superset imports a ZIP of one YAML file per
database, dataset, chart and dashboard (its "v1" export format) with verbose defaults. This module writes
that ZIP. Identifiers are UUIDs derived from names, so importing again updates the same objects. A dataset
lists the mart's columns as the warehouse has them (information_schema), so every column can be grouped
and filtered on in Superset, extra dimensions and report metrics included.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import yaml

from matomo_dashboards.ids import VERSION, object_uuid
from matomo_dashboards.layout import dashboard_file

#: Superset's name for the warehouse connection; the datasets are under it.
DATABASE_NAME = "Matomo warehouse"
#: A URL without host or credentials: psycopg2 (libpq) connects with the server's PG* variables (pg-url).
LIBPQ_URI = "postgresql+psycopg2://"
#: Rows of a report table: the top ten, as Matomo's widgets show.
TOP_ROWS = 10
#: The date of every file in the bundle (ZIP's earliest).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
#: Superset's column types that are times: such columns get the time range and grain.
TIME_TYPES = ("date", "timestamp")


@dataclass(frozen=True)
class Column:
    """A mart's column as information_schema describes it."""

    name: str
    type: str


def load_spec() -> dict[str, Any]:
    """dashboards.yml, shipped with the package."""
    text = files("matomo_dashboards").joinpath("dashboards.yml").read_text("utf-8")
    spec: dict[str, Any] = yaml.safe_load(text)
    return spec


def build(spec: Mapping[str, Any], columns: Mapping[str, list[Column]], schema: str, uri: str = LIBPQ_URI) -> bytes:
    """The ZIP Superset's `import-dashboards` reads: the database, the datasets, charts and dashboards."""
    database_uuid = object_uuid("database", DATABASE_NAME)
    files_: dict[str, dict[str, Any]] = {
        "metadata.yaml": {"version": VERSION, "type": "Dashboard", "timestamp": "2026-01-01T00:00:00+00:00"},
        "databases/matomo_warehouse.yaml": _database(database_uuid, uri),
    }
    for table, dataset in spec["datasets"].items():
        files_[f"datasets/matomo_warehouse/{table}.yaml"] = _dataset(
            table, dataset, columns.get(table, []), schema, database_uuid
        )
    for dashboard in spec["dashboards"]:
        charts = [_chart(dashboard["slug"], chart, spec["datasets"]) for row in dashboard["rows"] for chart in row]
        for chart in charts:
            files_[f"charts/{dashboard['slug']}_{chart['uuid']}.yaml"] = chart
        files_[f"dashboards/{dashboard['slug']}.yaml"] = dashboard_file(dashboard, charts)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path, content in files_.items():
            # A fixed date in every entry: the same definition gives the same bytes (not the time of the build).
            entry = zipfile.ZipInfo(f"matomo_dashboards/{path}", date_time=ZIP_DATE)
            bundle.writestr(entry, yaml.safe_dump(content, sort_keys=False), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _database(database_uuid: str, uri: str) -> dict[str, Any]:
    return {
        "database_name": DATABASE_NAME,
        "sqlalchemy_uri": uri,
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "extra": {"allows_virtual_table_explore": True},
        "uuid": database_uuid,
        "version": VERSION,
    }


def _dataset(
    table: str, dataset: Mapping[str, Any], columns: Iterable[Column], schema: str, database_uuid: str
) -> dict[str, Any]:
    return {
        "table_name": table,
        "main_dttm_col": dataset["time_column"],
        "description": None,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "schema": schema,
        "sql": None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "uuid": object_uuid("dataset", table),
        "metrics": [
            {
                "metric_name": name,
                "verbose_name": metric["label"],
                "metric_type": None,
                "expression": metric["sql"],
                "description": None,
                "d3format": metric.get("format"),
                "extra": None,
                "warning_text": None,
            }
            for name, metric in dataset["metrics"].items()
        ],
        "columns": [
            {
                "column_name": column.name,
                "verbose_name": column.name.replace("_", " ").capitalize(),  # a table's header
                "is_dttm": column.type.startswith(TIME_TYPES),
                "is_active": True,
                "type": column.type.upper(),
                "groupby": True,
                "filterable": True,
                "expression": None,
                "description": None,
                "python_date_format": None,
                "extra": None,
            }
            for column in columns
        ],
        "version": VERSION,
        "database_uuid": database_uuid,
    }


def _chart(slug: str, chart: Mapping[str, Any], datasets: Mapping[str, Any]) -> dict[str, Any]:
    dataset = datasets[chart["dataset"]]
    metrics = chart.get("metrics") or [chart["metric"]]
    number_format = dataset["metrics"][metrics[0]].get("format") or "SMART_NUMBER"
    viz, params = _VIZ[chart["type"]](chart, metrics, dataset["time_column"], number_format)
    filters = [_time_range(dataset["time_column"])]
    if "report" in chart:
        # One Matomo report, its days: each day is read once, weeks and months would count them again.
        filters += [_equals("report", chart["report"]), _equals("period", "day")]
    params |= {"adhoc_filters": filters, "extra_form_data": {}, "y_axis_format": number_format, "viz_type": viz}
    return {
        "slice_name": chart["title"],
        "description": chart.get("description"),
        "certified_by": None,
        "certification_details": None,
        "viz_type": viz,
        "params": params,
        "query_context": None,
        "cache_timeout": None,
        "uuid": object_uuid("chart", f"{slug}:{chart['title']}:{chart['type']}"),
        "version": VERSION,
        "dataset_uuid": object_uuid("dataset", chart["dataset"]),
    }


def _number(chart: Mapping[str, Any], metrics: list[str], time: str, number_format: str) -> tuple[str, dict[str, Any]]:
    return "big_number_total", {"metric": metrics[0], "header_font_size": 0.4, "subheader_font_size": 0.15}


def _line(chart: Mapping[str, Any], metrics: list[str], time: str, number_format: str) -> tuple[str, dict[str, Any]]:
    """Metrics per time grain (a day unless the dashboard's time grain filter says otherwise)."""
    return "echarts_timeseries_line", {
        "x_axis": time,
        "time_grain_sqla": "P1D",
        "metrics": metrics,
        "groupby": [],
        "row_limit": 10000,
        "rich_tooltip": True,
        "show_legend": True,
        "legendOrientation": "top",
    }


def _pie(chart: Mapping[str, Any], metrics: list[str], time: str, number_format: str) -> tuple[str, dict[str, Any]]:
    return "pie", {
        "groupby": [chart.get("label", "label")],
        "metric": metrics[0],
        "row_limit": TOP_ROWS,
        "sort_by_metric": True,
        "show_legend": True,
        "label_type": "key_percent",
        "number_format": number_format,
    }


def _table(chart: Mapping[str, Any], metrics: list[str], time: str, number_format: str) -> tuple[str, dict[str, Any]]:
    """The top rows by the first metric, per label (a report's) or per another column of the mart."""
    return "table", {
        "query_mode": "aggregate",
        "groupby": [chart.get("label", "label")],
        "metrics": metrics,
        "timeseries_limit_metric": metrics[0],
        "order_desc": True,
        "row_limit": TOP_ROWS,
        "server_page_length": TOP_ROWS,
        "table_timestamp_format": "%Y-%m-%d %H:%M",
    }


#: Each kind of chart of dashboards.yml: Superset's visualisation and its parameters.
_VIZ = {"number": _number, "line": _line, "pie": _pie, "table": _table}


def _time_range(column: str) -> dict[str, Any]:
    """The dashboard's time range applies here (none until a range is chosen)."""
    return {
        "clause": "WHERE",
        "expressionType": "SIMPLE",
        "subject": column,
        "operator": "TEMPORAL_RANGE",
        "comparator": "No filter",
    }


def _equals(column: str, value: str) -> dict[str, Any]:
    return {"clause": "WHERE", "expressionType": "SIMPLE", "subject": column, "operator": "==", "comparator": value}
