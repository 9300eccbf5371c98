"""Binance account channels: the docs' samples read by hand, malformed frames, the simulator's account pushes read
back over real sockets, and ccxt's fetch_balance / fetch_positions against the simulator's REST endpoints."""

from __future__ import annotations

import asyncio
import copy
import json
from decimal import Decimal

import aiohttp
import pytest

from exchanges.binance.account import (
    ACCOUNT_CHANNELS,
    account_subscribe_frames,
    normalize_account,
    snapshot_events,
)
from exchanges.binance.auth import API_KEY_HEADER
from exchanges.binance.rest import BACKFILL
from exchanges.binance.stream import LIVE_ENDPOINTS, handshake
from exchanges.simulator import Simulator
from framework.account import BalanceUpdate, Direction, PositionSide, PositionUpdate
from framework.backfill import Backfiller
from framework.errors import NormalizeError
from framework.events import ConnectionKey, Market, Source, now_ms
from tests.exchanges.conftest import DATA

SAMPLES = json.loads((DATA / "binance.account.samples.json").read_text())
SENTINEL = '{"sentinel":true}'


def assert_exact(value: Decimal | None, text: str | None) -> None:
    """Equal to the wire text AND the same digits and exponent (nothing rounded or re-scaled)."""
    if text is None:
        assert value is None
    else:
        assert value is not None and value.as_tuple() == Decimal(text).as_tuple(), (value, text)


def assert_event(event, expected: dict) -> None:
    kind = expected["type"]
    assert isinstance(event, BalanceUpdate if kind == "balance" else PositionUpdate)
    assert event.exchange == "binance" and event.source is Source.WEBSOCKET
    for name, want in expected.items():
        if name == "type":
            continue
        got = getattr(event, name)
        if isinstance(got, Decimal) or (got is None and name not in ("reason", "margin_mode")):
            assert_exact(got, want)
        else:
            assert (got.value if hasattr(got, "value") else got) == want, name


# --- golden: the docs' samples (tests/data/exchanges/binance.account.samples.json) ---

@pytest.mark.parametrize("sample", SAMPLES, ids=[f"{s['market']}-{i}" for i, s in enumerate(SAMPLES)])
def test_every_docs_sample_normalizes_to_the_values_read_off_it(sample):
    market = Market(sample["market"])
    events = normalize_account(copy.deepcopy(sample["raw"]), market)
    assert len(events) == len(sample["expected"])
    for event, expected in zip(events, sample["expected"]):
        assert event.market is market
        assert event.raw == sample["raw"]
        assert_event(event, expected)


def test_a_balance_update_is_a_delta_and_the_others_are_absolute():
    delta = [s for s in SAMPLES if "balanceUpdate" in json.dumps(s["raw"])]
    assert delta and all(normalize_account(s["raw"], Market.SPOT)[0].is_delta for s in delta)
    absolute = [e for s in SAMPLES if s not in delta for e in normalize_account(s["raw"], Market(s["market"]))]
    assert absolute and not any(getattr(e, "is_delta", False) for e in absolute)


def test_a_crossed_funding_fee_update_has_balances_and_no_position():
    frame = {"e": "ACCOUNT_UPDATE", "E": 1564745798939, "T": 1564745798938,
             "a": {"m": "FUNDING_FEE", "B": [{"a": "USDT", "wb": "100.5", "cw": "100.5", "bc": "0"}]}}
    [balance] = normalize_account(frame, Market.FUTURE)
    assert (balance.asset, balance.total, balance.reason) == ("USDT", Decimal("100.5"), "FUNDING_FEE")


def test_channels_and_no_extra_subscription():
    assert ACCOUNT_CHANNELS[Market.SPOT] == {"outboundAccountPosition", "balanceUpdate"}
    assert ACCOUNT_CHANNELS[Market.FUTURE] == {"ACCOUNT_UPDATE"}
    assert account_subscribe_frames(Market.SPOT) == account_subscribe_frames(Market.FUTURE) == []


