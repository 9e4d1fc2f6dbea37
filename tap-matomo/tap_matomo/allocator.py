"""Freed page buffers go back to the operating system, so the tap's memory does not grow with a day.

A page of 500 visits is about 2 MB of JSON, read into one `bytes` per page. glibc's malloc serves
a block that large with its own mmap and unmaps it when freed, but the first time it frees one it
raises that threshold to the block's size (up to 32 MiB, "dynamic mmap threshold") and from then
on serves pages from its heaps, one heap per thread that fetches days. Freed pages then leave holes
that the heaps keep: the more pages a run reads, the higher its peak. Measured under
`meltano run tap-matomo target-postgres` (docs/benchmarks.md): 60 MiB for a 5,000-visit day,
70-74 MiB for a 50,000-visit day; with the threshold fixed, 59-60 and 64-65 MiB. The cost is an
mmap and munmap per page, small against the page's download and decoding.

`mallopt(M_MMAP_THRESHOLD, ...)` is glibc's documented way to fix the threshold (the same as the
`MALLOC_MMAP_THRESHOLD_` environment variable, which must be set before the process starts). Other
C libraries (musl's mallopt does nothing, macOS and Windows have none) are left as they are.
"""

from __future__ import annotations

import ctypes

#: glibc's mallopt parameter number for the mmap threshold (malloc.h).
M_MMAP_THRESHOLD = -3
#: glibc's default threshold: blocks from 128 KiB up are mapped on their own.
THRESHOLD_BYTES = 128 * 1024


def return_large_blocks_to_the_system() -> bool:
    """Fix glibc's mmap threshold at its default; True when the C library took it."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (AttributeError, OSError, TypeError):  # no mallopt (macOS), no C library handle (Windows)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
