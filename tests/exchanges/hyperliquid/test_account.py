"""Hyperliquid account state: `clearinghouseState` pushes → BalanceUpdate / PositionUpdate (golden samples, malformed
frames), the simulator's pushes and `POST /info` answers against its account, ccxt and ccxt.pro reading them."""

from __future__ import annotations

import asyncio
import copy
import json
from decimal import Decimal, localcontext
from pathlib import Path

import aiohttp
import pytest

from exchanges.connector import Credentials
from exchanges.hyperliquid.account import (
    ACCOUNT_CHANNELS,
    account_subscriptions,
    clearinghouse_events,
    normalize_account,
)
from exchanges.hyperliquid.market_data import MARKET_DATA
from exchanges.hyperliquid.rest import BACKFILL
from exchanges.hyperliquid.stream import LIVE, HyperliquidStream
from exchanges.simulator import Simulator
from framework.account import BalanceUpdate, PositionUpdate
from framework.backfill import Backfiller
from framework.connection import decode_frame
from framework.errors import ConfigError, NormalizeError
from framework.events import ConnectionKey, Market, Source
from framework.marketdata.client import ccxt_client
from framework.retry import rest_call_policy
from framework.venue import MessageKind

SAMPLES = json.loads((Path(__file__).parents[2] / "data/exchanges/hyperliquid.account.samples.json").read_text())
DOCS = SAMPLES[0]["raw"]  # the docs' sample: a USDC balance and an isolated ETH long
BTC, ETH = "BTC/USDC:USDC", "ETH/USDC:USDC"
KEY = ConnectionKey(exchange="hyperliquid", market=Market.FUTURE)
STREAM = HyperliquidStream()
OTHER = "0x" + "ab" * 20
FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=3)


@pytest.fixture
async def sim():
    async with Simulator(exchanges=["hyperliquid"], seed=7) as simulator:
        yield simulator


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def wallet(sim: Simulator) -> str:
    return sim.credentials_for("hyperliquid").wallet_address


def as_values(event: BalanceUpdate | PositionUpdate) -> dict:
    """An event as a sample's expected entry: figures as text, enums as their values."""
    if isinstance(event, BalanceUpdate):
        fields = ("asset", "free", "locked", "total", "timestamp")
        kind = "balance"
    else:
        fields = ("symbol", "symbol_raw", "position_side", "direction", "size", "contracts", "entry_price",
                  "mark_price", "unrealized_pnl", "realized_pnl", "leverage", "liquidation_price", "margin_mode",
                  "timestamp")
        kind = "position"
    values = {"type": kind}
    for name in fields:
        value = getattr(event, name)
        values[name] = str(value) if isinstance(value, Decimal) else getattr(value, "value", value)
    return values


def mutated(path: tuple, value) -> dict:
    """The docs' sample with one field replaced (`...` deletes it)."""
    frame = copy.deepcopy(DOCS)
    node = frame
    for step in path[:-1]:
        node = node[step]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return frame


# golden -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sample", SAMPLES, ids=[s["source"][:40] for s in SAMPLES])
def test_golden_samples_normalize_to_the_values_written_on_them(sample):
    events = normalize_account(sample["raw"], Market(sample["market"]))
    assert [as_values(e) for e in events] == sample["expected"]
    for event in events:
        assert event.exchange == "hyperliquid" and event.market is Market.FUTURE and event.raw == sample["raw"]
        assert event.source is Source.WEBSOCKET


def test_docs_sample_balance_adds_up_and_the_mark_is_exact():
    balance, position = normalize_account(DOCS, Market.FUTURE)
    assert balance.free + balance.locked == balance.total
    assert position.mark_price * position.size == Decimal("100.02765")


def test_rest_body_reads_as_the_push_does():
    state = DOCS["data"]["clearinghouseState"]
    pushed = normalize_account(DOCS, Market.FUTURE)
    fetched = clearinghouse_events(state, source=Source.REST)
    assert fetched == pushed  # equality leaves source and raw out
    assert all(e.source is Source.REST and e.raw is state for e in fetched)


