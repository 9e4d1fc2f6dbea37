{#
  A PostgreSQL table partitioned by range on a timestamp, one partition per ISO week
  (<table>_<IYYY>w<IW>, Monday 00:00 UTC to the next Monday), loaded incrementally: the rows
  of the model's query replace every row of the same `replace_key` (a visit's new extraction
  replaces its old rows), with dbt's own delete+insert SQL and explicit column lists.

  What is custom here is only what dbt-postgres cannot do: the partitioned parent and the
  weekly partitions, created before the rows of their week. The rest is dbt's: schema changes
  (`on_schema_change`, default append_new_columns: a column added to the model appears),
  delete+insert, hooks, grants and persist_docs. One run at a time: an advisory lock is taken before the model's query
  reads anything, so a run never replaces newer rows with the older ones it read first.
  Indexes are created on the parent, so every partition, present or future, has them; a first
  build creates them after loading its rows.

  The delete is bounded to the weeks the replaced visits can have rows in (their new rows'
  instants, +- `replace_window_days`; a visit never spans a site-local midnight), so it looks
  up only those partitions' indexes.

  A first build (or a full refresh) inserts the model's rows straight into the partitions: a
  temporary copy of the whole history would double what a first load of a year writes. Its weeks
  come from `weeks_from`, a model this model refs whose rows include its rows (the staging view:
  a plain scan of raw); a week there and not in the model leaves an empty partition.

  config: partition_by (column), weeks_from (model name), replace_key (column), unique_key (list of columns),
          partition_indexes (list of {columns: [...]} or {expression: "...", name: "..."}),
          plus var('extra_indexes') in the same form, with an optional `where`.
