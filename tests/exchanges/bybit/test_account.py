"""Bybit account state: the docs' wallet / position samples read by hand, the decisions account.py documents, and
the simulator's wallet / position pushes and REST answers (through ccxt) held to its SimAccount exactly."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import pytest

from exchanges.bybit.account import ACCOUNT_CHANNELS, account_subscribe, normalize_account, rest_snapshot
from exchanges.bybit.auth import auth_args
from exchanges.bybit.rest import BACKFILL
from exchanges.bybit.stream import LIVE
from exchanges.simulator import Simulator
from framework.account import BalanceUpdate, PositionUpdate
from framework.backfill import Backfiller
from framework.connection import decode_frame
from framework.errors import NormalizeError
from framework.events import ConnectionKey, Market, Source, now_ms
from framework.validate import RowsRejected
from tests.exchanges.conftest import load_samples

SAMPLES = load_samples("bybit.account")
SYMBOL = {Market.SPOT: "BTC/USDT", Market.FUTURE: "BTC/USDT:USDT"}
BALANCE_FIELDS = ("asset", "free", "locked", "total", "timestamp")
POSITION_FIELDS = ("symbol", "symbol_raw", "position_side", "direction", "size", "contracts", "entry_price",
                   "mark_price", "unrealized_pnl", "realized_pnl", "leverage", "liquidation_price", "margin_mode",
                   "timestamp")


# golden ------------------------------------------------------------------------------------------------------------
def _expected(values: dict) -> dict:
    """A sample's expected values: numbers written as text in the JSON become Decimals."""
    return {k: Decimal(v) if isinstance(v, str) and k not in ("asset", "symbol", "symbol_raw", "position_side",
                                                                  "direction", "margin_mode") else v
            for k, v in values.items()}


def _fields(event: BalanceUpdate | PositionUpdate) -> dict:
    names = BALANCE_FIELDS if isinstance(event, BalanceUpdate) else POSITION_FIELDS
    return {name: (value.value if hasattr(value, "value") else value)
            for name in names for value in [getattr(event, name)]}


def _events(sample: dict, market: Market) -> list:
    raw = sample["raw"]
    if sample["kind"] == "rest_wallet":
        return rest_snapshot(market, {"info": raw}, [])
    if sample["kind"] == "rest_positions":
        result = raw["result"]
        empty = {"info": {"result": {"list": []}, "time": raw["time"]}}
        return rest_snapshot(market, empty, [{"info": row} for row in result["list"]], category=result["category"])
    return normalize_account(raw, market)


@pytest.mark.parametrize("sample", SAMPLES, ids=[f"{s['kind']}-{n}" for n, s in enumerate(SAMPLES)])
def test_official_sample_normalizes_to_the_values_written_on_it(sample):
    market = Market.parse(sample["market"])
    events = _events(sample, market)
    assert [_fields(e) for e in events] == [_expected(v) for v in sample["expected"]]
    source = Source.REST if sample["kind"].startswith("rest") else Source.WEBSOCKET
    assert all(e.exchange == "bybit" and e.market is market and e.source is source for e in events)
    assert all(e.raw is not None for e in events)


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s["kind"] == "wallet"], ids=lambda s: s["source"][-40:])
def test_a_wallet_frame_gives_the_same_balances_on_the_spot_connection(sample):
    """One unified account holds spot coins and derivatives margin: both connections read every coin."""
    events = normalize_account(sample["raw"], Market.SPOT)
    assert [_fields(e) for e in events] == [_expected(v) for v in sample["expected"]]
    assert {e.market for e in events} == {Market.SPOT}


def test_position_frames_give_nothing_on_the_spot_connection():
    for sample in (s for s in SAMPLES if s["kind"] == "position"):
        assert normalize_account(sample["raw"], Market.SPOT) == []


# decisions -----------------------------------------------------------------------------------------------------------
def _wallet(**coin) -> dict:
    row = {"coin": "USDT", "walletBalance": "106.03036732", "availableToWithdraw": "", "locked": "1.5",
           "totalOrderIM": "7.5", "totalPositionIM": "11.25", "equity": "4.93036732", "unrealisedPnl": "-101.1"}
    row.update(coin)
    return {"id": "1", "topic": "wallet", "creationTime": 1700034722104,
            "data": [{"accountType": "UNIFIED", "coin": [row]}]}


