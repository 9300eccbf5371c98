"""A paper exchange on loopback speaking each venue's real private-stream protocol (see server.py)."""

from exchanges.simulator.ledger import Ledger, SimFill, SimOrder
from exchanges.simulator.server import Simulator

__all__ = ["Ledger", "SimFill", "SimOrder", "Simulator"]