#}
{% materialization partitioned_incremental, adapter='postgres' %}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set partition_by = adapter.quote(config.require('partition_by')) -%}
  {%- set replace_key = config.require('replace_key') -%}
  {%- set unique_key = config.get('unique_key', []) -%}
  {%- set indexes = config.get('partition_indexes', []) + var('extra_indexes', []) -%}
  {%- set on_schema_change = incremental_validate_on_schema_change(config.get('on_schema_change'), default='append_new_columns') -%}
  {%- set staged = make_temp_relation(target_relation) -%}
  {%- set full_refresh = should_full_refresh() -%}

  {{ matomo_check_identifier(target_relation.identifier) }}
  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% call statement('lock') %}
    -- One run at a time reads, creates partitions and replaces rows of this table.
    select pg_advisory_xact_lock(hashtext({{ dbt.string_literal(target_relation | string) }}));
  {% endcall %}

  {#- Looked up under the lock: another run may have created the table meanwhile. -#}
  {%- set exists = run_query("select to_regclass(" ~ dbt.string_literal(target_relation | string) ~ ") is not null").rows[0][0] -%}
  {%- set existing = target_relation if exists else none -%}
  {% if existing is not none and full_refresh %}
    {% do adapter.drop_relation(existing) %}
    {% set existing = none %}
  {% endif %}

  {% if existing is none %}
    {#- A first build stages no rows, only the model's columns and types: its rows, the whole
        history on a first load, go straight into the partitions, which come from `weeks_from`. -#}
    {% call statement('stage') %}
      create temporary table {{ staged }} as select * from ({{ sql }}) model limit 0;
    {% endcall %}
    {% call statement('create_parent') %}
      create table {{ target_relation }} (like {{ staged }}) partition by range ({{ partition_by }});
    {% endcall %}
    {%- set weeks_of = ref(config.require('weeks_from')) -%}
  {% else %}
    {% call statement('stage') %}
      create temporary table {{ staged }} as {{ sql }};
    {% endcall %}
    {% do process_schema_changes(on_schema_change, staged, target_relation) %}
    {{ matomo_partition_indexes(target_relation, unique_key, indexes) }}
    {%- set weeks_of = staged -%}
  {% endif %}

  {% set weeks = run_query(
      "select distinct to_char(w, 'IYYY\"w\"IW') as suffix, w as starts, w + interval '7 days' as ends "
      ~ "from (select date_trunc('week', " ~ partition_by ~ " at time zone 'UTC') at time zone 'UTC' as w "
      ~ "from " ~ weeks_of ~ " where " ~ partition_by ~ " is not null) weeks order by 2"
  ) %}
  {% for week in weeks.rows %}
    {% call statement('partition_' ~ week[0]) %}
      create table if not exists {{ target_relation.incorporate(path={'identifier': target_relation.identifier ~ '_' ~ week[0]}) }}
        partition of {{ target_relation }}
        for values from ('{{ week[1] }}') to ('{{ week[2] }}');
    {% endcall %}
  {% endfor %}

  {%- set dest_columns = adapter.get_columns_in_relation(staged) -%}
  {% if existing is none %}
    {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute='name')) -%}
    {% call statement('main') %}
      insert into {{ target_relation }} ({{ dest_cols_csv }})
      select {{ dest_cols_csv }} from ({{ sql }}) model;
    {% endcall %}
    {#- A first build indexes the loaded rows at once: several times faster than row by row. -#}
    {{ matomo_partition_indexes(target_relation, unique_key, indexes) }}
  {% else %}
    {%- set window = matomo_visits_window(staged, partition_by, 'true') -%}
    {%- set predicates = ["DBT_INTERNAL_DEST." ~ partition_by ~ " between " ~ window[0] ~ " and " ~ window[1]] -%}
    {% call statement('main') %}
      {{ get_delete_insert_merge_sql(target_relation, staged, replace_key, dest_columns, predicates) }}
    {% endcall %}
  {% endif %}

  {#- Grants and column comments as dbt's own materializations apply them (config grants, persist_docs). -#}
  {% do apply_grants(target_relation, config.get('grants'), should_revoke=should_revoke(existing, full_refresh)) %}
  {% do persist_docs(target_relation, model) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do adapter.commit() %}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{# The unique key and the indexes, on the parent: every partition, present or future, has them.
   Each is created only when missing (an index added to the config appears on the next run). #}
{% macro matomo_partition_indexes(relation, unique_key, indexes) %}
  {% if unique_key %}
    {%- set constraint = relation.identifier ~ '_key' -%}
    {% call statement('unique_key') %}
      do $$ begin
        if not exists (select from pg_constraint where conname = {{ dbt.string_literal(constraint) }}
                       and conrelid = {{ dbt.string_literal(relation | string) }}::regclass) then
          alter table {{ relation }} add constraint {{ adapter.quote(constraint) }} unique ({{ unique_key | join(', ') }});
        end if;
      end $$;
    {% endcall %}
  {% endif %}
  {% for index in indexes %}
    {%- set parts = index.get('columns', []) -%}
    {%- set name = index.get('name') or (relation.identifier ~ '_' ~ parts | join('_'))[:55] ~ '_idx' -%}
    {% call statement('index_' ~ loop.index) %}
      create index if not exists {{ adapter.quote(name) }} on {{ relation }}
        ({{ index.get('expression') or parts | join(', ') }})
        {%- if index.get('where') %} where {{ index['where'] }}{% endif %};
    {% endcall %}
  {% endfor %}
{% endmacro %}


{# True when the partitioned table exists and this is not a full refresh: read only new loads. #}
{% macro matomo_is_incremental() %}
  {% if not execute %}{{ return(false) }}{% endif %}
  {% set relation = adapter.get_relation(this.database, this.schema, this.identifier) %}
  {{ return(relation is not none and not should_full_refresh()) }}
{% endmacro %}


{# Table names come from configuration (DESTINATION_TABLE): plain identifiers only. #}
{% macro matomo_check_identifier(name) %}
  {% if not modules.re.match('^[a-z_][a-z0-9_]{0,40}$', name) %}
    {{ exceptions.raise_compiler_error(
        "destination_table " ~ tojson(name) ~ " is not a plain table name "
        ~ "(lower-case letters, digits and _, at most 41 characters)") }}
  {% endif %}
{% endmacro %}
