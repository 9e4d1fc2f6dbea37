"""The tap fixes glibc's mmap threshold, so freed page buffers leave the process (tap_matomo/allocator.py).

Its effect on the tap's peak memory is measured by benchmarks/run.py (docs/benchmarks.md), not here.
"""

from __future__ import annotations

import platform

import pytest
from tap_matomo.allocator import return_large_blocks_to_the_system


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_glibc_takes_the_threshold() -> None:
    assert return_large_blocks_to_the_system()
