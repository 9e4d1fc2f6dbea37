"""`matomo-dbt`: the project's dbt, as dagster-dbt's dbt executable (`meltano invoke dbt-postgres ARGS`).

dagster-dbt starts a dbt executable with its own arguments and environment (JSON logs, a target
folder per invocation). This command hands them to Meltano, which runs the dbt utility as the
project defines it: its pinned dbt, `dbt-pgurl` (PGDATABASE as a URL, the warehouse lock), the
project's `.env` and environment.
"""

from __future__ import annotations

import os
import sys

from matomo_orchestrate.dbt_models import DBT_UTILITY
from matomo_orchestrate.meltano import MeltanoProject


def main() -> None:
    meltano = MeltanoProject()
    os.chdir(meltano.root)
    command = [meltano.executable, "--log-level=warning", "invoke", DBT_UTILITY, *sys.argv[1:]]
    os.execvpe(command[0], command, meltano.process_env(None, None))  # noqa: S606 - dbt's own arguments
