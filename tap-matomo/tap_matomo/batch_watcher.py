"""The watcher of one tap run's BATCH files: removes them if the tap dies without saying "keep".

Started by `batch_files.watch_run` with the files' folder and name pattern, it reads its stdin until the tap's
end closes it. The tap writes "keep" when it ends by itself (the loader may still be reading the files); a tap
killed by a signal (Meltano kills it with SIGKILL once the loader failed) says nothing, and the files, which
nothing will read, are removed. Kept to the standard library: it starts in milliseconds, beside the tap.
"""

from __future__ import annotations

import sys
from pathlib import Path


def remove_matching(folder: Path, pattern: str) -> int:
    """Remove the files of `folder` whose names match `pattern`; how many went (also the tap's, batch_files)."""
    removed = 0
    for path in folder.glob(pattern):
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:  # the loader or another cleaner removed it meanwhile
            continue
    return removed


def main() -> None:
    """`python -m tap_matomo.batch_watcher FOLDER PATTERN`."""
    folder, pattern = Path(sys.argv[1]), sys.argv[2]
    if sys.stdin.buffer.read() != b"keep":
        remove_matching(folder, pattern)


if __name__ == "__main__":
    main()