@pytest.mark.parametrize(("market", "frame"), [
    (Market.SPOT, {"subscriptionId": 0, "event": {"e": "executionReport", "E": 1}}),
    (Market.SPOT, {"id": 1, "status": 200, "result": {"subscriptionId": 0}}),
    (Market.SPOT, SAMPLES[4]["raw"]),  # ACCOUNT_UPDATE is not a spot event
    (Market.FUTURE, SAMPLES[0]["raw"]),  # nor outboundAccountPosition a USD-M one
    (Market.FUTURE, {"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {}}),
    (Market.FUTURE, {"e": "listenKeyExpired", "E": 1, "listenKey": "k"}),
    (Market.FUTURE, "not a frame"),
    (Market.FUTURE, None),
])
def test_other_frames_give_nothing(market, frame):
    assert normalize_account(frame, market) == []


def _broken(index: int, path: tuple, value=...) -> tuple[Market, dict]:
    """Sample `index` with the field at `path` set to `value` (deleted when no value is given)."""
    sample = SAMPLES[index]
    frame = copy.deepcopy(sample["raw"])
    holder = frame
    for key in path[:-1]:
        holder = holder[key]
    if value is ...:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return Market(sample["market"]), frame


@pytest.mark.parametrize(("market", "frame"), [
    _broken(0, ("event", "B")),
    _broken(0, ("event", "B"), {"a": "ETH"}),
    _broken(0, ("event", "B", 0, "f"), 10000.0),  # a float, not the wire's text
    _broken(0, ("event", "B", 0, "l"), "lots"),
    _broken(0, ("event", "B", 0, "a"), ""),
    _broken(0, ("event", "u"), "1564034571073"),
    _broken(2, ("event", "d")),
    _broken(2, ("event", "T")),
    _broken(4, ("a", "B", 0, "wb")),
    _broken(4, ("a", "B"), None),
    _broken(4, ("a", "P", 1, "pa"), "NaN"),
    _broken(4, ("a", "P", 1, "ps"), "BOTH_WAYS"),
    _broken(4, ("a", "P", 1, "mt"), "portfolio"),
    _broken(4, ("a", "P", 1, "s"), 42),
    _broken(4, ("a", "P"), [["BTCUSDT"]]),
    _broken(4, ("a", "m")),
    _broken(4, ("T",)),
    _broken(4, ("a",), []),
])
def test_malformed_account_frames_raise_normalize_error_with_the_frame(market, frame):
    with pytest.raises(NormalizeError) as caught:
        normalize_account(frame, market)
    assert caught.value.raw is frame


# --- the simulator: its pushes, read back, equal its account ---

async def _drain(ws: aiohttp.ClientWebSocketResponse, sim: Simulator, market: str, into: list) -> None:
    """Every frame the socket got up to a sentinel injected now (all the pushes of finished fills come first)."""
    await sim.inject_raw("binance", market, SENTINEL)
    async with asyncio.timeout(5):
        while (message := await ws.receive()).data != SENTINEL:
            into.append(json.loads(message.data))


def _latest(frames: list, market: Market) -> tuple[dict[str, BalanceUpdate], dict[str, PositionUpdate]]:
    balances: dict[str, BalanceUpdate] = {}
    positions: dict[str, PositionUpdate] = {}
    for frame in frames:
        for event in normalize_account(frame, market):
            if isinstance(event, BalanceUpdate):
                balances[event.asset] = event
            else:
                positions[event.symbol] = event
    return balances, positions


def _same_position(event: PositionUpdate, position) -> None:
    """A PositionUpdate (stream or snapshot) against the simulator's position, exactly."""
    assert event.position_side is PositionSide.NET and event.margin_mode == "cross"
    assert event.signed_size == position.size and event.contracts == abs(position.size)
    assert event.direction.value == position.direction
    assert event.entry_price == position.entry_price
    assert event.unrealized_pnl == position.unrealized_pnl


async def _futures_fills(sim: Simulator) -> None:
    await sim.fill("binance", "future", "BTC/USDT:USDT", "buy", "0.010", "65000.5", parts=2)
    await sim.fill("binance", "future", "BTC/USDT:USDT", "buy", "0.005", "65100")  # entry 65033.666…
    await sim.fill("binance", "future", "BTC/USDT:USDT", "sell", "0.020", "64900.1")  # flips short
    await sim.fill("binance", "future", "ETH/USDT:USDT", "sell", "0.30", "3000.25")
    await sim.fill("binance", "future", "SOL/USDT:USDT", "buy", "2", "150.5")
    await sim.fill("binance", "future", "SOL/USDT:USDT", "sell", "2", "151")  # closed: flat


async def _spot_fills(sim: Simulator) -> None:
    await sim.fill("binance", "spot", "BTC/USDT", "buy", "0.010", "65000.5", parts=2)
    await sim.fill("binance", "spot", "ETH/USDT", "sell", "0.5", "3000.25")
    await sim.fill("binance", "spot", "ETH/BTC", "buy", "1.5", "0.05123")
    await sim.place_order("binance", "spot", "SOL/USDT", "buy", "3", "140.25")  # rests: locks USDT


async def test_spot_outbound_account_positions_read_back_equal_the_simulators_balances():
    async with asyncio.timeout(20), Simulator(exchanges=["binance"], seed=3) as sim, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.endpoints("binance", "spot").ws)
        await ws.send_json(handshake(sim.credentials_for("binance"), Market.SPOT, now_ms())[0])
        assert (await ws.receive_json(timeout=5))["status"] == 200
        await _spot_fills(sim)
        frames: list = []
        await _drain(ws, sim, "spot", frames)
        await ws.close()
    assert {f["event"]["e"] for f in frames} == {"executionReport", "outboundAccountPosition"}
    balances, positions = _latest(frames, Market.SPOT)
    account = sim.account("binance", "spot")
    assert not positions and set(balances) == set(account.balances) == {"BTC", "USDT", "ETH"}
    for asset, balance in account.balances.items():
        got = balances[asset]
        assert (got.free, got.locked, got.total) == (balance.free, balance.locked, balance.total), asset
        assert got.timestamp <= account.updated
    assert balances["USDT"].locked == Decimal("420.75")  # the resting SOL buy


async def test_future_account_updates_read_back_equal_the_simulators_wallets_and_positions():
    async with asyncio.timeout(20), Simulator(exchanges=["binance"], seed=3) as sim, aiohttp.ClientSession() as http:
        endpoints, creds = sim.endpoints("binance", "future"), sim.credentials_for("binance")
        async with http.post(endpoints.rest + "/fapi/v1/listenKey", headers={API_KEY_HEADER: creds.api_key}) as resp:
            listen_key = (await resp.json())["listenKey"]
        ws = await http.ws_connect(f"{endpoints.ws}/ws/{listen_key}")
        await _futures_fills(sim)
        frames: list = []
        await _drain(ws, sim, "future", frames)
        await ws.close()
    updates = [f for f in frames if f["e"] == "ACCOUNT_UPDATE"]
    assert updates and all(f["a"]["m"] == "ORDER" for f in updates)
    balances, positions = _latest(frames, Market.FUTURE)
    account = sim.account("binance", "future")
    assert set(balances) == set(account.balances) == {"USDT"}
    wallet = balances["USDT"]
    assert wallet.total == account.balances["USDT"].total and wallet.reason == "ORDER"
    assert wallet.free is None and wallet.locked is None  # ACCOUNT_UPDATE has no available balance
    assert set(positions) == set(account.positions) == {"BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"}
    for symbol, position in account.positions.items():
        _same_position(positions[symbol], position)
        assert positions[symbol].realized_pnl == position.realized_pnl
        assert positions[symbol].timestamp == position.updated
    assert positions["BTC/USDT:USDT"].direction is Direction.SHORT
    assert positions["SOL/USDT:USDT"].direction is Direction.FLAT and positions["SOL/USDT:USDT"].size == 0
    btc_entry = account.positions["BTC/USDT:USDT"].entry_price
    assert btc_entry == Decimal("64900.1")  # the flip's rest opened at the fill price


async def test_a_socket_that_did_not_subscribe_gets_no_account_frames():
    async with asyncio.timeout(20), Simulator(exchanges=["binance"], seed=3) as sim, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.endpoints("binance", "spot").ws)  # no userDataStream.subscribe
        await sim.fill("binance", "spot", "BTC/USDT", "buy", "0.010", "65000.5")
        frames: list = []
        await _drain(ws, sim, "spot", frames)
        await ws.close()
    assert frames == []


