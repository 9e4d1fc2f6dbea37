-- One row per visit: its fields (as of its latest extraction), first and last action, the
-- site-local day of its last action, action counts per type and revenue. An incremental run
-- recomputes only the visits whose rows `matomo` replaced since the last run (their rows loaded
-- since, through the `loaded_at` indexes, within the weeks those rows are in, less the visits
-- already counted as they are). A visit whose day changed (a hit after midnight with
-- create_new_visit_after_midnight=0) keeps the day it left in `previous_site_day`, which
-- matomo_daily then recomputes; null otherwise, and on a rebuild.
{{
  config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='idvisit',
    on_schema_change='append_new_columns',
    indexes=[
      {'columns': ['idvisit'], 'unique': True},
      {'columns': ['loaded_at']},
      {'columns': ['idsite', 'site_day']},
    ],
    post_hook="{{ matomo_commit_load_mark(this) }}",
  )
}}

{%- set since = matomo_reload_since(this, [ref('matomo')], is_incremental()) -%}
{% if is_incremental() %}
{%- set window = matomo_visits_window(ref('matomo'), 'action_timestamp', 'loaded_at > ' ~ since) -%}
-- A visit whose rows loaded since are as this table last counted them (the same newest load time,
-- as many rows) is skipped: `matomo` replaced nothing of it, so a run with nothing new writes nothing.
with touched_visits as (
    select recent.idvisit
    from (
        select idvisit, max(loaded_at) as loaded_at, count(*) as action_items
        from {{ ref('matomo') }}
        where loaded_at > {{ since }}
        group by idvisit
    ) recent
    left join {{ this }} held
        on held.idvisit = recent.idvisit
        and held.loaded_at = recent.loaded_at
        and held.action_items = recent.action_items
    where held.idvisit is null
),
{% else %}
with
{% endif %}

visits as (
select
    idvisit,
    min(idsite) as idsite,
    min(sitename) as sitename,
    min(site_timezone) as site_timezone,
    min(visitorid) as visitorid,
    min(userid) as userid,
    min(fingerprint) as fingerprint,
    min(visitortype) as visitortype,
    min(visitcount) as visitcount,
    min(referrertype) as referrertype,
    min(referrername) as referrername,
    min(referrerkeyword) as referrerkeyword,
    min(country) as country,
    min(countrycode) as countrycode,
    min(region) as region,
    min(city) as city,
    min(devicetype) as devicetype,
    min(browsername) as browsername,
    min(operatingsystemname) as operatingsystemname,
    min(resolution) as resolution,
    min(language_code) as language_code,
    min(visitduration) as visitduration,
    min(actions) as actions,
    min(visitconverted) as visitconverted,
    min(visitecommercestatus) as visitecommercestatus,
    min(truncated_actions_count) as truncated_actions_count,
    min(visit_first_action_at) as visit_first_action_at,
    min(visit_last_action_at) as visit_last_action_at,
    ({{ site_local('min(visit_last_action_at)', 'min(site_timezone)') }})::date as site_day,
    min(action_timestamp) as first_action_at,
    max(action_timestamp) as last_action_at,
    count(*) as action_items,
    count(*) filter (where action_type = 'action') as pageviews,
    count(*) filter (where action_type = 'event') as events,
    count(*) filter (where action_type = 'download') as downloads,
    count(*) filter (where action_type = 'outlink') as outlinks,
    count(*) filter (where action_type = 'search') as searches,
    count(*) filter (where action_type = 'content') as contents,
    count(*) filter (where action_type = 'goal') as conversions,
    count(*) filter (where action_type = 'ecommerceOrder') as orders,
    count(*) filter (where action_type = 'ecommerceAbandonedCart') as abandoned_carts,
    coalesce(sum(revenue) filter (where action_type = 'ecommerceOrder'), 0) as order_revenue,
    coalesce(sum(revenue) filter (where action_type = 'goal'), 0) as goal_revenue,
    max(loaded_at) as loaded_at
from {{ ref('matomo') }}
{% if is_incremental() %}
-- All rows of the touched visits, looked up only in the weeks they can be in.
where idvisit in (select idvisit from touched_visits)
    and action_timestamp between {{ window[0] }} and {{ window[1] }}
{% endif %}
group by idvisit
)

select
    visits.*,
    {% if is_incremental() -%}
    nullif(before.site_day, visits.site_day)
    {%- else -%}
    null::date
    {%- endif %} as previous_site_day
from visits
{% if is_incremental() %}
left join {{ this }} before on before.idvisit = visits.idvisit
{% endif %}