def test_short_flat_and_cross_positions():
    short = mutated(("data", "clearinghouseState", "assetPositions", 0, "position"), {
        **DOCS["data"]["clearinghouseState"]["assetPositions"][0]["position"],
        "coin": "BTC", "szi": "-0.00785", "leverage": {"type": "cross", "value": "20"}, "liquidationPx": None,
        "positionValue": "211.64542"})
    _, position = normalize_account(short, Market.FUTURE)
    assert (position.symbol, position.direction.value, position.size, position.signed_size) == (
        BTC, "short", Decimal("0.00785"), Decimal("-0.00785"))
    assert (position.margin_mode, position.leverage, position.liquidation_price) == ("cross", Decimal(20), None)
    assert position.mark_price == Decimal("26961.2")  # 211.64542 / 0.00785
    flat = mutated(("data", "clearinghouseState", "assetPositions", 0, "position", "szi"), "0.0")
    _, position = normalize_account(flat, Market.FUTURE)
    assert (position.direction.value, position.size, position.mark_price) == ("flat", Decimal(0), None)


@pytest.mark.parametrize("frame", [
    {"channel": "subscriptionResponse",
     "data": {"method": "subscribe", "subscription": {"type": "clearinghouseState", "user": OTHER}}},
    {"channel": "userFills", "data": {"user": OTHER, "fills": []}},
    {"channel": "webData2", "data": {"clearinghouseState": DOCS["data"]["clearinghouseState"]}},
    {"channel": "pong"}, ["clearinghouseState"], "Websocket connection established.", None,
])
def test_other_frames_give_nothing(frame):
    assert normalize_account(frame, Market.FUTURE) == []


def test_another_dex_push_is_not_read():
    assert normalize_account(mutated(("data", "dex"), "xyz"), Market.FUTURE) == []


POSITION = ("data", "clearinghouseState", "assetPositions", 0, "position")


@pytest.mark.parametrize(("path", "value"), [
    (("data",), None),
    (("data", "dex"), ...),
    (("data", "dex"), None),
    (("data", "clearinghouseState"), ...),
    (("data", "clearinghouseState", "time"), ...),
    (("data", "clearinghouseState", "time"), "1708622398623"),
    (("data", "clearinghouseState", "withdrawable"), 13104.514502),
    (("data", "clearinghouseState", "marginSummary"), {}),
    (("data", "clearinghouseState", "marginSummary", "accountValue"), "NaN"),
    (("data", "clearinghouseState", "assetPositions"), {}),
    (("data", "clearinghouseState", "assetPositions", 0, "type"), "hedge"),
    ((*POSITION, "szi"), ...),
    ((*POSITION, "szi"), "0.03x"),
    ((*POSITION, "coin"), ""),
    ((*POSITION, "coin"), "@107"),  # a spot pair's index: no perp
    ((*POSITION, "leverage"), {"type": "portfolio", "value": 20}),
    ((*POSITION, "leverage"), {"type": "cross", "value": 2.5}),  # a float: not exact
])
def test_malformed_pushes_raise_normalize_error(path, value):
    frame = mutated(path, value)
    with pytest.raises(NormalizeError) as caught:
        normalize_account(frame, Market.FUTURE)
    assert caught.value.raw is frame


def test_account_subscriptions_are_by_address():
    user = "0x" + "AB" * 20
    assert ACCOUNT_CHANNELS == ("clearinghouseState",)
    assert account_subscriptions(Credentials(wallet_address=user)) == [
        {"method": "subscribe", "subscription": {"type": "clearinghouseState", "user": user.lower()}}]
    with pytest.raises(ConfigError):
        account_subscriptions(Credentials(wallet_address="0x12"))


# the simulator ------------------------------------------------------------------------------------------------------
async def recv(ws, timeout: float = 3.0):
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return decode_frame(msg.data)


async def account_socket(http, sim: Simulator, user: str | None = None):
    """A socket subscribed to the account state of `user` (the wallet by default): (socket, ack, first state)."""
    ws = await http.ws_connect(sim.endpoints("hyperliquid", "future").ws + "/ws")
    (subscribe,) = account_subscriptions(Credentials(wallet_address=user or wallet(sim)))
    await ws.send_json(subscribe)
    return ws, await recv(ws), await recv(ws)


async def trade(sim: Simulator) -> None:
    """Open BTC long in two parts, add at a higher price, reduce it (realized PnL), open and close an ETH short."""
    await sim.fill("hyperliquid", "future", BTC, "buy", "0.030", "65000.5", parts=2)
    await sim.fill("hyperliquid", "future", ETH, "sell", "0.5", "3200.1")
    await sim.fill("hyperliquid", "future", BTC, "buy", "0.013", "65123.7")
    await sim.fill("hyperliquid", "future", BTC, "sell", "0.011", "65050")
    await sim.fill("hyperliquid", "future", ETH, "buy", "0.5", "3190.3")
    await sim.fill("hyperliquid", "future", "SOL/USDC:USDC", "sell", "3", "150.25")


