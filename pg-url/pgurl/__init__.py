"""PGDATABASE, the Node tool's one connection URL, read in one place for the loader and dbt."""

from pgurl.parse import ConnectionURLError, libpq_environment

__all__ = ["ConnectionURLError", "libpq_environment"]
