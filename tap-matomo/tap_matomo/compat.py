"""`typing.override` on every supported Python (it is in `typing` from 3.12, in typing_extensions before)."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

__all__ = ["override"]
