"""Children that die with the op that started them, so that no Meltano run outlives its op.

An op's process killed with -9 (a pod evicted, a worker lost) cannot stop its children; without
this, its Meltano run would go on beside the retry. Linux's prctl(PR_SET_PDEATHSIG) has the kernel
kill a process when its parent dies. It must be set in the child, and setting it between fork and
exec (`preexec_fn`) runs Python in a forked copy of a multi-threaded process, which Python documents
as unsafe (a lock held by another thread at the fork is never released: a deadlock). So the child is
this module, run as a program of its own: it sets the signal for itself, checks that its parent is
still the one that started it (prctl(2): the parent may have died before the call), then replaces
itself with the real command (the signal survives exec).

    python -m matomo_orchestrate.parent_death <parent pid> <command> [args...]
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def dying_with_this_process(command: list[str]) -> list[str]:
    """`command`, wrapped so that it is killed when this process dies (Linux); as is elsewhere."""
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-m", __name__, str(os.getpid()), *command]


def main(argv: list[str]) -> int:  # returns only when it cannot run the command
    parent, command = int(argv[0]), argv[1:]
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was set: nobody waits for this command
        return 1
    os.execvp(command[0], command)  # noqa: S606 - the command the op asked for, as it asked


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
