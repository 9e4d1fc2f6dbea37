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
  The instant from which an incremental run reads again, as a literal: the newest `loaded_at`
  already in `relation`, minus `reload_overlap_minutes`. The margin catches a load that committed
  rows with batch times a little older than that while the previous run read (a manual run, a
  retry); rows are replaced per visit, so reading them twice costs little and changes nothing.
  A literal, not a subquery, so that PostgreSQL estimates the rows it selects from the indexes'
  statistics (a subquery's value is unknown when planning, and a range on it is guessed at a third
  of the table, which would turn index lookups into full scans).
#}
{% macro matomo_reload_since(relation) -%}
  {%- if not execute -%}{{ return("'-infinity'::timestamptz") }}{%- endif -%}
  {%- set since = run_query(
      "select (coalesce(max(loaded_at), '-infinity'::timestamptz) - interval '"
      ~ (var('reload_overlap_minutes') | int) ~ " minutes')::text from " ~ relation
  ).columns[0].values()[0] -%}
  {{- return(dbt.string_literal(since) ~ "::timestamptz") -}}
{%- endmacro %}


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
