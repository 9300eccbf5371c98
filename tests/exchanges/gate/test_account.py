"""Gate account channels: the docs' samples read by hand, malformed frames, the signed subscribes; on the simulator
the pushed balances and positions equal its account, and so do ccxt's fetch_balance / fetch_positions."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import pytest

from exchanges.gate import SPEC
from exchanges.gate.account import ACCOUNT_CHANNELS, account_subscriptions, normalize_account
from exchanges.gate.auth import channel_auth
from exchanges.gate.normalize import FALLBACK_CONTRACT_SIZES
from exchanges.gate.rest import BACKFILL
from exchanges.gate.stream import handshake
from exchanges.simulator import Simulator
from exchanges.symbols import contract_size
from framework.account import BalanceUpdate, PositionUpdate
from framework.backfill import Backfiller
from framework.errors import ConfigError, NormalizeError
from framework.events import ConnectionKey, Market, now_ms
from framework.venue import Credentials
from tests.exchanges.conftest import DATA

pytestmark = pytest.mark.timeout(30)

# Decoded as the connection does (`parse_float=Decimal`): futures pushes carry JSON numbers.
SAMPLES = json.loads((DATA / "gate.account.samples.json").read_text(), parse_float=Decimal)
CREDS = Credentials(api_key="gate-key-1234", secret="gate-secret-5678")
QUIET = 0.3  # seconds of silence after which every pushed frame has been read
SIZE_DECIMAL = {"X-Gate-Size-Decimal": "1"}


def expected_event(market: str, fields: dict) -> BalanceUpdate | PositionUpdate:
    """A sample's hand-read values as the event they must give (Decimal text → Decimal, null → None)."""
    fields = dict(fields)
    kind = BalanceUpdate if fields.pop("kind") == "balance" else PositionUpdate
    return kind(exchange="gate", market=market, **fields)


# golden ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sample", SAMPLES, ids=[s["raw"]["channel"] + "-" + str(i) for i, s in enumerate(SAMPLES)])
def test_docs_sample_normalizes_to_hand_read_values(sample):
    events = normalize_account(sample["raw"], Market(sample["market"]))
    assert sample["expected"] and events == [expected_event(sample["market"], e) for e in sample["expected"]]
    assert [e.raw for e in events] == sample["raw"]["result"]


def test_every_account_channel_has_a_docs_sample():
    channels = {s["raw"]["channel"] for s in SAMPLES}
    assert channels == {c for market in ACCOUNT_CHANNELS.values() for c in market}


def test_futures_balance_push_without_currency_is_the_settle_coin():
    # ccxt's captured push (pro/gate.py handle_balance, "swap order fill"): Gate's older rows had no currency
    frame = {"channel": "futures.balances", "event": "update", "result": [
        {"balance": Decimal("20.031873037"), "change": Decimal("-0.0031355"), "text": "LTC_USDT:165551103273",
         "time": 1653665311, "time_ms": 1653665311437, "type": "fee", "user": "10406147"}]}
    [balance] = normalize_account(frame, Market.FUTURE)
    assert (balance.asset, balance.total, balance.free, balance.locked) == ("USDT", Decimal("20.031873037"), None, None)
    assert not balance.is_delta


def test_hedge_short_leg_isolated():
    row = {"contract": "ETH_USDT", "size": "-25", "mode": "dual_short", "leverage": 20, "cross_leverage_limit": 0,
           "entry_price": Decimal("3000.5"), "liq_price": 0, "realised_pnl": 0, "time_ms": 1700000000000}
    [position] = normalize_account({"channel": "futures.positions", "event": "update", "result": [row]},
                                   Market.FUTURE)
    size = Decimal(25) * (contract_size("gate", "ETH_USDT") or FALLBACK_CONTRACT_SIZES["ETH_USDT"])
    assert (position.position_side.value, position.direction.value, position.size, position.contracts) == (
        "short", "short", size, Decimal(25))
    assert (position.margin_mode, position.leverage, position.liquidation_price) == ("isolated", Decimal(20), None)
    assert position.signed_size == -size


@pytest.mark.parametrize("frame", [
    {"channel": "spot.balances", "event": "subscribe", "result": {"status": "success"}},
    {"channel": "futures.pong", "event": "", "result": None},
    {"channel": "spot.orders", "event": "update", "result": [{"id": "1"}]},
    {"channel": "futures.position_closes", "event": "update", "result": [{"contract": "BTC_USDT"}]},
    [1, 2], "text",
], ids=["ack", "pong", "orders", "other-channel", "list", "text"])
def test_other_frames_give_nothing(frame):
    assert normalize_account(frame, Market.FUTURE) == []


