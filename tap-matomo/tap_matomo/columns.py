"""The one declaration of the `visits_actions` columns: name, scope, Matomo source and type.

Everything else follows from it: the stream's JSON schema (schemas.py), the mapper's plain
columns (raw/records.py) and, checked by tests/test_column_registry.py, the dbt staging model's
casts and the marts that repeat visit columns. Order is docs/data-contract.md's.

`source` names the Matomo key read and coerced by the column's type; a column without a
source is derived by raw/records.py (a test fails when the two disagree).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from singer_sdk import typing as th

#: How many `dimensionN` columns the table carries flat (the rest stay in usercustomdimensions).
DIMENSION_SLOTS = 10

Scope = t.Literal["key", "visit", "action"]
#: The column's type in the warehouse; the JSON Schema type follows from it (see `json_type`).
SqlType = t.Literal["text", "integer", "bigint", "numeric", "date", "timestamptz", "jsonb"]


@dataclass(frozen=True)
class Column:
    name: str
    scope: Scope
    sql_type: SqlType
    source: str | None = None  # Matomo key of the visit or action; None: derived in raw/records.py
    description: str = ""
    json_schema: th.JSONTypeHelper[t.Any] | None = None  # for jsonb columns: their shape

    @property
    def json_type(self) -> th.JSONTypeHelper[t.Any]:
        if self.json_schema is not None:
            return self.json_schema
        by_sql_type: dict[str, th.JSONTypeHelper[t.Any]] = {
            "text": th.StringType(),
            "integer": th.IntegerType(),
            "bigint": th.IntegerType(),
            "numeric": th.NumberType(),
            "date": th.DateType(),
            "timestamptz": th.DateTimeType(),
            "jsonb": th.ObjectType(additional_properties=True),
        }
        return by_sql_type[self.sql_type]


def _visit(name: str, sql_type: SqlType, source: str | None = None, description: str = "") -> Column:
    return Column(name, "visit", sql_type, source, description)


def _action(name: str, sql_type: SqlType, source: str | None = None, description: str = "") -> Column:
    return Column(name, "action", sql_type, source, description)


_ITEM = th.ObjectType(
    th.Property("sku", th.StringType),
    th.Property("name", th.StringType),
    th.Property("category", th.StringType),
    th.Property("categories", th.ArrayType(th.StringType)),
    th.Property("price", th.NumberType),
    th.Property("quantity", th.NumberType),
)

VISITS_ACTIONS: tuple[Column, ...] = (
    # Columns kept from the Node tool (@socialgouv/matomo-postgres).
    Column("action_id", "key", "text", description="{idvisit}_{position}, the action's key (the Node tool's)"),
    _visit("idsite", "integer", description="visit idSite (the site's id when absent)"),
    _visit("idvisit", "bigint", "idVisit"),
    _visit("actions", "integer", "actions"),
    _visit("country", "text", "country"),
    _visit("region", "text", "region"),
    _visit("city", "text", "city"),
    _visit("operatingsystemname", "text", "operatingSystemName"),
    _visit("devicemodel", "text", "deviceModel"),
    _visit("devicebrand", "text", "deviceBrand"),
    _visit("visitduration", "integer", "visitDuration"),
    _visit("dayssincefirstvisit", "integer", "daysSinceFirstVisit"),
    _visit("visitortype", "text", "visitorType"),
    _visit("sitename", "text", "siteName"),
    _visit("userid", "text", "userId"),
    _visit("serverdateprettyfirstaction", "date", description="site-local date of the first action"),
    _action("action_type", "text", description="Matomo's type; content items are `content`"),
    _action("action_eventcategory", "text", "eventCategory"),
    _action("action_eventaction", "text", "eventAction"),
    _action("action_eventname", "text", "eventName"),
    _action("action_eventvalue", "numeric", "eventValue"),
    _action("action_timespent", "integer", "timeSpent"),
    _action("action_timestamp", "timestamptz", description="true UTC instant of the action"),
    _action("usercustomproperties", "jsonb", description="page-scope custom variables {name: value}"),
    _action("usercustomdimensions", "jsonb", description="{dimensionN: value}, action scope winning"),
    *(_action(f"dimension{n}", "text", description="flat copy of dimensionN") for n in range(1, DIMENSION_SLOTS + 1)),
    _action("action_url", "text", "url"),
    _action("sitesearchkeyword", "text", "siteSearchKeyword"),
    _action("action_title", "text", "title"),
    _visit("visitorid", "text", "visitorId"),
    _visit("referrertype", "text", "referrerType"),
    _visit("referrername", "text", "referrerName"),
    _visit("resolution", "text", "resolution"),
    Column(
        "experiments",
        "visit",
        "jsonb",
        description="A/B testing plugin",
        json_schema=th.ArrayType(th.ObjectType(additional_properties=True)),
    ),
    # Visit columns the Node tool drops.
    _visit("visitcount", "integer", "visitCount"),
    _visit("fingerprint", "text", "fingerprint"),
    _visit("countrycode", "text", "countryCode"),
    _visit("regioncode", "text", "regionCode"),
    _visit("continentcode", "text", "continentCode"),
    _visit("latitude", "numeric", "latitude"),
    _visit("longitude", "numeric", "longitude"),
    _visit("language_code", "text", "languageCode"),
    _visit("browsername", "text", "browserName"),
    _visit("browserversion", "text", "browserVersion"),
    _visit("browserfamily", "text", "browserFamily"),
    _visit("operatingsystemversion", "text", "operatingSystemVersion"),
    _visit("devicetype", "text", "deviceType"),
    _visit("referrerkeyword", "text", "referrerKeyword"),
    _visit("referrerurl", "text", "referrerUrl"),
    _visit("visitconverted", "integer", "visitConverted"),
    _visit("visitecommercestatus", "text", "visitEcommerceStatus"),
    _visit("goalconversions", "integer", "goalConversions"),
    _visit("events", "integer", "events"),
    _visit("searches", "integer", "searches"),
    _visit("interactions", "integer", "interactions"),
    _visit("visit_first_action_at", "timestamptz", description="UTC"),
    _visit("visit_last_action_at", "timestamptz", description="UTC"),
    _visit("visit_custom_variables", "jsonb", description="visit-scope custom variables {name: value}"),
    _visit("truncated_actions_count", "integer", "truncatedActionsCount", "set when Matomo cut the visit"),
    _visit("site_timezone", "text", description="the site's timezone"),
    _visit("site_currency", "text", description="the visit's siteCurrency, else the site's"),
    _visit("visitip", "text", description="only with include_visitor_ip"),
    # Action columns the Node tool drops.
    _action("action_position", "integer", description="0-based index in actionDetails"),
    _action("action_idlink_va", "bigint", "pageId"),
    _action("action_idpageview", "text", "idpageview"),
    _action("action_page_title", "text", "pageTitle"),
    _action("action_page_load_ms", "integer", description="pageLoadTimeMilliseconds (older: generationTime...)"),
    _action("sitesearchcategory", "text", "siteSearchCategory"),
    _action("sitesearchcount", "integer", "siteSearchCount"),
    _action("content_name", "text", "contentName"),
    _action("content_piece", "text", "contentPiece"),
    _action("content_target", "text", "contentTarget"),
    _action("content_interaction", "text", "contentInteraction"),
    _action("goal_id", "integer", "goalId"),
    _action("goal_name", "text", "goalName"),
    _action("goal_page_idlink_va", "bigint", "goalPageId"),
    _action("revenue", "numeric", "revenue"),
    _action("order_id", "text", "orderId"),
    _action("revenue_subtotal", "numeric", "revenueSubTotal"),
    _action("revenue_tax", "numeric", "revenueTax"),
    _action("revenue_shipping", "numeric", "revenueShipping"),
    _action("revenue_discount", "numeric", "revenueDiscount"),
    _action("items_count", "integer", description="items of an order or abandoned cart"),
    Column("items", "action", "jsonb", description="ecommerce items", json_schema=th.ArrayType(_ITEM)),
    _action("product_view_sku", "text", "productViewSku"),
    _action("product_view_name", "text", "productViewName"),
    _action("product_view_price", "numeric", "productViewPrice"),
)

BY_NAME: dict[str, Column] = {column.name: column for column in VISITS_ACTIONS}
DIMENSION_NAMES: tuple[str, ...] = tuple(f"dimension{n}" for n in range(1, DIMENSION_SLOTS + 1))
REQUIRED = ("action_id", "idsite", "idvisit", "action_timestamp")
