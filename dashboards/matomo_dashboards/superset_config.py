"""The local Superset's configuration (SUPERSET_CONFIG_PATH, set by `matomo-superset`).

Superset keeps its own metadata (users, the imported dashboards) in SQLite under MATOMO_SUPERSET_HOME;
the warehouse's connection details never enter it (libpq reads the PG* variables, pg-url). The secret
key comes from SUPERSET_SECRET_KEY, which `matomo-superset` keeps in a file of its home.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

_HOME = Path(os.environ["MATOMO_SUPERSET_HOME"])

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = f"sqlite:///{_HOME / 'superset.db'}"
DATA_DIR = str(_HOME)
# A local viewer on 127.0.0.1: plain HTTP, no content security policy warning at every start.
TALISMAN_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False
LOG_LEVEL = logging.WARNING
# The marts are read-only here: no SQL Lab writes, no uploads.
PREVENT_UNSAFE_DB_CONNECTIONS = True
