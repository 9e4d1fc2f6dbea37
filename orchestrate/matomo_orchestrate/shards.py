"""Which sites each shard extracts: explicit lists, or every site split by a stable hash of its id.

A hash of the id, not its rank in the site list, so that a new site lands in one shard without
moving the others; the same ids always give the same shards, on every machine and run.
"""

from __future__ import annotations

import hashlib
import typing as t
from dataclasses import dataclass

#: Shards by hash: MATOMO_SHARDS=4. Explicit lists: MATOMO_SHARD_SITES="1,2;3;4,5" (one list per shard).
SHARDS_VAR = "MATOMO_SHARDS"
SHARD_SITES_VAR = "MATOMO_SHARD_SITES"


class ShardConfigError(ValueError):
    """A shard setting that cannot be used; its message is one line for the user."""


def shard_name(index: int) -> str:
    """A shard's name: its op's name and its Meltano state id suffix."""
    return f"shard_{index}"


def shard_of(idsite: int, count: int) -> int:
    """The shard of a site among `count`, by a hash of its id that does not change between runs."""
    digest = hashlib.sha256(str(idsite).encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class ShardPlan:
    """How sites are split: `count` shards by hash, or the given `lists`."""

    count: int
    lists: tuple[tuple[int, ...], ...] | None = None

    @classmethod
    def from_env(cls, env: t.Mapping[str, str]) -> ShardPlan:
        explicit = env.get(SHARD_SITES_VAR, "").strip()
        if explicit:
            try:
                lists = tuple(
                    tuple(int(site) for site in part.split(",") if site.strip()) for part in explicit.split(";")
                )
            except ValueError:
                msg = f"{SHARD_SITES_VAR}: {explicit!r} is not site id lists such as '1,2;3;4,5'"
                raise ShardConfigError(msg) from None
            sites = [site for part in lists for site in part]
            if not all(lists) or len(sites) != len(set(sites)):
                msg = f"{SHARD_SITES_VAR}: {explicit!r} has an empty list or a site in two lists"
                raise ShardConfigError(msg)
            return cls(len(lists), lists)
        raw = env.get(SHARDS_VAR, "1").strip() or "1"
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            msg = f"{SHARDS_VAR}: {raw!r} is not a number of shards from 1 to 1000"
            raise ShardConfigError(msg)
        return cls(int(raw))

    @property
    def names(self) -> list[str]:
        return [shard_name(n) for n in range(self.count)]

    @property
    def needs_site_list(self) -> bool:
        """Hash shards split the sites the token can view, which Matomo is asked for each cycle."""
        return self.lists is None

    def assign(self, sites: t.Iterable[int] = ()) -> dict[str, list[int]]:
        """Each shard's sites, sorted; with explicit lists, `sites` is not used."""
        if self.lists is not None:
            return {shard_name(n): sorted(part) for n, part in enumerate(self.lists)}
        plan: dict[str, list[int]] = {name: [] for name in self.names}
        for site in sorted(set(sites)):
            plan[shard_name(shard_of(site, self.count))].append(site)
        return plan