def _position(**fields) -> dict:
    row = {"category": "linear", "symbol": "BTCUSDT", "positionIdx": 0, "side": "Buy", "size": "0.25",
           "entryPrice": "65000.5", "markPrice": "65100", "unrealisedPnl": "24.875", "cumRealisedPnl": "-3",
           "leverage": "10", "liqPrice": "58500.45", "tradeMode": 0, "updatedTime": "1700034722100"}
    row.update(fields)
    return {"id": "1", "topic": "position", "creationTime": 1700034722104, "data": [row]}


def test_without_available_to_withdraw_free_is_wallet_less_locked_and_margin():
    """UTA rows send availableToWithdraw "" since 9 Jan 2025: free = walletBalance − locked − order IM − position
    IM (ccxt's fetch_balance reading); the total is the wallet balance, not the equity (unrealised PnL apart)."""
    (event,) = normalize_account(_wallet(), Market.FUTURE)
    assert (event.asset, event.total, event.locked, event.free) == (
        "USDT", Decimal("106.03036732"), Decimal("20.25"), Decimal("85.78036732"))
    assert event.timestamp == 1700034722104 and not event.is_delta


def test_portfolio_margin_empty_margin_fields_count_zero_and_a_classic_free_is_read():
    (event,) = normalize_account(_wallet(totalOrderIM="", totalPositionIM="", locked=""), Market.FUTURE)
    assert (event.free, event.locked) == (Decimal("106.03036732"), 0)
    (event,) = normalize_account(_wallet(availableToWithdraw=None, free="100"), Market.SPOT)
    assert (event.free, event.locked, event.total) == (Decimal("100"), Decimal("6.03036732"), Decimal("106.03036732"))


def test_hedge_legs_empty_sides_options_and_categorised_topics():
    (long_leg,) = normalize_account(_position(positionIdx=1), Market.FUTURE)
    assert (long_leg.position_side.value, long_leg.direction.value, long_leg.signed_size) == ("long", "long",
                                                                                               Decimal("0.25"))
    (short_leg,) = normalize_account(_position(positionIdx=2, side="Sell", size="0.1"), Market.FUTURE)
    assert (short_leg.position_side.value, short_leg.signed_size) == ("short", Decimal("-0.1"))
    (classic,) = normalize_account(_position(side="None", size="0"), Market.FUTURE)
    assert classic.direction.value == "flat"
    frame = _position()
    frame["topic"] = "position.linear"
    frame["data"].append({**frame["data"][0], "category": "option", "symbol": "BTC-27DEC24-60000-C"})
    (event,) = normalize_account(frame, Market.FUTURE)  # the option row is left out
    assert (event.symbol, event.liquidation_price, event.margin_mode) == ("BTC/USDT:USDT", Decimal("58500.45"), None)
    (isolated,) = normalize_account(_position(tradeMode=1, category="inverse", symbol="BTCUSD"), Market.FUTURE)
    assert (isolated.margin_mode, isolated.symbol) == ("isolated", "BTC/USD:BTC")


@pytest.mark.parametrize("frame", [
    {"op": "pong", "args": ["1"]}, {"success": True, "op": "subscribe"}, {"topic": "order", "data": []},
    {"topic": "execution.fast", "data": [{}]}, {"topic": "greeks", "data": [{}]}, [], "pong", None,
])
def test_other_frames_give_nothing(frame):
    assert normalize_account(frame, Market.FUTURE) == []


def test_account_subscribe_asks_the_all_in_one_topics_of_the_market():
    assert ACCOUNT_CHANNELS == {Market.SPOT: ("wallet",), Market.FUTURE: ("wallet", "position")}
    assert account_subscribe(Market.FUTURE, 7) == [{"req_id": "account-7", "op": "subscribe",
                                                    "args": ["wallet", "position"]}]
    assert account_subscribe(Market.SPOT, 7)[0]["args"] == ["wallet"]


