"""A local stand-in for a Matomo 5 server, answering like the real one (quirks included).

It holds a deterministic generated dataset, can change it while serving (new visits, visits
that grow, late hits), inject faults, and tells the exact truth a loader must end up with.
"""

from matomo_simulator.dataset import World
from matomo_simulator.model import Action, Site, Visit
from matomo_simulator.server import Fault, MatomoSimulator

__all__ = ["Action", "Fault", "MatomoSimulator", "Site", "Visit", "World"]
