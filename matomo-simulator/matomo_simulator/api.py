"""Matomo's HTTP API as the simulator answers it (docs/matomo-api.md): the token and site checks, Live's
visitor log by day and `minTimestamp`, reports from archives or computed, `API.getBulkRequest`."""

from __future__ import annotations

import itertools
import threading
import typing as t
from bisect import bisect_left
from datetime import UTC, date, datetime, timedelta
from functools import partial
from urllib.parse import parse_qs

from matomo_simulator import reports
from matomo_simulator.render import render_custom_dimensions, render_goals, render_site, render_visit
from matomo_simulator.wire import BAD_DATE, BAD_TOKEN, VERSION, MatomoError

if t.TYPE_CHECKING:
    from matomo_simulator.dataset import World
    from matomo_simulator.model import Site


class MatomoApi:
    """The answers of the simulator (MatomoSimulator holds the state they read)."""

    world: World
    tokens: dict[str, set[int] | None]
    numeric_strings: bool
    now: t.Callable[[], float]
    disabled_plugins: set[str]
    browser_archiving: bool
    archives: dict[tuple[t.Any, ...], list[dict[str, t.Any]]]
    archived_days: dict[int, set[date]]
    processed_segments: set[str]
    _lock: threading.Lock

    def answer(self, params: dict[str, str], token: str | None) -> t.Any:
        """The JSON answer to one API call, or MatomoError."""
        method = params.get("method", "")
        if params.get("module") != "API":
            raise MatomoError("The parameter 'module' must be API", 400)
        allowed = self._viewable(params.get("idSite"), token)
        plugin = method.partition(".")[0]
        if plugin in self.disabled_plugins:
            raise MatomoError(
                f"The plugin {plugin} is not enabled. You can activate the plugin on Settings &gt; Plugins page in Matomo."
            )
        if method == "API.getMatomoVersion":
            return {"value": VERSION}
        if method == "API.getBulkRequest":
            return self._bulk(params, token)
        if method == "SitesManager.getSitesWithAtLeastViewAccess":
            return [render_site(s) for i, s in sorted(self.world.sites.items()) if allowed is None or i in allowed]
        handlers = {
            "SitesManager.getSiteFromId": lambda site: render_site(site),
            "CustomDimensions.getConfiguredCustomDimensions": render_custom_dimensions,
            "Goals.getGoals": render_goals,
            "Live.getLastVisitsDetails": lambda site: self._live(site.idsite, params),
            "API.getReportMetadata": reports.metadata,
            **{name: partial(self._report, method=name, params=params) for name in reports.report_methods()},
        }
        if method not in handlers:
            module_name, _, name = method.partition(".")
            raise MatomoError(
                f"The method '{name}' does not exist or is not available in the module '\\Piwik\\Plugins\\{module_name}\\API'."
            )
        return handlers[method](self._site(params.get("idSite"), allowed))

    def _viewable(self, raw_site: str | None, token: str | None) -> set[int] | None:
        """The sites the token may view (None: every site); a missing or unknown token is refused."""
        if token is None:
            raise MatomoError(
                f"You can't access this resource as it requires 'view' access for the website id = {raw_site or 1}.",
                401,
            )
        if token not in self.tokens:
            raise MatomoError(BAD_TOKEN, 401)
        return self.tokens[token]

    def _site(self, raw_site: str | None, allowed: set[int] | None) -> Site:
        """The site an API call names, which must exist and be viewable with the token."""
        try:
            idsite = int(raw_site or "")
        except ValueError as exc:
            raise MatomoError(
                f"An unexpected website was found in the request: website id was set to '{raw_site}' ."
            ) from exc
        if idsite not in self.world.sites:
            raise MatomoError(f"An unexpected website was found in the request: website id was set to '{idsite}' .")
        if allowed is not None and idsite not in allowed:
            raise MatomoError(
                f"You can't access this resource as it requires 'view' access for the website id = {idsite}.", 401
            )
        return self.world.sites[idsite]

    def _day(self, value: str) -> date:
        today_utc = datetime.fromtimestamp(self.now(), UTC).date()
        if value == "today":
            return today_utc
        if value == "yesterday":
            return today_utc - timedelta(days=1)
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise MatomoError(BAD_DATE.format(value="false")) from exc

    def _window(self, idsite: int, params: dict[str, str]) -> tuple[int | None, int | None]:
        """[lo, hi] on last action time; `period=day` in the site's timezone, with the 'today' rule."""
        period, value = params.get("period"), params.get("date")
        if not period and not value:
            return None, None
        if not period or not value:
            raise MatomoError("To filter by date, both 'period' and 'date' must be set.")
        if period != "day":
            raise MatomoError(f"The simulator answers period=day only, not '{period}'.")
        day = self._day(value)
        site = self.world.sites[idsite]
        today_local = datetime.fromtimestamp(self.now(), site.tz).date()
        if day == today_local:  # Matomo: from yesterday 00:00, no end bound
            lo, _ = self.world.site_day_bounds(idsite, day - timedelta(days=1))
            return lo, None
        return self.world.site_day_bounds(idsite, day)

    def _live(self, idsite: int, params: dict[str, str]) -> list[dict]:
        lo, hi = self._window(idsite, params)
        min_ts = int(params["minTimestamp"]) if params.get("minTimestamp") else None
        descending = params.get("filter_sort_order", "desc") != "asc"
        limit = int(params.get("filter_limit", 10))
        offset = int(params.get("filter_offset", 0))
        lower = max(lo if lo is not None else -1, min_ts + 1 if min_ts is not None else -1)
        upper = min(hi if hi is not None else 2**62, int(self.now()))
        with self.world.lock:
            rows = self.world.by_last_action(idsite)
            matched = rows[bisect_left(rows, (lower,)) : bisect_left(rows, (upper + 1,))]
            if descending:
                matched = matched[::-1]
            page = matched[offset:] if limit == -1 else matched[offset : offset + limit]
            return [render_visit(self.world, v, numeric_strings=self.numeric_strings) for _, _, v in page]

    def _bulk(self, params: dict[str, str], token: str | None) -> list[t.Any]:
        """API.getBulkRequest: each `urls[n]` answered in turn, an error as its own envelope."""
        answers = []
        for n in itertools.count():  # pragma: no branch - ends at the first missing urls[n]
            url = params.get(f"urls[{n}]")
            if url is None:
                break
            sub = {k: v[-1] for k, v in parse_qs(url, keep_blank_values=True).items()}
            try:
                answers.append(self.answer({"module": "API", "format": "JSON", **sub}, token))
            except MatomoError as exc:
                answers.append({"result": "error", "message": exc.message})
        return answers

    def _report(self, site: Site, *, method: str, params: dict[str, str]) -> t.Any:
        """A report of a period: from its archive once a closed period was archived; else computed when
        browser archiving is on (Matomo's default), or empty (zeros, []) until core:archive ran."""
        period = params.get("period") or ""
        if period not in ("day", "week", "month", "year"):
            raise MatomoError(
                f"The period '{period}' is not supported. Try any of the following instead: day, week, month, year, range"
            )
        start, end = reports.period_range(period, self._day(params.get("date", "today")))
        segment = params.get("segment", "")
        extra = {k: v for k, v in params.items() if k in ("idGoal", "idDimension")}
        query = reports.ReportQuery(method, period, start, end, segment, extra)
        today = datetime.fromtimestamp(self.now(), site.tz).date()
        key = (site.idsite, method, tuple(sorted(extra.items())), segment, period, start)
        with self._lock:
            archived = self.archives.get(key)
        if archived is not None and end < today:
            rows = archived
        elif self.browser_archiving:
            rows = reports.compute(self.world, site, query)
            if end < today:
                with self._lock:
                    self.archives[key] = rows
        else:  # core:archive by cron: what it processed, without the days it has not (today)
            done = self.archived_days.get(site.idsite, set())
            last = min(end, today - timedelta(days=1))
            processed = (not segment or segment in self.processed_segments) and start <= last
            processed = processed and all(start + timedelta(days=n) in done for n in range((last - start).days + 1))
            query.end = last if processed else start - timedelta(days=1)  # nothing processed: no visit
            rows = reports.compute(self.world, site, query)
        limit = int(params.get("filter_limit") or reports.DEFAULT_FILTER_LIMIT)
        return reports.render(
            rows,
            query,
            flat=params.get("flat") == "1",
            format_metrics=params.get("format_metrics", "1") != "0",
            limit=limit,
            offset=int(params.get("filter_offset") or 0),
        )