# malformed ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("frame", [
    {"topic": "wallet", "creationTime": 1, "data": {}},
    {"topic": "wallet", "creationTime": 1, "data": [{"coin": {}}]},
    {"topic": "wallet", "data": [{"coin": []}]},
    {"topic": "wallet", "creationTime": 1.5, "data": [{"coin": []}]},
    {"topic": "position", "creationTime": 1, "data": "x"},
])
def test_a_malformed_frame_is_rejected_whole(frame):
    with pytest.raises(NormalizeError) as caught:
        normalize_account(frame, Market.FUTURE)
    assert not isinstance(caught.value, RowsRejected) and caught.value.raw is frame


@pytest.mark.parametrize("coin", [
    {"walletBalance": None}, {"walletBalance": ""}, {"walletBalance": "abc"}, {"walletBalance": 1.5},
    {"coin": ""}, {"availableToWithdraw": "NaN"}, {"locked": "x"},
])
def test_a_malformed_coin_is_its_own_dead_letter(coin):
    frame = _wallet(**coin)
    good = {"coin": "BTC", "walletBalance": "1", "availableToWithdraw": "1"}
    frame["data"][0]["coin"].append(good)
    with pytest.raises(RowsRejected) as caught:
        normalize_account(frame, Market.FUTURE)
    assert [e.asset for e in caught.value.events] == ["BTC"]
    ((alone, reason),) = caught.value.rejected
    assert alone["data"][0]["coin"] == [frame["data"][0]["coin"][0]] and "wallet coin" in reason


@pytest.mark.parametrize("fields", [
    {"size": "-1"}, {"size": ""}, {"side": "Long"}, {"side": ""}, {"positionIdx": "0"}, {"positionIdx": 3},
    {"positionIdx": 2}, {"updatedTime": ""}, {"updatedTime": None}, {"symbol": ""}, {"category": "spot"},
    {"category": "inverse", "symbol": "BTCUSDT"}, {"markPrice": "1e"}, {"leverage": 10.0},
])
def test_a_malformed_position_row_is_its_own_dead_letter(fields):
    frame = _position(**fields)
    frame["data"].append(_position(symbol="ETHUSDT")["data"][0])
    with pytest.raises(RowsRejected) as caught:
        normalize_account(frame, Market.FUTURE)
    assert [e.symbol for e in caught.value.events] == ["ETH/USDT:USDT"]
    ((alone, reason),) = caught.value.rejected
    assert alone["data"] == [frame["data"][0]] and "position row" in reason


# the simulator --------------------------------------------------------------------------------------------------------
@pytest.fixture
async def sim():
    async with Simulator(exchanges=["bybit"], seed=7) as simulator:
        yield simulator


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def _subscribed(http, sim: Simulator, market: Market, *topics: str):
    creds = sim.credentials_for("bybit")
    ws = await http.ws_connect(sim.endpoints("bybit", market).ws)
    await ws.send_json({"op": "auth", "args": auth_args(creds.api_key, creds.secret, now_ms())})
    await ws.send_json({"req_id": "s1", "op": "subscribe", "args": list(topics)})
    for _ in range(2):
        reply = decode_frame((await asyncio.wait_for(ws.receive(), 3)).data)
        assert reply["success"] is True, reply
    return ws


async def _frames(ws, quiet: float = 0.3) -> list[dict]:
    """Every frame until the socket has been quiet a while (the simulator sends before `fill` returns)."""
    frames = []
    while True:
        try:
            msg = await asyncio.wait_for(ws.receive(), quiet)
        except TimeoutError:
            return frames
        frames.append(decode_frame(msg.data))


def _latest(events: list) -> dict:
    """The last state per asset / symbol (what a store keeps)."""
    return {e.state_key[3:]: e for e in events}


def _sim_state(sim: Simulator, market: Market) -> dict:
    account = sim.account("bybit", market)
    state: dict = {(a,): (b.free, b.locked, b.total) for a, b in account.balances.items()}
    for p in account.positions.values():
        state[(p.symbol, "net")] = (p.direction, abs(p.size), p.entry_price, p.mark_price, p.unrealized_pnl,
                                    p.realized_pnl, p.leverage, p.liquidation_price)
    return state


def _event_state(events) -> dict:
    state: dict = {}
    for key, e in _latest(events).items():
        if isinstance(e, BalanceUpdate):
            state[key] = (e.free, e.locked, e.total)
        else:
            state[key] = (e.direction.value, e.size, e.entry_price, e.mark_price, e.unrealized_pnl, e.realized_pnl,
                          e.leverage, e.liquidation_price)
    return state


