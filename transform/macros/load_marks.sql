{#
  Load marks: how far, in commit order, each incremental model has read the loads.

  A raw row's `_sdc_batched_at` is stamped before its load commits. A load that commits late (behind
  a lock, a stalled loader, a retried shard) lands with batch times older than rows other loads
  committed before it, and a model that reads "loaded since the newest I hold" would never see it.
  The loader writes one row per batch into `<raw_schema>.load_ledger` in the batch's own transaction,
  with its batch-time range and its transaction id (xid8). PostgreSQL's snapshots order transactions
  by completion: every transaction whose id is below a snapshot's xmin has ended (committed or rolled
  back). So a model records, when it reads, the xmin of its snapshot (its mark); the next run reads
  again from the oldest batch time of the loads whose ids are at or above that mark, those the previous
  read may not have seen, and at least `reload_overlap_minutes` before the newest row it holds. A
  model reading another model's rows never takes a mark beyond that model's (the least of both), so
  a late load flows through every layer.

  `matomo_load_reads` holds the mark each invocation took when it compiled (one row per model and
  invocation); the model's post-hook, inside its transaction, makes it the model's mark in
  `matomo_load_marks`: a failed run keeps the previous mark. Commands that build nothing (compile, show,
  docs generate) record no read.
#}

{% macro matomo_load_marks_relations() %}
  {{ return({
      'marks': adapter.quote(target.schema) ~ '.' ~ adapter.quote('matomo_load_marks'),
      'reads': adapter.quote(target.schema) ~ '.' ~ adapter.quote('matomo_load_reads'),
      'ledger': adapter.quote(var('raw_schema')) ~ '.' ~ adapter.quote('load_ledger'),
  }) }}
{% endmacro %}


{# Run by on-run-start (dbt_project.yml), after dbt created the target schema: idempotent. #}
{% macro matomo_load_marks_tables() %}
  {%- set r = matomo_load_marks_relations() -%}
  create table if not exists {{ r.marks }} (
    model text primary key, mark xid8 not null, invocation_id text, marked_at timestamptz not null
  );
  create table if not exists {{ r.reads }} (
    model text not null, invocation_id text not null, mark xid8 not null, read_at timestamptz not null,
    primary key (model, invocation_id)
  );
{% endmacro %}


{#
  The instant from which an incremental run of `relation` (the model being built) reads again, as a
  literal: the oldest batch time of the loads committed at or after its mark, and at most
  `reload_overlap_minutes` before the newest `loaded_at` it holds. Records the mark this read takes
  (the current snapshot's xmin, no later than the marks of `upstream`, the models it reads); a first
  build or a full refresh (`incremental` false) records it too, and reads everything.
  A literal, not a subquery, so that PostgreSQL estimates the rows it selects from the indexes'
  statistics (a range on a subquery's value is guessed at a third of the table).
#}
{% macro matomo_reload_since(relation, upstream=[], incremental=true) -%}
  {%- if not execute -%}{{ return("'-infinity'::timestamptz") }}{%- endif -%}
  {%- set r = matomo_load_marks_relations() -%}
  {%- set model = dbt.string_literal(relation.identifier) -%}
  {%- set ledger_exists = run_query("select to_regclass(" ~ dbt.string_literal(r.ledger) ~ ") is not null").columns[0].values()[0] -%}
  {%- set upstream_names = [] -%}
  {%- for other in upstream -%}{%- do upstream_names.append(dbt.string_literal(other.identifier)) -%}{%- endfor -%}
  {%- set since -%}
    {%- if not incremental -%} null::timestamp
    {%- else -%}
      least(
        (select max(loaded_at) from {{ relation }}) - interval '{{ var('reload_overlap_minutes') | int }} minutes'
        {%- if ledger_exists %},
        {#- the models read rows loaded after `since`: just before the oldest batch -#}
        (select min(batched_from) at time zone 'UTC' - interval '1 millisecond' from {{ r.ledger }}
         where xid >= coalesce((select mark from {{ r.marks }} where model = {{ model }}), '0'::xid8))
        {%- endif %}
      )
    {%- endif -%}
  {%- endset -%}
  {%- if flags.WHICH not in ['run', 'build', 'retry'] -%}
    {#- compile, show, docs: nothing is built, so no read is recorded (nothing written to the warehouse) -#}
    {%- set row = run_query("select (" ~ since ~ ")::text").rows[0] -%}
    {{- return(dbt.string_literal(row[0] if row[0] is not none else '-infinity') ~ "::timestamptz") -}}
  {%- endif -%}
  {#- One statement, one snapshot: the mark recorded and the loads looked at are those of one instant. -#}
  {%- set row = run_query(
      "with recorded as ("
      ~ " insert into " ~ r.reads ~ " (model, invocation_id, mark, read_at)"
      ~ " select " ~ model ~ ", " ~ dbt.string_literal(invocation_id) ~ ", least(pg_snapshot_xmin(pg_current_snapshot())"
      ~ (", (select min(mark) from " ~ r.marks ~ " where model in (" ~ upstream_names | join(', ') ~ "))" if upstream_names else "")
      ~ "), now()"
      ~ " on conflict (model, invocation_id) do update set mark = excluded.mark, read_at = excluded.read_at"
      ~ " returning mark)"
      ~ " select (" ~ since ~ ")::text, (select count(*) from recorded)"
  ).rows[0] -%}
  {{- return(dbt.string_literal(row[0] if row[0] is not none else '-infinity') ~ "::timestamptz") -}}
{%- endmacro %}


{#
  Post-hook of the models that read with matomo_reload_since, inside their transaction: the mark this
  invocation took when it compiled becomes the model's; older reads (compiles that built nothing) go.
#}
{% macro matomo_commit_load_mark(relation) %}
  {%- set r = matomo_load_marks_relations() -%}
  {%- set model = dbt.string_literal(relation.identifier) -%}
  {%- set invocation = dbt.string_literal(invocation_id) -%}
  insert into {{ r.marks }} (model, mark, invocation_id, marked_at)
  select model, mark, invocation_id, now() from {{ r.reads }}
  where model = {{ model }} and invocation_id = {{ invocation }}
  on conflict (model) do update
    set mark = excluded.mark, invocation_id = excluded.invocation_id, marked_at = excluded.marked_at;
  delete from {{ r.reads }}
  where model = {{ model }} and (invocation_id = {{ invocation }} or read_at < now() - interval '1 day');
{% endmacro %}
