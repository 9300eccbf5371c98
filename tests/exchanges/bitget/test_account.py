"""Bitget account channels: golden pushes and REST rows → the values read off them by hand; junk → [] or
NormalizeError; the simulator's `account` / `positions` pushes and REST answers (straight and through ccxt)
equal its account exactly."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
from decimal import Decimal

import aiohttp
import pytest

from exchanges import get_exchange
from exchanges.bitget.account import (
    ACCOUNT_CHANNELS,
    account_subscribe,
    normalize_account,
    snapshot_balances,
    snapshot_positions,
)
from exchanges.bitget.auth import login_message
from exchanges.bitget.rest import BACKFILL
from exchanges.simulator import Simulator
from framework.account import BalanceUpdate, Direction, PositionSide, PositionUpdate
from framework.backfill import Backfiller
from framework.connection import decode_frame
from framework.errors import NormalizeError
from framework.events import Market, Source, now_ms
from framework.retry import rest_call_policy
from tests.exchanges.conftest import DATA

SAMPLES = json.loads((DATA / "bitget.account.samples.json").read_text())
INST_TYPE = {Market.SPOT: "SPOT", Market.FUTURE: "USDT-FUTURES"}
MARKETS = [pytest.param(Market.SPOT, id="spot"), pytest.param(Market.FUTURE, id="future")]
FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=3)


# golden ---------------------------------------------------------------------------------------------------------
def _events_of(sample: dict) -> list:
    market = Market.parse(sample["market"])
    channel, raw = sample["channel"], sample["raw"]
    if channel.endswith("/all-position"):
        return snapshot_positions(raw["data"], market, raw["requestTime"])
    if channel.startswith("rest:"):
        return snapshot_balances(raw["data"], market, raw["requestTime"])
    return normalize_account(raw, market)


def _expected(sample: dict) -> list:
    market, rest = sample["market"], sample["channel"].startswith("rest:")
    source = Source.REST if rest else Source.WEBSOCKET
    events = []
    for e in sample["expected"]:
        fields = {k: v for k, v in e.items() if k != "kind"}
        cls = BalanceUpdate if e["kind"] == "balance" else PositionUpdate
        events.append(cls(exchange="bitget", market=market, source=source, **fields))
    return events


@pytest.mark.parametrize("sample", SAMPLES, ids=[f"{s['market']}-{s['channel']}-{i}" for i, s in enumerate(SAMPLES)])
def test_each_documented_sample_normalizes_to_the_values_written_on_it(sample):
    events = _events_of(sample)
    assert events == _expected(sample)
    for event in events:  # exact: the wire's digits, not a float's
        for name in ("free", "locked", "total", "size", "entry_price", "unrealized_pnl", "liquidation_price"):
            value = getattr(event, name, None)
            assert value is None or isinstance(value, Decimal)
        assert event.source is (Source.REST if sample["channel"].startswith("rest:") else Source.WEBSOCKET)


def _sample(source_part: str) -> dict:
    return copy.deepcopy(next(s for s in SAMPLES if source_part in s["source"]))


def test_a_position_the_snapshot_leaves_out_comes_back_flat_at_the_push_time():
    opened = normalize_account(_sample("negative liquidationPrice")["raw"], Market.FUTURE)
    empty = _sample("after the last one closed")["raw"]
    assert normalize_account(empty, Market.FUTURE) == []
    [flat] = normalize_account(empty, Market.FUTURE, held=opened)
    assert (flat.symbol, flat.symbol_raw, flat.position_side, flat.direction) == (
        "XRP/USDT:USDT", "XRPUSDT", PositionSide.NET, Direction.FLAT)
    assert flat.size == 0 and flat.contracts == 0 and flat.timestamp == 1741850567434
    # Still listed: no flat; already flat, or another venue's: nothing to close.
    assert normalize_account(_sample("negative liquidationPrice")["raw"], Market.FUTURE, held=opened) == opened
    assert normalize_account(empty, Market.FUTURE, held=[flat]) == []


def test_hedge_legs_close_one_at_a_time():
    both = _sample("Position Channel")["raw"]
    short = both["data"][0]
    both["data"].append(short | {"posId": "2", "holdSide": "long"})
    legs = normalize_account(both, Market.FUTURE)
    assert [(p.position_side, p.direction) for p in legs] == [(PositionSide.SHORT, Direction.SHORT),
                                                              (PositionSide.LONG, Direction.LONG)]
    only_short = _sample("Position Channel")["raw"]
    events = normalize_account(only_short, Market.FUTURE, held=legs)
    assert [(p.position_side, p.direction) for p in events] == [(PositionSide.SHORT, Direction.SHORT),
                                                                (PositionSide.LONG, Direction.FLAT)]


@pytest.mark.parametrize("frame, market", [
    ({"event": "subscribe", "arg": {"instType": "SPOT", "channel": "account", "coin": "default"}}, Market.SPOT),
    ({"event": "error", "code": 30001, "msg": "doesn't exist"}, Market.FUTURE),
    ("pong", Market.SPOT),
    ({"action": "snapshot", "arg": {"instType": "SPOT", "channel": "orders", "instId": "default"}, "data": []},
     Market.SPOT),
    ({"action": "snapshot", "arg": {"instType": "SPOT", "channel": ["account"]}, "data": []}, Market.SPOT),
    ({"action": "snapshot", "arg": "account", "data": []}, Market.SPOT),
    # another product's push on this connection is not this market's account
    ({"action": "snapshot", "arg": {"instType": "USDT-FUTURES", "channel": "account", "coin": "default"},
      "data": [{"coin": "USDT"}], "ts": 1}, Market.SPOT),
    ({"action": "snapshot", "arg": {"instType": "MARGIN", "channel": "account", "coin": "default"},
      "data": [{"coin": "USDT"}], "ts": 1}, Market.SPOT),
    ({"action": "snapshot", "arg": {"instType": "SPOT", "channel": "positions", "instId": "default"},
      "data": [{}], "ts": 1}, Market.SPOT),
])
def test_frames_that_are_not_this_markets_account_state_give_nothing(frame, market):
    assert normalize_account(frame, market) == []


def _with(source_part: str, index: int = 0, **changes) -> dict:
    sample = _sample(source_part)
    row = sample["raw"]["data"][index]
    for key, value in changes.items():
        if value is KeyError:
            del row[key]
        else:
            row[key] = value
    return sample


@pytest.mark.parametrize("sample", [
    _with("spot \"Account Channel\"", available=KeyError),
    _with("spot \"Account Channel\"", frozen=1.5),  # a float is not the wire's text
    _with("spot \"Account Channel\"", coin=""),
    {"market": "spot",  # neither the row's uTime nor the push's ts: no time at all
     "raw": {"action": "snapshot", "arg": {"instType": "SPOT", "channel": "account", "coin": "default"},
             "data": [{"coin": "USDT", "available": "1", "frozen": "0"}]}},
    _with("union-margin", maxOpenPosAvailable=KeyError),
    _with("union-margin", available="abc"),
    _with("Position Channel", holdSide="net"),
    _with("Position Channel", total="-0.1"),
    _with("Position Channel", posMode="both"),
    _with("Position Channel", marginMode="portfolio"),
    _with("Position Channel", openPriceAvg=KeyError),
    _with("Position Channel", instId=KeyError),
])
def test_malformed_account_frames_raise_normalize_error(sample):
    with pytest.raises(NormalizeError) as info:
        normalize_account(sample["raw"], Market.parse(sample["market"]))
    assert info.value.raw is sample["raw"]


def test_malformed_shapes_raise_normalize_error():
    spot = _sample("spot \"Account Channel\"")["raw"]
    with pytest.raises(NormalizeError):
        normalize_account(spot | {"data": {"coin": "USDT"}}, Market.SPOT)
    with pytest.raises(NormalizeError):
        normalize_account(spot | {"data": ["USDT"]}, Market.SPOT)
    futures = _sample("union-margin")["raw"]
    with pytest.raises(NormalizeError):  # futures rows have no time: the push's ts is needed
        normalize_account({k: v for k, v in futures.items() if k != "ts"}, Market.FUTURE)
    with pytest.raises(NormalizeError):
        snapshot_balances({"coin": "USDT"}, Market.SPOT, 1)
    with pytest.raises(NormalizeError):
        snapshot_positions([{"symbol": "BTCUSDT"}], Market.FUTURE, 1)


def test_account_subscribe_names_the_account_scope_coin_and_positions_on_futures_only():
    assert account_subscribe(Market.SPOT) == {
        "op": "subscribe", "args": [{"instType": "SPOT", "channel": "account", "coin": "default"}]}
    assert account_subscribe(Market.FUTURE) == {"op": "subscribe", "args": [
        {"instType": "USDT-FUTURES", "channel": "account", "coin": "default"},
        {"instType": "USDT-FUTURES", "channel": "positions", "instId": "default"}]}
    assert ACCOUNT_CHANNELS == {Market.SPOT: ("account",), Market.FUTURE: ("account", "positions")}


# the simulator over a real socket ---------------------------------------------------------------------------------
@pytest.fixture
async def sim():
    async with Simulator(exchanges=["bitget"], seed=7) as simulator:
        yield simulator


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def recv(ws, timeout: float = 3.0):
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return decode_frame(msg.data)


async def drain(ws, quiet: float = 0.25) -> list:
    """Every frame until the socket has been quiet for `quiet` seconds."""
    frames = []
    while True:
        try:
            frames.append(await recv(ws, quiet))
        except TimeoutError:
            return frames


async def logged_in(http, sim: Simulator, market: Market):
    creds = sim.credentials_for("bitget")
    ws = await http.ws_connect(f"{sim.endpoints('bitget', market).ws}/v2/ws/private")
    await ws.send_json(login_message(creds.api_key, creds.secret, creds.passphrase, now_ms()))
    assert (await recv(ws))["event"] == "login"
    return ws


async def test_account_channels_are_acked_with_their_scope_and_start_with_a_snapshot(sim, http):
    spot = await logged_in(http, sim, Market.SPOT)
    await spot.send_json(account_subscribe(Market.SPOT))
    assert await recv(spot) == {"event": "subscribe", "arg": {"instType": "SPOT", "channel": "account",
                                                              "coin": "default"}}
    assert (await recv(spot))["data"] == []  # nothing traded yet: no coin
    futures = await logged_in(http, sim, Market.FUTURE)
    await futures.send_json(account_subscribe(Market.FUTURE))
    frames = [await recv(futures) for _ in range(4)]
    assert [f.get("event") for f in frames] == ["subscribe", None, "subscribe", None]
    [wallet] = normalize_account(frames[1], Market.FUTURE)  # the USDT wallet is there untouched
    assert (wallet.asset, wallet.free, wallet.locked, wallet.total) == ("USDT", 1_000_000, 0, 1_000_000)
    assert frames[3]["arg"] == {"instType": "USDT-FUTURES", "channel": "positions", "instId": "default"}
    assert frames[3]["data"] == []


@pytest.mark.parametrize("arg, code", [
    ({"instType": "SPOT", "channel": "positions", "instId": "default"}, 30001),
    ({"instType": "USDT-FUTURES", "channel": "account", "coin": "BTC"}, 30001),
    ({"instType": "MARGIN", "channel": "account", "coin": "default"}, 30001),
])
async def test_account_channels_bitget_does_not_list_are_refused(sim, http, arg, code):
    ws = await logged_in(http, sim, Market.FUTURE)
    await ws.send_json({"op": "subscribe", "args": [arg]})
    frame = await recv(ws)
    assert frame["event"] == "error" and frame["code"] == code and "doesn't exist" in frame["msg"]
    await ws.send_json(account_subscribe(Market.FUTURE))  # the socket goes on
    assert (await recv(ws))["event"] == "subscribe"


def _fold(views: dict, events: list) -> None:
    for event in events:
        key = event.asset if isinstance(event, BalanceUpdate) else (event.symbol, event.position_side)
        views[key] = event


def _assert_balances_equal(views: dict, account) -> None:
    assert account.balances and set(account.balances) <= set(views)
    for asset, balance in account.balances.items():
        view = views[asset]
        assert (view.free, view.locked, view.total) == (balance.free, balance.locked, balance.total), asset


def _assert_positions_equal(views: dict, account) -> None:
    for symbol, position in account.positions.items():
        view = views[(symbol, PositionSide.NET)]
        assert view.direction.value == position.direction and view.size == abs(position.size), symbol
        if position.size:
            assert (view.entry_price, view.mark_price, view.unrealized_pnl, view.realized_pnl, view.leverage,
                    view.liquidation_price, view.margin_mode) == (
                position.entry_price, position.mark_price, position.unrealized_pnl, position.realized_pnl,
                position.leverage, position.liquidation_price, "cross"), symbol
            assert view.timestamp == position.updated


async def test_spot_pushes_after_orders_and_fills_equal_the_simulators_account(sim, http):
    ws = await logged_in(http, sim, Market.SPOT)
    await ws.send_json(account_subscribe(Market.SPOT))
    await drain(ws)
    await sim.fill("bitget", "spot", "BTC/USDT", "buy", "0.25", "64000.5", parts=2)
    await sim.fill("bitget", "spot", "ETH/USDT", "sell", "1.5", "3100.25", parts=3)
    await sim.place_order("bitget", "spot", "BTC/USDT", "buy", "0.1", "63000")  # rests: its cost is frozen
    await sim.place_order("bitget", "spot", "ETH/USDT", "sell", "0.5", "3200")
    views: dict = {}
    for frame in await drain(ws):
        _fold(views, normalize_account(frame, Market.SPOT))
    account = sim.account("bitget", "spot")
    _assert_balances_equal(views, account)
    assert set(views) == {"BTC", "ETH", "USDT"} and views["USDT"].locked == Decimal("6300")
    assert views["ETH"].locked == Decimal("0.5")


async def test_futures_pushes_after_fills_equal_the_simulators_account_closed_positions_flat(sim, http):
    ws = await logged_in(http, sim, Market.FUTURE)
    await ws.send_json(account_subscribe(Market.FUTURE))
    views: dict = {}
    fills = [("BTC/USDT:USDT", "buy", "0.3", "100"), ("BTC/USDT:USDT", "buy", "0.1", "104"),
             ("ETH/USDT:USDT", "sell", "2", "50.5"), ("BTC/USDT:USDT", "sell", "0.4", "102"),  # BTC closed
             ("SOL/USDT:USDT", "buy", "4", "20"), ("SOL/USDT:USDT", "sell", "6", "25")]  # SOL flips short
    for symbol, side, amount, price in fills:
        await sim.fill("bitget", "future", symbol, side, amount, price)
        for frame in await drain(ws, 0.15):
            _fold(views, normalize_account(frame, Market.FUTURE, held=list(views.values())))
    account = sim.account("bitget", "future")
    _assert_balances_equal(views, account)
    _assert_positions_equal(views, account)
    assert views[("BTC/USDT:USDT", PositionSide.NET)].direction is Direction.FLAT
    assert views[("SOL/USDT:USDT", PositionSide.NET)].direction is Direction.SHORT
    assert views["USDT"].locked == Decimal("15.1")  # margin: ETH 2 × 50.5 / 10 + SOL 2 × 25 / 10


# REST, straight and through ccxt ----------------------------------------------------------------------------------
def _headers(creds, path: str, query: str) -> dict:
    ts = str(now_ms())
    payload = f"{ts}GET{path}{'?' + query if query else ''}"
    sign = base64.b64encode(hmac.new(creds.secret.encode(), payload.encode(), hashlib.sha256).digest()).decode()
    return {"ACCESS-KEY": creds.api_key, "ACCESS-SIGN": sign, "ACCESS-TIMESTAMP": ts,
            "ACCESS-PASSPHRASE": creds.passphrase}


async def _get(http, sim: Simulator, market: Market, path: str, query: str = "", signed: bool = True):
    headers = _headers(sim.credentials_for("bitget"), path, query) if signed else {}
    url = f"{sim.endpoints('bitget', market).rest}{path}{'?' + query if query else ''}"
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json()


async def test_rest_account_endpoints_check_signature_and_product_type(sim, http):
    status, body = await _get(http, sim, Market.SPOT, "/api/v2/spot/account/assets", signed=False)
    assert status == 400 and body["code"] == "40001"
    for path in ("/api/v2/mix/account/accounts", "/api/v2/mix/position/all-position"):
        status, body = await _get(http, sim, Market.FUTURE, path)
        assert status == 400 and body["code"] == "40019"
        status, body = await _get(http, sim, Market.FUTURE, path, "productType=SPOT")
        assert status == 400 and body["code"] == "40020"
        status, body = await _get(http, sim, Market.FUTURE, path, "productType=COIN-FUTURES")
        assert body["code"] == "00000" and body["data"] == []


async def test_spot_assets_hold_only_by_default_all_or_one_coin(sim, http):
    await sim.fill("bitget", "spot", "BTC/USDT", "sell", "100", "64000")  # every BTC sold: 0 left
    path = "/api/v2/spot/account/assets"
    _, held = await _get(http, sim, Market.SPOT, path)
    _, everything = await _get(http, sim, Market.SPOT, path, "assetType=all")
    _, one = await _get(http, sim, Market.SPOT, path, "coin=usdt")
    assert [r["coin"] for r in held["data"]] == ["USDT"]
    assert [r["coin"] for r in everything["data"]] == ["BTC", "USDT"]
    assert one["data"] == held["data"]


def _client(sim: Simulator, market: Market, symbols: list[str]) -> tuple[Backfiller, object]:
    """ccxt as the framework builds it: credentials, URLs on the simulator, offline markets, number = str."""
    bf = Backfiller(sim.connector("bitget", market).key, BACKFILL, sim.credentials_for("bitget"),
                    get_exchange("bitget").stream.endpoints(market), sim.endpoints("bitget", market),
                    retry_policy=FAST_REST)
    return bf, bf._client(symbols)


async def test_ccxt_fetch_balance_on_spot_reads_the_simulators_coins(sim):
    await sim.fill("bitget", "spot", "BTC/USDT", "buy", "0.25", "64000.5", parts=2)
    await sim.place_order("bitget", "spot", "BTC/USDT", "sell", "0.1", "65000")
    bf, exchange = _client(sim, Market.SPOT, ["BTC/USDT"])
    try:
        balance = await asyncio.wait_for(exchange.fetch_balance(), 10)
    finally:
        await bf.close()
    account = sim.account("bitget", "spot")
    for asset, held in account.balances.items():
        got = balance[asset]
        assert (Decimal(got["free"]), Decimal(got["used"]), Decimal(got["total"])) == (
            held.free, held.locked, held.total)
    views: dict = {}
    _fold(views, snapshot_balances(balance["info"], Market.SPOT, now_ms()))
    _assert_balances_equal(views, account)


async def test_ccxt_fetch_balance_and_positions_on_futures_read_the_simulators_account(sim):
    for symbol, side, amount, price in [("BTC/USDT:USDT", "buy", "0.3", "100"), ("BTC/USDT:USDT", "buy", "0.1", "104"),
                                        ("ETH/USDT:USDT", "sell", "2", "50.5"), ("SOL/USDT:USDT", "buy", "1", "20"),
                                        ("SOL/USDT:USDT", "sell", "1", "21")]:
        await sim.fill("bitget", "future", symbol, side, amount, price)
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
    bf, exchange = _client(sim, Market.FUTURE, symbols)
    try:
        balance = await asyncio.wait_for(exchange.fetch_balance(), 10)
        positions = await asyncio.wait_for(exchange.fetch_positions(), 10)
    finally:
        await bf.close()
    account = sim.account("bitget", "future")
    wallet = account.balances["USDT"]
    pnl = sum(p.unrealized_pnl for p in account.positions.values())
    assert pnl == Decimal("1.2")  # BTC (104 − 101) × 0.4 at its last fill's price; ETH none yet; SOL closed
    # ccxt: free = maxTransferOut, total = accountEquity (unrealized PnL included)
    assert Decimal(balance["USDT"]["free"]) == wallet.free
    assert Decimal(balance["USDT"]["total"]) == wallet.total + pnl
    views: dict = {}
    _fold(views, snapshot_balances(balance["info"], Market.FUTURE, now_ms()))
    _assert_balances_equal(views, account)
    open_positions = {s: p for s, p in account.positions.items() if p.size}
    assert sorted(p["symbol"] for p in positions) == sorted(open_positions) == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    for got in positions:
        held = open_positions[got["symbol"]]
        assert got["side"] == held.direction and Decimal(got["contracts"]) == abs(held.size)
        assert Decimal(got["entryPrice"]) == held.entry_price and Decimal(got["markPrice"]) == held.mark_price
        assert Decimal(got["unrealizedPnl"]) == held.unrealized_pnl and Decimal(got["leverage"]) == held.leverage
        assert Decimal(got["liquidationPrice"]) == held.liquidation_price and got["marginMode"] == "cross"
    snapshot = snapshot_positions([p["info"] for p in positions], Market.FUTURE, now_ms())
    views = {}
    _fold(views, snapshot)
    assert all(p.source is Source.REST for p in snapshot)
    _assert_positions_equal(views, _only_open(account))


def _only_open(account):
    """The account with its flat positions left out (a snapshot lists open positions only)."""
    copied = copy.copy(account)
    copied.positions = {s: p for s, p in account.positions.items() if p.size}
    return copied
