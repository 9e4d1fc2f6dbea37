{#
  The indexes the incremental models need on the loader's raw table, which target-postgres
  creates with its primary key only: rows loaded since an instant (`_sdc_batched_at`) and all
  rows of given visits (`idvisit`). Run by `on-run-start` (dbt_project.yml): idempotent, and
  skipped while the raw table does not exist yet (dbt run before the first load).
#}
{% macro matomo_raw_indexes() %}
  {%- set raw = adapter.quote(var('raw_schema')) ~ '.' ~ adapter.quote('visits_actions') -%}
  do $$
  begin
    if to_regclass({{ dbt.string_literal(raw) }}) is not null then
      create index if not exists visits_actions_batched_at_idx on {{ raw }} (_sdc_batched_at);
      create index if not exists visits_actions_idvisit_idx on {{ raw }} (idvisit);
    end if;
  end $$
{% endmacro %}


{#
  The instant from which an incremental run reads again: the newest `loaded_at` already in
  `relation`, minus `reload_overlap_minutes`. The margin catches a load that committed rows with
  batch times a little older than that while the previous run read (a manual run, a retry);
  rows are replaced per visit, so reading them twice costs little and changes nothing.
#}
{% macro matomo_reload_since(relation) -%}
  ((select coalesce(max(loaded_at), '-infinity'::timestamptz) from {{ relation }})
    - interval '{{ var("reload_overlap_minutes") | int }} minutes')
{%- endmacro %}
