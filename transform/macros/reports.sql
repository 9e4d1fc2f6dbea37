{#
  Matomo's reports (tap-matomo's report_* streams): each report is a raw table, one row per site, period,
  period start, segment, parameters and row of the answer (`row_index`: Matomo's labels are not unique,
  two rows of one answer can carry the same label), upserted on those. A period read again (the trailing window,
  a late archive) replaces its rows in place, but a label the new answer no longer has would stay: the
  tap reports every answer it read in `report_fetches` (upserted per period: the latest answer), and a
  report's current rows are those whose `fetched_at` is that answer's.

  A report table exists once the tap has read that report (and reports can be switched off): the
  macros below read only the tables that exist, so the models build before, and without, any report.
#}

{# The raw table of a report, or none while the tap has not read it. #}
{% macro matomo_report_relation(report) -%}
  {%- if not execute -%}{{ return(none) }}{%- endif -%}
  {{ return(adapter.get_relation(database=target.database, schema=var('raw_schema'), identifier=report)) }}
{%- endmacro %}


{#
  The current rows of the given reports, one select per report table that exists, unioned: the keys,
  the row's position in its answer, label and label path, each of `metrics` as numeric (a column of the report, else from its
  other_metrics, else null), whether the answer was final, and when it was read.
#}
{% macro matomo_report_rows(reports, metrics) %}
  {%- set fetches = matomo_report_relation('report_fetches') -%}
  {%- set selects = [] -%}
  {%- for report in reports -%}
    {%- set relation = matomo_report_relation(report) -%}
    {%- if relation is not none and fetches is not none -%}
      {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
      {%- set values = [] -%}
      {%- for metric in metrics -%}
        {%- if metric in columns -%}
          {%- do values.append('r.' ~ adapter.quote(metric) ~ '::numeric as ' ~ metric) -%}
        {%- elif 'other_metrics' in columns -%}
          {%- do values.append("(r.other_metrics->>" ~ dbt.string_literal(metric) ~ ")::numeric as " ~ metric) -%}
        {%- else -%}
          {%- do values.append('null::numeric as ' ~ metric) -%}
        {%- endif -%}
      {%- endfor -%}
      {%- set select -%}
    select
        {{ dbt.string_literal(report) }}::text as report,
        r.idsite::integer as idsite,
        r.period::text as period,
        r.period_start::date as period_start,
        r.period_end::date as period_end,
        r.segment::text as segment,
        r.params::text as params,
        {{ 'r.row_index' if 'row_index' in columns else 'null' }}::integer as row_index,
        r.label::text as label,
        to_jsonb(r.label_path) as label_path,
        {{ values | join(',\n        ') }},
        r.is_final::boolean as is_final,
        (r.fetched_at at time zone 'UTC')::timestamptz as fetched_at
    from {{ relation }} r
    join {{ fetches }} f
      on f.report = {{ dbt.string_literal(report) }}
     and f.idsite = r.idsite and f.period = r.period and f.period_start = r.period_start
     and f.segment = r.segment and f.params = r.params and f.fetched_at = r.fetched_at
      {%- endset -%}
      {%- do selects.append(select) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if selects -%}
    {{ selects | join('\n    union all\n') }}
  {%- else %}
    {#- No report read yet: no row, typed. #}
    select null::text as report, null::integer as idsite, null::text as period, null::date as period_start,
        null::date as period_end, null::text as segment, null::text as params, null::integer as row_index,
        null::text as label,
        null::jsonb as label_path,
        {% for metric in metrics %}null::numeric as {{ metric }}, {% endfor %}
        null::boolean as is_final, null::timestamptz as fetched_at
    where false
  {%- endif %}
{% endmacro %}
