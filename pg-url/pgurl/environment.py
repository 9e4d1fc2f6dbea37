"""libpq's environment for a PGDATABASE URL, service file included, for this process and what it starts."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import typing as t
from pathlib import Path

from pgurl.parse import connection

#: The service name in the process's own service file.
SERVICE = "pgdatabase"


def libpq_environment(environ: t.Mapping[str, str]) -> dict[str, str]:
    """The libpq variables that `environ`'s PGDATABASE sets (empty when there is nothing to translate).

    Parameters libpq reads from no variable (`keepalives`, `sslpassword`...) are written to a
    connection service file readable by this user only, named by PGSERVICEFILE and PGSERVICE, and
    removed when this process ends (its children, started meanwhile, have read it by then).
    """
    found = connection(environ)
    if not found.service_only:
        return found.variables
    folder = Path(tempfile.mkdtemp(prefix="pgurl-"))  # 0700
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    service_file = folder / "pg_service.conf"
    lines = [f"[{SERVICE}]", *(f"{key}={value}" for key, value in sorted(found.service_only.items()))]
    service_file.touch(mode=0o600)
    service_file.write_text("\n".join(lines) + "\n")
    return {**found.variables, "PGSERVICEFILE": str(service_file), "PGSERVICE": SERVICE}
