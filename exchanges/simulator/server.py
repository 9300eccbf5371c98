"""The simulator: a paper exchange on loopback that speaks each venue's private-stream protocol."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import random
import secrets
from decimal import ROUND_DOWN, Decimal
from typing import Any, Iterable, Sequence

import attrs
from aiohttp import WSMsgType, web
from loguru import logger

from exchanges import EXCHANGES
from exchanges.connector import Credentials, ExchangeConnector
from exchanges.simulator.account import SimAccount
from exchanges.simulator.ledger import PROCESS_IDS, Ledger, SimFill, SimOrder
from exchanges.simulator.market import MarketStep, SymbolMarket
from exchanges.simulator.orders import OrderEngine
from exchanges.simulator.venues.base import SimSession, VenueSim, dumps
from framework.venue import Endpoints
from framework.connection import decode_frame
from framework.errors import ConfigError
from framework.events import Market, OrderStatus, Side, now_ms, to_decimal

MAKER_FEE = Decimal("0.0002")
TAKER_FEE = Decimal("0.0005")


@attrs.define
class Faults:
    """What the simulator is doing wrong on purpose (for the chaos tests)."""

    stalled: set = attrs.field(factory=set)  # (exchange, market) pairs whose data is held back
    refuse_until: dict = attrs.field(factory=dict)  # (exchange, market) -> ms until which sockets are refused
    rest_failures: dict = attrs.field(factory=dict)  # (exchange, market) -> statuses for the next REST calls
    book_faults: dict = attrs.field(factory=dict)  # (exchange, market, symbol) -> ["gap" | "checksum", …] for next steps
    duplicate: float = 0.0  # probability that a pushed frame is sent twice
    reorder: float = 0.0  # probability that a pushed frame is held back behind the next one


def load_venue(exchange: str) -> VenueSim:
    """A fresh plugin instance (its state, e.g. listenKeys, belongs to one simulator)."""
    module = importlib.import_module(f"exchanges.simulator.venues.{exchange}")
    return module.VENUE_CLASS()


def generated_credentials(exchange: str) -> Credentials:
    """Fresh random credentials of the venue's shape (the simulator checks signatures with them)."""
    return Credentials(
        api_key=f"sim{exchange}{secrets.token_hex(12)}",
        secret="0x" + secrets.token_hex(32) if exchange == "hyperliquid" else secrets.token_hex(24),  # an L1 key
        passphrase=secrets.token_hex(6) if exchange == "bitget" else None,
        wallet_address="0x" + secrets.token_hex(20),
    )