def _spot_row(**change) -> dict:
    row = {"timestamp_ms": "1667556323730", "currency": "USDT", "total": "2", "available": "1", "freeze": "1"}
    return {k: v for k, v in {**row, **change}.items() if v is not None}


def _position_row(**change) -> dict:
    row = {"contract": "BTC_USDT", "size": 3, "mode": "single", "leverage": 0, "time_ms": 1628736848321}
    return {k: v for k, v in {**row, **change}.items() if v is not None}


@pytest.mark.parametrize(("channel", "result"), [
    ("spot.balances", [_spot_row(available=None)]),
    ("spot.balances", [_spot_row(total="lots")]),
    ("spot.balances", [_spot_row(currency="")]),
    ("spot.balances", [_spot_row(timestamp_ms=None)]),
    ("spot.balances", {"currency": "USDT"}),
    ("futures.balances", [{"balance": 9.5, "time_ms": 1, "type": "fee"}]),  # a float: decoded without Decimal
    ("futures.balances", [{"balance": "9.5", "type": "fee"}]),
    ("futures.positions", [_position_row(mode="dual")]),
    ("futures.positions", [_position_row(size=None)]),
    ("futures.positions", [_position_row(leverage=None)]),
    ("futures.positions", [_position_row(contract=None)]),
    ("futures.positions", None),
], ids=["no-available", "bad-total", "no-currency", "no-time", "result-object", "float", "futures-no-time",
        "unknown-mode", "no-size", "no-leverage", "no-contract", "no-result"])
def test_malformed_account_frames_raise(channel, result):
    frame = {"channel": channel, "event": "update", "result": result}
    with pytest.raises(NormalizeError) as caught:
        normalize_account(frame, Market.FUTURE if channel.startswith("futures") else Market.SPOT)
    assert caught.value.raw is frame


# subscribes --------------------------------------------------------------------------------------------------------
def test_account_subscriptions_are_signed_with_gates_payloads():
    now = 1_700_000_000_123
    [spot] = account_subscriptions(CREDS, Market.SPOT, now)
    assert spot == {"time": 1_700_000_000, "id": now + 101, "channel": "spot.balances", "event": "subscribe",
                    "auth": channel_auth(CREDS.api_key, CREDS.secret, "spot.balances", "subscribe", 1_700_000_000)}
    balances, positions = account_subscriptions(CREDS, Market.FUTURE, now, "12345")
    assert (balances["channel"], balances["payload"]) == ("futures.balances", ["12345"])
    assert (positions["channel"], positions["payload"]) == ("futures.positions", ["12345", "!all"])
    assert len({f["id"] for f in [*handshake(CREDS, Market.FUTURE, now, "12345"), balances, positions]}) == 4
    with pytest.raises(ConfigError):
        account_subscriptions(CREDS, Market.FUTURE, now)


# on the simulator ------------------------------------------------------------------------------------------------
async def _subscribed(http: aiohttp.ClientSession, sim: Simulator, market: Market, headers: dict | None = None):
    """A private socket subscribed as the connection would be: orders and fills, then the account channels."""
    creds, endpoints = sim.credentials_for("gate"), sim.endpoints("gate", market)
    user_id = await SPEC.stream.open_listen_key(http, creds, market, endpoints, now_ms())
    ws = await http.ws_connect(endpoints.ws, headers=headers or {})
    now = now_ms()
    for frame in handshake(creds, market, now, user_id):  # its account_subscriptions at the end
        await ws.send_json(frame)
        reply = json.loads((await ws.receive(timeout=5)).data)
        assert (reply["channel"], reply["error"], reply["result"]) == (frame["channel"], None, {"status": "success"})
    return ws


async def _pushed(ws: aiohttp.ClientWebSocketResponse, market: Market) -> list:
    """Every account event pushed so far, in order (the simulator sends each frame before its call returns)."""
    events = []
    while True:
        try:
            message = await ws.receive(timeout=QUIET)
        except TimeoutError:
            return events
        events += normalize_account(json.loads(message.data, parse_float=Decimal), market)