# --- ccxt's REST snapshot against the simulator ---

def _backfiller(sim: Simulator, market: Market) -> Backfiller:
    """The ccxt client the framework builds (credentials, URLs onto the simulator, offline markets, number = str)."""
    return Backfiller(ConnectionKey(exchange="binance", market=market), BACKFILL, sim.credentials_for("binance"),
                      LIVE_ENDPOINTS[market], sim.endpoints("binance", market))


async def test_ccxt_fetch_balance_on_spot_returns_the_simulators_balances():
    async with asyncio.timeout(20), Simulator(exchanges=["binance"], seed=3) as sim:
        await _spot_fills(sim)
        backfiller = _backfiller(sim, Market.SPOT)
        try:
            balance = await backfiller._client(["BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT"]).fetch_balance()
        finally:
            await backfiller.close()
    account = sim.account("binance", "spot")
    assert balance["info"]["updateTime"] == account.updated
    for asset, held in account.balances.items():
        got = balance[asset]
        assert (Decimal(got["free"]), Decimal(got["used"]), Decimal(got["total"])) == (held.free, held.locked,
                                                                                      held.total)
    events = snapshot_events(Market.SPOT, balance, [], 1234)
    assert {e.asset: (e.free, e.locked, e.total) for e in events} == {
        a: (b.free, b.locked, b.total) for a, b in account.balances.items()}
    assert all(e.source is Source.REST and e.timestamp == 1234 for e in events)


