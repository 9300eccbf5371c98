"""The event publisher against a real dashboard backend: queued while the dashboard is down (a loopback proxy cutting
the connection, or the dashboard not reachable yet), delivered in order when it returns, fills and orders neither
lost nor doubled, state messages bounded; a refused token is one error line and the bot trades on; ws_client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from loguru import logger

from exchanges.simulator import Simulator
from framework.dashboard import Dashboard
from framework.pool import ConnectionPool
from framework.publisher import Publisher, PublisherConfig, PublisherState, start_publisher
from framework.retry import Backoff
from framework.strategy import BaseStrategy

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "publisher-test-token-0123456789"
FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.02, free=0)


# --- helpers ------------------------------------------------------------------------------------------------
class Proxy:
    """A TCP proxy on 127.0.0.1 (port 0) in front of the dashboard: `cut()` aborts every connection through it and
    refuses new ones (the dashboard is down for the publisher), `restore()` lets them through again."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.down = False
        self.muted = False  # what the dashboard answers (welcomes, acks) is thrown away
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.Transport] = set()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut()
        self._server.close()
        await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        self.down = True
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    def restore(self) -> None:
        self.down = False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        self._transports |= {writer.transport, up_writer.transport}
        for src, dst, answers in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.create_task(self._pipe(src, dst, answers), name="proxy-pipe")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, answers: bool) -> None:
        try:
            while data := await src.read(65536):
                if answers and self.muted:
                    continue
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.transport.abort()


