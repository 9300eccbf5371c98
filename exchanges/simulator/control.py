"""The simulator's control endpoints under `/_sim/`: a test in another process makes fills and faults, reads the ledger.

JSON in, JSON out; every number of a fill is its exact text. Loopback callers only.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import attrs
from aiohttp import web

from exchanges.simulator.ledger import SimFill
from framework.events import Market, Side

if TYPE_CHECKING:
    from exchanges.simulator.ledger import Ledger, SimOrder
    from exchanges.simulator.venues.base import SimSession, VenueSim


class SimControl(Protocol):
    """What the control endpoints drive: the running simulator (`server.Simulator`, not imported here)."""

    exchanges: tuple[str, ...]

    def venue(self, exchange: str) -> VenueSim: ...

    def ledger(self, exchange: str, market: Market | str) -> Ledger: ...

    def sessions(self, exchange: str, market: Market | str) -> list[SimSession]: ...

    async def fill(self, exchange: str, market: Market | str, symbol: str, side: Side | str, amount: Any,
                   price: Any, *, client_order_id: str | None = None, parts: int = 1,
                   is_maker: bool | None = None) -> tuple[SimOrder, list[SimFill]]: ...

    def render_fill_frames(self, exchange: str, market: Market | str, symbol: str, side: Side | str, amount: Any,
                           price: Any, *, time: int | None = None,
                           client_order_id: str | None = None) -> tuple[SimFill, list[str | bytes]]: ...

    async def inject_raw(self, exchange: str, market: Market | str, frame: str | bytes) -> int: ...

    async def drop(self, exchange: str, market: Market | str, *, mid_frame: bool = False) -> int: ...

    def autopilot(self, exchange: str, market: Market | str, symbol: str, *, rate: float = 10.0,
                  client_order_id_prefix: str | None = None,
                  client_order_id_prefixes: Sequence[str | None] | None = None) -> asyncio.Task: ...

    async def stop_autopilots(self) -> int: ...

    orders: Any  # the matching engine (exchanges.simulator.orders.OrderEngine): its faults


def fill_fields(fill: SimFill) -> dict[str, Any]:
    """Every field of a ledger fill, numbers as exact text."""
    return {name: _text(value) for name, value in attrs.asdict(fill, recurse=False).items()}


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "value"):  # Side and other enums
        return value.value
    return value


class _BadRequest(Exception):
    pass


def control_routes(sim: SimControl) -> list[tuple[str, str, Any]]:
    """(method, path, handler) of the control endpoints, for the simulator's own aiohttp app."""

    def key_of(body: dict) -> tuple[str, Market]:
        exchange, market = body.get("exchange"), body.get("market")
        if exchange not in sim.exchanges:
            raise _BadRequest(f"unknown exchange {exchange!r}: this simulator serves {', '.join(sim.exchanges)}")
        try:
            market = Market.parse(market)
        except Exception as exc:  # noqa: BLE001 - the caller's text
            raise _BadRequest(str(exc)) from None
        if market not in sim.venue(exchange).markets:
            raise _BadRequest(f"{exchange} has no {market.value} market")
        return exchange, market

    async def fill(body: dict) -> dict:
        exchange, market = key_of(body)
        order, fills = await sim.fill(
            exchange, market, body["symbol"], body["side"], body["amount"], body["price"],
            client_order_id=body.get("client_order_id"), parts=int(body.get("parts", 1)),
            is_maker=body.get("is_maker"),
        )
        return {"order_id": order.order_id, "fills": [fill_fields(f) for f in fills]}

    async def render_fill(body: dict) -> dict:
        exchange, market = key_of(body)
        fill, frames = sim.render_fill_frames(
            exchange, market, body["symbol"], body.get("side", "buy"), body["amount"], body["price"],
            time=body.get("time"), client_order_id=body.get("client_order_id"),
        )
        return {"fill": fill_fields(fill), "frames": [_frame_json(f) for f in frames]}

    async def inject_raw(body: dict) -> dict:
        exchange, market = key_of(body)
        frame: str | bytes = body["text"] if "text" in body else base64.b64decode(body["base64"])
        return {"sockets": await sim.inject_raw(exchange, market, frame)}

    async def drop(body: dict) -> dict:
        exchange, market = key_of(body)
        return {"sockets": await sim.drop(exchange, market, mid_frame=bool(body.get("mid_frame")))}

    async def autopilot_start(body: dict) -> dict:
        exchange, market = key_of(body)
        task = sim.autopilot(
            exchange, market, body["symbol"], rate=float(body.get("rate", 10.0)),
            client_order_id_prefix=body.get("client_order_id_prefix"),
            client_order_id_prefixes=body.get("client_order_id_prefixes"),
        )
        return {"task": task.get_name()}

    async def autopilot_stop(body: dict) -> dict:
        return {"stopped": await sim.stop_autopilots()}

    async def ledger(body: dict) -> dict:
        exchange, market = key_of(body)
        venue = sim.venue(exchange)
        fills = sim.ledger(exchange, market).fills
        return {
            "fills": [fill_fields(f) for f in fills],
            "expected": [{k: _text(v) for k, v in venue.expected_trade(market, f).items()} for f in fills],
        }

    async def orders(body: dict) -> dict:
        """The (venue, market) orders of record: id, client id, side, amount, price, filled, status, as text."""
        exchange, market = key_of(body)
        return {"orders": [
            {"order_id": o.order_id, "client_order_id": o.client_order_id, "symbol": o.symbol,
             "side": o.side.value, "amount": _text(o.amount), "price": _text(o.price), "filled": _text(o.filled),
             "status": o.status.value} for o in sim.ledger(exchange, market).orders.values()]}

    async def order_faults(body: dict) -> dict:
        """Order-entry faults drawn at these rates from now on ({"rates": {"lose": 0.05, …}}; {} stops them)."""
        rates = {name: float(rate) for name, rate in dict(body.get("rates") or {}).items()}
        sim.orders.faults.rates = rates
        return {"rates": rates}

    async def account(body: dict) -> dict:
        """The (venue, market) account: balances (free, locked, total) and positions (signed size in base units,
        entry price), as text."""
        exchange, market = key_of(body)
        held = sim.account(exchange, market)
        venue = sim.venue(exchange)
        balances = {}
        for asset in held.balances:
            free, locked, total = venue.expected_balance(held, asset)  # as the venue reports it
            balances[asset] = {"free": _text(free), "locked": _text(locked), "total": _text(total)}
        return {
            "balances": balances,
            "positions": {s: {"size": _text(p.size), "entry_price": _text(p.entry_price)}
                          for s, p in held.positions.items()},
        }

    async def sessions(body: dict) -> dict:
        exchange, market = key_of(body)
        live = sim.sessions(exchange, market)
        return {"sessions": len(live), "subscribed": sum(1 for s in live if s.subscriptions or s.authenticated)}

    def endpoint(action):
        async def handle(request: web.Request) -> web.Response:
            if not _loopback(request.remote):
                return web.json_response({"error": "control is for loopback callers only"}, status=403)
            if request.method == "GET":
                body: dict = dict(request.query)
            else:
                try:
                    body = json.loads(await request.text() or "{}")
                except ValueError:
                    return web.json_response({"error": "the body is not JSON"}, status=400)
            try:
                return web.json_response(await action(body))
            except (_BadRequest, KeyError, ValueError, TypeError) as exc:
                return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)

        return handle

    return [
        ("POST", "/_sim/fill", endpoint(fill)),
        ("POST", "/_sim/render_fill", endpoint(render_fill)),
        ("POST", "/_sim/inject_raw", endpoint(inject_raw)),
        ("POST", "/_sim/drop", endpoint(drop)),
        ("POST", "/_sim/autopilot/start", endpoint(autopilot_start)),
        ("POST", "/_sim/autopilot/stop", endpoint(autopilot_stop)),
        ("GET", "/_sim/ledger", endpoint(ledger)),
        ("GET", "/_sim/account", endpoint(account)),
        ("GET", "/_sim/orders", endpoint(orders)),
        ("POST", "/_sim/order_faults", endpoint(order_faults)),
        ("GET", "/_sim/sessions", endpoint(sessions)),
    ]


def _frame_json(frame: str | bytes) -> dict:
    return {"text": frame} if isinstance(frame, str) else {"base64": base64.b64encode(frame).decode()}


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False