def _latest(events: list) -> dict:
    return {getattr(e, "asset", None) or e.symbol: e for e in events}


async def test_spot_balances_pushed_equal_the_simulators_account():
    async with Simulator(exchanges=["gate"]) as sim, aiohttp.ClientSession() as http:
        ws = await _subscribed(http, sim, Market.SPOT)
        await sim.fill("gate", "spot", "BTC/USDT", "buy", "0.0030", "64000.5", parts=2)
        await sim.fill("gate", "spot", "BTC/USDT", "sell", "0.0010", "64001.5")
        await sim.place_order("gate", "spot", "ETH/USDT", "sell", "0.5", "3000.25")  # rests: locks ETH
        events = await _pushed(ws, Market.SPOT)
        await ws.close()
        account = sim.account("gate", "spot")
    assert {e.reason for e in events} == {"order-create", "order-match"}
    latest = _latest(events)
    assert set(latest) == set(account.balances) == {"BTC", "USDT", "ETH"}
    for asset, balance in account.balances.items():
        assert (latest[asset].free, latest[asset].locked, latest[asset].total) == (
            balance.free, balance.locked, balance.total), asset
    assert latest["ETH"].timestamp == account.updated  # the order placed last


async def test_every_socket_is_told_the_same_change():
    async with Simulator(exchanges=["gate"]) as sim, aiohttp.ClientSession() as http:
        sockets = [await _subscribed(http, sim, Market.SPOT) for _ in range(2)]
        await sim.fill("gate", "spot", "BTC/USDT", "buy", "0.0030", "64000.5", is_maker=True)  # the maker fee
        first, second = [[e.raw for e in await _pushed(ws, Market.SPOT)] for ws in sockets]
        for ws in sockets:
            await ws.close()
    assert first == second and [(r["currency"], r["change"]) for r in first] == [
        ("USDT", "0.00000"), ("BTC", "0.0030"), ("USDT", "-192.03990030")]


@pytest.mark.parametrize("decimal_sizes", [False, True], ids=["numbers", "size-decimal"])
async def test_futures_balances_and_positions_pushed_equal_the_simulators_account(decimal_sizes):
    async with Simulator(exchanges=["gate"]) as sim, aiohttp.ClientSession() as http:
        ws = await _subscribed(http, sim, Market.FUTURE, SIZE_DECIMAL if decimal_sizes else None)
        await sim.fill("gate", "future", "BTC/USDT:USDT", "buy", "0.0030", "64000.5", parts=2)
        await sim.fill("gate", "future", "BTC/USDT:USDT", "sell", "0.0010", "64100.5")  # realizes PnL
        await sim.fill("gate", "future", "ETH/USDT:USDT", "sell", "0.50", "3000.25")
        await sim.fill("gate", "future", "ETH/USDT:USDT", "buy", "0.50", "2990.75")  # closed: flat
        events = await _pushed(ws, Market.FUTURE)
        await ws.close()
        account = sim.account("gate", "future")
    balances = [e for e in events if isinstance(e, BalanceUpdate)]
    assert [e.reason for e in balances] == ["fee", "fee", "pnl", "fee", "fee", "pnl", "fee"]
    assert balances[-1].total == account.balance("USDT").total and balances[-1].free is None
    latest = _latest(e for e in events if isinstance(e, PositionUpdate))
    assert set(latest) == set(account.positions)
    for symbol, position in account.positions.items():
        got = latest[symbol]
        raw = symbol.split("/")[0] + "_USDT"
        multiplier = contract_size("gate", raw) or FALLBACK_CONTRACT_SIZES[raw]
        assert (got.signed_size, got.contracts, got.direction.value) == (
            position.size, abs(position.size) / multiplier, position.direction), symbol
        assert (got.entry_price, got.realized_pnl, got.leverage, got.liquidation_price, got.margin_mode) == (
            position.entry_price or None, position.realized_pnl, position.leverage, position.liquidation_price,
            "isolated"), symbol
        assert got.timestamp == position.updated
    assert latest["ETH/USDT:USDT"].direction.value == "flat"


