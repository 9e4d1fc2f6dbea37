-- Actions.get: pageviews, downloads, outlinks and site searches per period.
-- One row per report, site, period, period start, segment, parameters and row of the answer: the current rows of each
-- report of the family (var report_families.actions), metrics numeric (macros/reports.sql).
{{ config(materialized='view') }}
{%- set reports = var('report_families')['actions'] %}
{%- for report in reports %}
-- depends_on: {{ source('matomo_raw', report) }}
{%- endfor %}
-- depends_on: {{ source('matomo_raw', 'report_fetches') }}

{{ matomo_report_rows(reports, ["nb_pageviews", "nb_uniq_pageviews", "nb_downloads", "nb_uniq_downloads", "nb_outlinks", "nb_uniq_outlinks", "nb_searches", "nb_keywords"]) }}
