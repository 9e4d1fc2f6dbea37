"""The Matomo dashboards (dashboards/): the spec holds together, and Superset shows the marts' numbers.

The browser tests run the real path: the job with Matomo's default reports into a warehouse, `make
dashboards` on it (the Meltano utility `dashboards`: Superset's metadata, the bundle imported, its web
server), and headless Chromium (the machine's, driven by Playwright) logged in and reading the dashboard.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
import requests
import yaml
from matomo_dashboards.bundle import build, load_spec
from matomo_dashboards.layout import filter_id
from matomo_simulator import MatomoSimulator
from playwright.sync_api import BrowserContext, sync_playwright
from tap_matomo import clock
from tap_matomo.reports.specs import DEFAULT_REPORTS

from devenv.net import free_port
from devenv.postgres import LocalPostgres
from tests.conftest import TOKENS, new_database, project_meltano, three_day_world
from tests.pipeline import ROOT, Meltano, query

SPEC = load_spec()
MARTS = {path.stem for path in (ROOT / "transform/models/marts").glob("*.sql")}
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
#: The flags a headless Chromium needs on a machine with no outside network (no background connections).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "dashboards-test-password"
#: How long a page of Superset or an element of it may take to come (ms).
TIMEOUT_MS = 180_000
#: How long `make dashboards` may take to stop everything it started (docs/dashboards.md).
STOP_SECONDS = 10
needs_chromium = pytest.mark.skipif(
    not CHROMIUM, reason="no Chromium on this machine (Debian: apt install chromium; or CHROMIUM=path)"
)


def charts() -> list[dict]:
    return [chart for dashboard in SPEC["dashboards"] for row in dashboard["rows"] for chart in row]


@pytest.mark.unit
def test_every_chart_reads_a_mart_a_metric_it_defines_and_a_report_the_tap_copies() -> None:
    reports = {spec.name for spec in DEFAULT_REPORTS}
    assert set(SPEC["datasets"]) <= MARTS
    for chart in charts():
        metrics = chart.get("metrics") or [chart["metric"]]
        assert set(metrics) <= set(SPEC["datasets"][chart["dataset"]]["metrics"]), chart["title"]
        assert chart.get("report", next(iter(reports))) in reports, chart["title"]
    for dashboard in SPEC["dashboards"]:
        assert all(sum(chart["width"] for chart in row) <= 12 for row in dashboard["rows"]), dashboard["slug"]


@pytest.mark.unit
def test_the_bundle_has_a_file_per_object_and_the_same_ids_at_every_build() -> None:
    first = build(SPEC, {}, "analytics")
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert len([n for n in names if "/charts/" in n]) == len(charts())
    assert len([n for n in names if "/datasets/" in n]) == len(SPEC["datasets"])
    dataset = yaml.safe_load(
        zipfile.ZipFile(io.BytesIO(first)).read("matomo_dashboards/datasets/matomo_warehouse/matomo_daily.yaml")
    )
    assert dataset["schema"] == "analytics"
    assert build(SPEC, {}, "analytics") == first  # importing again updates, never duplicates
    # ... and no build time inside (the entries' dates followed the clock: builds differed across seconds)
    assert {entry.date_time for entry in zipfile.ZipFile(io.BytesIO(first)).infolist()} == {(1980, 1, 1, 0, 0, 0)}


@pytest.fixture(scope="module")
def warehouse(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Meltano]]:
    """The job with Matomo's default reports (yesterday final at once) over three days of four sites."""
    folder = tmp_path_factory.mktemp("dashboards")
    with new_database(postgres) as database, MatomoSimulator(three_day_world(), TOKENS) as simulator:
        meltano = project_meltano(simulator.url, database, folder / "meltano.db")
        meltano.env.pop("TAP_MATOMO_REPORTS")  # the default reports: what the dashboards read
        start = (clock.utc_now() - timedelta(days=3)).date().isoformat()
        meltano.env |= {"STARTDATE": start, "TAP_MATOMO_REPORT_FINAL_AFTER_HOURS": "0"}
        done = meltano.run("run", "matomo-to-postgres")
        assert done.returncode == 0, done.stderr[-3000:]
        yield database, meltano


@dataclass
class Dashboards:
    """`make dashboards` running on the test warehouse: its process, and Superset's URL."""

    make: subprocess.Popen[bytes]
    url: str


