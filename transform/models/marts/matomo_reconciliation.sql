-- Matomo's own daily totals (VisitsSummary.get, fetched by every run for the days it read) next to
-- the warehouse's (matomo_daily), per site and site-local day, with the difference; and, when the tap
-- reads reports, Actions.get's pageviews, downloads, outlinks and site searches (final as the tap says).
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
),

-- Actions.get of the day (report_actions_summary), when the tap reads reports; final as the tap says.
actions as (
    select idsite, period_start as site_day, nb_pageviews, nb_downloads, nb_outlinks, nb_searches, is_final
    from {{ ref('stg_matomo__reports_actions') }}
    where period = 'day' and segment = '' and params = ''
),

-- VisitsSummary.get of the day as the reports were read with it (report_visits_summary), to tell whether
-- Matomo's totals moved since (late hits, an erasure): then the warehouse's copy of the day's reports is
-- behind Matomo, not the raw log.
reported as (
    select idsite, period_start as site_day, nb_visits, nb_actions, fetched_at
    from {{ ref('stg_matomo__reports_visits') }}
    where period = 'day' and segment = '' and params = ''
),

compared as (
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
            >= (s.site_day + 1)::timestamp + interval '{{ var("archive_delay_hours") | int }} hours' as archived,
        a.nb_pageviews as matomo_pageviews,
        a.nb_downloads as matomo_downloads,
        a.nb_outlinks as matomo_outlinks,
        a.nb_searches as matomo_searches,
        coalesce(d.pageviews, 0) - a.nb_pageviews as pageviews_difference,
        coalesce(d.downloads, 0) - a.nb_downloads as downloads_difference,
        coalesce(d.outlinks, 0) - a.nb_outlinks as outlinks_difference,
        coalesce(d.searches, 0) - a.nb_searches as searches_difference,
        coalesce(a.is_final, false) as actions_final,
        coalesce(
            r.fetched_at < s.fetched_at and (r.nb_visits <> s.nb_visits or r.nb_actions <> s.nb_actions), false
        ) as reports_behind
    from summary s
    left join sites t on t.idsite = s.idsite
    left join {{ ref('matomo_daily') }} d on d.idsite = s.idsite and d.site_day = s.site_day
    left join actions a on a.idsite = s.idsite and a.site_day = s.site_day
    left join reported r on r.idsite = s.idsite and r.site_day = s.site_day
),

checked as (
    select
        *,
        coalesce(archived and (visits_difference <> 0 or actions_difference <> 0), false) as totals_differ,
        -- Actions.get is compared only while it is Matomo's current answer (its day's totals did not move).
        coalesce(
            actions_final and not reports_behind
            and (pageviews_difference <> 0 or downloads_difference <> 0
                 or outlinks_difference <> 0 or searches_difference <> 0),
            false
        ) as actions_differ
    from compared
)

select
    *,
    -- The day is to be looked at: an archived day whose totals differ, or a current final Actions.get that does.
    totals_differ or actions_differ as differs,
    -- Which side is behind Matomo: the raw log (its totals differ from Matomo's now), the warehouse's copy
    -- of Matomo's reports (Matomo's totals changed since they were read: read again with the next site-local
    -- day's check of the recent days' totals, docs/reports.md), or neither.
    case
        when totals_differ or actions_differ then 'raw log'
        when reports_behind then 'reports'
    end as behind
from checked