async def test_ccxt_fetch_balance_and_positions_on_usdm_return_the_simulators_account():
    async with asyncio.timeout(20), Simulator(exchanges=["binance"], seed=3) as sim:
        await _futures_fills(sim)
        backfiller = _backfiller(sim, Market.FUTURE)
        symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
        try:
            exchange = backfiller._client(symbols)
            balance = await exchange.fetch_balance()
            positions = await exchange.fetch_positions(symbols)
        finally:
            await backfiller.close()
    account = sim.account("binance", "future")
    wallet = account.balances["USDT"]
    unrealized = sum(p.unrealized_pnl for p in account.positions.values())
    usdt = balance["USDT"]  # ccxt: free availableBalance, used initialMargin, total marginBalance (with the uPnL)
    assert (Decimal(usdt["free"]), Decimal(usdt["used"])) == (wallet.free, wallet.locked)
    assert Decimal(usdt["total"]) == wallet.total + unrealized
    open_positions = {s: p for s, p in account.positions.items() if p.size}
    assert sorted(p["symbol"] for p in positions) == sorted(open_positions) == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    for got in positions:
        held = open_positions[got["symbol"]]
        assert got["side"] == held.direction and Decimal(got["contracts"]) == abs(held.size)
        assert Decimal(got["entryPrice"]) == held.entry_price and Decimal(got["markPrice"]) == held.mark_price
        assert Decimal(got["liquidationPrice"]) == held.liquidation_price and got["marginMode"] == "cross"

    events = snapshot_events(Market.FUTURE, balance, positions, 1234)
    [snapshot_wallet] = [e for e in events if isinstance(e, BalanceUpdate)]
    assert (snapshot_wallet.asset, snapshot_wallet.free, snapshot_wallet.locked, snapshot_wallet.total) == (
        "USDT", wallet.free, wallet.locked, wallet.total)
    snapshot_positions = {e.symbol: e for e in events if isinstance(e, PositionUpdate)}
    assert set(snapshot_positions) == set(open_positions)
    for symbol, held in open_positions.items():
        event = snapshot_positions[symbol]
        _same_position(event, held)
        assert (event.mark_price, event.liquidation_price) == (held.mark_price, held.liquidation_price)
        assert event.leverage is None and event.source is Source.REST  # v3 rows carry no leverage


async def test_account_endpoints_check_the_signature():
    async with asyncio.timeout(20), Simulator(exchanges=["binance"], seed=3) as sim, aiohttp.ClientSession() as http:
        key = sim.credentials_for("binance").api_key
        for market, path in (("spot", "/api/v3/account"), ("future", "/fapi/v3/account"),
                             ("future", "/fapi/v3/positionRisk"), ("future", "/fapi/v1/leverageBracket")):
            url = f"{sim.endpoints('binance', market).rest}{path}?timestamp={now_ms()}&signature=00"
            async with http.get(url, headers={API_KEY_HEADER: key}) as resp:
                assert (resp.status, (await resp.json())["code"]) == (400, -1022), path
            async with http.get(url) as resp:
                assert (resp.status, (await resp.json())["code"]) == (401, -2015), path
