-- Matomo's own daily totals (VisitsSummary.get, fetched by every run for the days it read) next to
-- the warehouse's (matomo_daily), per site and site-local day, with the difference.
-- `archived`: Matomo's API does not say whether a day's archive is final. A day counts once its
-- totals were fetched at least var('archive_delay_hours') after the day's end in the site's
-- timezone: browser-triggered archiving (Matomo's default) archives a closed day when asked, and
-- core:archive (cron, hourly) archives it within the hour after midnight. Late hits tracked later
-- with past timestamps invalidate that archive; the next fetch brings Matomo's new totals.
{{ config(materialized='view') }}

with summary as (
    select distinct on (idsite, site_day)
        idsite,
        site_day::date as site_day,
        nb_visits,
        nb_actions,
        (fetched_at at time zone 'UTC')::timestamptz as fetched_at
    from {{ source('matomo_raw', 'visits_summary') }}
    order by idsite, site_day, _sdc_batched_at desc
),

sites as (
    select idsite, timezone from {{ source('matomo_raw', 'sites') }}
)

select
    s.idsite,
    s.site_day,
    s.nb_visits as matomo_visits,
    s.nb_actions as matomo_actions,
    coalesce(d.nb_visits, 0) as warehouse_visits,
    coalesce(d.nb_actions, 0) as warehouse_actions,
    coalesce(d.nb_visits, 0) - s.nb_visits as visits_difference,
    coalesce(d.nb_actions, 0) - s.nb_actions as actions_difference,
    s.fetched_at,
    ({{ site_local('s.fetched_at', 'coalesce(t.timezone, \'UTC\')') }})
        >= (s.site_day + 1)::timestamp + interval '{{ var("archive_delay_hours") | int }} hours' as archived
from summary s
left join sites t on t.idsite = s.idsite
left join {{ ref('matomo_daily') }} d on d.idsite = s.idsite and d.site_day = s.site_day
