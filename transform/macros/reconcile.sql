{#
  Post-hooks of matomo_reconcile_log, in its transaction: the rows this build added are those
  with the newest checked_at (now(), the transaction's start).
#}

{# Stops the build, deleting nothing, when a day would lose more than reconcile_max_delete_share of its visits. #}
{% macro matomo_reconcile_guard(log) %}
  do $$
  declare day record;
  begin
    select idsite, site_day, visits_gone, visits_held into day
    from {{ log }}
    where checked_at = now() and outcome = 'deleted' and visits_listed > 0
      and visits_gone > {{ var('reconcile_max_delete_share') | float }} * visits_held
    order by visits_gone desc
    limit 1;
    if found then
      raise exception 'reconcile would delete % of the % visits of site % on %, more than reconcile_max_delete_share (%): nothing was deleted; check Matomo, then run again with --vars ''{reconcile_max_delete_share: 1}''',
        day.visits_gone, day.visits_held, day.idsite, day.site_day, {{ var('reconcile_max_delete_share') | float }};
    end if;
  end $$
{% endmacro %}


{# Deletes the visits found gone (outcome 'deleted') from the raw table, matomo and matomo_visits, and their days
   from matomo_daily. The raw rows go too: they hold the personal data, and an incremental run reading
   recent loads again (reload_overlap_minutes) or a full refresh would bring the visits back. #}
{% macro matomo_delete_gone_visits(log) %}
  {%- set matomo = ref('matomo') -%}
  {%- set visits = ref('matomo_visits') -%}
  {%- set daily = adapter.get_relation(this.database, this.schema, 'matomo_daily') -%}
  create temporary table matomo_gone_visits on commit drop as
    select unnest(gone_idvisits) as idvisit, idsite, site_day
    from {{ log }}
    where checked_at = now() and outcome = 'deleted';
  -- A visit's rows lie within a day of its site-local day (bounds for partition pruning).
  delete from {{ matomo }} m
    using matomo_gone_visits g
    where m.idvisit = g.idvisit
      and m.action_timestamp >= (select min(site_day) - interval '2 days' from matomo_gone_visits)
      and m.action_timestamp < (select max(site_day) + interval '3 days' from matomo_gone_visits);
  delete from {{ visits }} v using matomo_gone_visits g where v.idvisit = g.idvisit;
  delete from {{ source('matomo_raw', 'visits_actions') }} r using matomo_gone_visits g where r.idvisit = g.idvisit;
  {% if daily is not none -%}
  -- matomo_daily recomputes these days right after (it reads matomo_reconcile_log).
  delete from {{ daily }} d using matomo_gone_visits g where d.idsite = g.idsite and d.site_day = g.site_day;
  {%- endif %}
{% endmacro %}
