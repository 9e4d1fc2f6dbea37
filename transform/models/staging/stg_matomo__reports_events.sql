-- Events by category, action and name (flat: "category - action" and so on).
-- One row per report, site, period, period start, segment, parameters and row of the answer: the current rows of each
-- report of the family (var report_families.events), metrics numeric (macros/reports.sql).
{{ config(materialized='view') }}
{%- set reports = var('report_families')['events'] %}
{%- for report in reports %}
-- depends_on: {{ source('matomo_raw', report) }}
{%- endfor %}
-- depends_on: {{ source('matomo_raw', 'report_fetches') }}

{{ matomo_report_rows(reports, ["nb_visits", "nb_uniq_visitors", "nb_events", "nb_events_with_value", "sum_event_value", "min_event_value", "max_event_value", "avg_event_value"]) }}