def assert_equals_the_account(events, sim: Simulator) -> None:
    """The venue's view of the simulator's account: every figure equal (Decimal), closed positions left out."""
    account = sim.account("hyperliquid", "future")
    balance, *positions = events
    assert (balance.asset, balance.free, balance.locked, balance.total) == (
        "USDC", *sim.venue("hyperliquid").expected_balance(account, "USDC"))
    wallet_balance = account.balance("USDC")
    with localcontext() as exact:  # the figures carry an average entry's 28 digits
        exact.prec = 200
        assert balance.total - sum(p.unrealized_pnl for p in positions) == wallet_balance.total
    assert balance.locked == wallet_balance.locked
    opened = [p for p in account.positions.values() if p.size]
    assert [p.symbol for p in positions] == [p.symbol for p in opened]
    for got, held in zip(positions, opened, strict=True):
        assert (got.signed_size, got.contracts, got.direction.value) == (held.size, abs(held.size), held.direction)
        assert (got.entry_price, got.mark_price, got.unrealized_pnl) == (
            held.entry_price, held.mark_price, held.unrealized_pnl)
        assert (got.leverage, got.liquidation_price, got.margin_mode, got.realized_pnl) == (
            held.leverage, held.liquidation_price, "cross", None)


async def test_subscribe_is_acked_then_the_state_follows(sim, http):
    ws, ack, state = await account_socket(http, sim)
    assert ack == {"channel": "subscriptionResponse", "data": account_subscriptions(
        sim.credentials_for("hyperliquid"))[0]}
    assert STREAM.classify(ack, Market.FUTURE) is MessageKind.ACK
    assert state["data"]["user"] == wallet(sim) and state["data"]["dex"] == ""
    (balance,) = normalize_account(state, Market.FUTURE)
    assert (balance.free, balance.locked, balance.total) == (Decimal(1_000_000), 0, Decimal(1_000_000))
    assert sim.sessions("hyperliquid", "future")[0].subscriptions == {f"clearinghouseState:{wallet(sim)}"}
    await ws.close()


async def test_pushes_after_fills_equal_the_simulators_account(sim, http):
    ws, _, _ = await account_socket(http, sim)
    await trade(sim)
    frames = [await recv(ws) for _ in range(7)]  # one state a fill
    account = sim.account("hyperliquid", "future")
    assert frames[-1]["data"]["clearinghouseState"]["time"] == account.updated
    assert_equals_the_account(normalize_account(frames[-1], Market.FUTURE), sim)
    positions = [normalize_account(f, Market.FUTURE)[1:] for f in frames]
    assert [p.symbol for p in positions[3]] == [BTC, ETH] and positions[3][1].direction.value == "short"
    assert ETH not in [p.symbol for p in positions[5]]  # closed: no longer listed
    assert account.positions[ETH].size == 0 and account.positions[BTC].realized_pnl != 0
    await ws.close()


async def test_the_pushed_state_is_the_venues_shape(sim, http):
    ws, _, _ = await account_socket(http, sim)
    _, (fill,) = await sim.fill("hyperliquid", "future", BTC, "sell", "0.020", "65000", is_maker=True)
    assert fill.fee == Decimal("0.26")  # the wallet pays it: 1000000 - 0.26
    state = (await recv(ws))["data"]["clearinghouseState"]
    assert state["marginSummary"] == state["crossMarginSummary"] == {
        "accountValue": "999999.74", "totalNtlPos": "1300.0", "totalRawUsd": "1001299.74", "totalMarginUsed": "130.0"}
    assert state["withdrawable"] == "999869.74" and state["crossMaintenanceMarginUsed"] == "16.25"
    assert state["assetPositions"] == [{"type": "oneWay", "position": {
        "coin": "BTC", "szi": "-0.02", "leverage": {"type": "cross", "value": 10}, "entryPx": "65000.0",
        "positionValue": "1300.0", "unrealizedPnl": "0.0", "returnOnEquity": "0.0", "liquidationPx": "71500.0",
        "marginUsed": "130.0", "maxLeverage": 40,
        "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
    }}]
    await ws.close()


async def test_another_address_gets_an_empty_state_and_no_pushes(sim, http):
    await sim.fill("hyperliquid", "future", BTC, "buy", "0.010", "100")
    ws, _, state = await account_socket(http, sim, OTHER)
    assert [as_values(e)["total"] for e in normalize_account(state, Market.FUTURE)] == ["0.0"]
    await sim.fill("hyperliquid", "future", BTC, "buy", "0.010", "100")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.receive(), 0.3)
    await ws.close()


