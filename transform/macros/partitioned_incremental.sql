{#
  A PostgreSQL table partitioned by range on a timestamp, one partition per ISO week
  (<table>_<IYYY>w<IW>, Monday 00:00 UTC to the next Monday), loaded incrementally:
  the rows of the model's query replace every row of the same `replace_key` (a visit's new
  extraction replaces its old rows). Partitions are created before the rows of their week,
  under an advisory lock so two runs never race; there is no default partition.
  Indexes are created on the parent, so every partition, present or future, has them.

  config: partition_by (column), replace_key (column), unique_key (list of columns),
          partition_indexes (list of {columns: [...]} or {expression: "...", name: "..."}),
          plus var('extra_indexes') in the same form, with an optional `where`.
#}
{% materialization partitioned_incremental, adapter='postgres' %}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set existing = load_cached_relation(this) -%}
  {%- set partition_by = config.require('partition_by') -%}
  {%- set replace_key = config.require('replace_key') -%}
  {%- set unique_key = config.get('unique_key', []) -%}
  {%- set indexes = config.get('partition_indexes', []) + var('extra_indexes', []) -%}
  {%- set staged = make_temp_relation(target_relation) -%}
  {%- set full_refresh = should_full_refresh() -%}

  {{ matomo_check_identifier(target_relation.identifier) }}
  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% if existing is not none and full_refresh %}
    {% do adapter.drop_relation(existing) %}
  {% endif %}

  {% call statement('stage') %}
    create temporary table {{ staged }} as {{ sql }};
    -- One run at a time creates partitions and replaces rows of this table.
    select pg_advisory_xact_lock(hashtext({{ dbt.string_literal(target_relation | string) }}));
  {% endcall %}

  {% call statement('create_parent') %}
    create table if not exists {{ target_relation }} (
      like {{ staged }}
      {%- if unique_key %},
      constraint {{ adapter.quote(target_relation.identifier ~ '_key') }} unique ({{ unique_key | join(', ') }})
      {%- endif %}
    ) partition by range ({{ adapter.quote(partition_by) }});
  {% endcall %}

  {% for index in indexes %}
    {%- set parts = index.get('columns', []) -%}
    {%- set name = index.get('name') or (target_relation.identifier ~ '_' ~ parts | join('_'))[:55] ~ '_idx' -%}
    {% call statement('index_' ~ loop.index) %}
      create index if not exists {{ adapter.quote(name) }} on {{ target_relation }}
        ({{ index.get('expression') or parts | join(', ') }})
        {%- if index.get('where') %} where {{ index['where'] }}{% endif %};
    {% endcall %}
  {% endfor %}

  {% set weeks = run_query(
      "select distinct to_char(w, 'IYYY\"w\"IW') as suffix, w as starts, w + interval '7 days' as ends "
      ~ "from (select date_trunc('week', " ~ adapter.quote(partition_by) ~ " at time zone 'UTC') at time zone 'UTC' as w "
      ~ "from " ~ staged ~ " where " ~ adapter.quote(partition_by) ~ " is not null) weeks order by 2"
  ) %}
  {% for week in weeks.rows %}
    {% call statement('partition_' ~ week[0]) %}
      create table if not exists {{ target_relation.incorporate(path={'identifier': target_relation.identifier ~ '_' ~ week[0]}) }}
        partition of {{ target_relation }}
        for values from ('{{ week[1] }}') to ('{{ week[2] }}');
    {% endcall %}
  {% endfor %}

  {% call statement('main') %}
    delete from {{ target_relation }}
      where {{ adapter.quote(replace_key) }} in (select {{ adapter.quote(replace_key) }} from {{ staged }});
    insert into {{ target_relation }}
      select * from {{ staged }} where {{ adapter.quote(partition_by) }} is not null;
  {% endcall %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do adapter.commit() %}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


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