class Page:
    """A page socket of the dashboard: every message it is sent, in order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages: list[dict[str, Any]] = []
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        ws = await self._session.ws_connect(self.url)
        self._task = asyncio.create_task(self._read(ws), name="test-page")
        await until(lambda: any(m["type"] == "snapshot" for m in self.messages))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            self.messages.append(json.loads(message.data))

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._session.close()

    def from_publisher(self, source: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if isinstance(m.get("data"), dict) and m["data"].get("source") == source
                and (kind is None or m["type"] == kind)]


class Recorder:
    """A second pipeline component on the bot's pool: what the bus handed components (the publisher's share)."""

    def __init__(self) -> None:
        self.fills: list[Any] = []
        self.updates: list[Any] = []

    async def on_trade_update(self, trade: Any) -> None:
        self.fills.append(trade)

    async def on_order_update_update(self, update: Any) -> None:
        self.updates.append(update)


async def until(predicate: Any, timeout: float = 10.0, step: float = 0.01) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)


def config(url: str, **changes: Any) -> PublisherConfig:
    fields = {"enabled": True, "url": url, "token": TOKEN, "retry_delay": 0.05, "timeout": 2.0,
              "publish_interval": 0.2, "publisher_id": "bot-1"}
    return PublisherConfig(**{**fields, **changes})


@pytest.fixture
async def dashboard(tmp_path):
    """A dashboard backend of its own (its own pool and store: another process's, as far as the bot knows)."""
    pool = ConnectionPool(f"sqlite:///{tmp_path / 'dashboard.sqlite'}", tmp_path / "dashboard-logs")
    await pool.start()
    board = Dashboard(pool, port=0, token=TOKEN)
    await board.start()
    yield board
    await board.stop()
    await asyncio.wait_for(pool.stop(), 10)


@pytest.fixture
async def page(dashboard):
    page = Page(f"ws://127.0.0.1:{dashboard.port}/ws/live-dashboard?token={TOKEN}")
    await page.start()
    yield page
    await page.stop()


@pytest.fixture
async def proxy(dashboard):
    proxy = Proxy(dashboard.port)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def bot(tmp_path):
    """The bot: a pool on the simulator's binance spot key, one strategy taking every fill."""
    async with Simulator(exchanges=["binance"], seed=3) as sim:
        pool = ConnectionPool(f"sqlite:///{tmp_path / 'bot.sqlite'}", tmp_path / "bot-logs")
        await pool.start()
        strategy = BaseStrategy("bot", [sim.connector("binance", "spot")], pool=pool)
        await strategy.start()
        yield sim, pool
        await sim.stop_autopilots()
        await strategy.stop()
        await asyncio.wait_for(pool.stop(), 10)


# --- queued while down, delivered in order, nothing lost or doubled ------------------------------------------
@pytest.mark.timeout(90)
async def test_fills_and_orders_published_across_dashboard_outages_arrive_once_in_store_order(
        bot, dashboard, proxy, page):
    sim, pool = bot
    recorder = Recorder()
    pool.pipeline.register_component("recorder", recorder, ["trade", "order_update"])
    publisher = Publisher(config(f"ws://127.0.0.1:{proxy.port}/ws"), pool=pool, backoff=FAST)
    await publisher.start()
    try:
        await until(lambda: publisher.state is PublisherState.CONNECTED)
        sim.autopilot("binance", "spot", "BTC/USDT", rate=80, client_order_id_prefix="bot")
        for outage in (0.6, 1.0, 0.3):  # the dashboard unreachable three times while fills keep coming
            await asyncio.sleep(0.5)
            proxy.cut()
            await until(lambda: publisher.state is not PublisherState.CONNECTED)
            queued_before = publisher.status()["fills_and_orders_unacked"]
            await asyncio.sleep(outage)
            assert publisher.status()["fills_and_orders_unacked"] > queued_before  # kept while down
            proxy.restore()
        await asyncio.sleep(0.5)
        await sim.stop_autopilots()
        await pool.flush(timeout=10)
        ledger = sim.ledger("binance", "spot").fills
        await until(lambda: len(page.from_publisher("bot-1", "fill")) >= len(ledger)
                    and not publisher.status()["queued"], timeout=20)
        await asyncio.sleep(0.3)  # anything doubled would have come by now
    finally:
        await publisher.stop()

    fills = [m["data"] for m in page.from_publisher("bot-1", "fill")]
    assert len(ledger) > 100
    assert [f["trade_id"] for f in fills] == [f.trade_id for f in recorder.fills]  # none lost, none doubled, in order
    assert sorted(f["trade_id"] for f in fills) == sorted(f.trade_id for f in ledger)  # the venue's fills, each once
    assert [f["store_seq"] for f in fills] == sorted({f["store_seq"] for f in fills})
    by_id = {f.trade_id: f for f in ledger}
    for fill in fills:  # exact decimals, as the venue made them
        made = by_id[fill["trade_id"]]
        assert (Decimal(fill["amount"]), Decimal(fill["price"]), fill["side"]) == (made.amount, made.price,
                                                                                  made.side.value)
        assert fill["strategy_id"] == "bot" and fill["key"] == "binance_spot"
    orders = [m["data"] for m in page.from_publisher("bot-1", "orders")]
    expected = [(u.order_id, u.status.value, format(u.filled, "f")) for u in recorder.updates]
    assert [(o["order_id"], o["state"], o["filled"]) for o in orders] == expected
    assert len(expected) >= len(ledger)  # an execution report with every fill
    seqs = [m["seq"] for m in page.messages if m["type"] != "snapshot"]
    assert seqs == sorted(set(seqs))  # the page's stream: strictly increasing
    assert publisher.welcomes >= 4 and proxy.accepted >= 4
    assert publisher.dropped == 0


@pytest.mark.timeout(60)
async def test_state_messages_beyond_the_queue_size_drop_the_oldest_fills_never(dashboard, proxy, page, logged):
    proxy.cut()  # the dashboard is not reachable when the publisher starts
    publisher = Publisher(config(f"ws://127.0.0.1:{proxy.port}/ws", queue_size=10, publisher_id="bounded",
                                 max_retries=3), backoff=FAST)
    await publisher.start()
    try:
        await until(lambda: at(logged, "ERROR"))  # three tries in a row failed: said once, tries go on
        for i in range(40):
            publisher.publish("trading_decision", {"n": i, "confidence": Decimal("0.50") + i})
            if i % 8 == 0:
                publisher.publish("fill", {"trade_id": f"t{i}", "amount": Decimal("0.001")})
        status = publisher.status()
        assert status["queued"] == 10 + 5 and status["dropped"] == 30 and status["fills_and_orders_unacked"] == 5
        proxy.restore()
        await until(lambda: len(page.from_publisher("bounded")) == 15 and not publisher.status()["queued"])
    finally:
        await publisher.stop()
    got = page.from_publisher("bounded")
    decisions = [m["data"]["n"] for m in got if m["type"] == "trading_decision"]
    assert decisions == list(range(30, 40))  # the newest ten, in order
    assert [m["data"]["confidence"] for m in got if m["type"] == "trading_decision"][0] == "30.50"
    assert [m["data"]["trade_id"] for m in got if m["type"] == "fill"] == ["t0", "t8", "t16", "t24", "t32"]
    order = [(m["type"], m["data"].get("n", m["data"].get("trade_id"))) for m in got]
    assert order.index(("fill", "t32")) < order.index(("trading_decision", 33))  # published order kept
    assert dashboard.ingest.status()["received"]["bounded"] == 15
    assert [r["message"] for r in logged] == ["dashboard unreachable; publisher queueing and retrying",
                                              "dashboard unreachable after max retries; the bot trades on, its "
                                              "events wait"]
    assert at(logged, "ERROR")[0]["extra"]["tries"] == 3


@pytest.mark.timeout(60)
async def test_a_new_process_with_the_same_publisher_id_is_not_taken_for_resends(dashboard, page):
    url = f"ws://127.0.0.1:{dashboard.port}/ws"
    first = Publisher(config(url, publisher_id="stable"), backoff=FAST)
    await first.start()
    for i in range(3):
        first.publish("ai_decision", {"n": i})
    await until(lambda: len(page.from_publisher("stable")) == 3)
    await first.stop()
    second = Publisher(config(url, publisher_id="stable"), backoff=FAST)  # seqs from 1 again, before its welcome
    for i in range(3, 5):
        second.publish("ai_decision", {"n": i})
    await second.start()
    try:
        await until(lambda: len(page.from_publisher("stable")) == 5)
    finally:
        await second.stop()
    assert [m["data"]["n"] for m in page.from_publisher("stable")] == [0, 1, 2, 3, 4]
    assert dashboard.ingest.status()["last_seq"]["stable"] == 5


@pytest.mark.timeout(60)
async def test_messages_journaled_whose_acks_were_lost_are_not_journaled_again(dashboard, proxy, page):
    publisher = Publisher(config(f"ws://127.0.0.1:{proxy.port}/ws", publisher_id="lost-acks", timeout=10.0),
                          backoff=FAST)
    await publisher.start()
    try:
        await until(lambda: publisher.state is PublisherState.CONNECTED)
        proxy.muted = True  # the dashboard journals and acks; the acks never arrive
        for i in range(50):
            publisher.publish("fill", {"trade_id": str(i)})
        await until(lambda: dashboard.ingest.status()["received"].get("lost-acks") == 50)
        assert publisher.status()["fills_and_orders_unacked"] == 50
        proxy.cut()
        proxy.muted = False
        proxy.restore()
        for i in range(50, 60):
            publisher.publish("fill", {"trade_id": str(i)})
        await until(lambda: not publisher.status()["queued"] and publisher.state is PublisherState.CONNECTED)
        await asyncio.sleep(0.2)
    finally:
        await publisher.stop()
    assert [m["data"]["trade_id"] for m in page.from_publisher("lost-acks")] == [str(i) for i in range(60)]
    assert publisher.welcomes == 2


@pytest.mark.timeout(30)
async def test_ingest_acks_resends_by_seq_without_journaling_them_and_refuses_broken_messages(dashboard, page):
    url = f"ws://127.0.0.1:{dashboard.port}/ws"
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def exchange(ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> dict[str, Any]:
        await ws.send_json(message)
        return json.loads((await ws.receive(timeout=5)).data)

    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.ws_connect(url) as ws:
            assert await exchange(ws, {"type": "hello", "publisher": "raw"}) == {"type": "welcome", "last_seq": 0}
            for seq in (1, 2, 3):
                answer = await exchange(ws, {"type": "market_data", "seq": seq, "data": {"n": seq}, "timestamp": 1})
                assert answer == {"type": "ack", "seq": seq}
        async with session.ws_connect(url) as ws:  # a publisher that ignores the welcome and sends it all again
            assert await exchange(ws, {"type": "hello", "publisher": "raw"}) == {"type": "welcome", "last_seq": 3}
            for seq in (1, 2, 3, 4):
                answer = await exchange(ws, {"type": "market_data", "seq": seq, "data": {"n": seq}, "timestamp": 1})
                assert answer == {"type": "ack", "seq": seq}
            answer = await exchange(ws, {"type": "snapshot", "seq": 5, "data": {}, "timestamp": 1})
            assert answer == {"type": "ack", "seq": 5, "error": "type 'snapshot' is the dashboard's own: not taken "
                                                                   "from a publisher"}
            answer = await exchange(ws, {"type": "fill", "seq": "six", "data": {}})
            assert answer["type"] == "error" and "seq" in answer["error"]
            assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        async with session.ws_connect(url) as ws:
            answer = await exchange(ws, {"type": "market_data", "seq": 1, "data": {}})  # no hello first
            assert answer["type"] == "error" and "hello" in answer["error"]
    await until(lambda: len(page.from_publisher("raw")) == 4)
    await asyncio.sleep(0.2)
    assert [m["data"]["n"] for m in page.from_publisher("raw")] == [1, 2, 3, 4]
    assert dashboard.ingest.status()["resends"] == 3


@pytest.mark.timeout(60)
async def test_positions_and_balances_go_newest_per_interval_and_end_equal_to_the_store(dashboard, page, tmp_path):
    async with Simulator(exchanges=["binance"], seed=4) as sim:
        pool = ConnectionPool(f"sqlite:///{tmp_path / 'futures.sqlite'}", tmp_path / "futures-logs")
        await pool.start()
        strategy = BaseStrategy("bot", [sim.connector("binance", "future")], pool=pool)
        await strategy.start()
        publisher = Publisher(config(f"ws://127.0.0.1:{dashboard.port}/ws", publisher_id="futures",
                                     publish_interval=0.5), pool=pool, backoff=FAST)
        await publisher.start()
        try:
            for i in range(30):  # a position built in 30 fills, the wallet moving with each
                await sim.fill("binance", "future", "BTC/USDT:USDT", "buy" if i % 3 else "sell", "0.003",
                               str(65000 + i), client_order_id=f"bot-{i}")
            await pool.flush(timeout=10)
            await asyncio.sleep(0.6)  # one more interval: the newest states go
            balances = {b.asset: b for b in await pool.store.fetch_balances()}
            positions = await pool.store.fetch_positions()
            await until(lambda: len(page.from_publisher("futures", "fill")) == 30 and not publisher.status()["queued"])
        finally:
            await publisher.stop()
            await strategy.stop()
            await asyncio.wait_for(pool.stop(), 10)
    shown_balances = {m["data"]["asset"]: m["data"] for m in page.from_publisher("futures", "balance_update")}
    shown_positions = [m["data"] for m in page.from_publisher("futures", "position_update")]
    assert balances and set(shown_balances) == set(balances)
    for asset, balance in balances.items():  # the last one shown of each is the store's, exactly
        shown = shown_balances[asset]
        assert (shown["free"], shown["locked"], shown["total"]) == (
            format(balance.free, "f"), format(balance.locked, "f"), format(balance.total, "f"))
    (position,) = positions
    last = shown_positions[-1]
    assert (last["symbol"], last["direction"], Decimal(last["size"]), Decimal(last["entry_price"])) == (
        position.symbol, position.direction.value, position.size, position.entry_price)
    assert len(shown_positions) < 30 and len(page.from_publisher("futures", "balance_update")) < 30  # coalesced


# --- strategies' own events -----------------------------------------------------------------------------------
class Decider(BaseStrategy):
    def on_trade(self, trade):  # a plain hook: it runs on the strategy's worker thread
        self.publish("trading_decision", {"action": "hold", "symbol": trade.symbol, "price": trade.price,
                                          "confidence": Decimal("0.70"), "reasoning": "after a fill"})


@pytest.mark.timeout(60)
async def test_strategy_publish_from_a_sync_hook_reaches_the_page_with_exact_decimals(bot, dashboard, page):
    sim, pool = bot
    assert Decider("lonely").publish("trading_decision", {"x": 1}) is False  # no publisher: a no-op
    strategy = Decider("decider", [sim.connector("binance", "spot")], pool=pool)
    await strategy.start()
    publisher = Publisher(config(f"ws://127.0.0.1:{dashboard.port}/ws", publisher_id="decider-bot"), pool=pool,
                          backoff=FAST)
    await publisher.start()
    try:
        await sim.fill("binance", "spot", "BTC/USDT", "buy", "0.002", "65000.25",
                                      client_order_id="decider-1")
        await until(lambda: page.from_publisher("decider-bot", "trading_decision"))
    finally:
        await publisher.stop()
        await strategy.stop()
    decision = page.from_publisher("decider-bot", "trading_decision")[0]["data"]
    assert decision == {"action": "hold", "symbol": "BTC/USDT", "price": "65000.25000000", "confidence": "0.70",
                        "reasoning": "after a fill", "strategy_id": "decider", "source": "decider-bot"}
    with pytest.raises(ValueError, match="dashboard's own"):
        publisher.publish("balance", {})
    with pytest.raises(TypeError, match="cannot publish a object"):
        publisher.publish("trading_decision", {"what": object()})


# --- refusals: one line, the bot trades on ----------------------------------------------------------------------
@pytest.fixture
def logged():
    """The publisher's WARNING and ERROR records (message, level, extra) logged while the test runs."""
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level="WARNING",
                      filter=lambda record: record["extra"].get("component") == "publisher")
    yield records
    logger.remove(sink)


def at(records: list[dict[str, Any]], level: str) -> list[dict[str, Any]]:
    return [r for r in records if r["level"].name == level]


@pytest.mark.timeout(60)
async def test_refused_token_is_one_error_line_and_the_bot_keeps_trading(bot, dashboard, logged):
    sim, pool = bot
    publisher = Publisher(config(f"ws://127.0.0.1:{dashboard.port}/ws", token="not-the-token",
                                 publisher_id="refused"), pool=pool, backoff=FAST)
    await publisher.start()
    try:
        sim.autopilot("binance", "spot", "BTC/USDT", rate=50, client_order_id_prefix="bot")
        await until(lambda: len(sim.ledger("binance", "spot").fills) >= 40)
        await sim.stop_autopilots()
        await pool.flush(timeout=10)
        assert pool.trade_sync.stats()["stored"] == len(sim.ledger("binance", "spot").fills)  # trading went on
        await until(lambda: publisher.attempts >= 3)
        assert publisher.state is PublisherState.REFUSED
        assert publisher.status()["fills_and_orders_unacked"] >= 40  # kept for when the token is fixed
    finally:
        await publisher.stop()
    assert len(logged) == 1 and logged[0]["level"].name == "ERROR", logged  # tried again, said once
    assert "refused the token (HTTP 401)" in logged[0]["extra"]["error"]
    assert "not-the-token" not in str(logged[0])
    assert dashboard.ingest.status()["received"] == {}


@pytest.mark.timeout(30)
async def test_bad_url_or_setting_is_one_error_line_and_no_publisher(pool, logged):
    publisher = Publisher(config("http://127.0.0.1:8000/ws"), pool=pool)
    await publisher.start()
    assert publisher.state is PublisherState.CREATED and "not a ws:// or wss:// URL" in publisher.error
    assert publisher.publish("market_data", {"x": 1}) is True  # queued, never sent: the bot is not troubled
    await publisher.stop()
    env = {"SYSTEM__ENABLE_WEBSOCKET_PUBLISHING": "true", "SYSTEM__WEBSOCKET_QUEUE_SIZE": "many"}
    assert await start_publisher(pool, env) is None
    assert await start_publisher(pool, {"SYSTEM__ENABLE_WEBSOCKET_PUBLISHING": "false"}) is None
    assert [(r["level"].name, r["extra"]["error"]) for r in logged] == [
        ("ERROR", "'http://127.0.0.1:8000/ws' is not a ws:// or wss:// URL: write it as ws://HOST:PORT/ws"),
        ("ERROR", "SYSTEM__WEBSOCKET_QUEUE_SIZE='many' cannot be read as a whole number: fix or unset it")]


def test_config_from_the_environment():
    config = PublisherConfig.from_env({
        "SYSTEM__ENABLE_WEBSOCKET_PUBLISHING": "True", "SYSTEM__WEBSOCKET_DASHBOARD_URL": "ws://dash:9000/ws",
        "SYSTEM__WEBSOCKET_PUBLISH_INTERVAL": "0.5", "SYSTEM__WEBSOCKET_MAX_RETRIES": "3",
        "SYSTEM__WEBSOCKET_RETRY_DELAY": "2", "SYSTEM__WEBSOCKET_TIMEOUT": "4", "SYSTEM__WEBSOCKET_QUEUE_SIZE": "50",
        "SYSTEM__WEBSOCKET_DASHBOARD_TOKEN": "secret-token", "SYSTEM__WEBSOCKET_PUBLISHER_ID": "desk-1"})
    assert (config.enabled, config.url, config.publish_interval, config.max_retries, config.retry_delay,
            config.timeout, config.queue_size, config.token, config.publisher_id) == (
        True, "ws://dash:9000/ws", 0.5, 3, 2.0, 4.0, 50, "secret-token", "desk-1")
    assert "secret-token" not in repr(config)
    default = PublisherConfig.from_env({"TRADESYNC_DASHBOARD_TOKEN": "t0k3n"})
    assert (default.enabled, default.url, default.token) == (False, "ws://localhost:8000/ws", "t0k3n")


# --- ws_client and run_strategy.py against a real backend -----------------------------------------------------
async def run_script(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})}, cwd=ROOT)
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.timeout(90)
async def test_ws_client_sends_every_type_and_prints_what_a_page_gets(dashboard, page):
    client = str(ROOT / "scripts" / "ws_client.py")
    base = f"127.0.0.1:{dashboard.port}"
    listener = asyncio.create_task(run_script(client, "--url", f"http://{base}/?token={TOKEN}", "--duration", "4"))
    await until(lambda: dashboard.pages and len(dashboard.pages) == 2, timeout=20)
    code, out, err = await run_script(client, "--url", f"ws://{base}", "--token", TOKEN, "--send", "all",
                                      "--publisher", "ops-check")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0] == {"type": "welcome", "last_seq": 0}
    assert lines[1:] == [{"type": "ack", "seq": n} for n in range(1, 8)]
    code, out, err = await listener
    assert code == 0, err
    printed = [json.loads(line) for line in out.splitlines()]
    assert printed[0]["type"] == "snapshot" and printed[0]["data"]["reason"] == "connect"
    sent = [m for m in printed if isinstance(m["data"], dict) and m["data"].get("source") == "ops-check"]
    assert [m["type"] for m in sent] == ["market_data", "trading_decision", "ai_decision", "system_status",
                                         "position_update", "fill", "orders"]
    assert sent == page.from_publisher("ops-check")  # what the page socket sent, as it came
    assert re.fullmatch(rf"{len(printed)} messages in [0-9.]+ s \(.*\)", err.splitlines()[-1]), err


