"""The dashboard backend against the simulator: real sockets, a real pool and store, the page's view rebuilt from the
messages it received and held to the store (balances, positions, open orders, fills)."""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchanges.simulator import Simulator
from framework.dashboard import Dashboard, PageView
from framework.dashboard.state import FINAL_STATES, SNAPSHOT_FILLS
from framework.errors import StoreError
from framework.events import Market, OrderStatus
from framework.orders import WebSocketTradingConfig, setup_websocket_trading
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy
from strategies.quoter import Quoter

TOKEN = "test-token-0123456789"
SYMBOLS = {"spot": "BTC/USDT", "future": "BTC/USDT:USDT"}


class Recorder(BaseStrategy):
    def on_start(self) -> None:
        self.trades = []

    def on_trade(self, trade) -> None:
        self.trades.append(trade)


class Run:
    """A simulator, a pool on a SQLite file, one strategy on one key, and the dashboard on port 0."""

    def __init__(self, directory: Path, exchange: str = "binance", market: str = "spot", *, quoter: bool = False,
                 rate: float | None = None, manual: bool = False, seed: int = 5, warmup: float = 0.0,
                 dashboard_store=None, **dashboard_options) -> None:
        self.directory, self.exchange, self.market = directory, exchange, Market.parse(market)
        self.warmup, self.dashboard_store = warmup, dashboard_store
        self.symbol = SYMBOLS[self.market.value]
        self.quoter, self.rate, self.manual, self.seed = quoter, rate, manual, seed
        self.dashboard_options = dashboard_options

    async def __aenter__(self) -> Run:
        self.sim = Simulator(exchanges=[self.exchange], seed=self.seed)
        await self.sim.start()
        self.pool = ConnectionPool(f"sqlite:///{self.directory}/trades.sqlite", self.directory / "logs")
        await self.pool.start()
        self.connector = self.sim.connector(self.exchange, self.market)
        if self.quoter or self.manual:
            await setup_websocket_trading(self.pool, WebSocketTradingConfig(ack_timeout_seconds=2.0,
                                                                            confirm_timeout_seconds=2.0))
        if self.quoter:
            self.strategy = Quoter("quoter", [self.connector], symbols=[self.symbol], pool=self.pool,
                                   market_data={str(self.connector.key): [self.symbol]})
        else:
            self.strategy = Recorder("recorder", [self.connector], symbols=[self.symbol], pool=self.pool,
                                     client_order_id_prefix="rec")
        await self.strategy.start()
        if self.rate:
            self.sim.autopilot(self.exchange, self.market, self.symbol, rate=self.rate,
                               client_order_id_prefix=self.strategy.client_order_id_prefix)
        await asyncio.sleep(self.warmup)
        if self.dashboard_store is not None:
            self.dashboard_store = self.dashboard_store(self.pool.store)
            self.dashboard_options["store"] = self.dashboard_store
        self.dashboard = Dashboard(self.pool, token=TOKEN, connectors=[self.connector] if self.manual else [],
                                   symbols=[self.symbol], health_every=0.2, **self.dashboard_options)
        await self.dashboard.start()
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()
        await self.sim.stop_autopilots()
        await self.dashboard.stop()
        await self.strategy.stop(timeout=5)
        await self.pool.stop(timeout=10)
        await self.sim.stop()

    async def page(self, since: int | None = None) -> PageClient:
        page = PageClient(self)
        await page.connect(since)
        return page

    async def quiesce(self) -> None:
        """No new events: the autopilot stopped, the Quoter quotes no more, the market still; all delivered."""
        await self.sim.stop_autopilots()
        if self.quoter:
            self.strategy.places_orders = False
        self.sim.market_rate = 0
        await asyncio.sleep(1.5)  # frames on the wire, a partial balance's REST read
        await self.pool.flush(timeout=10)

    async def get(self, path: str) -> tuple[int, object]:
        async with self.session.get(self.dashboard.url + path) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: object, token: str | None = TOKEN) -> tuple[int, object]:
        headers = {"Authorization": f"Bearer {token}"} if token else {"Authorization": ""}
        async with aiohttp.ClientSession() as session:
            async with session.post(self.dashboard.url + path, json=body, headers=headers) as response:
                return response.status, await response.json()


