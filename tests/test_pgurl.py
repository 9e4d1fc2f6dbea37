"""PGDATABASE is read in one place (pgurl/) for the loader and dbt: URL forms, encodings, libpq parameters."""

from __future__ import annotations

import pytest
from pgurl import ConnectionURLError, libpq_environment


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
        (  # libpq parameters in the query
            "postgresql://u@h/d?sslmode=require&sslrootcert=/etc/ca.pem&connect_timeout=5&application_name=tap",
            {"PGHOST": "h", "PGUSER": "u", "PGDATABASE": "d", "PGSSLMODE": "require"}
            | {"PGSSLROOTCERT": "/etc/ca.pem", "PGCONNECT_TIMEOUT": "5", "PGAPPNAME": "tap"},
        ),
        (
            "postgresql+psycopg://u:@[::1]:5432/d",
            {"PGHOST": "::1", "PGPORT": "5432", "PGUSER": "u", "PGPASSWORD": "", "PGDATABASE": "d"},
        ),
        ("postgresql:///d?host=/var/run/postgresql", {"PGDATABASE": "d", "PGHOST": "/var/run/postgresql"}),
    ],
    ids=["postgresql", "postgres-scheme", "percent-encoded", "query-parameters", "ipv6-driver", "socket-dir"],
)
def test_urls_become_libpq_variables(url: str, expected: dict[str, str]) -> None:
    assert libpq_environment({"PGDATABASE": url}) == expected


def test_plain_names_and_legacy_variables() -> None:
    assert libpq_environment({"PGDATABASE": "analytics"}) == {}  # libpq's own meaning: a database name
    assert libpq_environment({}) == {}
    assert libpq_environment({"TARGET_POSTGRES_DATABASE": "analytics"}) == {"PGDATABASE": "analytics"}
    both = {"PGDATABASE": "postgres://u@h/new", "TARGET_POSTGRES_DATABASE": "old"}
    assert libpq_environment(both)["PGDATABASE"] == "new"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:hunter2@h/d", "the scheme 'mysql' is not postgres:// or postgresql://"),
        ("postgresql://u:hunter2@h:port/d", "the port of h is not a number"),
        ("postgresql://u:hunter2@h/d?sslmod=require", "unknown parameter 'sslmod'"),
    ],
)
def test_bad_urls_are_one_line_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ConnectionURLError, match=message) as caught:
        libpq_environment({"PGDATABASE": url})
    assert "hunter2" not in str(caught.value)