@pytest.fixture(scope="module")
def superset(warehouse: tuple[str, Meltano], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboards]:
    """`make dashboards` on the warehouse (the README's command), until the module ends."""
    _, meltano = warehouse
    port = free_port()
    home = tmp_path_factory.mktemp("superset-home")
    env = {**os.environ, **meltano.env, "MATOMO_SUPERSET_PORT": str(port), "MATOMO_SUPERSET_HOME": str(home)}
    env["SUPERSET_ADMIN_PASSWORD"] = PASSWORD
    log = (home / "make.log").open("wb")
    make = subprocess.Popen(["make", "--no-print-directory", "dashboards"], cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and make.poll() is None:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(1)
        else:
            pytest.fail(f"Superset did not start: {(home / 'make.log').read_text()[-3000:]}")
        started = psutil.Process(make.pid).children(recursive=True)
        yield Dashboards(make, url)
    finally:
        for process in [*started, psutil.Process(make.pid)] if make.poll() is None else started:
            if process.is_running():
                process.kill()
        make.wait()


@pytest.fixture(scope="module")
def browser(superset: Dashboards) -> Iterator[BrowserContext]:
    """Headless Chromium, logged in to Superset as its admin once for the module's pages."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = chromium.new_context(viewport={"width": 1600, "height": 2400})
        # Superset's pages are heavy for a machine busy with other tests: minutes, not Playwright's 30 s.
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.goto(f"{superset.url}/login/")
        page.fill("#username", "admin")
        page.fill("#password", PASSWORD)
        page.keyboard.press("Enter")
        # Logged in once the login page is left (the next page's own loading is not waited for here).
        page.wait_for_url(lambda url: "/login" not in url, wait_until="commit")
        page.close()
        yield context
        chromium.close()


@needs_chromium
def test_the_dashboard_renders_in_a_browser_with_the_marts_numbers(
    warehouse: tuple[str, Meltano], superset: Dashboards, browser: BrowserContext, tmp_path: Path
) -> None:
    database, _ = warehouse
    ((visits,),) = query(database, "SELECT sum(nb_visits) FROM matomo_daily")
    ((top_page, top_hits),) = query(
        database,
        "SELECT label, sum(hits) FROM matomo_reports WHERE report = 'report_page_urls' AND period = 'day' "
        "GROUP BY label ORDER BY 2 DESC, 1 LIMIT 1",
    )
    assert visits > 0
    assert top_hits > 0
    with browser.new_page() as page:
        page.goto(f"{superset.url}/superset/dashboard/matomo/?standalone=1")
        # Every chart placed, the number and the table drawn (Playwright waits for each), then no request left.
        page.locator("[data-test-chart-name]").nth(len(charts()) - 1).wait_for()
        shown = page.locator("[data-test-chart-name='Visits'] .header-line").inner_text()
        top_row = page.locator("[data-test-chart-name='Top pages'] tbody tr").first.inner_text()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
        names = page.locator("[data-test-chart-name]").evaluate_all("els => els.map(e => e.dataset.testChartName)")
        errors = page.locator("[data-test='chart-container'] .alert, .ant-alert-error").count()
    assert shown == f"{visits:,}"
    assert top_row.split() == [top_page, f"{top_hits:,}"]
    assert sorted(names) == sorted(chart["title"] for chart in charts())
    assert errors == 0, f"{errors} charts show an error (screenshot: {tmp_path / 'dashboard.png'})"


@needs_chromium
def test_the_site_filter_shows_one_sites_numbers(
    warehouse: tuple[str, Meltano], superset: Dashboards, browser: BrowserContext
) -> None:
    """The dashboard's site filter, preset by a link as a user's choice would set it: the visits are that site's."""
    database, _ = warehouse
    ((site, visits),) = query(
        database, "SELECT sitename, sum(nb_visits) FROM matomo_daily GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
    )
    ((all_visits,),) = query(database, "SELECT sum(nb_visits) FROM matomo_daily")
    assert 0 < visits < all_visits
    choice = f"(extraFormData:(filters:!((col:sitename,op:IN,val:!('{site}')))),filterState:(value:!('{site}')))"
    link = f"{superset.url}/superset/dashboard/matomo/?native_filters=({filter_id('matomo', 'Site')}:{choice})"
    with browser.new_page() as page:
        page.goto(link.replace(" ", "%20"))
        number = page.locator("[data-test-chart-name='Visits'] .header-line")
        number.wait_for()
        page.wait_for_load_state("networkidle")
        shown = number.inner_text()
    assert shown == f"{visits:,}"


def test_sigterm_to_make_dashboards_stops_every_process_it_started(superset: Dashboards) -> None:
    """SIGTERM to `make` alone (as a supervisor or `timeout` sends it): Meltano, matomo-superset and
    Superset's server are all gone within 10 s. Runs last: it stops the module's Superset."""
    started = psutil.Process(superset.make.pid).children(recursive=True)
    assert any("superset run" in " ".join(p.cmdline()) for p in started)
    superset.make.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs([psutil.Process(superset.make.pid), *started], timeout=STOP_SECONDS)
    assert not alive, [" ".join(p.cmdline())[:120] for p in alive]
