{#-
  The main table, as the Node tool's users know it (name from DESTINATION_TABLE), typed,
  partitioned by ISO week on action_timestamp and indexed. Each run reads only the visits
  loaded since the previous run and replaces all their rows.
-#}
{%- set indexes = [] -%}
{%- for column in ['action_eventaction', 'action_eventcategory', 'action_timestamp', 'action_type', 'action_url',
                   'dimension1', 'dimension2', 'dimension3', 'dimension4', 'dimension5',
                   'idvisit', 'region', 'userid', 'visitorid'] -%}
  {%- do indexes.append({'columns': [column]}) -%}
{%- endfor -%}
{%- do indexes.append({'columns': ['action_eventcategory', 'action_timestamp']}) -%}
{%- do indexes.append({'name': var('destination_table') ~ '_action_day_idx',
                       'expression': "date(action_timestamp at time zone 'UTC')"}) -%}
{{
  config(
    materialized='partitioned_incremental',
    alias=var('destination_table'),
    partition_by='action_timestamp',
    replace_key='idvisit',
    unique_key=['action_id', 'action_timestamp'],
    partition_indexes=indexes,
  )
}}

select *
from {{ ref('stg_matomo__visits_actions') }}
{% if matomo_is_incremental() %}
where idvisit in (
    select idvisit
    from {{ source('matomo_raw', 'visits_actions') }}
    where (_sdc_batched_at at time zone 'UTC') > (select coalesce(max(loaded_at), '-infinity') from {{ this }})
)
{% endif %}
