-- Reports of visits by a visit's dimension: channels and referrers, countries and cities, devices, browsers and operating systems, the server hour a visit started, custom dimensions (their action-scope ones count nb_hits).
-- One row per report, site, period, period start, segment, parameters and row of the answer: the current rows of each
-- report of the family (var report_families.visitors), metrics numeric (macros/reports.sql).
{{ config(materialized='view') }}
{%- set reports = var('report_families')['visitors'] %}
{%- for report in reports %}
-- depends_on: {{ source('matomo_raw', report) }}
{%- endfor %}
-- depends_on: {{ source('matomo_raw', 'report_fetches') }}

{{ matomo_report_rows(reports, ["nb_visits", "nb_uniq_visitors", "nb_users", "nb_actions", "nb_hits", "sum_visit_length", "bounce_count", "nb_visits_converted", "nb_conversions", "revenue", "bounce_rate", "avg_time_on_site"]) }}
