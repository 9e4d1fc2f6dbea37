{#-
  The main table, as the Node tool's users know it (name from DESTINATION_TABLE), typed,
  partitioned by ISO week on action_timestamp and indexed. Each visit holds the rows of its
  latest extraction only. An incremental run costs what is new: it picks the visits loaded
  since the last run (the raw table's `_sdc_batched_at` index) and not held yet as loaded, reads
  those visits' raw rows (its `idvisit` index), keeps each one's latest extraction and replaces
  its rows.
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
{%- do indexes.append({'columns': ['loaded_at']}) -%}  {#- the incremental runs' watermark and the hourly tests -#}
{{
  config(
    materialized='partitioned_incremental',
    alias=var('destination_table'),
    partition_by='action_timestamp',
    weeks_from='stg_matomo__visits_actions',
    replace_key='idvisit',
    unique_key=['action_id', 'action_timestamp'],
    partition_indexes=indexes,
    on_schema_change='append_new_columns',
    post_hook="{{ matomo_commit_load_mark(this) }}",
  )
}}
{%- set staging = ref('stg_matomo__visits_actions') -%}
{%- set helper_columns = ['sync_started_at'] -%}
{%- set columns = adapter.get_columns_in_relation(staging) | map(attribute='name')
                  | reject('in', helper_columns) | list if execute else [] -%}

{%- set since = matomo_reload_since(this, incremental=matomo_is_incremental()) %}
with
{% if matomo_is_incremental() %}
-- The visits with a raw row loaded since the watermark (the loads committed since the last read, and
-- the overlap) that this table does not
-- hold yet as loaded: a row it holds with the same action_id and load time is the same version
-- (the loader stamps every upserted row with its batch time), and a row of an older extraction
-- than its visit's latest never reaches it (the newer extraction's rows were loaded later, so
-- within the same window). Rows read again within the overlap are skipped: a run with nothing new
-- replaces nothing. EXCEPT compares the two sets whole (hashed or sorted, linear in the window);
-- a join would let the planner probe this table once per raw row.
touched_visits as (
    select distinct idvisit
    from (
        select idvisit, action_id, loaded_at
        from (
            select
                idvisit::bigint as idvisit,
                action_id::text as action_id,
                (_sdc_batched_at at time zone 'UTC') as loaded_at,
                _sdc_sync_started_at,
                max(_sdc_sync_started_at) over (partition by idvisit) as latest_sync_of_visit
            from {{ source('matomo_raw', 'visits_actions') }}
            where _sdc_batched_at > ({{ since }} at time zone 'UTC')
        ) recent
        where _sdc_sync_started_at = latest_sync_of_visit
        except
        select idvisit, action_id, loaded_at
        from {{ this }}
        where loaded_at > {{ since }}
    ) not_held
),
{% endif %}
extractions as (
    select
        *,
        max(sync_started_at) over (partition by idvisit) as latest_sync_of_visit
    from {{ staging }}
    {% if matomo_is_incremental() %}
    where idvisit in (select idvisit from touched_visits)
    {% endif %}
)

select
    {{ columns | join(',\n    ') }}
from extractions
-- Rows without an instant cannot be placed in a weekly partition (the staging test warns).
where sync_started_at = latest_sync_of_visit and action_timestamp is not null
