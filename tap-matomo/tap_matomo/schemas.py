"""JSON schemas of the streams; `visits_actions` comes from the column registry (columns.py)."""

from __future__ import annotations

from singer_sdk import typing as th

from tap_matomo.columns import REQUIRED
from tap_matomo.columns import VISITS_ACTIONS as COLUMNS

_TEXT = th.StringType
_INT = th.IntegerType
_NUM = th.NumberType

VISITS_ACTIONS = th.PropertiesList(
    *(
        th.Property(
            column.name, column.json_type, required=column.name in REQUIRED, description=column.description or None
        )
        for column in COLUMNS
    )
).to_dict()

SITES = th.PropertiesList(
    th.Property("idsite", _INT, required=True),
    th.Property("name", _TEXT),
    th.Property("main_url", _TEXT),
    th.Property("timezone", _TEXT),
    th.Property("currency", _TEXT),
    th.Property("ecommerce", th.BooleanType),
    th.Property("sitesearch", th.BooleanType),
    th.Property("type", _TEXT),
    th.Property("ts_created", th.DateTimeType, description="UTC"),
).to_dict()

CUSTOM_DIMENSIONS = th.PropertiesList(
    th.Property("idsite", _INT, required=True),
    th.Property("idcustomdimension", _INT, required=True),
    th.Property("name", _TEXT),
    th.Property("scope", _TEXT, description="visit or action"),
    th.Property("index", _INT),
    th.Property("active", th.BooleanType),
    th.Property("case_sensitive", th.BooleanType),
    th.Property("extractions", th.ArrayType(th.ObjectType(additional_properties=True))),
).to_dict()

GOALS = th.PropertiesList(
    th.Property("idsite", _INT, required=True),
    th.Property("idgoal", _INT, required=True),
    th.Property("name", _TEXT),
    th.Property("description", _TEXT),
    th.Property("match_attribute", _TEXT),
    th.Property("pattern", _TEXT),
    th.Property("pattern_type", _TEXT),
    th.Property("case_sensitive", th.BooleanType),
    th.Property("allow_multiple", th.BooleanType),
    th.Property("revenue", _NUM),
    th.Property("deleted", th.BooleanType),
    th.Property("event_value_as_revenue", th.BooleanType),
).to_dict()

RECONCILED_DAYS = th.PropertiesList(
    th.Property("idsite", _INT, required=True),
    th.Property("site_day", th.DateType, required=True, description="site-local day listed in full"),
    th.Property("visits_listed", _INT, description="visits whose last action is on the day, as Matomo listed them"),
    th.Property("actions_listed", _INT, description="their actionDetails items (the rows of `visits_actions`)"),
    th.Property("listed_at", th.DateTimeType, description="UTC, when the run that listed the day started"),
).to_dict()

VISITS_SUMMARY = th.PropertiesList(
    th.Property("idsite", _INT, required=True),
    th.Property("site_day", th.DateType, required=True),
    th.Property("nb_visits", _INT, description="Matomo's own count (VisitsSummary.get, period=day)"),
    th.Property("nb_actions", _INT),
    th.Property("nb_uniq_visitors", _INT),
    th.Property("fetched_at", th.DateTimeType, description="UTC, when Matomo answered"),
).to_dict()

REPORT_FETCHES = th.PropertiesList(
    th.Property("report", _TEXT, required=True, description="the report stream's name"),
    th.Property("idsite", _INT, required=True),
    th.Property("period", _TEXT, required=True),
    th.Property("period_start", th.DateType, required=True),
    th.Property("segment", _TEXT, required=True),
    th.Property("params", _TEXT, required=True),
    th.Property("rows", _INT, description="rows of the answer (0: empty, as for a period Matomo has not archived)"),
    th.Property("is_final", th.BooleanType, description="the answer's rows are final (reports/report_stream.py)"),
    th.Property("fetched_at", th.DateTimeType, description="UTC, when Matomo answered (the answer's rows carry it)"),
).to_dict()