class PageClient:
    """A page's socket and the view it rebuilds from what it receives."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.view = PageView()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.messages = 0
        self.types: set[str] = set()

    async def connect(self, since: int | None = None, *, receive_buffer: int | None = None) -> None:
        """`receive_buffer`: the socket's receive buffer (bytes), for a page on a slow link."""
        url = f"{self.run.dashboard.url}/ws/live-dashboard?token={TOKEN}"
        if since is not None:
            url += f"&since={since}"
        session = self.run.session
        if receive_buffer is not None:
            def small_socket(addr_info):
                family, kind, proto, _, _ = addr_info
                sock = socket.socket(family, kind, proto)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
                return sock

            session = self.own_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(socket_factory=small_socket),
                headers={"Authorization": f"Bearer {TOKEN}"})
        self.ws = await session.ws_connect(url, autoping=True, max_msg_size=0)

    async def read(self, timeout: float = 5.0) -> dict | None:
        try:
            message = await self.ws.receive(timeout)
        except TimeoutError:
            return None
        if message.type is not aiohttp.WSMsgType.TEXT:
            return None
        decoded = json.loads(message.data)
        self.view.apply(decoded)
        self.messages += 1
        self.types.add(decoded["type"])
        return decoded

    async def read_until(self, check, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while not check():
            left = deadline - time.monotonic()
            if left <= 0 or self.ws.closed:
                return False
            await self.read(min(left, 1.0))
        return True

    async def catch_up(self, timeout: float = 15.0) -> bool:
        """Read until the page has everything the dashboard journaled so far."""
        target = self.run.dashboard.state.journal.latest
        return await self.read_until(lambda: self.view.seq >= target, timeout)

    async def close(self, abrupt: bool = False) -> None:
        if abrupt:
            await self.run.dashboard.drop_pages()  # the network goes away: no close frame
            await self.read_until(lambda: False, 1.0)
        await self.ws.close()


# --- the store's picture and the page's -----------------------------------------------------------------------

async def store_picture(store, keys) -> dict:
    rows = await store.trades_after(sorted(keys, key=str), 0, 1_000_000)
    return {
        "balances": {(str(b.key), b.asset): (b.free, b.locked, b.total) for b in await store.fetch_balances()},
        "positions": {(str(p.key), p.symbol, p.position_side.value): (p.direction.value, p.size, p.entry_price,
                                                                      p.unrealized_pnl)
                      for p in await store.fetch_positions()},
        "orders": {(str(o.key), o.order_id): o.filled for o in await store.fetch_orders()
                   if not o.status.is_terminal},
        "fills": [(seq, t.trade_id, t.order_id, t.amount, t.price, t.fee_cost) for seq, t in rows][-SNAPSHOT_FILLS:],
    }


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def page_picture(view: PageView) -> dict:
    return {
        "balances": {(b["key"], b["asset"]): (_dec(b["free"]), _dec(b["locked"]), _dec(b["total"]))
                     for b in view.balances.values()},
        "positions": {(p["key"], p["symbol"], p["position_side"]): (p["direction"], _dec(p["size"]),
                                                                    _dec(p["entry_price"]), _dec(p["unrealized_pnl"]))
                      for p in view.positions.values()},
        "orders": {(o["key"], o["order_id"]): _dec(o["filled"]) for o in view.orders.values()
                   if o["order_id"] is not None and o["state"] not in FINAL_STATES},
        "fills": [(f["store_seq"], f["trade_id"], f["order_id"], _dec(f["amount"]), _dec(f["price"]),
                   _dec(f["fee_cost"])) for f in view.fills],
    }


async def assert_page_equals_store(run: Run, page: PageClient) -> dict:
    """After quiescing: the page has read everything and holds what the store holds (retried once more after a
    flush, for a state the venue sent late)."""
    for attempt in range(3):
        assert await page.catch_up(), f"page at {page.view.seq}, journal at {run.dashboard.state.journal.latest}"
        expected = await store_picture(run.pool.store, run.pool.pipeline.known_keys())
        got = page_picture(page.view)
        if got == expected or attempt == 2:
            break
        await asyncio.sleep(1.0)
        await run.pool.flush(timeout=10)
    for part in ("balances", "positions", "orders", "fills"):
        assert got[part] == expected[part], part
    return expected


# --- tests ------------------------------------------------------------------------------------------------------

@pytest.mark.timeout(120)
async def test_page_gets_a_snapshot_then_every_change_of_a_quoter_run(tmp_path):
    async with asyncio.timeout(100):
        async with Run(tmp_path, quoter=True) as run:
            page = await run.page()
            first = await page.read()
            assert first["type"] == "snapshot" and first["data"]["reason"] == "connect"
            assert first["seq"] == page.view.seq
            # deltas: fills of the Quoter's own orders, order states, balances, health, the chart
            assert await page.read_until(lambda: len(page.view.fills) >= 3, timeout=40), page.view.fills
            assert await page.read_until(lambda: {"fill", "orders", "balance", "health", "connection", "pnl"}
                                         <= page.types, 10), page.types
            assert all(f["strategy_id"] == "quoter" and f["client_order_id"].startswith("quoter")
                       for f in page.view.fills)
            assert page.view.connections["binance_spot"]["status"] == "connected"
            await run.quiesce()
            expected = await assert_page_equals_store(run, page)
            stored = run.pool.trade_sync.stats()["stored"]
            assert await page.read_until(lambda: page.view.health["fills_stored"] == stored), page.view.health
            assert page.view.health["healthy"] is True and page.view.health["dead_letters"] == 0
            assert expected["orders"], "the Quoter rests orders: some are open"
            assert page.view.chart and page.view.chart[-1]["fills"] == len(
                await run.pool.store.trades_after(run.pool.pipeline.known_keys(), 0, 10_000))
            # the HTTP API says the same
            assert (await run.get("/api/balances"))[1] == list(page.view.balances.values())
            status, orders = await run.get("/api/orders")
            assert status == 200 and {(o["key"], o["client_order_id"]) for o in orders} == {
                (o["key"], o["client_order_id"]) for o in page.view.orders.values()}
            status, fills = await run.get("/api/fills?since=0")
            assert status == 200 and [f["store_seq"] for f in fills][-SNAPSHOT_FILLS:] == [
                f["store_seq"] for f in page.view.fills]
            status, after = await run.get(f"/api/fills?since={fills[-2]['store_seq']}")
            assert [f["store_seq"] for f in after] == [fills[-1]["store_seq"]]
            status, report = await run.get("/api/status")
            assert report["pages"] == 1 and report["seq"] == run.dashboard.state.journal.latest
            assert report["connections"]["binance_spot"]["status"] == "connected"
            status, spec = await run.get("/api/openapi.json")
            assert spec["openapi"].startswith("3.1") and "/api/manual-trade-ws" in spec["paths"]
            # a ping is answered with the latest seq, not journaled
            latest = run.dashboard.state.journal.latest
            await page.ws.send_json({"type": "ping"})
            pong = None
            while pong is None or pong["type"] != "pong":
                pong = await page.read()
            assert pong["seq"] >= latest and run.dashboard.state.journal.latest >= latest


@st.composite
def drop_schedules(draw):
    drops = draw(st.lists(st.tuples(st.integers(1, 150), st.sampled_from(["client", "server"]),
                                    st.integers(0, 400)), min_size=1, max_size=5))
    return {"drops": drops, "journal": draw(st.sampled_from([60, 10_000])),
            "market": draw(st.sampled_from(["spot", "future"])), "seed": draw(st.integers(0, 1000))}


@pytest.mark.timeout(600)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(schedule=drop_schedules())
def test_resume_with_since_after_random_drops_ends_equal_to_the_store(schedule):
    asyncio.run(asyncio.wait_for(_resume_scenario(schedule), 90))


async def _resume_scenario(schedule: dict) -> None:
    directory = Path(tempfile.mkdtemp())
    async with Run(directory, market=schedule["market"], rate=60, seed=schedule["seed"],
                   journal_size=schedule["journal"]) as run:
        page = await run.page()
        assert (await page.read())["data"]["reason"] == "connect"
        for after_messages, side, downtime_ms in schedule["drops"]:
            start = page.messages
            await page.read_until(lambda: page.messages - start >= after_messages, timeout=10)
            await page.close(abrupt=side == "server")
            await asyncio.sleep(downtime_ms / 1000)
            since = page.view.seq
            await page.connect(since)
            first = await page.read()
            assert first is not None
            if first["type"] == "snapshot":  # only when the journal no longer holds what followed `since`
                assert first["data"]["reason"] == "resume_too_old"
                assert run.dashboard.state.journal.oldest - 1 > since
            else:  # what came after `since`, less states a newer state of the same thing replaced in the queue
                assert first["seq"] > since
                between = run.dashboard.state.journal.since(since) or []
                assert all(e.entity is not None for e in between if e.seq < first["seq"]), "an event was skipped"
        await run.quiesce()
        await assert_page_equals_store(run, page)
        if schedule["journal"] == 10_000:
            assert page.view.snapshots == ["connect"]  # every resume was served from the journal
        await page.ws.close()


@pytest.mark.timeout(180)
async def test_a_page_that_never_reads_gets_a_behind_snapshot_and_the_bot_keeps_its_pace(tmp_path):
    """~500 fills/s (2,000 page messages/s, most of them coalescing states). Fills stored in windows without a page
    and with one that stops reading (on a small receive buffer), interleaved so drift cancels: the same within
    20 %. A page that stops reading fills the network, then its queue (2,000), and is sent a snapshot instead."""
    window, rounds = 3.0, 3
    async with asyncio.timeout(160):
        async with Run(tmp_path, rate=1000) as run:
            stats = run.pool.trade_sync.stats

            async def fills_stored_in(seconds: float) -> int:
                before = stats()["stored"]
                await asyncio.sleep(seconds)
                return stats()["stored"] - before

            await asyncio.sleep(1.0)
            alone = with_slow = 0
            slow = None
            try:
                for round_ in range(rounds):
                    alone += await fills_stored_in(window)
                    slow = PageClient(run)
                    await slow.connect(receive_buffer=64 * 1024)
                    assert (await slow.read())["data"]["reason"] == "connect"  # then it reads nothing
                    with_slow += await fills_stored_in(window)
                    if round_ < rounds - 1:
                        await run.dashboard.drop_pages()
                        await slow.own_session.close()
                assert alone > 3_000, alone
                assert abs(with_slow - alone) <= 0.2 * alone, (alone, with_slow)
                server_page = next(iter(run.dashboard.pages))
                deadline = time.monotonic() + 20
                while not server_page.queue.behind and time.monotonic() < deadline:
                    assert len(server_page.queue) <= run.dashboard.page_queue
                    await asyncio.sleep(0.1)
                assert server_page.queue.behind >= 1, server_page.status()
                # it reads again: what the network held, then the snapshot instead of the backlog, then live
                assert await slow.read_until(lambda: "behind" in slow.view.snapshots, timeout=30)
                await run.quiesce()
                await assert_page_equals_store(run, slow)
            finally:
                if slow is not None:
                    await slow.ws.close()
                    await slow.own_session.close()


@pytest.mark.timeout(120)
async def test_requests_without_the_token_are_refused(tmp_path):
    async with asyncio.timeout(100):
        async with Run(tmp_path, manual=True) as run:
            url = run.dashboard.url
            async with aiohttp.ClientSession() as anonymous:
                for path in ("/api/status", "/api/balances", "/api/fills?since=0", "/api/openapi.json",
                             "/api/status?token=wrong"):
                    async with anonymous.get(url + path) as response:
                        assert response.status == 401, path
                        assert "token" in (await response.json())["error"]
                async with anonymous.get(url + "/api/status", headers={"Authorization": "Bearer nope"}) as response:
                    assert response.status == 401
                async with anonymous.get(url + f"/api/status?token={TOKEN}") as response:
                    assert response.status == 200
                for bad in ("", "&token=wrong"):
                    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                        await anonymous.ws_connect(f"{url}/ws/live-dashboard?x=1{bad}")
                    assert refused.value.status == 401
                async with anonymous.get(url + "/") as response:  # the page itself is open: it reads the token
                    assert response.status == 200 and "text/html" in response.headers["Content-Type"]
            assert run.dashboard.pages == set()
            body = {"key": "binance_spot", "symbol": "BTC/USDT", "side": "long", "order_type": "market",
                    "amount": "0.01"}
            assert (await run.post("/api/manual-trade/prepare", body, token=None))[0] == 401
            status, prepared = await run.post("/api/manual-trade/prepare", body)
            assert status == 200 and prepared["expires_in"] == 60
            status, answer = await run.post("/api/manual-trade-ws", {"confirmation_id": prepared["confirmation_id"]},
                                            token=None)
            assert status == 401
            status, answer = await run.post("/api/manual-trade-ws", {"confirmation_id": prepared["confirmation_id"]},
                                            token="wrong")
            assert status == 401
            for confirmation in ({}, {"confirmation_id": "made-up"}, {"confirmation_id": 7}):
                status, answer = await run.post("/api/manual-trade-ws", confirmation)
                assert status == 400 and "confirmation" in answer["error"], answer
            run.dashboard.manual.clock = lambda: time.monotonic() + 61  # the confirmation expires
            status, answer = await run.post("/api/manual-trade-ws", {"confirmation_id": prepared["confirmation_id"]})
            assert status == 400 and "expired" in answer["error"]
            assert run.sim.ledger("binance", "spot").orders == {}  # nothing was placed
            for wrong, says in (({**body, "side": "up"}, "side"), ({**body, "amount": 0.01}, "string"),
                                ({**body, "amount": "-1"}, "positive"), ({**body, "key": "bybit_spot"}, "key"),
                                ({**body, "order_type": "limit"}, "price"),
                                ({**body, "take_profit": "70000"}, "take-profit")):
                status, answer = await run.post("/api/manual-trade/prepare", wrong)
                assert status == 400 and says in answer["error"], (wrong, answer)
            secret = run.connector.credentials.secret
            assert all(secret not in entry.text and TOKEN not in entry.text
                       for entry in run.dashboard.state.journal.since(0) or [])


@pytest.mark.timeout(120)
async def test_manual_order_is_placed_and_filled_on_the_simulator_with_its_path_and_latency(tmp_path):
    async with asyncio.timeout(100):
        async with Run(tmp_path, manual=True) as run:
            page = await run.page()
            await page.read()
            body = {"key": "binance_spot", "symbol": "BTC/USDT", "side": "long", "order_type": "market",
                    "amount": "0.02"}
            status, prepared = await run.post("/api/manual-trade/prepare", body)
            assert status == 200 and "long (buy) 0.02 BTC/USDT" in prepared["summary"]
            status, placed = await run.post("/api/manual-trade-ws", {"confirmation_id": prepared["confirmation_id"]})
            assert status == 200, placed
            order = placed["order"]
            assert placed["path"] == "websocket" and 0 < placed["latency_ms"] < 2_000
            assert order["strategy_id"] == "dashboard-manual" and order["client_order_id"].startswith("dash")
            assert order["order_id"] and order["state"] not in ("rejected", "unknown"), order
            ledger = run.sim.ledger("binance", "spot")
            assert await page.read_until(lambda: any(f["order_id"] == order["order_id"] for f in page.view.fills))
            venue = ledger.orders[order["order_id"]]
            assert venue.status is OrderStatus.FILLED and venue.client_order_id == order["client_order_id"]
            assert venue.filled == Decimal("0.02")
            fills = [f for f in page.view.fills if f["order_id"] == order["order_id"]]
            assert sum(Decimal(f["amount"]) for f in fills) == Decimal("0.02")
            assert all(f["strategy_id"] == "dashboard-manual" for f in fills)
            assert await page.read_until(lambda: _order_state(page, order) == "filled")
            assert run.strategy.trades == []  # the other strategy on the key never got the manual fill
            # the same confirmation cannot place it twice
            status, again = await run.post("/api/manual-trade-ws", {"confirmation_id": prepared["confirmation_id"]})
            assert status == 400 and len(ledger.orders) == 1
            # REST when WebSocket order entry is not preferred: a limit order resting below the book
            await run.pool.trading.force_websocket_preference(False)
            bid = run.sim.market("binance", "spot", "BTC/USDT").best_bid()[0]
            status, prepared = await run.post("/api/manual-trade/prepare", {
                **body, "side": "long", "order_type": "limit", "amount": "0.01", "price": str(bid - 100)})
            status, placed = await run.post("/api/manual-trade-ws", {"confirmation_id": prepared["confirmation_id"]})
            assert status == 200 and placed["path"] == "rest" and placed["latency_ms"] > 0
            resting = ledger.orders[placed["order"]["order_id"]]
            assert resting.status is OrderStatus.NEW and resting.price == bid - 100
            assert await page.read_until(lambda: _order_state(page, placed["order"]) == "open")


@pytest.mark.timeout(120)
async def test_manual_order_with_take_profit_and_stop_loss_protects_what_filled(tmp_path):
    async with asyncio.timeout(100):
        async with Run(tmp_path, market="future", manual=True) as run:
            page = await run.page()
            await page.read()
            bid = run.sim.market("binance", "future", "BTC/USDT:USDT").best_bid()[0]
            # long at the market; the take-profit already reached (it fires at the next step), the stop-loss far off
            status, prepared = await run.post("/api/manual-trade/prepare", {
                "key": "binance_future", "symbol": "BTC/USDT:USDT", "side": "long", "order_type": "market",
                "amount": "0.01", "take_profit": str(bid - 100), "stop_loss": str(bid - 5000)})
            assert status == 200 and f"take profit {bid - 100}, stop loss {bid - 5000}" in prepared["summary"]
            status, placed = await run.post("/api/manual-trade-ws", {"confirmation_id": prepared["confirmation_id"]})
            assert status == 200 and placed["path"] == "websocket", placed
            ledger = run.sim.ledger("binance", "future")

            def sells() -> list:
                return [o for o in ledger.orders.values() if o.side.value == "sell"]

            assert await page.read_until(lambda: sorted(o.status.value for o in sells()) == ["canceled", "filled"],
                                         timeout=30), sells()
            assert all(o.client_order_id.startswith("dash") for o in ledger.orders.values())
            await run.quiesce()
            await assert_page_equals_store(run, page)
            (position,) = page.view.positions.values()
            assert position["direction"] == "flat" and Decimal(position["size"]) == 0  # in and out
            mine = [f for f in page.view.fills if f["strategy_id"] == "dashboard-manual"]
            for side in ("buy", "sell"):
                assert sum(Decimal(f["amount"]) for f in mine if f["side"] == side) == Decimal("0.01"), mine
            assert page.view.orders == {}


def _order_state(page: PageClient, order: dict) -> str | None:
    for o in page.view.orders.values():
        if o["client_order_id"] == order["client_order_id"]:
            return o["state"]
    return "filled" if any(f["client_order_id"] == order["client_order_id"] for f in page.view.fills) \
        and order["client_order_id"] not in {o["client_order_id"] for o in page.view.orders.values()} else None


@pytest.mark.timeout(120)
async def test_a_restarted_dashboard_shows_what_the_last_one_showed(tmp_path):
    async with asyncio.timeout(100):
        async with Run(tmp_path, market="future", rate=40) as run:
            await asyncio.sleep(2.0)
            await run.quiesce()
            before = json.loads(run.dashboard.state.snapshot("connect").text)["data"]
        assert before["fills"] and before["positions"] and before["balances"]
        pool = ConnectionPool(f"sqlite:///{tmp_path}/trades.sqlite", tmp_path / "logs2")
        await pool.start()
        try:
            async with Dashboard(pool, token=TOKEN) as again:
                after = json.loads(again.state.snapshot("connect").text)["data"]
        finally:
            await pool.stop()
        for part in ("balances", "positions", "orders", "fills", "chart"):
            assert sorted(map(json.dumps, after[part])) == sorted(map(json.dumps, before[part])), part


class ReadsDown:
    """The pool's store, whose reads fail as an unreachable database's would while `down` (writes go on)."""

    READS = frozenset({"fetch_balances", "fetch_positions", "fetch_orders", "fetch_order_requests", "trades_after"})

    def __init__(self, inner) -> None:
        self.inner, self.down = inner, True

    def __getattr__(self, name):
        found = getattr(self.inner, name)
        if name not in self.READS:
            return found

        async def read(*args, **kwargs):
            if self.down:
                raise StoreError("database unreachable (test)")
            return await found(*args, **kwargs)

        return read


@pytest.mark.timeout(120)
async def test_a_dashboard_started_while_the_store_cannot_be_read_shows_its_history_once_it_can(tmp_path):
    async with asyncio.timeout(100):
        async with Run(tmp_path, rate=40, warmup=1.5, dashboard_store=ReadsDown) as run:
            history = await run.pool.store.trades_after(run.pool.pipeline.known_keys(), 0, 10_000)
            assert history  # stored before the dashboard started
            page = await run.page()
            first = await page.read()
            assert first["data"]["reason"] == "connect"
            assert {f["store_seq"] for f in first["data"]["fills"]}.isdisjoint(seq for seq, _ in history)
            status, _ = await run.get("/api/fills?since=0")
            assert status == 503
            run.dashboard_store.down = False
            assert await page.read_until(lambda: "behind" in page.view.snapshots, timeout=15)
            await run.quiesce()
            await assert_page_equals_store(run, page)
            stored = await run.pool.store.trades_after(run.pool.pipeline.known_keys(), 0, 100_000)
            run.dashboard.feed.tick()
            assert await page.read_until(lambda: page.view.chart[-1]["fills"] == len(stored))  # history counted


@pytest.mark.timeout(60)
async def test_dashboard_on_a_port_in_use_says_so_and_leaves_nothing_behind(tmp_path):
    async with asyncio.timeout(50):
        pool = ConnectionPool(f"sqlite:///{tmp_path}/trades.sqlite", tmp_path / "logs")
        await pool.start()
        try:
            async with Dashboard(pool, token=TOKEN) as first:
                second = Dashboard(pool, token=TOKEN, port=first.port, name="second")
                with pytest.raises(Exception) as refused:
                    await second.start()
                assert type(refused.value).__name__ == "ConfigError" and str(first.port) in str(refused.value)
                assert "second" not in pool.pipeline.status()["components"]
        finally:
            await pool.stop()
