"""The tap fixes glibc's mmap threshold, so freed page buffers leave the process (tap_matomo/allocator.py).

Checked by its effect on a process's resident memory; its effect on the tap's peak memory is measured by
benchmarks/run.py (docs/benchmarks.md).
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.unit, pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")]

#: A process that frees 64 MiB of 1 MiB buffers (pages of visits, say) and prints its resident MiB
#: before and after. A first freed 4 MiB buffer raises glibc's dynamic threshold, as a first page does.
FREE_PAGES = """
import os, sys
if sys.argv[1] == "fixed":
    from tap_matomo.allocator import return_large_blocks_to_the_system
    assert return_large_blocks_to_the_system()

def resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20

first = bytearray(4 << 20)
del first
pages = [bytearray(1 << 20) for _ in range(64)]
later = bytearray(1000)  # allocated after them: the heap cannot shrink past it
before = resident()
del pages
print(before, resident())
"""


def returned_mib(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", FREE_PAGES, mode], capture_output=True, text=True, check=True)
    before, after = map(int, done.stdout.split())
    return before - after


def test_freed_page_buffers_leave_the_process() -> None:
    assert returned_mib("fixed") >= 56  # of 64
    assert returned_mib("default") <= 8  # glibc's own behaviour, which the tap changes
