-- The Actions reports row by row: page URLs (full paths) and titles, entry and exit pages, site search keywords, downloads and outlinks.
-- One row per report, site, period, period start, segment, parameters and row of the answer: the current rows of each
-- report of the family (var report_families.pages), metrics numeric (macros/reports.sql).
{{ config(materialized='view') }}
{%- set reports = var('report_families')['pages'] %}
{%- for report in reports %}
-- depends_on: {{ source('matomo_raw', report) }}
{%- endfor %}
-- depends_on: {{ source('matomo_raw', 'report_fetches') }}

{{ matomo_report_rows(reports, ["nb_hits", "nb_visits", "nb_uniq_visitors", "sum_time_spent", "entry_nb_visits", "entry_bounce_count", "exit_nb_visits", "bounce_rate", "exit_rate", "avg_time_on_page"]) }}
