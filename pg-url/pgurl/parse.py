"""`PGDATABASE=postgres://user:pass@host:5432/db?sslmode=require` into libpq's own variables.

target-postgres (psycopg) and dbt-postgres (psycopg2) both sit on libpq, which reads PGHOST,
PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE... by itself. So the URL is parsed once,
here, into those variables; both tools then connect with them (meltano.yml and
transform/profiles.yml name no host, user or password of their own). That gives both the same
rules: `postgres://` and `postgresql://` (with or without `+driver`), percent-encoded user,
password and database, IPv6 hosts, and libpq's query parameters (`sslmode`, `sslrootcert`,
`connect_timeout`, `application_name`, `options`, ...).

A PGDATABASE without a scheme is what libpq expects anyway, a database name, and is left alone.
"""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qsl, unquote, urlsplit

#: URL query parameters and the libpq variable each one sets.
QUERY_VARIABLES = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE",
    "require_auth": "PGREQUIREAUTH",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "service": "PGSERVICE",
}
SCHEMES = ("postgres", "postgresql")


class ConnectionURLError(ValueError):
    """PGDATABASE looks like a URL but is not one libpq could use (the message never holds the password)."""


def libpq_environment(environ: t.Mapping[str, str]) -> dict[str, str]:
    """The libpq variables to set for `environ`'s PGDATABASE (empty when there is nothing to translate).

    `TARGET_POSTGRES_DATABASE` (older setups) names the database when PGDATABASE is unset.
    """
    value = environ.get("PGDATABASE", "").strip()
    if not value:
        legacy = environ.get("TARGET_POSTGRES_DATABASE", "").strip()
        return {"PGDATABASE": legacy} if legacy else {}
    if "://" not in value:
        return {}
    return _from_url(value)


def _from_url(url: str) -> dict[str, str]:
    scheme = url.split("://", 1)[0].lower()
    if scheme.split("+", 1)[0] not in SCHEMES:
        msg = f"PGDATABASE: the scheme {scheme!r} is not postgres:// or postgresql://"
        raise ConnectionURLError(msg)
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        msg = f"PGDATABASE: the port of {parts.hostname or 'the host'} is not a number"
        raise ConnectionURLError(msg) from exc
    found: dict[str, str] = {}
    if parts.hostname:
        found["PGHOST"] = unquote(parts.hostname)
    if port is not None:
        found["PGPORT"] = str(port)
    if parts.username:
        found["PGUSER"] = unquote(parts.username)
    if parts.password is not None:
        found["PGPASSWORD"] = unquote(parts.password)
    database = unquote(parts.path.lstrip("/"))
    if database:
        found["PGDATABASE"] = database
    for key, item in parse_qsl(parts.query, keep_blank_values=True):
        variable = QUERY_VARIABLES.get(key)
        if variable is None:
            known = ", ".join(sorted(QUERY_VARIABLES))
            msg = f"PGDATABASE: unknown parameter {key!r} (libpq knows {known})"
            raise ConnectionURLError(msg)
        found[variable] = item
    return found
