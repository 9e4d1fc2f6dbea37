-- VisitsSummary.get: the site's visits, unique visitors, actions and bounces per period (unique visitors of a week or month are Matomo's own, not a sum of days).
-- One row per report, site, period, period start, segment, parameters and row of the answer: the current rows of each
-- report of the family (var report_families.visits), metrics numeric (macros/reports.sql).
{{ config(materialized='view') }}
{%- set reports = var('report_families')['visits'] %}
{%- for report in reports %}
-- depends_on: {{ source('matomo_raw', report) }}
{%- endfor %}
-- depends_on: {{ source('matomo_raw', 'report_fetches') }}

{{ matomo_report_rows(reports, ["nb_visits", "nb_uniq_visitors", "nb_users", "nb_actions", "nb_visits_converted", "bounce_count", "sum_visit_length", "max_actions", "bounce_rate", "nb_actions_per_visit", "avg_time_on_site"]) }}
