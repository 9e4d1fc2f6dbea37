"""The watcher of one tap run's BATCH files: removes them if the tap dies without saying "keep".

Started by `batch_files.watch_run` with the files' folder and name pattern, it reads its stdin until the tap's
end closes it. The tap writes "keep" when it ends by itself (the loader may still be reading the files); a tap
killed by a signal (Meltano kills it with SIGKILL once the loader failed) says nothing, and the files, which
nothing will read, are removed. Kept to the standard library: it starts in milliseconds, beside the tap.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    """`python -m tap_matomo.batch_watcher FOLDER PATTERN`."""
    folder, pattern = Path(sys.argv[1]), sys.argv[2]
    if sys.stdin.buffer.read() == b"keep":
        return
    for path in folder.glob(pattern):
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
