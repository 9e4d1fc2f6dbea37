"""Run the simulator: `matomo-simulator --port 8765 --token demo-token --days 3`."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from matomo_simulator import clock
from matomo_simulator.dataset import World
from matomo_simulator.server import MatomoSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="A local Matomo 5 API simulator (127.0.0.1 only).",
        epilog="MATOMO_NOW=<ISO instant>[@<Unix seconds>] sets its clock, as tap-matomo's (docs/reliability.md).",
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default="demo-token", help="the token_auth it accepts")
    parser.add_argument("--days", type=float, default=3, help="days of history to generate, up to now")
    parser.add_argument("--visits-per-day", type=int, default=300, help="per site")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--sites", default="1,2,3,4", help="comma list of sites to serve: 1-4 built in, higher ids copies of them"
    )
    parser.add_argument(
        "--live-latency-ms", type=float, default=0, help="added to every Live answer, as a busy Matomo takes"
    )
    parser.add_argument(
        "--report-latency-ms", type=float, default=0, help="added to every Reporting API answer (a bulk one's once)"
    )
    args = parser.parse_args(argv)

    world = World(seed=args.seed)
    keep = {int(s) for s in args.sites.split(",")}
    built_in = list(world.sites.values())
    # Ids past the built-in ones are copies of them (5 of 1, 6 of 2...), for many-site setups.
    copies = {i: built_in[(i - 1) % len(built_in)] for i in sorted(keep)}
    world.sites = {
        i: site if site.idsite == i else replace(site, idsite=i, name=f"{site.name} ({i})")
        for i, site in copies.items()
    }
    now = datetime.fromtimestamp(clock.now(), UTC)  # MATOMO_NOW, when set
    world.generate(now - timedelta(days=args.days), now - timedelta(minutes=1), args.visits_per_day)
    sim = MatomoSimulator(world, {args.token: None}, port=args.port)
    sim.live_latency = args.live_latency_ms / 1000
    sim.report_latency = args.report_latency_ms / 1000
    sim.start()
    print(
        f"Matomo simulator on {sim.url} with {len(world.visits)} visits, {len(world.truth())} actions "
        f"on sites {sorted(keep)}",
        flush=True,
    )

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