class Simulator:
    """`async with Simulator() as sim:` serves every venue on 127.0.0.1 (port 0 = any free port).

    Each (venue, market) lives under `/<exchange>_<market>`; `sim.connector(exchange, market)` gives
    an ExchangeConnector pointed at it with the simulator's credentials. `await sim.fill(...)` makes
    an order and fills it, pushing the venue's frames to every logged-in, subscribed socket.
    """

    def __init__(
        self,
        credentials: dict[str, Credentials] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        exchanges: Iterable[str] | None = None,
        seed: int | None = None,
        control: bool = False,
        market_rate: float = 10.0,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError("the simulator listens on loopback only (127.0.0.1, localhost or ::1)")
        self.host = host
        self.port = port
        self.exchanges = tuple(exchanges or EXCHANGES)
        self._credentials = dict(credentials or {})
        self._venues: dict[str, VenueSim] = {}
        self._ledgers: dict[tuple[str, Market], Ledger] = {}
        self._accounts: dict[tuple[str, Market], SimAccount] = {}
        self._sessions: dict[tuple[str, Market], set[SimSession]] = {}
        self._ids = PROCESS_IDS  # clock-derived: ids of this run never repeat an earlier run's
        self._random = random.Random(seed)
        self.seed = seed
        self._markets: dict[tuple[str, Market, str], SymbolMarket] = {}
        self.market_rate = market_rate  # steps per second of every watched symbol's market (0: only step_market)
        self._clock: asyncio.Task | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task] = set()
        self._scratch: list[Ledger] = []  # ledgers of rendered-only fills, kept alive (plugins key caches by id)
        self.control = control  # serve the /_sim/ control endpoints (control.py) for a test in another process
        self.faults = Faults()
        self.orders = OrderEngine(self, seed)  # the matching engine behind every venue's order entry

    # lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        for exchange in self.exchanges:
            venue = self._venues[exchange] = load_venue(exchange)
            for market in venue.markets:
                prefix = f"/{exchange}_{market.value}"
                for path in venue.ws_paths(market):
                    app.router.add_get(prefix + path, self._ws_handler(venue, market))
                for path in venue.public_ws_paths(market):
                    app.router.add_get(prefix + path, self._ws_handler(venue, market, public=True))
                for method, path, handler in [*venue.rest_routes(market), *venue.public_rest_routes(market)]:
                    app.router.add_route(method, prefix + path, self._rest_handler(venue, market, handler))
        if self.control:
            from exchanges.simulator.control import control_routes

            for method, path, handler in control_routes(self):
                app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._clock = asyncio.create_task(self._run_clock(), name="sim-market-clock")
        logger.bind(port=self.port).info("simulator listening")

    async def stop(self) -> None:
        if self._runner is None:
            return
        if self._clock is not None:
            self._clock.cancel()
            await asyncio.gather(self._clock, return_exceptions=True)
            self._clock = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.orders.stop()
        for sessions in self._sessions.values():
            for session in list(sessions):
                await session.close(1001, "simulator stopping")
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # what clients need ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def credentials_for(self, exchange: str) -> Credentials:
        if exchange not in self._credentials:
            self._credentials[exchange] = generated_credentials(exchange)
        return self._credentials[exchange]

    def endpoints(self, exchange: str, market: Market | str) -> Endpoints:
        market = Market.parse(market)
        prefix = f"{self.host}:{self.port}/{exchange}_{market.value}"
        return Endpoints(ws=f"ws://{prefix}", rest=f"http://{prefix}")

    def connector(self, exchange: str, market: Market | str, credentials: Credentials | None = None,
                  **kwargs: Any) -> ExchangeConnector:
        """A real connector for this venue, pointed at the simulator (its own credentials unless given)."""
        return ExchangeConnector(
            exchange, market, credentials=credentials or self.credentials_for(exchange),
            endpoints=self.endpoints(exchange, market), **kwargs,
        )

    def ledger(self, exchange: str, market: Market | str) -> Ledger:
        key = (exchange, Market.parse(market))
        if key not in self._ledgers:
            self._ledgers[key] = Ledger(exchange, key[1], self._ids)
        return self._ledgers[key]

    def account(self, exchange: str, market: Market | str) -> SimAccount:
        key = (exchange, Market.parse(market))
        if key not in self._accounts:
            self._accounts[key] = SimAccount(exchange, key[1])
        return self._accounts[key]

    def venue(self, exchange: str) -> VenueSim:
        return self._venues[exchange]

    def sessions(self, exchange: str, market: Market | str) -> list[SimSession]:
        return [s for s in self._sessions.get((exchange, Market.parse(market)), ()) if not s.closed]

    # public market data -----------------------------------------------------------------------------------
    def market(self, exchange: str, market: Market | str, symbol: str) -> SymbolMarket:
        """A symbol's public market on a (venue, market), made (seeded by the simulator's seed) on first use."""
        key = (exchange, Market.parse(market), symbol)
        found = self._markets.get(key)
        if found is None:
            found = self._markets[key] = SymbolMarket(exchange, key[1], symbol, self.seed, self._ids, now_ms())
        return found

    def markets(self) -> list[SymbolMarket]:
        return list(self._markets.values())

    def book_fault(self, exchange: str, market: Market | str, symbol: str, kind: str, count: int = 1) -> None:
        """The next `count` book changes of a symbol go out wrong: "gap" leaves the change out (its sequence
        still advances: the client sees a gap), "checksum" sends it with a wrong checksum (venues that have one)."""
        if kind not in ("gap", "checksum"):
            raise ValueError(f"unknown book fault {kind!r}: use gap or checksum")
        self.faults.book_faults.setdefault((exchange, Market.parse(market), symbol), []).extend([kind] * count)

    async def step_market(self, exchange: str, market: Market | str, symbol: str, steps: int = 1) -> list[MarketStep]:
        """Move a symbol's market `steps` times, sending each step to the public sessions that watch it."""
        symbol_market = self.market(exchange, market, symbol)
        done = []
        for _ in range(steps):
            step = symbol_market.step(now_ms())
            await self._publish_step(symbol_market, step)
            done.append(step)
        return done

    async def _publish_step(self, symbol_market: SymbolMarket, step: MarketStep) -> None:
        key = (symbol_market.exchange, symbol_market.market)
        stalled = key in self.faults.stalled  # rendered (the venue's sequences move on) but never sent
        faults = self.faults.book_faults.get((*key, symbol_market.symbol))
        corrupt = False
        if faults and step.book is not None:
            fault = faults.pop(0)
            if fault == "gap":
                step = attrs.evolve(step, book=None)
            else:
                corrupt = True
        for session in self.sessions(*key):
            if session.public:
                frames = session.venue.market_frames(session, symbol_market, step, corrupt)
                if not stalled:
                    for frame in frames:
                        await session.send(frame)

    async def _run_clock(self) -> None:
        """Step every symbol some public session watches, `market_rate` times a second."""
        while True:
            rate = self.market_rate
            await asyncio.sleep(1.0 / rate if rate > 0 else 0.2)
            if rate <= 0:
                continue
            watched = {(s.venue.exchange, s.market) for sessions in self._sessions.values() for s in sessions
                       if s.public and not s.closed}
            resting = self.orders.resting()  # symbols with open orders move too: their orders fill as they do
            for symbol_market in {id(m): m for m in [*(self.market(*r) for r in resting), *self._markets.values()]}.values():
                key = (symbol_market.exchange, symbol_market.market)
                if key in watched or (*key, symbol_market.symbol) in resting:
                    try:
                        await self._publish_step(symbol_market, symbol_market.step(now_ms()))
                        await self.orders.match(*key, symbol_market.symbol)
                    except Exception:  # noqa: BLE001 - a plugin's rendering bug must not stop every market
                        logger.exception("simulator market step failed")

    # making fills ------------------------------------------------------------------------------------------
    async def place_order(
        self, exchange: str, market: Market | str, symbol: str, side: Side | str, amount: Any, price: Any,
        *, client_order_id: str | None = None,
    ) -> SimOrder:
        """Place an order that rests on the book (open) until `fill_order` fills it."""
        market = Market.parse(market)
        order = self.ledger(exchange, market).new_order(
            symbol, side, to_decimal(amount), to_decimal(price), client_order_id, now_ms()
        )
        await self._broadcast(exchange, market, lambda s: s.venue.order_frames(s, order))
        account = self.account(exchange, market)
        assets = account.placed(order, order.created)
        if assets:
            await self._broadcast(exchange, market, lambda s: s.venue.account_frames(s, account, assets, []))
        return order

    async def announce_order(self, exchange: str, market: Market | str, order: SimOrder,
                             assets: Iterable[str] = ()) -> None:
        """Push an order's state (and the balances it moved) to the private streams of its (venue, market)."""
        market = Market.parse(market)
        await self._broadcast(exchange, market, lambda s: s.venue.order_frames(s, order))
        assets = list(assets)
        if assets:
            account = self.account(exchange, market)
            await self._broadcast(exchange, market, lambda s: s.venue.account_frames(s, account, assets, []))

    async def cancel_order(self, exchange: str, market: Market | str, order: SimOrder,
                           status: OrderStatus = OrderStatus.CANCELED) -> None:
        """Cancel (or expire) what is left of an open order; pushes the venue's frames."""
        market = Market.parse(market)
        now = now_ms()
        assets = self.account(exchange, market).canceled(order, now)
        self.ledger(exchange, market).cancel(order, now)
        order.status = status
        await self.announce_order(exchange, market, order, assets)

    async def fill_order(
        self, exchange: str, market: Market | str, order: SimOrder, amount: Any, *, is_maker: bool | None = None,
        price: Any = None,
    ) -> SimFill:
        """Fill part (or the rest) of an open order at its price (or at `price`: a taker's, from the book);
        pushes the venue's frames."""
        market = Market.parse(market)
        maker = self._random.random() < 0.6 if is_maker is None else is_maker
        quote = order.symbol.split("/")[1].split(":")[0]
        fill = self.ledger(exchange, market).fill(
            order, to_decimal(amount), order.price if price is None else to_decimal(price), is_maker=maker, fee_rate=MAKER_FEE if maker else TAKER_FEE,
            fee_currency=quote, now=now_ms(),
        )
        await self._broadcast(exchange, market, lambda s: s.venue.fill_frames(s, order, fill))
        account = self.account(exchange, market)
        assets, symbols = account.filled(order, fill)
        await self._broadcast(exchange, market, lambda s: s.venue.account_frames(s, account, assets, symbols))
        return fill

    async def fill(
        self,
        exchange: str,
        market: Market | str,
        symbol: str,
        side: Side | str,
        amount: Any,
        price: Any,
        *,
        client_order_id: str | None = None,
        parts: int = 1,
        is_maker: bool | None = None,
    ) -> tuple[SimOrder, list[SimFill]]:
        """Place an order and fill it in `parts` fills; every frame goes out before this returns."""
        order = await self.place_order(exchange, market, symbol, side, amount, price, client_order_id=client_order_id)
        fills = []
        step = Decimal(1).scaleb(order.amount.as_tuple().exponent)
        for part in range(parts):
            last = part == parts - 1
            qty = order.remaining if last else (order.amount / parts).quantize(step, rounding=ROUND_DOWN)
            if qty > 0:
                fills.append(await self.fill_order(exchange, market, order, qty, is_maker=is_maker))
        return order, fills

    async def _broadcast(self, exchange: str, market: Market, render) -> None:
        key = (exchange, market)
        if key in self.faults.stalled:
            return  # a stalled stream: pings are answered, data never comes
        for session in self.sessions(exchange, market):
            for frame in render(session):
                if self.faults.reorder and self._random.random() < self.faults.reorder:
                    session.state.setdefault("_held", []).append(frame)  # goes out after the next frame
                    continue
                await session.send(frame)
                if self.faults.duplicate and self._random.random() < self.faults.duplicate:
                    await session.send(frame)
                for held in session.state.pop("_held", []):
                    await session.send(held)

    # faults ---------------------------------------------------------------------------------------------------
    async def drop(self, exchange: str, market: Market | str, *, mid_frame: bool = False) -> int:
        """Cut every socket of a (venue, market); `mid_frame` cuts inside a frame. Returns how many."""
        sessions = self.sessions(exchange, market)
        for session in sessions:
            transport = session.request.transport
            if mid_frame and transport is not None:
                transport.write(b"\x81\x7e\x01\x00" + b'{"e":"executionReport","s":')  # 256 bytes promised
                transport.abort()
            elif transport is not None:
                transport.abort()  # no close frame: the network just went away
        return len(sessions)

    def render_fill_frames(
        self, exchange: str, market: Market | str, symbol: str, side: Side | str, amount: Any, price: Any, *,
        time: int | None = None, client_order_id: str | None = None,
    ) -> tuple[SimFill, list[str | bytes]]:
        """The fill and the frames a live subscribed socket would get for it, as sent on the wire.

        The fill is not in the ledger and goes nowhere: the amount and time may be anything (0, -1,
        2**63…), for poisoned-frame tests that then send the frames with `inject_raw`. Its ids are new.
        [] when no socket of the key is subscribed.
        """
        market = Market.parse(market)
        scratch = Ledger(exchange, market, self._ids)
        self._scratch.append(scratch)
        sane = Decimal("0.001")
        order = scratch.new_order(symbol, side, sane * 2, to_decimal(price), client_order_id, now_ms())
        fill = scratch.fill(order, sane, order.price, is_maker=True, fee_rate=MAKER_FEE,
                            fee_currency=order.symbol.split("/")[1].split(":")[0], now=now_ms())
        fill = attrs.evolve(fill, amount=to_decimal(amount), time=now_ms() if time is None else time)
        scratch.fills[-1] = fill
        for session in self.sessions(exchange, market):
            frames = session.venue.fill_frames(_ScratchSession(session, scratch), order, fill)
            if frames:
                return fill, [f if isinstance(f, (str, bytes)) else dumps(f) for f in frames]
        return fill, []

    async def inject_raw(self, exchange: str, market: Market | str, frame: str | bytes) -> int:
        """Send `frame` as it is (text for str, binary for bytes) to every live socket of a (venue, market).

        For poisoned-frame tests: nothing is checked or rendered. Returns how many sockets got it.
        """
        sessions = self.sessions(exchange, market)
        for session in sessions:
            await session.send(frame)
        return len(sessions)

    async def release_held(self) -> None:
        """Send the frames the reorder fault is still holding back."""
        for sessions in self._sessions.values():
            for session in list(sessions):
                for held in session.state.pop("_held", []):
                    await session.send(held)

    async def expire_listen_keys(self, exchange: str, market: Market | str) -> int:
        """Every listenKey of the venue dies; sockets using one hear so (as the venue tells it) and close."""
        market = Market.parse(market)
        venue = self._venues[exchange]
        venue.expire_listen_keys()
        sessions = [s for s in self.sessions(exchange, market) if "listen_key" in s.state]
        for session in sessions:
            for frame in venue.listen_key_expired_frames(session):
                await session.send(frame)
            await session.close(1000, "listenKey expired")
        return len(sessions)

    def stall(self, exchange: str, market: Market | str, stalled: bool = True) -> None:
        """Stop (or resume) pushing data to a (venue, market) while still answering pings."""
        key = (exchange, Market.parse(market))
        (self.faults.stalled.add if stalled else self.faults.stalled.discard)(key)

    def refuse_connections(self, exchange: str, market: Market | str, seconds: float) -> None:
        """New sockets of a (venue, market) are refused (HTTP 503) for `seconds`."""
        self.faults.refuse_until[(exchange, Market.parse(market))] = now_ms() + int(seconds * 1000)

    def fail_rest(self, exchange: str, market: Market | str, statuses: Iterable[int]) -> None:
        """The next REST calls of a (venue, market) answer these statuses (429, 502, 503…), one each."""
        self.faults.rest_failures.setdefault((exchange, Market.parse(market)), []).extend(statuses)

    def autopilot(self, exchange: str, market: Market | str, symbol: str, *, rate: float = 10.0,
                  client_order_id_prefix: str | None = None,
                  client_order_id_prefixes: Sequence[str | None] | None = None) -> asyncio.Task:
        """Fill orders at `rate` orders/s until stopped (run_strategy's feed), each at the best price the
        symbol's public book shows (a buy at the best ask, a sell at the best bid).

        Each order's client id starts with `client_order_id_prefix`, or with one of
        `client_order_id_prefixes` picked at random (None in it: an order without a client id).
        A `0x…` prefix makes a Hyperliquid cloid (0x + 32 hex digits).
        """
        market = Market.parse(market)
        prefixes = list(client_order_id_prefixes or [client_order_id_prefix])

        async def run() -> None:
            public = self.market(exchange, market, symbol)
            for n in itertools.count(1):
                side = self._random.choice(("buy", "sell"))
                price = public.take(side, now_ms())  # a buy at the best ask the public book shows, a sell at the bid
                amount = Decimal(self._random.randint(1, 500)) / 1000
                coid = client_order_id(self._random.choice(prefixes), n)
                await self.fill(exchange, market, symbol, side, amount, price,
                                client_order_id=coid, parts=self._random.randint(1, 3))
                await asyncio.sleep(1.0 / rate)

        task = asyncio.create_task(run(), name=f"sim-autopilot-{exchange}_{market.value}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop_autopilots(self) -> int:
        """Stop making fills (what is already sent stays sent). Returns how many autopilots stopped."""
        tasks = [t for t in self._tasks if t.get_name().startswith("sim-autopilot")]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    # handlers ------------------------------------------------------------------------------------------------
    def _ws_handler(self, venue: VenueSim, market: Market, public: bool = False):
        async def handle(request: web.Request) -> web.StreamResponse:
            if self.faults.refuse_until.get((venue.exchange, market), 0) > now_ms():
                return web.Response(status=503, text="service unavailable (simulated)")
            ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=2**22)
            await ws.prepare(request)
            session = SimSession(self, venue, market, ws, request, public)
            if not await venue.on_open(session):
                await ws.close()
                return ws
            sessions = self._sessions.setdefault((venue.exchange, market), set())
            sessions.add(session)
            try:
                await self._read(session)
            finally:
                sessions.discard(session)
            return ws

        return handle

    async def _read(self, session: SimSession) -> None:
        limit = session.venue.client_silence_limit
        while not session.ws.closed:
            try:
                msg = await session.ws.receive(timeout=limit)
            except TimeoutError:
                await session.close(1000, "no message from the client in time")
                return
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            session.last_client_message = now_ms()
            if msg.type is WSMsgType.TEXT:
                await session.venue.on_message(session, decode_frame(msg.data))
            elif msg.type is WSMsgType.BINARY:
                await session.venue.on_message(session, msg.data)

    def _rest_handler(self, venue: VenueSim, market: Market, handler):
        async def handle(request: web.Request) -> web.StreamResponse:
            venue.note_request(request)  # its signature, even when the request is failed on purpose
            failures = self.faults.rest_failures.get((venue.exchange, market))
            if failures:
                status = failures.pop(0)
                # A plain body, as a load balancer or gateway answers: clients go by the HTTP status.
                headers = {"Retry-After": "1"} if status == 429 else {}
                return web.Response(status=status, text="simulated failure", headers=headers)
            return await handler(self, market, request)

        return handle


def client_order_id(prefix: str | None, n: int) -> str | None:
    """A fresh client order id with this prefix: `prefix-<ms>-<n>`, or a cloid `0x` + 32 hex for a `0x` prefix."""
    if prefix is None:
        return None
    if prefix.startswith("0x"):
        digits = 32 - (len(prefix) - 2)
        return prefix + format(now_ms() * 1_000_000 + n, "x").rjust(digits, "0")[-digits:]
    return f"{prefix}-{now_ms()}-{n}"


class _ScratchSession(SimSession):
    """A live session seen through another ledger (to render a fill that is not in the real one)."""

    def __init__(self, session: SimSession, ledger: Ledger) -> None:
        self.__dict__.update(session.__dict__)  # the same socket and state; no SimSession.__init__ (no new socket)
        self._scratch_ledger = ledger

    @property
    def ledger(self) -> Ledger:
        return self._scratch_ledger