async def _trade(sim: Simulator, market: Market) -> None:
    """Futures: open, add, reduce, flip and add to the short, a second symbol (9 fills; prices whose averages are
    exact, and a last price off the entry: unrealized PnL not 0). Spot: buys, sells and a resting order."""
    symbol = SYMBOL[market]
    await sim.fill("bybit", market, symbol, "buy", "0.030", "65000.5", parts=2)
    await sim.fill("bybit", market, symbol, "buy", "0.030", "65210.5")
    await sim.fill("bybit", market, symbol, "sell", "0.020" if market is Market.SPOT else "0.070", "65400.1", parts=3)
    if market is Market.FUTURE:
        await sim.fill("bybit", market, symbol, "sell", "0.010", "65300.3")
        await sim.fill("bybit", market, "ETH/USDT:USDT", "sell", "1.5", "3120.37")
        await sim.fill("bybit", market, "ETH/USDT:USDT", "sell", "1.5", "3100.37")
    await sim.place_order("bybit", market, symbol, "buy", "0.01", "64000")


@pytest.mark.parametrize("market", [Market.SPOT, Market.FUTURE], ids=["spot", "future"])
async def test_wallet_and_position_pushes_equal_the_simulator_account(sim, http, market):
    ws = await _subscribed(http, sim, market, "order", "execution", "wallet", "position")
    await _trade(sim, market)
    frames = await _frames(ws)
    await ws.close()
    events = [e for frame in frames for e in normalize_account(frame, market)]
    assert _event_state(events) == _sim_state(sim, market)
    account = sim.account("bybit", market)
    latest = _latest(events)
    assert all(latest[(a,)].timestamp <= account.updated for a in account.balances)
    assert all(latest[(p.symbol, "net")].timestamp == p.updated for p in account.positions.values())
    topics = [f["topic"] for f in frames if f.get("topic") in ("wallet", "position")]
    assert topics.count("position") == (9 if market is Market.FUTURE else 0)  # one per fill
    wallet = next(f for f in frames if f.get("topic") == "wallet")
    assert wallet["id"].startswith("533285") and wallet["data"][0]["accountType"] == "UNIFIED"
    assert all(c["availableToWithdraw"] == "" for f in frames if f.get("topic") == "wallet"
               for c in f["data"][0]["coin"])


async def test_categorised_position_topic_and_an_unsubscribed_socket(sim, http):
    categorised = await _subscribed(http, sim, Market.FUTURE, "position.linear")
    quiet = await _subscribed(http, sim, Market.FUTURE, "order")
    await sim.fill("bybit", "future", "BTC/USDT:USDT", "sell", "0.5", "64999.9")
    (frame,) = await _frames(categorised)
    assert frame["topic"] == "position.linear" and frame["data"][0]["category"] == "linear"
    assert [f["topic"] for f in await _frames(quiet, 0.2)] == ["order", "order"]  # New, Filled
    await categorised.close()
    await quiet.close()


def _client(sim: Simulator, market: Market):
    """ccxt as the framework builds it (framework/backfill.py): credentials, URLs on the simulator, offline markets,
    number = str."""
    key = ConnectionKey(exchange="bybit", market=market)
    backfiller = Backfiller(key, BACKFILL, sim.credentials_for("bybit"), LIVE, sim.endpoints("bybit", market))
    return backfiller._client([SYMBOL[market], "ETH/USDT:USDT"] if market is Market.FUTURE else [SYMBOL[market]])


