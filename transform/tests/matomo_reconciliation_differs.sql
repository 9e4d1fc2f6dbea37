-- Archived days on which the warehouse and Matomo disagree (matomo_reconciliation): a warning, with
-- the days listed by `dbt test --select matomo_reconciliation_differs --store-failures`.
{{ config(severity='warn') }}

select *
from {{ ref('matomo_reconciliation') }}
where differs
