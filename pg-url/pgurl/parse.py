"""`PGDATABASE=postgres://user:pass@host:5432/db?sslmode=require` into libpq's own variables.

target-postgres (psycopg) and dbt-postgres (psycopg2) both sit on libpq, which reads PGHOST,
PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE... by itself. So the URL is parsed once,
here, into those variables; both tools then connect with them (meltano.yml and
transform/profiles.yml name no host, user or password of their own).

The URL is read by libpq's own parser (psycopg's `conninfo_to_dict`), so every URL libpq takes is
taken: `postgres://` and `postgresql://` (a SQLAlchemy `+driver` is dropped), percent-encoded user,
password and database, IPv6 and several hosts (`h1:5432,h2:5433`), and every libpq parameter after
`?`. Each parameter becomes the variable libpq itself names for it (`PQconndefaults`); the few that
have none (`keepalives`, `tcp_user_timeout`, `sslpassword`...) go into a connection service file of
the process's own (environment.py), which libpq reads as it reads the variables.

A PGDATABASE without a scheme is what libpq expects anyway, a database name, and is left alone.
Errors are one line and never hold the password.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import unquote

from psycopg import ProgrammingError, pq
from psycopg.conninfo import conninfo_to_dict

SCHEMES = ("postgres", "postgresql")
#: What a user name or password must percent-encode to stay out of the URL's own syntax.
_ENCODE_HINT = "percent-encode ':' '/' '@' '?' in the user name and password (%3A %2F %40 %3F)"


class ConnectionURLError(ValueError):
    """PGDATABASE looks like a URL but is not one libpq could use (the message never holds the password)."""


@dataclass(frozen=True)
class Connection:
    """A PGDATABASE URL as libpq takes it: its variables, and the parameters libpq reads from no variable."""

    variables: dict[str, str] = field(default_factory=dict)
    service_only: dict[str, str] = field(default_factory=dict)


@cache
def libpq_variables() -> dict[str, str]:
    """Each libpq connection parameter and the environment variable libpq reads it from, as libpq says."""
    return {option.keyword.decode(): option.envvar.decode() for option in pq.Conninfo.get_defaults() if option.envvar}


def connection_parameters(environ: t.Mapping[str, str]) -> dict[str, str]:
    """libpq's keyword parameters for `environ` (PGDATABASE read as above, then libpq's variables), for a
    connection opened by this process without changing its environment (`make_conninfo(**params)`)."""
    found = connection(environ)
    variables = {**environ, **found.variables}
    params = {keyword: variables[envvar] for keyword, envvar in libpq_variables().items() if variables.get(envvar)}
    return {**params, **found.service_only}


def connection(environ: t.Mapping[str, str]) -> Connection:
    """PGDATABASE (or TARGET_POSTGRES_DATABASE) read into libpq's variables and the other parameters."""
    value = environ.get("PGDATABASE", "").strip()
    if not value:
        legacy = environ.get("TARGET_POSTGRES_DATABASE", "").strip()
        return Connection({"PGDATABASE": legacy} if legacy else {})
    if "://" not in value:
        return Connection()
    return _from_url(value)


def _from_url(url: str) -> Connection:
    scheme, _, rest = url.partition("://")
    if scheme.lower().split("+", 1)[0] not in SCHEMES:
        msg = f"PGDATABASE: the scheme {scheme.lower()!r} is not postgres:// or postgresql://"
        raise ConnectionURLError(msg)
    plain = f"postgresql://{rest}"  # libpq knows no SQLAlchemy driver suffix
    try:
        params = conninfo_to_dict(plain)
    except ProgrammingError as exc:
        reason = _redact(str(exc).strip(), url)
        msg = f"PGDATABASE: {reason}"
        raise ConnectionURLError(msg) from None
    _check(params)
    variables: dict[str, str] = {}
    service_only: dict[str, str] = {}
    names = libpq_variables()
    for keyword, item in params.items():
        if item is None:
            continue
        if keyword in names:
            variables[names[keyword]] = str(item)
        else:
            service_only[keyword] = str(item)
    if service_only and "service" in params:
        listed = ", ".join(sorted(service_only))
        msg = f"PGDATABASE: service= cannot be combined with {listed} (put them in the service)"
        raise ConnectionURLError(msg)
    return Connection(variables, service_only)


def _check(params: dict[str, t.Any]) -> None:
    """What libpq's parser lets through and its connection would refuse later, said now."""
    hosts = str(params.get("host") or "").split(",")
    if any("@" in host for host in hosts):
        msg = f"PGDATABASE: a host name holds an '@' ({_ENCODE_HINT})"
        raise ConnectionURLError(msg)
    for index, port in enumerate(str(params.get("port") or "").split(",")):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            host = hosts[index] if index < len(hosts) and hosts[index] else "the host"
            msg = f"PGDATABASE: the port of {host} is not a number from 1 to 65535 ({_ENCODE_HINT})"
            raise ConnectionURLError(msg)


def _redact(text: str, url: str) -> str:
    """libpq's message without the URL or the password it may quote."""
    text = text.replace(url, "PGDATABASE")
    authority = url.partition("://")[2].rpartition("@")[0]  # user:password, up to the last '@'
    password = authority.partition(":")[2]
    for secret in {password, unquote(password)} - {""}:
        text = text.replace(secret, "***")
    return text