@pytest.mark.parametrize("market", [Market.SPOT, Market.FUTURE], ids=["spot", "future"])
async def test_ccxt_fetch_balance_and_positions_return_the_simulator_account(sim, market):
    await _trade(sim, market)
    exchange = _client(sim, market)
    try:
        async with asyncio.timeout(10):
            balance = await exchange.fetch_balance()
            positions = await exchange.fetch_positions() if market is Market.FUTURE else []
    finally:
        await exchange.close()
    account = sim.account("bybit", market)
    assert {a: (Decimal(balance[a]["free"]), Decimal(balance[a]["used"]), Decimal(balance[a]["total"]))
            for a in account.balances} == {a: (b.free, b.locked, b.total) for a, b in account.balances.items()}
    open_positions = {p.symbol: p for p in account.positions.values() if p.size}
    assert {p["symbol"] for p in positions} == set(open_positions)
    for row in positions:
        p = open_positions[row["symbol"]]
        assert (row["side"], Decimal(row["contracts"]), Decimal(row["entryPrice"]), Decimal(row["markPrice"]),
                Decimal(row["unrealizedPnl"]), Decimal(row["leverage"]), Decimal(row["liquidationPrice"])) == (
            p.direction, abs(p.size), p.entry_price, p.mark_price, p.unrealized_pnl, p.leverage, p.liquidation_price)
        assert row["lastUpdateTimestamp"] == p.updated and row["hedged"] is False
    # The same answers read as the stream's rows are: the account exactly (flat positions are not listed).
    events = rest_snapshot(market, balance, positions)
    assert {e.source for e in events} == {Source.REST}
    expected = {k: v for k, v in _sim_state(sim, market).items() if len(k) == 1 or k[0] in open_positions}
    assert _event_state(events) == expected


async def _get(http, sim: Simulator, path: str, params: dict, api_key: str | None = None) -> dict:
    creds = sim.credentials_for("bybit")
    query, ts, key = urlencode(params), str(now_ms()), api_key or creds.api_key
    signature = hmac.new(creds.secret.encode(), f"{ts}{key}5000{query}".encode(), hashlib.sha256).hexdigest()
    headers = {"X-BAPI-API-KEY": key, "X-BAPI-TIMESTAMP": ts, "X-BAPI-RECV-WINDOW": "5000", "X-BAPI-SIGN": signature}
    async with http.get(f"{sim.endpoints('bybit', 'future').rest}{path}?{query}", headers=headers) as r:
        return await r.json()


async def test_rest_account_endpoints_check_signatures_and_parameters(sim, http):
    for path in ("/v5/account/wallet-balance", "/v5/position/list", "/v5/account/info", "/v5/user/query-api"):
        assert (await _get(http, sim, path, {"category": "linear"}, api_key="nope"))["retCode"] == 10003
    assert (await _get(http, sim, "/v5/account/wallet-balance", {"accountType": "SPOT"}))["retCode"] == 10001
    assert (await _get(http, sim, "/v5/position/list", {"category": "spot"}))["retCode"] == 10001
    assert (await _get(http, sim, "/v5/position/list", {"category": "linear"}))["retCode"] == 10001
    # A symbol asked for by name is listed even flat; a coin asked by name has its starting balance.
    flat = await _get(http, sim, "/v5/position/list", {"category": "linear", "symbol": "ETHUSDT"})
    (row,) = flat["result"]["list"]
    assert (row["symbol"], row["side"], row["size"], row["avgPrice"], row["seq"]) == ("ETHUSDT", "", "0", "0", -1)
    wallet = await _get(http, sim, "/v5/account/wallet-balance", {"accountType": "UNIFIED", "coin": "USDC"})
    (coin,) = wallet["result"]["list"][0]["coin"]
    assert (coin["coin"], coin["walletBalance"]) == ("USDC", "1000000")
    info = await _get(http, sim, "/v5/account/info", {})
    assert (info["result"]["unifiedMarginStatus"], info["result"]["marginMode"]) == (6, "ISOLATED_MARGIN")


async def test_position_list_pages_by_cursor(sim, http):
    for base in ("BTC", "ETH", "SOL"):
        await sim.fill("bybit", "future", f"{base}/USDT:USDT", "buy", "1", "100")
    params = {"category": "linear", "settleCoin": "USDT", "limit": "2"}
    first = (await _get(http, sim, "/v5/position/list", params))["result"]
    second = (await _get(http, sim, "/v5/position/list", {**params, "cursor": first["nextPageCursor"]}))["result"]
    assert [r["symbol"] for r in first["list"]] == ["BTCUSDT", "ETHUSDT"] and second["nextPageCursor"] == ""
    assert [r["symbol"] for r in second["list"]] == ["SOLUSDT"]
    usdc = await _get(http, sim, "/v5/position/list", {"category": "linear", "settleCoin": "USDC"})
    assert usdc["result"]["list"] == []


def test_samples_are_not_changed_by_normalizing():
    before = copy.deepcopy(SAMPLES)
    for sample in SAMPLES:
        _events(sample, Market.FUTURE)
    assert SAMPLES == before
