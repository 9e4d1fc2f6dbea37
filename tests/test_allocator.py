"""The tap fixes glibc's mmap threshold, so freed page buffers leave the process (tap_matomo/allocator.py).

Checked by what glibc reports of a process's memory; its effect on the tap's peak memory is measured by
benchmarks/run.py (docs/benchmarks.md).
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.unit, pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")]

#: A process that allocates then frees 64 MiB of 1 MiB buffers (pages of visits, say), printing the MiB that
#: glibc holds in blocks mapped on their own (mallinfo2's hblkhd: what munmap gives back to the system at
#: once when freed) before, while they live, and after. A first freed 4 MiB buffer raises glibc's dynamic
#: threshold, as the tap's first page does.
FREE_PAGES = """
import ctypes, sys
if sys.argv[1] == "fixed":
    from tap_matomo.allocator import return_large_blocks_to_the_system
    assert return_large_blocks_to_the_system()

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                      "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2

def mapped() -> int:
    return mallinfo2().hblkhd >> 20

first = bytearray(4 << 20)
del first
before = mapped()
pages = [bytearray(1 << 20) for _ in range(64)]
living = mapped()
del pages
print(before, living, mapped())
"""


def mapped_mib(mode: str) -> tuple[int, int, int]:
    done = subprocess.run([sys.executable, "-c", FREE_PAGES, mode], capture_output=True, text=True, check=True)
    before, living, after = map(int, done.stdout.split())
    return before, living, after


def test_freed_page_buffers_leave_the_process() -> None:
    before, living, after = mapped_mib("fixed")
    assert living - before >= 60  # each page mapped on its own...
    assert after == before  # ...and unmapped, given back to the system, once freed
    before, living, after = mapped_mib("default")
    assert living - before <= 4  # glibc's own behaviour, which the tap changes: pages in its heap
