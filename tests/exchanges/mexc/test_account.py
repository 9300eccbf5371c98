"""MEXC account state: every official sample normalizes to the values written on it (tests/data/exchanges/
mexc.account.samples.json), malformed frames are NormalizeErrors, the simulator's account pushes read back as its
account exactly, and ccxt's fetch_balance / fetch_positions (and the exact snapshot read from their answers) give
the simulator's account."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from google.protobuf import descriptor_pb2, json_format

from exchanges.mexc import SPEC
from exchanges.mexc.account import (
    ACCOUNT_CHANNELS, SPOT_ACCOUNT, account_subscriptions, balances_from_rest, fetch_snapshot, normalize_account,
    positions_from_rest,
)  # fmt: skip
from exchanges.mexc.auth import login_message
from exchanges.mexc.normalize import normalize
from exchanges.mexc.proto import (
    AccountPushDataV3ApiWrapper, PrivateAccountV3Api, PrivateDealsV3Api, PushDataV3ApiWrapper,
)  # fmt: skip
from exchanges.mexc.rest import BACKFILL
from exchanges.mexc.stream import MexcStream
from exchanges.simulator import Simulator
from framework.account import BalanceUpdate, PositionUpdate
from framework.backfill import Backfiller
from framework.errors import NormalizeError
from framework.events import ConnectionKey, Market, Source, now_ms

pytestmark = pytest.mark.timeout(60)

SAMPLES = json.loads(
    (Path(__file__).resolve().parents[2] / "data/exchanges/mexc.account.samples.json").read_text(),
    parse_float=Decimal,
)
STREAM = MexcStream()
QUIET = 0.3  # seconds of silence that end a burst of pushes
SIZE = {"BTC_USDT": Decimal("0.0001"), "ETH_USDT": Decimal("0.01")}  # the client's contract sizes


def _frame(sample: dict):
    """The wire frame: JSON as the connection parses it (exact decimals), or the protobuf bytes of a decoded push."""
    if "raw" in sample:
        return sample["raw"]
    return json_format.ParseDict(sample["raw_decoded_json"], AccountPushDataV3ApiWrapper()).SerializeToString()


def _expected(sample: dict) -> list:
    market = Market.parse(sample["market"])
    events = []
    for fields in sample["expected"]:
        fields = dict(fields)
        kind = fields.pop("event")
        cls = BalanceUpdate if kind == "balance" else PositionUpdate
        events.append(cls(exchange="mexc", market=market, **fields))
    return events


def _read(sample: dict) -> list:
    market = Market.parse(sample["market"])
    if sample["kind"] == "rest_balances":
        return balances_from_rest(sample["raw"], market, sample["snapshot_ms"])
    if sample["kind"] == "rest_positions":
        return positions_from_rest(sample["raw"])
    return normalize_account(_frame(sample), market)


# golden ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sample", SAMPLES, ids=[f"{s['market']}-{s['kind']}-{i}" for i, s in enumerate(SAMPLES)])
def test_official_sample_normalizes_to_the_values_read_off_it(sample):
    events = _read(sample)
    assert events == _expected(sample)
    source = Source.WEBSOCKET if sample["kind"] == "push" else Source.REST
    assert all(e.source is source and e.raw is not None for e in events)


def test_hedge_mode_makes_each_record_the_leg_its_position_type_names():
    held = next(s for s in SAMPLES if "zh-MY" in s["source"])
    closed = next(s for s in SAMPLES if "a closed position" in s["source"])
    (long_leg,) = normalize_account(held["raw"], Market.FUTURE, hedge_mode=True)
    (closed_leg,) = normalize_account(closed["raw"], Market.FUTURE, hedge_mode=True)
    assert (long_leg.position_side, long_leg.direction, long_leg.size) == ("long", "long", Decimal("0.001"))
    assert (closed_leg.position_side, closed_leg.direction, closed_leg.size) == ("long", "flat", 0)
    short = {**held["raw"], "data": {**held["raw"]["data"], "positionType": 2}}
    (short_leg,) = normalize_account(short, Market.FUTURE, hedge_mode=True)
    assert (short_leg.position_side, short_leg.direction, short_leg.signed_size) == ("short", "short",
                                                                                     Decimal("-0.001"))


def test_account_schema_matches_ccxts_generated_descriptor_and_its_encoding():
    pytest.importorskip("ccxt.protobuf.mexc")
    from ccxt.protobuf.mexc import PrivateAccountV3Api_pb2, PushDataV3ApiWrapper_pb2

    def fields(message_class) -> dict:
        proto = descriptor_pb2.DescriptorProto()
        message_class.DESCRIPTOR.CopyToProto(proto)
        return {f.name: (f.number, f.type) for f in proto.field}

    assert fields(PrivateAccountV3Api) == fields(PrivateAccountV3Api_pb2.PrivateAccountV3Api)  # all 8
    assert fields(AccountPushDataV3ApiWrapper).items() <= fields(PushDataV3ApiWrapper_pb2.PushDataV3ApiWrapper).items()
    sample = SAMPLES[0]
    frame = json_format.ParseDict(sample["raw_decoded_json"],
                                  PushDataV3ApiWrapper_pb2.PushDataV3ApiWrapper()).SerializeToString()
    assert normalize_account(frame, Market.SPOT) == _expected(sample)


def test_order_and_account_views_each_pass_the_others_frames_by():
    account = _frame(SAMPLES[0])
    deal = PushDataV3ApiWrapper(channel="spot@private.deals.v3.api.pb", symbol="MXUSDT", sendTime=2, privateDeals=(
        PrivateDealsV3Api(price="1", quantity="1", tradeType=1, tradeId="t", orderId="o", time=1))).SerializeToString()
    assert normalize(account, Market.SPOT) == []
    assert normalize_account(deal, Market.SPOT) == []
    assert len(normalize(deal, Market.SPOT)) == 1


@pytest.mark.parametrize("message", [
    {"channel": "pong", "data": 1587453241453},
    {"channel": "rs.login", "data": "success", "ts": 1},
    {"channel": "push.personal.order", "data": {}},
    {"channel": "push.personal.adl.level", "data": {"adlLevel": 0, "positionId": 1}},
    {"channel": "push.personal.position.mode", "data": {"positionMode": 1}, "ts": 1},
    {"id": 0, "code": 0, "msg": SPOT_ACCOUNT},
    {"c": "spot@private.orders.v3.api", "d": {}},
    "Invalid listen key",
])  # fmt: skip
def test_other_frames_are_not_account_state(message):
    assert normalize_account(message, Market.FUTURE) == []


def _pb(**body) -> bytes:
    fields = {"vcoinName": "USDT", "balanceAmount": "1", "frozenAmount": "0", "time": 5} | body
    return AccountPushDataV3ApiWrapper(channel=SPOT_ACCOUNT, privateAccount=PrivateAccountV3Api(**fields)
                                       ).SerializeToString()


def _asset(**data) -> dict:
    base = {"currency": "USDT", "availableBalance": Decimal("1.5"), "frozenBalance": 0, "positionMargin": 0}
    return {"channel": "push.personal.asset", "data": base | data, "ts": 1610005070083}


def _position(**data) -> dict:
    base = {"symbol": "BTC_USDT", "holdVol": 3, "positionType": 1, "openType": 1, "state": 1,
            "openAvgPrice": Decimal("100.5"), "leverage": 10}  # fmt: skip
    return {"channel": "push.personal.position", "data": base | data, "ts": 1610005070157}


@pytest.mark.parametrize(
    "frame",
    [
        AccountPushDataV3ApiWrapper(channel=SPOT_ACCOUNT, sendTime=5).SerializeToString(),  # no body
        _pb(vcoinName=""), _pb(balanceAmount="lots"), _pb(frozenAmount=""), _pb(time=0),
        b"\xff\xff\xff",
        {"c": "spot@private.account.v3.api", "d": {"a": "USDT", "f": "1", "c": 5}, "t": 6},  # no frozen figure
        _asset(currency=None), _asset(availableBalance="x"), _asset(availableBalance=1.5),  # a float: not exact
        {**_asset(), "ts": None}, {"channel": "push.personal.asset", "data": [], "ts": 1},
        _position(positionType=3), _position(positionType=True), _position(holdVol=-1), _position(symbol=""),
        _position(openType=9), _position(openAvgPrice=None), {**_position(), "ts": 0},
    ],
)  # fmt: skip
def test_malformed_account_frame_raises_normalize_error(frame):
    with pytest.raises(NormalizeError, match="mexc: malformed account push"):
        normalize_account(frame, Market.SPOT if isinstance(frame, bytes) else Market.FUTURE)


@pytest.mark.parametrize(
    ("answer", "market"),
    [
        ({"balances": [{"asset": "BTC", "free": "1"}]}, Market.SPOT),
        ({"success": False, "code": 602, "message": "Signature verification failed!"}, Market.FUTURE),
        ({"success": True, "code": 0, "data": {"currency": "USDT"}}, Market.FUTURE),
    ],
)
def test_malformed_balance_answer_raises_normalize_error(answer, market):
    with pytest.raises(NormalizeError, match="malformed balance answer"):
        balances_from_rest(answer, market, 1)


def test_account_subscriptions_add_the_channels_and_keep_orders_and_fills():
    assert ACCOUNT_CHANNELS == {Market.SPOT: (SPOT_ACCOUNT,),
                                Market.FUTURE: ("push.personal.asset", "push.personal.position")}
    assert account_subscriptions(Market.SPOT) == [{"method": "SUBSCRIPTION", "params": [SPOT_ACCOUNT]}]
    (frame,) = account_subscriptions(Market.FUTURE)
    assert frame["method"] == "personal.filter"
    assert [f["filter"] for f in frame["param"]["filters"]] == ["order", "order.deal", "asset", "position"]


# the simulator's pushes ---------------------------------------------------------------------------------------------------
@pytest.fixture
async def sim():
    async with Simulator(exchanges=["mexc"]) as simulator:
        yield simulator


async def _drain(ws: aiohttp.ClientWebSocketResponse) -> list:
    """Every frame until the socket is quiet (text as exact JSON, binary as bytes)."""
    frames = []
    while True:
        try:
            message = await ws.receive(timeout=QUIET)
        except TimeoutError:
            return frames
        binary = message.type is aiohttp.WSMsgType.BINARY
        frames.append(message.data if binary else json.loads(message.data, parse_float=Decimal))


def _latest(events: list) -> dict:
    return {(e.asset if isinstance(e, BalanceUpdate) else e.symbol): e for e in events}


async def test_spot_account_pushes_read_back_as_the_simulators_balances(sim):
    async with aiohttp.ClientSession() as http:
        key = await STREAM.open_listen_key(http, sim.credentials_for("mexc"), Market.SPOT,
                                           sim.endpoints("mexc", "spot"), now_ms())
        ws = await http.ws_connect(STREAM.ws_url(Market.SPOT, sim.endpoints("mexc", "spot"), key))
        for message in account_subscriptions(Market.SPOT):
            await ws.send_json(message)
        assert await _drain(ws) == [{"id": 0, "code": 0, "msg": SPOT_ACCOUNT}]

        await sim.fill("mexc", "spot", "BTC/USDT", "buy", "0.250", "65000.5")
        order = await sim.place_order("mexc", "spot", "ETH/USDT", "sell", "1.5", "3000.25")  # locks 1.5 ETH
        await sim.fill_order("mexc", "spot", order, "0.5")
        await sim.fill("mexc", "spot", "BTC/USDC", "sell", "0.0123", "64999.99", parts=2)
        frames = await _drain(ws)
        await ws.close()
    assert all(isinstance(f, bytes) for f in frames)
    events = [e for f in frames for e in normalize_account(f, Market.SPOT)]
    assert len(events) == len(frames) == 3 + 1 + 2 + 5  # a place: the coin it locks; a fill: base and quote
    account = sim.account("mexc", "spot")
    latest = _latest(events)
    assert set(latest) == {"BTC", "USDT", "ETH", "USDC"}
    for asset, event in latest.items():
        balance = account.balances[asset]
        assert (event.free, event.locked, event.total) == (balance.free, balance.locked, balance.total), asset
        assert event.timestamp <= account.updated
    assert latest["ETH"].locked == Decimal("1.0") and latest["ETH"].reason == "ENTRUST"
    placed = AccountPushDataV3ApiWrapper.FromString(frames[3]).privateAccount
    assert (placed.vcoinName, placed.type, placed.balanceAmountChange, placed.frozenAmountChange) == (
        "ETH", "ENTRUST_PLACE", "-1.5", "1.5")


async def test_contract_account_pushes_read_back_as_the_simulators_wallet_and_positions(sim):
    creds = sim.credentials_for("mexc")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(STREAM.ws_url(Market.FUTURE, sim.endpoints("mexc", "future"), None))
        for message in [login_message(creds.api_key, creds.secret, now_ms()), *account_subscriptions(Market.FUTURE)]:
            await ws.send_json(message)
        await _drain(ws)
        await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.0055", "64000.1")
        await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.0045", "64100.3", parts=3)  # a new average
        await sim.fill("mexc", "future", "ETH/USDT:USDT", "sell", "0.25", "3000.5")
        await sim.fill("mexc", "future", "ETH/USDT:USDT", "buy", "0.25", "2990.25")  # closed: realized PnL
        await sim.fill("mexc", "future", "BTC/USDT:USDT", "sell", "0.0150", "64500")  # flipped: short 0.005
        frames = await _drain(ws)
        await ws.close()
    pushes = [f for f in frames if f["channel"] in ("push.personal.asset", "push.personal.position")]
    events = [e for f in pushes for e in normalize_account(f, Market.FUTURE)]
    assert [e.direction for e in events if isinstance(e, PositionUpdate) and e.symbol.startswith("BTC")][-2:] == [
        "flat", "short"]  # the flip: the long closed, then the short
    account = sim.account("mexc", "future")
    latest = _latest(events)
    wallet = account.balances["USDT"]
    assert (latest["USDT"].free, latest["USDT"].locked, latest["USDT"].total) == (wallet.free, wallet.locked,
                                                                                   wallet.total)
    for symbol, position in account.positions.items():
        event = latest[symbol]
        holding = position.size != 0
        raw = symbol.split("/")[0] + "_USDT"
        assert (event.direction, event.signed_size, event.contracts) == (
            position.direction, position.size, abs(position.size) / SIZE[raw])
        assert (event.entry_price, event.liquidation_price, event.unrealized_pnl) == (
            (position.entry_price, position.liquidation_price, position.unrealized_pnl) if holding else (None, None, 0))
        assert (event.realized_pnl, event.leverage, event.margin_mode, event.timestamp) == (
            position.realized_pnl, position.leverage, "isolated", position.updated)
    assert latest["ETH/USDT:USDT"].realized_pnl == Decimal("2.5625")  # (3000.5 - 2990.25) × 0.25
    assert account.positions["BTC/USDT:USDT"].realized_pnl != 0


async def test_a_filter_without_asset_and_position_gets_no_account_pushes(sim):
    creds = sim.credentials_for("mexc")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(STREAM.ws_url(Market.FUTURE, sim.endpoints("mexc", "future"), None))
        await ws.send_json(login_message(creds.api_key, creds.secret, now_ms()))
        await ws.send_json({"method": "personal.filter", "param": {"filters": [{"filter": "position",
                                                                                 "rules": ["ETH_USDT"]}]}})
        await _drain(ws)
        await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.001", "100")
        assert await _drain(ws) == []
        await sim.fill("mexc", "future", "ETH/USDT:USDT", "buy", "0.01", "100")
        assert [f["channel"] for f in await _drain(ws)] == ["push.personal.position"]
        await ws.close()


# ccxt against the simulator ----------------------------------------------------------------------------------------------
def _ccxt(sim: Simulator, market: Market, symbols: list[str]):
    backfiller = Backfiller(ConnectionKey(exchange="mexc", market=market), BACKFILL, sim.credentials_for("mexc"),
                            SPEC.stream.endpoints(market), sim.endpoints("mexc", market))
    return backfiller, backfiller._client(symbols)


async def test_ccxt_fetch_balance_and_the_snapshot_give_the_spot_account(sim):
    await sim.fill("mexc", "spot", "BTC/USDT", "buy", "0.250", "65000.5")
    await sim.place_order("mexc", "spot", "SOL/USDT", "buy", "3", "150.125")
    backfiller, exchange = _ccxt(sim, Market.SPOT, ["BTC/USDT"])
    try:
        balance = await exchange.fetch_balance()
        snapshot = await fetch_snapshot(exchange, Market.SPOT, 1_700_000_000_000)
    finally:
        await backfiller.close()
    account = sim.account("mexc", "spot")
    assert len(account.balances) == 12  # every listed coin and both quotes
    for asset, held in account.balances.items():
        assert tuple(Decimal(balance[asset][k]) for k in ("free", "used", "total")) == (held.free, held.locked,
                                                                                        held.total), asset
    assert {e.asset: (e.free, e.locked, e.total) for e in snapshot} == {
        a: (b.free, b.locked, b.total) for a, b in account.balances.items()}
    assert all(e.source is Source.REST and e.timestamp == 1_700_000_000_000 for e in snapshot)


async def test_ccxt_fetch_balance_and_positions_and_the_exact_snapshot_give_the_contract_account(sim):
    await sim.fill("mexc", "future", "BTC/USDT:USDT", "buy", "0.0050", "64000", parts=2)
    await sim.fill("mexc", "future", "ETH/USDT:USDT", "sell", "0.30", "3000.5")
    await sim.fill("mexc", "future", "ETH/USDT:USDT", "sell", "0.20", "3001.25")  # entry 3000.8: exact as a float
    await sim.fill("mexc", "future", "ETH/USDT:USDT", "sell", "0.03", "3000.3333")  # entry 3000.7789…, many places
    backfiller, exchange = _ccxt(sim, Market.FUTURE, ["BTC/USDT:USDT", "ETH/USDT:USDT"])
    try:
        balance = await exchange.fetch_balance()
        positions = await exchange.fetch_positions()
        snapshot = await fetch_snapshot(exchange, Market.FUTURE, 1_700_000_000_000)
    finally:
        await backfiller.close()
    account = sim.account("mexc", "future")
    wallet = account.balances["USDT"]
    # ccxt: free = availableBalance, used = frozenBalance (orders): the position margin is in neither.
    # (ccxt reads the numbers as floats: its free is the wallet's free to a float's 17 digits)
    assert abs(Decimal(balance["USDT"]["free"]) - wallet.free) < Decimal("1e-6")
    assert Decimal(balance["USDT"]["used"]) == 0
    assert wallet.locked > 0
    by_symbol = {p["symbol"]: p for p in positions}
    assert set(by_symbol) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    for symbol, ccxt_position in by_symbol.items():
        held = account.positions[symbol]
        assert Decimal(ccxt_position["contracts"]) * Decimal(ccxt_position["contractSize"]) == abs(held.size)
        assert (ccxt_position["side"], ccxt_position["marginMode"]) == (held.direction, "isolated")
        assert (Decimal(ccxt_position["leverage"]), ccxt_position["timestamp"]) == (held.leverage, held.updated)
        assert Decimal(ccxt_position["liquidationPrice"]) == pytest.approx(held.liquidation_price)
    assert Decimal(by_symbol["BTC/USDT:USDT"]["entryPrice"]) == account.positions["BTC/USDT:USDT"].entry_price

    balances = [e for e in snapshot if isinstance(e, BalanceUpdate)]
    assert [(e.asset, e.free, e.locked, e.total) for e in balances] == [
        ("USDT", wallet.free, wallet.locked, wallet.total)]
    snapshot_positions = {e.symbol: e for e in snapshot if isinstance(e, PositionUpdate)}
    assert set(snapshot_positions) == set(by_symbol)
    for symbol, event in snapshot_positions.items():
        held = account.positions[symbol]
        assert (event.signed_size, event.entry_price, event.liquidation_price, event.unrealized_pnl,
                event.realized_pnl, event.leverage, event.timestamp) == (
            held.size, held.entry_price, held.liquidation_price, held.unrealized_pnl, held.realized_pnl,
            held.leverage, held.updated)  # fmt: skip
        assert event.source is Source.REST
    assert len(str(wallet.free).replace(".", "")) > 17  # exact in the snapshot, where ccxt's float is not


async def test_account_rest_endpoints_refuse_bad_signatures(sim):
    backfiller, exchange = _ccxt(sim, Market.FUTURE, ["BTC/USDT:USDT"])
    exchange.secret = "0" * 32
    try:
        with pytest.raises(Exception, match="602"):
            await exchange.fetch_positions()
    finally:
        await backfiller.close()
    backfiller, exchange = _ccxt(sim, Market.SPOT, ["BTC/USDT"])
    exchange.secret = "0" * 32
    try:
        with pytest.raises(Exception, match="700002"):
            await exchange.fetch_balance()
    finally:
        await backfiller.close()
