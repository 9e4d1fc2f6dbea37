"""PGDATABASE, the Node tool's one connection URL, read in one place for the loader and dbt."""

from pgurl.environment import libpq_environment
from pgurl.parse import ConnectionURLError, connection

__all__ = ["ConnectionURLError", "connection", "libpq_environment"]
