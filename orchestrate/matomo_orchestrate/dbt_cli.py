"""`matomo-dbt`: the project's dbt, as dagster-dbt's dbt executable (`meltano invoke dbt-postgres ARGS`).

dagster-dbt starts a dbt executable with its own arguments and environment (JSON logs, a target
folder per invocation). This command hands them to Meltano, which runs the dbt utility as the
project defines it: its pinned dbt, `dbt-pgurl` (PGDATABASE as a URL, the warehouse lock), the
project's `.env` and environment.

Kept light (no Dagster or dbt import): dagster-dbt starts it once more before every invocation, for
`--version`.
"""

from __future__ import annotations

import os
import sys

from matomo_orchestrate.meltano import DBT_UTILITY, MeltanoProject


def main() -> None:
    meltano = MeltanoProject()
    if sys.argv[1:] == ["--version"]:
        # dagster-dbt asks before every dbt command (its major version tells dbt Core from Fusion). Read
        # from the installed package; `dbt --version` through Meltano took 6 s: Meltano's and dbt's start,
        # and a question to PyPI for the latest version.
        version = meltano.installed_version("utilities", DBT_UTILITY, "dbt-core")
        if version:
            print(f"Core:\n  - installed: {version}")
            return
    os.chdir(meltano.root)
    command = [meltano.executable, "--log-level=warning", "invoke", DBT_UTILITY, *sys.argv[1:]]
    os.execvpe(command[0], command, meltano.process_env(None, None))  # noqa: S606 - dbt's own arguments
