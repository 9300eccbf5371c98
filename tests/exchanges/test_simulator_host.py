"""The simulator's plugins and control endpoints ask for it through protocols (no import of the server):
the real Simulator must offer every member they name, with the same parameters."""

import inspect

import pytest

from exchanges.simulator.control import SimControl
from exchanges.simulator.server import Simulator
from exchanges.simulator.venues.base import SimHost


def members(protocol: type) -> list[str]:
    return [name for name in vars(protocol) if not name.startswith("_")] + list(
        getattr(protocol, "__annotations__", {}))


@pytest.mark.parametrize("protocol", [SimHost, SimControl], ids=lambda p: p.__name__)
def test_the_simulator_offers_every_member_its_plugins_and_control_endpoints_ask_for(protocol):
    sim = Simulator(exchanges=["binance"])  # no I/O before start()
    names = members(protocol)
    assert names and all(hasattr(sim, name) for name in names), [n for n in names if not hasattr(sim, n)]
    for name in names:
        wanted = getattr(protocol, name, None)
        if callable(wanted):
            got = list(inspect.signature(getattr(Simulator, name)).parameters.items())
            asked = list(inspect.signature(wanted).parameters.items())
            assert [(n, p.kind, p.default) for n, p in got] == [(n, p.kind, p.default) for n, p in asked], name
            assert inspect.iscoroutinefunction(getattr(Simulator, name)) == inspect.iscoroutinefunction(wanted), name