async def test_unsubscribe_stops_pushes_and_another_dex_is_refused(sim, http):
    ws, _, _ = await account_socket(http, sim)
    message = {"method": "unsubscribe", "subscription": {"type": "clearinghouseState", "user": wallet(sim)}}
    await ws.send_json(message)
    assert await recv(ws) == {"channel": "subscriptionResponse", "data": message}
    await sim.fill("hyperliquid", "future", BTC, "buy", "0.010", "100")
    dex = {"method": "subscribe", "subscription": {"type": "clearinghouseState", "user": wallet(sim), "dex": "xyz"}}
    await ws.send_json(dex)
    error = await recv(ws)  # the first frame after the fill: nothing was pushed
    assert error["channel"] == "error" and error["data"].startswith("Error parsing JSON into valid websocket request")
    await ws.close()


async def test_info_answers_the_state_abstraction_and_refuses_another_dex(sim, http):
    await trade(sim)
    url = sim.endpoints("hyperliquid", "future").rest + "/info"
    checksummed = "0x" + wallet(sim)[2:].upper()  # any case names the same address
    async with http.post(url, json={"type": "clearinghouseState", "user": checksummed}) as r:
        state = await r.json()
    assert_equals_the_account(clearinghouse_events(state, source=Source.REST), sim)
    async with http.post(url, json={"type": "userAbstraction", "user": wallet(sim)}) as r:
        assert await r.json() == "default"
    async with http.post(url, json={"type": "clearinghouseState", "user": wallet(sim), "dex": "xyz"}) as r:
        assert r.status == 422


# ccxt ---------------------------------------------------------------------------------------------------------------
async def test_ccxt_fetch_balance_and_positions_give_the_simulators_account(sim):
    await trade(sim)
    key = sim.connector("hyperliquid", "future").key
    backfiller = Backfiller(key, BACKFILL, sim.credentials_for("hyperliquid"), LIVE,
                            sim.endpoints("hyperliquid", "future"), retry_policy=FAST_REST)
    exchange = backfiller._client([BTC, ETH, "SOL/USDC:USDC"])
    try:
        balance = await exchange.fetch_balance()
        positions = await exchange.fetch_positions()
    finally:
        await backfiller.close()
    account = sim.account("hyperliquid", "future")
    usdc = balance["USDC"]
    assert tuple(Decimal(usdc[k]) for k in ("free", "used", "total")) == sim.venue("hyperliquid").expected_balance(
        account, "USDC")
    assert balance["timestamp"] == balance["info"]["time"]
    assert_equals_the_account(clearinghouse_events(balance["info"], source=Source.REST), sim)
    opened = [p for p in account.positions.values() if p.size]
    assert [p["symbol"] for p in positions] == [p.symbol for p in opened]
    for got, held in zip(positions, opened, strict=True):
        assert (got["side"], Decimal(got["contracts"]), Decimal(got["entryPrice"])) == (
            held.direction, abs(held.size), held.entry_price)
        assert (Decimal(got["markPrice"]), Decimal(got["unrealizedPnl"]), Decimal(got["leverage"])) == (
            held.mark_price, held.unrealized_pnl, held.leverage)
        assert (Decimal(got["liquidationPrice"]), got["marginMode"]) == (held.liquidation_price, "cross")


async def test_ccxt_pro_watch_balance_and_positions_read_the_pushes(sim):
    exchange = ccxt_client(KEY, MARKET_DATA, sim.endpoints("hyperliquid", "future"), [BTC, ETH])
    exchange.walletAddress = wallet(sim)
    try:
        first = await asyncio.wait_for(exchange.watch_balance(), 5)
        assert first["USDC"]["total"] == 1_000_000
        watching = asyncio.gather(exchange.watch_positions(), exchange.watch_balance())  # one push resolves both
        await asyncio.sleep(0.05)
        await sim.fill("hyperliquid", "future", ETH, "sell", "0.5", "3200.1")
        (position,), balance = await asyncio.wait_for(watching, 5)
    finally:
        await exchange.close()
    free, _, total = sim.venue("hyperliquid").expected_balance(sim.account("hyperliquid", "future"), "USDC")
    assert Decimal(str(balance["USDC"]["total"])) == total
    assert Decimal(str(balance["USDC"]["free"])) == free
    assert (position["symbol"], position["side"], Decimal(str(position["contracts"]))) == (ETH, "short", Decimal("0.5"))
