-- Per site and site-local day, in the sense of Matomo's VisitsSummary.get: a visit counts on
-- the day of its last action (nb_visits), and nb_actions adds up the visits' `actions`
-- (pageviews, events, downloads, outlinks, site searches), so the warehouse reconciles with Matomo.
with visits as (
    select
        *,
        ({{ site_local('visit_last_action_at', 'site_timezone') }})::date as site_day
    from {{ ref('matomo_visits') }}
)

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
    sum(order_revenue) as revenue
from visits
group by idsite, site_day
