-- Matomo's own reports, one row per report, site, period (day, week, month, year), period start, segment,
-- parameters (idGoal=1...) and row of Matomo's answer (row_index: labels are not unique, label_rows says
-- how many rows of the answer share a row's label), with the metrics dashboards read under common names;
-- every metric of a row is in the family staging models (stg_matomo__reports_*); the site's name, and the goal's
-- for the reports read per goal. A view: it costs nothing to build,
-- and a query for a site and period reads the raw tables' primary key indexes.
{{ config(materialized='view') }}

{%- set families = {
    'visits': {'visits': 'nb_visits', 'uniq_visitors': 'nb_uniq_visitors', 'actions': 'nb_actions', 'conversions': 'nb_visits_converted'},
    'actions': {'hits': 'nb_pageviews', 'unique_hits': 'nb_uniq_pageviews'},
    'pages': {'visits': 'nb_visits', 'uniq_visitors': 'nb_uniq_visitors', 'hits': 'nb_hits', 'entries': 'entry_nb_visits'},
    'visitors': {'visits': 'nb_visits', 'uniq_visitors': 'nb_uniq_visitors', 'actions': 'nb_actions', 'hits': 'nb_hits', 'conversions': 'nb_conversions', 'revenue': 'revenue'},
    'events': {'visits': 'nb_visits', 'uniq_visitors': 'nb_uniq_visitors', 'hits': 'nb_events'},
    'goals': {'conversions': 'nb_conversions', 'revenue': 'revenue'},
    'products': {'visits': 'nb_visits', 'revenue': 'revenue', 'quantity': 'quantity'},
} %}
{%- set measures = ['visits', 'uniq_visitors', 'actions', 'hits', 'unique_hits', 'entries', 'conversions', 'revenue', 'quantity'] %}

{%- set goals = matomo_report_relation('goals') %}

with report_rows as (
{% for family, names in families.items() %}
select
    report,
    {{ dbt.string_literal(family) }} as family,
    idsite,
    period,
    period_start,
    period_end,
    segment,
    params,
    row_index,
    label,
    count(*) over (partition by report, idsite, period, period_start, segment, params, label) as label_rows,
    label_path,
    {%- for measure in measures %}
    {{ names[measure] if measure in names else 'null::numeric' }} as {{ measure }},
    {%- endfor %}
    is_final,
    fetched_at
from {{ ref('stg_matomo__reports_' ~ family) }}
{% if not loop.last %}union all{% endif %}
{% endfor %}
)

-- The site's and, for a report read per goal (params idGoal=N), the goal's name: Matomo's label of such
-- rows is empty.
select
    r.*,
    s.name as sitename,
    {{ 'g.name' if goals is not none else 'null::text' }} as goal_name
from report_rows r
left join {{ source('matomo_raw', 'sites') }} s on s.idsite = r.idsite
{%- if goals is not none %}
left join {{ goals }} g
  on g.idsite = r.idsite and g.idgoal = substring(r.params from 'idGoal=([0-9]+)')::integer
{%- endif %}
