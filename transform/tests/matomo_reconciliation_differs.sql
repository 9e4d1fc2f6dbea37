-- Archived days on which the warehouse and Matomo disagree (matomo_reconciliation): a warning, with
-- the days listed by `dbt test --select matomo_reconciliation_differs --store-failures`.
{{ config(severity='warn') }}

select *
from {{ ref('matomo_reconciliation') }}
where (archived and (visits_difference <> 0 or actions_difference <> 0))
   or (actions_final and (pageviews_difference <> 0 or downloads_difference <> 0
                          or outlinks_difference <> 0 or searches_difference <> 0))
