-- Per site and site-local day, in the sense of Matomo's VisitsSummary.get: a visit counts on
-- the day of its last action (nb_visits), and nb_actions adds up the visits' `actions`
-- (pageviews, events, downloads, outlinks, site searches), so the warehouse reconciles with Matomo.
-- An incremental run recomputes only the (site, day) rows of the visits `matomo_visits` changed,
-- and of the days a reconcile run deleted visits from (matomo_reconcile_log).
{{
  config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['idsite', 'site_day'],
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['idsite', 'site_day'], 'unique': True}, {'columns': ['loaded_at']}],
  )
}}

-- depends_on: {{ ref('matomo_reconcile_log') }}

{% if is_incremental() %}
{%- set since = matomo_reload_since(this) -%}
with touched_days as (
    select distinct idsite, site_day
    from {{ ref('matomo_visits') }}
    where loaded_at > {{ since }}
    union
    -- days whose gone visits a reconcile run deleted (their rows here are deleted with them)
    select idsite, site_day
    from {{ ref('matomo_reconcile_log') }}
    where loaded_at > {{ since }} and outcome = 'deleted'
)
{% endif %}

select
    idsite,
    site_day,
    min(sitename) as sitename,
    count(*) as nb_visits,
    sum(actions) as nb_actions,
    sum(pageviews) as pageviews,
    sum(events) as events,
    sum(conversions) as conversions,
    sum(orders) as orders,
    sum(order_revenue) as revenue,
    max(loaded_at) as loaded_at
from {{ ref('matomo_visits') }}
{% if is_incremental() %}
where (idsite, site_day) in (select idsite, site_day from touched_days)
{% endif %}
group by idsite, site_day
