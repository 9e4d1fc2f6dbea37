-- What each reconcile run found, per site and site-local day it listed in full (one row per day
-- and run). A visit the warehouse holds on such a day that the run did not load again is gone from
-- Matomo: erased with the GDPR tools, or purged with its whole day (delete_logs_older_than).
--   outcome = 'deleted'    the gone visits are deleted from the raw table, matomo and matomo_visits
--                          (post-hooks below; matomo_daily then recomputes the day);
--             'reported'   Matomo listed no visit at all on the day while the warehouse holds some:
--                          a purge, kept (the warehouse is often the long-term store) unless
--                          var reconcile_delete_purged_days is true;
--             'incomplete' not every visit the run listed has landed (a load still missing): nothing
--                          is decided for the day;
--             'matches'    nothing gone.
-- A day whose deletions exceed var reconcile_max_delete_share of its visits stops the build with a
-- message, and nothing is deleted. Incremental: only reconcile loads newer than the last one seen
-- (less reload_overlap_minutes), each listing decided once.
{{
  config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['loaded_at']}, {'columns': ['idsite', 'site_day']}],
    post_hook=[
      "{{ matomo_reconcile_guard(this) }}",
      "{{ matomo_delete_gone_visits(this) }}",
      "{{ matomo_commit_load_mark(this) }}",
    ],
  )
}}
-- depends_on: {{ ref('matomo') }}
{#- The tap emits reconciled_days in reconcile mode only: until a first reconcile run, no listing. -#}
{%- set listings = source('matomo_raw', 'reconciled_days') -%}
{%- set listed_yet = (load_relation(listings) is not none) if execute else true %}
{%- set since = matomo_reload_since(this, incremental=is_incremental()) %}

with listed as (
    {% if not listed_yet -%}
    select null::integer as idsite, null::date as site_day, null::integer as visits_listed,
        null::integer as actions_listed, null::timestamptz as run_started_at, null::timestamptz as listed_at,
        null::timestamptz as loaded_at
    where false
    {%- else -%}
    select distinct on (idsite, site_day)
        idsite,
        site_day::date as site_day,
        visits_listed,
        actions_listed,
        to_timestamp(_sdc_sync_started_at / 1000.0) as run_started_at,
        (listed_at at time zone 'UTC')::timestamptz as listed_at,
        (_sdc_batched_at at time zone 'UTC')::timestamptz as loaded_at
    from {{ listings }}
    {% if is_incremental() %}
    where (_sdc_batched_at at time zone 'UTC')::timestamptz > {{ since }}
    {% endif %}
    order by idsite, site_day, _sdc_batched_at desc
    {%- endif %}
),

-- A listing is decided once: the reload overlap reads recent listings again, and only a day that
-- was incomplete (its visits still landing) is decided again.
reconciled as (
    select *
    from listed l
    {% if is_incremental() %}
    where not exists (
        select from {{ this }} decided
        where decided.idsite = l.idsite
          and decided.site_day = l.site_day
          and decided.run_started_at = l.run_started_at
          and decided.outcome <> 'incomplete'
    )
    {% endif %}
),

held as (
    select
        r.idsite,
        r.site_day,
        v.idvisit,
        v.loaded_at >= r.run_started_at as listed_again,
        -- A listing of today is taken as the run starts: a visit whose last action is later (loaded by
        -- an hourly run meanwhile) was not there to be listed, and cannot be judged gone. The tap's own
        -- start (listed_at), on the same clock as Matomo's times, not the loader's.
        v.visit_last_action_at >= r.listed_at as after_listing
    from reconciled r
    join {{ ref('matomo_visits') }} v on v.idsite = r.idsite and v.site_day = r.site_day
),

days as (
    select
        r.idsite,
        r.site_day,
        r.visits_listed,
        r.actions_listed,
        count(h.idvisit) as visits_held,
        count(h.idvisit) filter (where h.listed_again) as visits_landed,
        coalesce(
            array_agg(h.idvisit order by h.idvisit) filter (where not h.listed_again and not h.after_listing), '{}'
        ) as gone_idvisits,
        r.run_started_at,
        r.loaded_at
    from reconciled r
    left join held h on h.idsite = r.idsite and h.site_day = r.site_day
    group by r.idsite, r.site_day, r.visits_listed, r.actions_listed, r.run_started_at, r.loaded_at
)

select
    idsite,
    site_day,
    visits_listed,
    actions_listed,
    visits_held,
    cardinality(gone_idvisits) as visits_gone,
    gone_idvisits,
    case
        when visits_landed < visits_listed then 'incomplete'
        when cardinality(gone_idvisits) = 0 then 'matches'
        when visits_listed = 0 and not {{ var('reconcile_delete_purged_days') }} then 'reported'
        else 'deleted'
    end as outcome,
    run_started_at,
    loaded_at,
    now() as checked_at
from days
