{#
  The site-local wall-clock time of a timestamptz, for Matomo's site timezones: IANA names,
  and `UTC+5.5` / `UTC-3` fixed offsets (which PostgreSQL would read with the POSIX sign
  convention, that is backwards, so they are turned into intervals here).
#}
{% macro site_local(ts, timezone) -%}
  case
    when {{ timezone }} ~ '^UTC[+-][0-9.]+$'
      then ({{ ts }} at time zone 'UTC')
        + (substring({{ timezone }} from 4)::numeric * interval '1 hour')
    else {{ ts }} at time zone {{ timezone }}
  end
{%- endmacro %}