@pytest.mark.timeout(90)
async def test_ws_client_bad_url_or_refused_token_is_one_line_and_exit_2(dashboard):
    client = str(ROOT / "scripts" / "ws_client.py")
    cases = {
        ("--url", f"ws://127.0.0.1:{dashboard.port}", "--token", "wrong"): "refused the token (HTTP 401)",
        ("--url", f"ws://127.0.0.1:{dashboard.port}", "--send", "all"): "refused the token (HTTP 401)",
        ("--url", "ftp://127.0.0.1/ws", "--token", TOKEN): "is not a dashboard URL",
        ("--url", f"ws://127.0.0.1:{dashboard.port}/nowhere", "--token", TOKEN): "not a dashboard socket (HTTP 404)",
    }
    env = {"TRADESYNC_DASHBOARD_TOKEN": "", "SYSTEM__WEBSOCKET_DASHBOARD_TOKEN": ""}
    for args, said in cases.items():
        code, out, err = await run_script(client, *args, "--duration", "1", env=env)
        assert (code, out) == (2, ""), (args, err)
        assert len(err.splitlines()) == 1 and said in err, (args, err)
        assert TOKEN not in err


@pytest.mark.timeout(120)
async def test_run_strategy_publishes_its_fills_when_enabled_and_trades_on_when_refused(dashboard, page, tmp_path):
    run = str(ROOT / "scripts" / "run_strategy.py")
    common = ["--strategy", "position_tracker", "--duration", "3", "--seed", "5", "--log-dir", str(tmp_path / "logs")]
    env = {"SYSTEM__ENABLE_WEBSOCKET_PUBLISHING": "true",
           "SYSTEM__WEBSOCKET_DASHBOARD_URL": f"ws://127.0.0.1:{dashboard.port}/ws",
           "SYSTEM__WEBSOCKET_PUBLISHER_ID": "runner", "SYSTEM__WEBSOCKET_DASHBOARD_TOKEN": TOKEN}
    code, out, err = await run_script(run, *common, "--db", str(tmp_path / "a.sqlite"), env=env)
    assert code == 0, err
    stored = int(out.split("fills stored: ")[1].split(",")[0])
    fills = page.from_publisher("runner", "fill")
    assert stored > 5 and len(fills) == stored and len({f["data"]["trade_id"] for f in fills}) == stored
    assert page.from_publisher("runner", "system_status")

    env["SYSTEM__WEBSOCKET_DASHBOARD_TOKEN"] = "wrong-token"
    env["SYSTEM__WEBSOCKET_PUBLISHER_ID"] = "refused-runner"
    code, out, err = await run_script(run, *common, "--db", str(tmp_path / "b.sqlite"), env=env)
    assert code == 0, err
    assert int(out.split("fills stored: ")[1].split(",")[0]) > 5  # it traded on
    said = [line for line in err.splitlines() if "publisher" in line]  # what the publisher logged
    assert len(said) == 1 and "ERROR" in said[0] and "refused the token (HTTP 401)" in said[0], err
    assert "wrong-token" not in err
    assert not page.from_publisher("refused-runner")
