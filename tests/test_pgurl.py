"""PGDATABASE is read in one place (pgurl/) for the loader and dbt, by libpq's own parser: URL forms,
encodings, several hosts, every libpq parameter, and one-line errors that never show the password."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pgurl import ConnectionURLError, connection, libpq_environment
from pgurl.parse import connection_parameters, libpq_variables
from psycopg import pq

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://matomo:secret@db.example.org:5433/analytics",
            {"PGHOST": "db.example.org", "PGPORT": "5433", "PGUSER": "matomo", "PGPASSWORD": "secret"}
            | {"PGDATABASE": "analytics"},
        ),
        (  # the Node tool's users have postgres://
            "postgres://matomo@db.example.org/analytics",
            {"PGHOST": "db.example.org", "PGUSER": "matomo", "PGDATABASE": "analytics"},
        ),
        (  # percent-encoded user, password and database
            "postgresql://m%40tomo:p%40ss%3Aw%2Frd%25%20x@db.example.org/my%20db",
            {"PGHOST": "db.example.org", "PGUSER": "m@tomo", "PGPASSWORD": "p@ss:w/rd% x", "PGDATABASE": "my db"},
        ),
        (  # '#' needs no encoding for libpq
            "postgresql://u:p#ss@h/d",
            {"PGHOST": "h", "PGUSER": "u", "PGPASSWORD": "p#ss", "PGDATABASE": "d"},
        ),
        (  # libpq parameters in the query
            "postgresql://u@h/d?sslmode=require&sslrootcert=/etc/ca.pem&connect_timeout=5&application_name=tap",
            {"PGHOST": "h", "PGUSER": "u", "PGDATABASE": "d", "PGSSLMODE": "require"}
            | {"PGSSLROOTCERT": "/etc/ca.pem", "PGCONNECT_TIMEOUT": "5", "PGAPPNAME": "tap"},
        ),
        (  # several hosts, as libpq tries them in turn
            "postgresql://u:pw@primary:5432,standby:5433/d?target_session_attrs=read-write",
            {"PGHOST": "primary,standby", "PGPORT": "5432,5433", "PGUSER": "u", "PGPASSWORD": "pw"}
            | {"PGDATABASE": "d", "PGTARGETSESSIONATTRS": "read-write"},
        ),
        (  # a SQLAlchemy driver suffix, IPv6; an empty password is no password, as for libpq
            "postgresql+psycopg://u:@[::1]:5432/d",
            {"PGHOST": "::1", "PGPORT": "5432", "PGUSER": "u", "PGDATABASE": "d"},
        ),
        ("postgresql:///d?host=/var/run/postgresql", {"PGDATABASE": "d", "PGHOST": "/var/run/postgresql"}),
    ],
    ids=[
        "postgresql",
        "postgres-scheme",
        "percent-encoded",
        "hash",
        "query-parameters",
        "multi-host",
        "ipv6-driver",
        "socket-dir",
    ],
)
def test_urls_become_libpq_variables(url: str, expected: dict[str, str]) -> None:
    assert libpq_environment({"PGDATABASE": url}) == expected


def test_plain_names_and_legacy_variables() -> None:
    assert libpq_environment({"PGDATABASE": "analytics"}) == {}  # libpq's own meaning: a database name
    assert libpq_environment({}) == {}
    assert libpq_environment({"TARGET_POSTGRES_DATABASE": "analytics"}) == {"PGDATABASE": "analytics"}
    both = {"PGDATABASE": "postgres://u@h/new", "TARGET_POSTGRES_DATABASE": "old"}
    assert libpq_environment(both)["PGDATABASE"] == "new"


#: A value libpq's parser takes for each parameter (the connection would check it, not the parser).
SAMPLE_VALUES = {"port": "6543", "connect_timeout": "7", "keepalives": "1", "keepalives_idle": "30"}


def documented_parameters() -> list[str]:
    """Every connection parameter this libpq documents (PQconndefaults), debug ones excepted."""
    return [
        option.keyword.decode()
        for option in pq.Conninfo.get_defaults()
        if option.dispchar != b"D" and option.keyword not in (b"dbname", b"host", b"user", b"password")
    ]


def test_every_documented_libpq_parameter_reaches_libpq() -> None:
    """Each parameter after '?' arrives where libpq reads it (a variable or the service file), as libpq itself
    reports its defaults in a process that starts with that environment."""
    # `service` names an entry of a service file, which the others need here: refused with them (below).
    parameters = [keyword for keyword in documented_parameters() if keyword != "service"]
    assert {"keepalives", "sslpassword", "target_session_attrs", "tcp_user_timeout"} <= set(parameters)
    values = {keyword: SAMPLE_VALUES.get(keyword, f"v-{keyword}") for keyword in parameters}
    url = "postgresql://u:pw@h/d?" + "&".join(f"{keyword}={value}" for keyword, value in values.items())
    script = (
        "import json, os\n"
        "from pgurl import libpq_environment\n"
        "from psycopg import pq\n"
        "os.environ.update(libpq_environment(os.environ))\n"
        "print(json.dumps({o.keyword.decode(): (o.val or b'').decode() for o in pq.Conninfo.get_defaults()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"PGDATABASE": url}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout)
    assert {keyword: seen[keyword] for keyword in values} == values
    assert (seen["host"], seen["user"], seen["password"], seen["dbname"]) == ("h", "u", "pw", "d")


def test_parameters_without_a_variable_go_to_a_private_service_file() -> None:
    found = connection({"PGDATABASE": "postgresql://u:pw@h/d?keepalives=1&sslpassword=s3cret&sslmode=require"})
    assert found.service_only == {"keepalives": "1", "sslpassword": "s3cret"}
    assert found.variables["PGSSLMODE"] == "require"
    env = libpq_environment({"PGDATABASE": "postgresql://u:pw@h/d?keepalives=1&sslpassword=s3cret"})
    service_file = Path(env["PGSERVICEFILE"])
    assert service_file.stat().st_mode & 0o077 == 0, "readable by this user only"
    assert "sslpassword=s3cret" in service_file.read_text()
    assert set(libpq_variables().values()) >= {"PGHOST", "PGSSLMODE", "PGTARGETSESSIONATTRS"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:hunter2@h/d", "the scheme 'mysql' is not postgres:// or postgresql://"),
        ("postgresql://u:hunter2@h:port/d", "the port of h is not a number"),
        ("postgresql://u:hunter2@h:99999/d", "the port of h is not a number from 1 to 65535"),
        ("postgresql://u:hunter2@h/d?sslmod=require", 'invalid URI query parameter: "sslmod"'),
        ("postgresql://u:hunter2@h/d?sslmode=require&x", 'missing key/value separator "=" in URI query parameter'),
        ("postgresql://u:hunter2%zz@h/d", "invalid percent-encoded token"),
        ("postgresql://u:hunter2@[::1/d", 'matching "]" in IPv6 host address'),
        # A password's own '/' or '@' breaks the URL: the message says to percent-encode.
        ("postgresql://u:hunter/2@h/d", "percent-encode ':' '/' '@' '?'"),
        ("postgresql://u:hunter@2@h/d", "a host name holds an '@'"),
        ("postgresql://u:pw@h/d?service=s&keepalives=1", "service= cannot be combined with keepalives"),
    ],
)
def test_bad_urls_are_one_line_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ConnectionURLError, match=message) as caught:
        libpq_environment({"PGDATABASE": url})
    text = str(caught.value)
    assert "hunter" not in text
    assert "\n" not in text
    assert text.startswith("PGDATABASE: ")


def test_connection_parameters_are_the_keywords_a_connection_of_this_process_needs() -> None:
    """For a connection opened in this process (the Dagster checks) without changing its environment."""
    environ = {"PGDATABASE": "postgresql://u:p%40ss@h1:5433,h2/d?sslmode=require&keepalives=1", "PGAPPNAME": "x"}
    params = connection_parameters(environ)
    assert params == {
        "host": "h1,h2",
        "port": "5433,",
        "user": "u",
        "password": "p@ss",
        "dbname": "d",
        "sslmode": "require",
        "keepalives": "1",
        "application_name": "x",
    }
    assert connection_parameters({"PGDATABASE": "warehouse", "PGHOST": "db"}) == {"dbname": "warehouse", "host": "db"}
