"""The live dashboard: a backend served by the package (aiohttp) with a resumable page socket, an HTTP API and
manual orders (README "The live dashboard")."""

from framework.dashboard.server import Dashboard
from framework.dashboard.state import DashboardState, Journal, PageView

__all__ = ["Dashboard", "DashboardState", "Journal", "PageView"]
