"""The simulator's world: every site and visit, changed as Matomo's data changes (new visits, visits that grow,
pings, erasures, anonymisation, purges), deterministically from a seed; and the truth a complete load holds.

The model is in model.py, new visits and hits in hits.py; rendering to Matomo's JSON is render.py's job.
"""

from __future__ import annotations

import copy
import hashlib
import random
import threading
import typing as t
from datetime import UTC, date, datetime, time, timedelta

from matomo_simulator.hits import HitMaker
from matomo_simulator.model import DEFAULT_SITES, Action, Site, Visit
from matomo_simulator.visitors import ANONYMOUS_LOCATION


class World:
    """Every site and visit the simulator knows; thread-safe, changed only through its methods."""

    def __init__(self, seed: int = 1, sites: list[Site] | None = None, max_actions_per_visit: int = 500) -> None:
        self.rng = random.Random(seed)
        self.sites = {s.idsite: s for s in (sites or DEFAULT_SITES)}
        self.visits: dict[int, Visit] = {}
        self.max_actions_per_visit = max_actions_per_visit
        self.lock = threading.RLock()
        self.hits = HitMaker(self.rng)
        #: Bumped by every change to a visit: the per-site index below is rebuilt when it moves.
        self.version = 0
        self._index: dict[int, tuple[int, list[tuple[int, int, Visit]]]] = {}

    def clone(self) -> World:
        """An independent copy (same visits, same random sequence): a test can change it freely."""
        with self.lock:
            state = copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in ("lock", "_index")})
        twin = World.__new__(World)
        twin.__dict__.update(state, lock=threading.RLock(), _index={})
        return twin

    # -- building visits -------------------------------------------------------------------

    def add_visit(self, idsite: int, last_action_at: int, n_actions: int | None = None) -> Visit:
        """A new visit whose last action is at `last_action_at` (never crossing local midnight)."""
        with self.lock:
            site = self.sites[idsite]
            visit = self.hits.new_visit(site)
            count = n_actions or self.rng.randint(1, 8)
            actions = self.hits.actions(site, visit, 0, count)
            span = actions[-1].at
            local = datetime.fromtimestamp(last_action_at, site.tz)
            midnight = int(datetime.combine(local.date(), time(0), tzinfo=site.tz).timestamp())
            start = max(last_action_at - span, midnight)
            shift = [min(a.at + start, last_action_at) for a in actions]
            shift[-1] = last_action_at
            for action, at in zip(actions, shift, strict=True):
                action.at = at
            visit.actions = actions
            self.visits[visit.idvisit] = visit
            self.version += 1
            return visit

    def add_shared_label_visits(self, idsite: int, at: int) -> list[Visit]:
        """Two visits whose report rows share a flat label, as real Matomo 5.0.2 answered: an event of
        category "Video - Play" and action "HD", and one of category "Video" and action "Play - HD" (both
        "Video - Play - HD" in Events.getCategory); and the second visit in the first's country under the
        code in upper case (a location re-geolocated after an anonymisation), a country row of its own
        with the same name in UserCountry.getCountry. Each visit: a pageview then the event, ending at `at`."""
        visits = [self.add_visit(idsite, at, n_actions=1) for _ in range(2)]
        site = self.sites[idsite]
        with self.lock:
            for visit, (category, action) in zip(visits, [("Video - Play", "HD"), ("Video", "Play - HD")], strict=True):
                for earlier in visit.actions:
                    earlier.at = at - 1
                page = visit.actions[0]
                attrs = {"eventCategory": category, "eventAction": action}
                visit.actions.append(
                    Action(
                        "event",
                        at,
                        page.url,
                        None,
                        page.pageview_id,
                        self.hits.link_id(),
                        attrs,
                        self.hits.action_dims(site),
                    )
                )
            location = {key: visits[0].attrs[key] for key in ANONYMOUS_LOCATION}
            visits[1].attrs |= location | {"countryCode": str(location["countryCode"]).upper()}
            self.version += 1
        return visits

    def grow_visit(self, idvisit: int, at: int, n_actions: int = 1) -> Visit:
        """Open visit gets more hits, the first at `at` (after its current last action)."""
        with self.lock:
            visit = self.visits[idvisit]
            site = self.sites[visit.idsite]
            start = max(at, visit.last_action + 1)
            more = self.hits.actions(site, visit, start, n_actions)
            if more and more[0].kind not in ("action",):
                more.insert(0, self.hits.pageview(site, start, "/pricing", f"pv{self.rng.getrandbits(24):06x}"))
            visit.actions.extend(more)
            self.version += 1
            return visit

    def ping_visit(self, idvisit: int, seconds: int, user_id: str | None = None) -> Visit:
        """A heartbeat ping, as verified on Matomo 5.0.2: `visitDuration` grows, and a ping carrying
        `uid` sets `userId` and changes `visitorId`; the last action and the action list stay as they are."""
        with self.lock:
            visit = self.visits[idvisit]
            visit.ping_seconds += seconds
            if user_id is not None:
                visit.attrs["userId"] = user_id
                visit.visitor_id = hashlib.sha1(user_id.encode()).hexdigest()[:16]  # noqa: S324 - Matomo's own id
            self.version += 1
            return visit

    def remove_actions(self, idvisit: int, start: int, stop: int | None = None) -> Visit:
        """Matomo no longer returns actions [start:stop] of a visit (a purge, a lower cap)."""
        with self.lock:
            visit = self.visits[idvisit]
            del visit.actions[start:stop]
            self.version += 1
            return visit

    def erase_visits(self, idvisits: t.Iterable[int]) -> int:
        """A GDPR erasure (PrivacyManager.deleteDataSubjects): the visits are gone from the Live API at once."""
        with self.lock:
            gone = [idvisit for idvisit in idvisits if self.visits.pop(idvisit, None) is not None]
            self.version += 1
            return len(gone)

    def anonymise(self, idsite: int, start: date, end: date) -> list[int]:
        """PrivacyManager.anonymizeSomeRawData (IP, location, user id) over site-local days [start, end],
        as the scheduled task anonymizePastData applies it: the IP keeps two bytes (76.146.0.0), location
        fields are emptied, the user id removed; ids, timestamps and actions do not change."""
        lo, _ = self.site_day_bounds(idsite, start)
        _, hi = self.site_day_bounds(idsite, end)
        with self.lock:
            changed = [v for v in self.visits.values() if v.idsite == idsite and lo <= v.last_action < hi]
            for visit in changed:
                a = visit.attrs
                a["visitIp"] = ".".join([*a["visitIp"].split(".")[:2], "0", "0"])
                a.update(ANONYMOUS_LOCATION)
                a["userId"] = None
            self.version += 1
            return [v.idvisit for v in changed]

    def purge_before(self, idsite: int, day: date) -> int:
        """Matomo's own deletion of old raw logs (delete_logs_older_than): whole site-local days before `day`."""
        lo, _ = self.site_day_bounds(idsite, day)
        with self.lock:
            old = [i for i, v in self.visits.items() if v.idsite == idsite and v.last_action < lo]
            return self.erase_visits(old)

    def generate(self, start: datetime, end: datetime, visits_per_day: int) -> None:
        """Visits spread over [start, end) on every site, in each site's own days."""
        with self.lock:
            for site in self.sites.values():
                per_second = visits_per_day / 86400
                count = max(1, round((end - start).total_seconds() * per_second))
                for _ in range(count):
                    at = self.rng.randint(int(start.timestamp()), int(end.timestamp()) - 1)
                    self.add_visit(site.idsite, at)

    def add_burst(self, idsite: int, at: int, count: int) -> list[Visit]:
        """`count` visits whose last action falls on the same second (paging's hard case)."""
        return [self.add_visit(idsite, at, n_actions=2) for _ in range(count)]

    def add_long_visit(self, idsite: int, last_action_at: int) -> Visit:
        """A visit with more actions than the server returns (it will carry truncatedActionsCount)."""
        return self.add_visit(idsite, last_action_at, n_actions=self.max_actions_per_visit + 5)

    # -- reading ---------------------------------------------------------------------------

    def by_last_action(self, idsite: int) -> list[tuple[int, int, Visit]]:
        """A site's visits as (last action, idvisit, visit), in that order; kept until a visit changes."""
        with self.lock:
            cached = self._index.get(idsite)
            if cached is None or cached[0] != self.version:
                rows = sorted((v.last_action, v.idvisit, v) for v in self.visits.values() if v.idsite == idsite)
                cached = self._index[idsite] = (self.version, rows)
            return cached[1]

    def site_day_bounds(self, idsite: int, day: date) -> tuple[int, int]:
        tz = self.sites[idsite].tz
        lo = datetime.combine(day, time(0), tzinfo=tz)
        hi = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
        return int(lo.timestamp()), int(hi.timestamp())

    def returned_actions(self, visit: Visit) -> list[Action]:
        """The actions the Live API returns for a visit (capped like visitor_log_maximum_actions_per_visit)."""
        return sorted(visit.actions, key=lambda a: a.at)[: self.max_actions_per_visit]

    def truth(self, idsite: int | None = None) -> dict[str, dict]:
        """What a complete load must hold: action_id -> its type, UTC instant and visit."""
        with self.lock:
            result = {}
            for visit in self.visits.values():
                if idsite is not None and visit.idsite != idsite:
                    continue
                for position, action in enumerate(self.returned_actions(visit)):
                    result[f"{visit.idvisit}_{position}"] = {
                        "idsite": visit.idsite,
                        "idvisit": visit.idvisit,
                        "action_type": action.kind,
                        "action_timestamp": datetime.fromtimestamp(action.at, UTC).isoformat(),
                    }
            return result
