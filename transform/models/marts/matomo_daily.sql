-- Per site and site-local day, in the sense of Matomo's VisitsSummary.get: a visit counts on
-- the day of its last action (nb_visits), and nb_actions adds up the visits' `actions`
-- (pageviews, events, downloads, outlinks, site searches), so the warehouse reconciles with Matomo.
-- An incremental run recomputes only the (site, day) rows of the visits `matomo_visits` changed (their
-- day and the day they were on before), and of the days a reconcile run deleted visits from
-- (matomo_reconcile_log). A day no visit is on any more loses its row.
{{
  config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['idsite', 'site_day'],
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['idsite', 'site_day'], 'unique': True}, {'columns': ['loaded_at']}],
    post_hook=["delete from {{ this }} where nb_visits = 0", "{{ matomo_commit_load_mark(this) }}"],
  )
}}

-- depends_on: {{ ref('matomo_reconcile_log') }}

{%- set since = matomo_reload_since(this, [ref('matomo_visits'), ref('matomo_reconcile_log')], is_incremental()) -%}
{% if is_incremental() %}
with touched_days as (
    select distinct idsite, site_day
    from {{ ref('matomo_visits') }}
    where loaded_at > {{ since }}
    union
    -- the days those visits were on before, which a visit whose day changed has left
    select idsite, previous_site_day
    from {{ ref('matomo_visits') }}
    where loaded_at > {{ since }} and previous_site_day is not null
    union
    -- days whose gone visits a reconcile run deleted (their rows here are deleted with them)
    select idsite, site_day
    from {{ ref('matomo_reconcile_log') }}
    where loaded_at > {{ since }} and outcome = 'deleted'
)
{% endif %}

{%- set day = 't' if is_incremental() else 'v' %}
select
    {{ day }}.idsite,
    {{ day }}.site_day,
    min(v.sitename) as sitename,
    count(v.idvisit) as nb_visits,
    sum(v.actions) as nb_actions,
    sum(v.pageviews) as pageviews,
    sum(v.events) as events,
    sum(v.downloads) as downloads,
    sum(v.outlinks) as outlinks,
    sum(v.searches) as searches,
    sum(v.conversions) as conversions,
    sum(v.orders) as orders,
    sum(v.order_revenue) as revenue,
    max(v.loaded_at) as loaded_at
{% if is_incremental() %}
-- every touched day, those left without a visit too: their row is replaced by an empty one, which the
-- post-hook deletes (delete+insert only replaces the days the new rows name)
from touched_days t
left join {{ ref('matomo_visits') }} v on v.idsite = t.idsite and v.site_day = t.site_day
group by t.idsite, t.site_day
{% else %}
from {{ ref('matomo_visits') }} v
group by v.idsite, v.site_day
{% endif %}
