"""What the last runs emitted of the visits the next run will read again, kept small in the state.

A run re-reads `lookback_minutes` of visits. A visit read again whose records are exactly those
emitted before is unchanged and skipped, so a run without new data emits nothing. "Exactly" is a
digest of the visit's mapped records: every stored field counts, including those that change
without a new action (a heartbeat ping raises `visitDuration`; a ping with a `uid` sets `userId`
and `visitorId`; anonymisation rewrites the location).

State size is bounded whatever the traffic: each visit takes 16 bytes (its id as an offset,
its last action, an 8-byte digest), base64-encoded, and at most `CAP` visits are kept, the
newest by last action. The fallback past the cap is safe: a visit without an entry is emitted
again when it is read again (the loader upserts it, dbt replaces its rows), never skipped.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import typing as t
from dataclasses import dataclass, field

import msgspec

#: Visits remembered per site (about 213 KB of state at the cap).
CAP = 10_000
_ENTRY = struct.Struct("<II8s")  # idvisit - base, last action (UTC epoch), digest
_VERSION = 1


def visit_digest(columns: object) -> bytes:
    """8 bytes that change whenever any value of a visit's mapped columns changes.

    `columns` is the mapped visit (its shared columns and its actions' own, see records.py), so
    the visit's fields are hashed once, not once per action. msgspec's JSON encoding of the values
    is five times faster than their repr().
    """
    return hashlib.blake2b(msgspec.json.encode(columns), digest_size=8).digest()


@dataclass
class RecentVisits:
    """idvisit -> (last action epoch, digest) of visits emitted recently."""

    entries: dict[int, tuple[int, bytes]] = field(default_factory=dict)

    def unchanged(self, idvisit: int, digest: bytes) -> bool:
        entry = self.entries.get(idvisit)
        return entry is not None and entry[1] == digest

    def remember(self, idvisit: int, last_action: int, digest: bytes, *, horizon: int = 0) -> None:
        """Add a visit; past twice the cap, trim to what the next state can still keep, so that memory
        does not grow with the size of a day (a backfill reads its oldest visits while the horizon is
        still low). Nothing the end of the run keeps is lost: the horizon only rises, and a visit not
        among the newest `CAP` now never will be. A trimmed entry from the previous state only means
        its visit, if read again, is emitted again."""
        self.entries[idvisit] = (last_action, digest)
        if len(self.entries) > 2 * CAP:
            self.entries = self.kept(horizon).entries

    def kept(self, horizon: int, cap: int = CAP) -> RecentVisits:
        """The entries the next run can use: last action at or after `horizon`, the newest `cap` of them."""
        recent = [(idvisit, entry) for idvisit, entry in self.entries.items() if entry[0] >= horizon]
        if len(recent) > cap:
            recent = sorted(recent, key=lambda item: item[1][0], reverse=True)[:cap]
        return RecentVisits(dict(recent))

    def encode(self) -> dict[str, t.Any]:
        """The state form: {"v": 1, "base": smallest id, "entries": base64 of 16-byte entries}."""
        if not self.entries:
            return {"v": _VERSION, "base": 0, "entries": ""}
        base = min(self.entries)
        packed = b"".join(
            _ENTRY.pack(idvisit - base, last, digest) for idvisit, (last, digest) in sorted(self.entries.items())
        )
        return {"v": _VERSION, "base": base, "entries": base64.b64encode(packed).decode()}

    @classmethod
    def decode(cls, value: t.Any) -> RecentVisits:
        """From the state; anything else (absent, an older format) reads as empty: those visits are emitted again."""
        if not isinstance(value, dict) or value.get("v") != _VERSION:
            return cls()
        packed = base64.b64decode(value.get("entries", ""))
        base = int(value.get("base", 0))
        return cls({base + offset: (last, digest) for offset, last, digest in _ENTRY.iter_unpack(packed)})
