"""What a run read, per site and site-local day.

`visits_actions` fills it; `reconciled_days` and `visits_summary`, which the SDK syncs after it for
the same site, report from it. A day enters `complete` only once its whole listing was read in a
reconcile run, so a run that fails part way reports no day it did not finish.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from datetime import date, datetime


@dataclass(frozen=True)
class ListedDay:
    """A site-local day listed in full: the visits whose last action is on it, and their actions."""

    site_day: date
    visits: int
    actions: int


@dataclass
class DayLedger:
    """The run's days, per idsite."""

    started_at: datetime
    read: dict[int, list[date]] = field(default_factory=dict)
    complete: dict[int, list[ListedDay]] = field(default_factory=dict)
