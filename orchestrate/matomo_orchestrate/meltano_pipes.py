"""A Meltano run reported to its Dagster step through Dagster Pipes.

    python -m matomo_orchestrate.meltano_pipes <meltano> run ...     (started by Dagster's PipesSubprocessClient)

Meltano knows nothing of Dagster, so this small program sits between them: it runs the Meltano
command with Meltano's JSON log format (killed if this program dies, see parent_death.py), writes
each log line as people read it to its own standard output, which Dagster captures as the step's
output, counts what the run did from the log (run_report.py: the tap's metrics, which it logs only when asked,
TAP_MATOMO_LOG_METRICS), and sends the step one Pipes message
with the counts, Meltano's exit code and the line that says why it failed. It exits 0 whenever it could report,
Meltano's failure included: the step then tells a failed extraction (its own one-line error,
retried) from a failure of this program.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from dagster_pipes import open_dagster_pipes

from matomo_orchestrate.parent_death import dying_with_this_process
from matomo_orchestrate.run_report import RunReport


def main(command: list[str]) -> int:
    executable, *args = command
    with open_dagster_pipes() as pipes:
        report = RunReport()
        started = time.monotonic()
        process = subprocess.Popen(
            dying_with_this_process([executable, "--log-format=json", *args]),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "TAP_MATOMO_LOG_METRICS": "true"},  # the counts come from the tap's metrics
        )
        assert process.stdout is not None
        for line in process.stdout:
            print(report.feed(line), flush=True)
        code = process.wait()
        pipes.report_custom_message(
            {
                **report.to_message(),
                "exit_code": code,
                "error": report.error,
                "seconds": time.monotonic() - started,
            }
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
