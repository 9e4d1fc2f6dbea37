{#
  The indexes the incremental models need on the loader's raw table, which target-postgres
  creates with its primary key only: rows loaded since an instant (`_sdc_batched_at`) and all
  rows of given visits (`idvisit`). Run by `on-run-start` (dbt_project.yml): idempotent, and
  skipped while the raw table does not exist yet (dbt run before the first load). Each index is
  looked up first: `create index if not exists` would wait for every load in progress to commit.
#}
{% macro matomo_raw_indexes() %}
  {%- set schema = adapter.quote(var('raw_schema')) -%}
  {%- set raw = schema ~ '.' ~ adapter.quote('visits_actions') -%}
  do $$
  begin
    if to_regclass({{ dbt.string_literal(raw) }}) is not null then
      if to_regclass({{ dbt.string_literal(schema ~ '.visits_actions_batched_at_idx') }}) is null then
        create index visits_actions_batched_at_idx on {{ raw }} (_sdc_batched_at);
      end if;
      if to_regclass({{ dbt.string_literal(schema ~ '.visits_actions_idvisit_idx') }}) is null then
        create index visits_actions_idvisit_idx on {{ raw }} (idvisit);
      end if;
    end if;
  end $$
{% endmacro %}


{#
  The instants a set of replaced visits can have rows at, as literals for partition pruning:
  the instants of their rows in `relation` (those matching `condition`), +- `replace_window_days`
  (a visit never spans a site-local midnight, so all its rows lie within a day of each other).
#}
{% macro matomo_visits_window(relation, column, condition) -%}
  {%- if not execute -%}{{ return(["'-infinity'::timestamptz", "'infinity'::timestamptz"]) }}{%- endif -%}
  {%- set days = var('replace_window_days') | int -%}
  {#- Materialized first: a bare min()/max() would walk an index on the column from the oldest row. -#}
  {%- set row = run_query(
      "with rows as materialized (select " ~ column ~ " as at from " ~ relation ~ " where " ~ condition ~ ") "
      ~ "select coalesce((min(at) - interval '" ~ days ~ " days')::text, 'infinity'), "
      ~ "coalesce((max(at) + interval '" ~ days ~ " days')::text, '-infinity') from rows"
  ).rows[0] -%}
  {{- return([dbt.string_literal(row[0]) ~ "::timestamptz", dbt.string_literal(row[1]) ~ "::timestamptz"]) -}}
{%- endmacro %}