async def test_futures_balances_want_the_user_id_and_positions_a_listed_contract():
    async with Simulator(exchanges=["gate"]) as sim, aiohttp.ClientSession() as http:
        creds = sim.credentials_for("gate")
        ws = await http.ws_connect(sim.endpoints("gate", "future").ws)
        time_s = now_ms() // 1000
        auth = channel_auth(creds.api_key, creds.secret, "futures.balances", "subscribe", time_s)
        await ws.send_json({"time": time_s, "channel": "futures.balances", "event": "subscribe", "payload": ["1"],
                            "auth": auth})
        reply = json.loads((await ws.receive(timeout=5)).data)
        assert reply["error"]["code"] == 2 and reply["result"] == {"status": "failed"}
        user_id = str(sim.venue("gate").user_id)
        auth = channel_auth(creds.api_key, creds.secret, "futures.positions", "subscribe", time_s)
        await ws.send_json({"time": time_s, "channel": "futures.positions", "event": "subscribe",
                            "payload": [user_id, "ETH_USDT"], "auth": auth})
        assert json.loads((await ws.receive(timeout=5)).data)["result"] == {"status": "success"}
        await sim.fill("gate", "future", "BTC/USDT:USDT", "buy", "0.0010", "64000.5")
        await sim.fill("gate", "future", "ETH/USDT:USDT", "buy", "0.10", "3000.5")
        positions = await _pushed(ws, Market.FUTURE)
        await ws.close()
    assert [p.symbol for p in positions] == ["ETH/USDT:USDT"]  # no balances: not subscribed


# ccxt's REST snapshot ------------------------------------------------------------------------------------------------
def _ccxt(sim: Simulator, market: Market, symbols: list[str]):
    """ccxt's Gate as the framework builds it (Backfiller._client): keys, URLs on the simulator, offline markets,
    `number = str`."""
    key = ConnectionKey(exchange="gate", market=market, account="default")
    filler = Backfiller(key, BACKFILL, sim.credentials_for("gate"), SPEC.stream.endpoints(market),
                        sim.endpoints("gate", market))
    return filler, filler._client(symbols)


async def test_ccxt_fetch_balance_spot_is_the_simulators_account():
    async with Simulator(exchanges=["gate"]) as sim:
        await sim.fill("gate", "spot", "BTC/USDT", "buy", "0.0030", "64000.5", parts=2)
        await sim.place_order("gate", "spot", "BTC/USDT", "sell", "0.0010", "64100")
        filler, exchange = _ccxt(sim, Market.SPOT, ["BTC/USDT"])
        try:
            balance = await exchange.fetch_balance()
        finally:
            await filler.close()
        account = sim.account("gate", "spot")
    assert set(balance["total"]) == set(account.balances) == {"BTC", "USDT"}
    for asset, expected in account.balances.items():
        got = balance[asset]
        assert (Decimal(got["free"]), Decimal(got["used"]), Decimal(got["total"])) == (
            expected.free, expected.locked, expected.total), asset


async def test_ccxt_fetch_balance_and_positions_futures_are_the_simulators_account():
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    async with Simulator(exchanges=["gate"]) as sim:
        await sim.fill("gate", "future", "BTC/USDT:USDT", "buy", "0.0030", "64000.5", parts=2)
        await sim.fill("gate", "future", "BTC/USDT:USDT", "sell", "0.0010", "64100.5")
        await sim.fill("gate", "future", "ETH/USDT:USDT", "sell", "0.50", "3000.25")
        filler, exchange = _ccxt(sim, Market.FUTURE, symbols)
        try:
            balance = await exchange.fetch_balance()
            positions = await exchange.fetch_positions()
        finally:
            await filler.close()
        account = sim.account("gate", "future")
    wallet = account.balance("USDT")
    assert (Decimal(balance["USDT"]["free"]), Decimal(balance["USDT"]["used"]), Decimal(balance["USDT"]["total"])) == (
        wallet.free, wallet.locked, wallet.total)
    assert sorted(p["symbol"] for p in positions) == symbols
    for got in positions:
        expected = account.positions[got["symbol"]]
        multiplier = Decimal(exchange.market(got["symbol"])["contractSize"])
        assert (Decimal(got["contracts"]) * multiplier, got["side"]) == (abs(expected.size), expected.direction)
        figures = ("entryPrice", "markPrice", "unrealizedPnl", "realizedPnl", "leverage", "liquidationPrice")
        assert [Decimal(got[name]) for name in figures] == [
            expected.entry_price, expected.mark_price, expected.unrealized_pnl, expected.realized_pnl,
            expected.leverage, expected.liquidation_price], got["symbol"]
        assert got["marginMode"] == "isolated"
