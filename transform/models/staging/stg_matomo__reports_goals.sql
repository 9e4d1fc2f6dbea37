-- Goals.get: conversions and revenue of all goals, of each goal (params idGoal=N) and of ecommerce orders.
-- One row per report, site, period, period start, segment, parameters and row of the answer: the current rows of each
-- report of the family (var report_families.goals), metrics numeric (macros/reports.sql).
{{ config(materialized='view') }}
{%- set reports = var('report_families')['goals'] %}
{%- for report in reports %}
-- depends_on: {{ source('matomo_raw', report) }}
{%- endfor %}
-- depends_on: {{ source('matomo_raw', 'report_fetches') }}

{{ matomo_report_rows(reports, ["nb_conversions", "nb_visits_converted", "revenue", "conversion_rate", "items"]) }}
