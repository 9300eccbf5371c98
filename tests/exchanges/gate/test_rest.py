"""Gate backfill rules: Gate's documented history rows, read by ccxt and `fix_row`, give the stream's Trades."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import pytest

from exchanges.connector import Credentials
from exchanges.gate import SPEC
from exchanges.gate.normalize import normalize
from exchanges.gate.rest import (
    BACKFILL,
    as_trade,
    contract_size,
    fetch_rows,
    fix_row,
    page_params,
    raw_symbol,
)
from exchanges.gate.stream import handshake
from exchanges.simulator import Simulator
from framework.venue import Endpoints
from framework.backfill import Backfiller
from framework.events import ConnectionKey, Market, Source, Trade, now_ms

pytestmark = pytest.mark.timeout(30)

CREDS = Credentials(api_key="gate-key-1234", secret="gate-secret-5678")
# docs "Query personal trading records" (GET /spot/my_trades), 200 response sample
SPOT_ROW = """{"id": "1232893232", "create_time": "1548000000", "create_time_ms": "1548000000123.456",
 "order_id": "4128442423", "side": "buy", "role": "maker", "amount": "0.15", "price": "0.03", "fee": "0.0005",
 "fee_currency": "ETH", "point_fee": "0", "gt_fee": "0", "sequence_id": "588018", "text": "t-test"}"""
# docs "Query personal trading records by time range" (GET /futures/{settle}/my_trades_timerange), 200 sample
FUTURES_ROW = """{"trade_id": "121234231", "create_time": 1514764800.123, "contract": "BTC_USDT",
 "order_id": "21893289839", "size": 100, "price": "100.123", "text": "t-123456", "fee": "0.01", "point_fee": "0",
 "role": "taker", "close_size": 0}"""


def backfiller(market: Market, endpoints: Endpoints | None = None, credentials: Credentials = CREDS) -> Backfiller:
    key = ConnectionKey(exchange="gate", market=market, account="default")
    offline = endpoints or Endpoints(ws="ws://127.0.0.1:9/gate", rest=f"http://127.0.0.1:9/gate_{market.value}")
    return Backfiller(key, BACKFILL, credentials, SPEC.stream.endpoints(market), offline)


def stream_trade(market: Market, row: dict) -> Trade:
    channel = "spot.usertrades" if market is Market.SPOT else "futures.usertrades"
    [trade] = normalize({"channel": channel, "event": "update", "result": [row]}, market)
    return trade


def ccxt_row(filler: Backfiller, symbol: str, text: str) -> dict:
    """Gate's JSON text parsed as ccxt parses it (floats for JSON numbers), then ccxt's own parse_trade."""
    exchange = filler._client([symbol])
    return exchange.parse_trade(json.loads(text), exchange.market(symbol))


def backfilled(filler: Backfiller, row: dict) -> Trade:
    """What the Backfiller makes of one ccxt row: `fix_row`, then `to_trade`."""
    return filler.to_trade(BACKFILL.fix_row(filler.key.market, row))


# rules ------------------------------------------------------------------------------------------------------------
def test_rules_are_gates_limits_and_endpoints():
    assert SPEC.backfill is BACKFILL
    assert BACKFILL.ccxt_id == "gate" and BACKFILL.needs_symbol
    assert BACKFILL.options == {Market.SPOT: {"defaultType": "spot"}, Market.FUTURE: {"defaultType": "swap"}}
    assert BACKFILL.params == {Market.FUTURE: {"settle": "usdt"}}
    assert BACKFILL.window_ms == 30 * 24 * 3600 * 1000  # spot: "The range not allowed to exceed 30 days"
    assert BACKFILL.page_limit == 1000  # "Pagination": limit at most 1000
    assert (BACKFILL.fix_row, BACKFILL.fetch_rows) == (fix_row, fetch_rows)


def test_symbols_and_contract_sizes_agree_with_normalize():
    assert raw_symbol(Market.SPOT, "BTC/USDT") == raw_symbol(Market.FUTURE, "BTC/USDT:USDT") == "BTC_USDT"
    assert contract_size(Market.SPOT, "BTC_USDT") is None
    assert contract_size(Market.FUTURE, "BTC_USDT") == Decimal("0.0001")
    assert contract_size(Market.FUTURE, "ETH_USDT") == Decimal("0.01")
    assert contract_size(Market.FUTURE, "NEW_USDT") == 1
    row = {"id": 1, "order_id": "2", "contract": "NEW_USDT", "size": -4, "price": "2.5", "role": "maker",
           "create_time_ms": 1700000000000, "fee": "0", "text": "api"}
    assert stream_trade(Market.FUTURE, row).cost == 4 * Decimal("2.5") * contract_size(Market.FUTURE, "NEW_USDT")


def test_page_params_are_spot_pages_from_one_and_futures_row_offsets():
    assert [page_params(Market.SPOT, n, 1000) for n in (0, 1, 2)] == [{"page": 1}, {"page": 2}, {"page": 3}]
    assert [page_params(Market.FUTURE, n, 7) for n in (0, 1, 2)] == [{"offset": 0}, {"offset": 7}, {"offset": 14}]


# a documented row → the stream's Trade -------------------------------------------------------------------------------
async def test_spot_docs_row_gives_the_streams_trade():
    filler = backfiller(Market.SPOT)
    try:
        row = ccxt_row(filler, "ETH/BTC", SPOT_ROW.replace('"id"', '"currency_pair": "ETH_BTC", "id"'))
        assert row.get("clientOrderId") is None  # what ccxt alone gives
        trade = backfilled(filler, row)
    finally:
        await filler.close()
    stream = stream_trade(Market.SPOT, {
        "id": 1232893232, "user_id": 1, "order_id": "4128442423", "currency_pair": "ETH_BTC",
        "create_time": 1548000000, "create_time_ms": "1548000000123.456", "side": "buy", "amount": "0.15",
        "role": "maker", "price": "0.03", "fee": "0.0005", "fee_currency": "ETH", "point_fee": "0", "gt_fee": "0",
        "text": "t-test",
    })
    assert trade == stream
    assert trade.source is Source.REST and stream.source is Source.WEBSOCKET
    assert (trade.symbol, trade.symbol_raw, trade.trade_id, trade.order_id, trade.client_order_id) == (
        "ETH/BTC", "ETH_BTC", "1232893232", "4128442423", "test")
    assert (trade.amount, trade.price, trade.cost, trade.fee_cost, trade.fee_currency, trade.is_maker) == (
        Decimal("0.15"), Decimal("0.03"), Decimal("0.0045"), Decimal("0.0005"), "ETH", True)
    assert trade.timestamp == 1548000000123


async def test_futures_timerange_docs_row_gives_the_streams_trade():
    filler = backfiller(Market.FUTURE)
    try:
        row = ccxt_row(filler, "BTC/USDT:USDT", FUTURES_ROW)
        assert row.get("clientOrderId") is None
        trade = backfilled(filler, row)
    finally:
        await filler.close()
    stream = stream_trade(Market.FUTURE, {
        "id": 121234231, "create_time": 1514764800, "create_time_ms": 1514764800123, "contract": "BTC_USDT",
        "order_id": "21893289839", "size": 100, "price": "100.123", "role": "taker", "text": "t-123456",
        "fee": Decimal("0.01"), "point_fee": 0,
    })
    assert trade == stream
    assert (trade.symbol, trade.trade_id, trade.client_order_id, trade.side.value) == (
        "BTC/USDT:USDT", "121234231", "123456", "buy")
    # contracts, as the stream counts them; cost in USDT through the contract size normalize uses
    assert (trade.amount, trade.cost, trade.fee_cost, trade.fee_currency) == (
        Decimal(100), Decimal(100) * Decimal("100.123") * Decimal("0.0001"), Decimal("0.01"), "USDT")
    assert trade.timestamp == 1514764800123


@pytest.mark.parametrize(("create_time", "ms"), [
    (1514764800.123, 1514764800123),
    (1645465199.5472, 1645465199547),  # ccxt's own sample: sub-millisecond digits are dropped, as normalize does
    (1700000000.1, 1700000000100),
    (1700000000, 1700000000000),
    ("1700000000.999", 1700000000999),
])
def test_futures_time_is_the_exact_millisecond_of_the_number_gate_wrote(create_time, ms):
    info = json.loads(FUTURES_ROW)
    info["create_time"] = create_time
    assert as_trade(Market.FUTURE, info).timestamp == ms


def test_a_sell_is_negative_size_and_gates_own_texts_are_no_client_ids():
    info = json.loads(FUTURES_ROW) | {"size": "-3", "text": "api"}
    trade = as_trade(Market.FUTURE, info)
    assert (trade.side.value, trade.amount, trade.client_order_id) == ("sell", Decimal(3), None)
    spot = json.loads(SPOT_ROW) | {"currency_pair": "BTC_USDT", "text": "apiv4"}
    assert as_trade(Market.SPOT, spot).client_order_id is None


async def test_a_fee_paid_in_gt_is_what_the_stream_reports_not_cccxts_empty_fee():
    text = SPOT_ROW.replace('"id"', '"currency_pair": "ETH_BTC", "id"').replace(
        '"fee": "0.0005"', '"fee": "0"').replace('"gt_fee": "0"', '"gt_fee": "0.0012"')
    filler = backfiller(Market.SPOT)
    try:
        row = ccxt_row(filler, "ETH/BTC", text)
        assert row["fee"]["cost"] is None and len(row["fees"]) == 2  # ccxt: a USDT fee of 0 and a GT one
        trade = backfilled(filler, row)
    finally:
        await filler.close()
    assert (trade.fee_cost, trade.fee_currency) == (Decimal("0.0012"), "GT")
    assert trade == stream_trade(Market.SPOT, json.loads(text))


async def test_fix_row_is_idempotent_and_keeps_ccxts_symbol_and_info():
    filler = backfiller(Market.FUTURE)
    try:
        row = ccxt_row(filler, "BTC/USDT:USDT", FUTURES_ROW)
    finally:
        await filler.close()
    once = fix_row(Market.FUTURE, row)
    assert fix_row(Market.FUTURE, once) == once
    assert (once["symbol"], once["info"]) == (row["symbol"], row["info"])
    assert (once["id"], once["clientOrderId"], once["timestamp"]) == ("121234231", "123456", 1514764800123)


# fetch_rows: Gate's whole-second filter, read to its end when the request is narrow --------------------------------
class FakeGate:
    """ccxt's Gate as fetch_rows sees it: rows of the asked whole seconds, newest first, `page` / `offset` pages,
    then ccxt's own parse (rows before `since` dropped, oldest first)."""

    def __init__(self, times: list[int], spot: bool = True) -> None:
        self.rows = [{"id": str(n), "timestamp": t, "info": {"create_time_ms": f"{t}.{n:03d}"}}
                     for n, t in enumerate(times)]
        self.spot, self.calls = spot, []
        self.options = {"defaultType": "spot" if spot else "swap"}

    def market(self, symbol: str) -> dict:
        return {"spot": self.spot}

    async def fetch_my_trades(self, symbol, since, limit, params):
        self.calls.append(dict(params))
        first, last = since // 1000, params["until"] // 1000
        asked = [r for r in reversed(self.rows) if first <= r["timestamp"] // 1000 <= last]
        skip = (params.get("page", 1) - 1) * limit if self.spot else params.get("offset", 0)
        page = asked[skip:skip + limit]
        return sorted((r for r in page if r["timestamp"] >= since), key=lambda r: r["timestamp"])


async def test_a_wide_request_is_one_call_as_ccxt_answers_it():
    gate = FakeGate([1_700_000_000_000 + 10 * n for n in range(20)])
    rows = await fetch_rows(gate, "BTC/USDT", 1_699_999_990_000, 7, {"until": 1_700_000_005_000})
    assert len(rows) == 7 and gate.calls == [{"until": 1_700_000_005_000}]


async def test_a_short_first_page_is_the_whole_answer():
    gate = FakeGate([1_700_000_000_000 + n for n in range(5)])
    rows = await fetch_rows(gate, "BTC/USDT", 1_700_000_000_000, 7, {"until": 1_700_000_000_999})
    assert len(rows) == 5 and len(gate.calls) == 1


@pytest.mark.parametrize(("spot", "pages"), [(True, [{"page": 2}, {"page": 3}, {"page": 4}]),
                                             (False, [{"offset": 7}, {"offset": 14}, {"offset": 21}])])
async def test_a_narrow_request_reads_every_page_and_keeps_the_asked_milliseconds(spot, pages):
    times = [1_700_000_000_000 + n for n in range(25)]  # 25 fills in one second, 7 a page
    gate = FakeGate(times, spot=spot)
    since, until = 1_700_000_000_003, 1_700_000_000_020
    rows = await fetch_rows(gate, "BTC/USDT", since, 7, {"until": until})
    assert [call.get("page", call.get("offset")) for call in gate.calls[1:]] == [
        p.get("page", p.get("offset")) for p in pages]
    assert sorted(r["timestamp"] for r in rows) == [t for t in times if since <= t <= until]  # 18 < 25, each once


# on the simulator, through ccxt: the same fills by REST as by the stream ---------------------------------------------
async def stream_trades(http: aiohttp.ClientSession, sim: Simulator, market: Market, symbol: str) -> list[Trade]:
    """Subscribe as the connection does, make three fills, and normalize what the socket pushes."""
    creds, endpoints = sim.credentials_for("gate"), sim.endpoints("gate", market)
    user_id = await SPEC.stream.open_listen_key(http, creds, market, endpoints, now_ms())
    ws = await http.ws_connect(endpoints.ws)
    for frame in handshake(creds, market, now_ms(), user_id):
        await ws.send_json(frame)
        assert SPEC.stream.classify(json.loads((await ws.receive(timeout=5)).data), market).value == "ack"
    await sim.fill("gate", market, symbol, "buy", "0.0030", "64000.5", client_order_id="alpha-1", parts=2)
    await sim.fill("gate", market, symbol, "sell", "0.0010", "64001.5")
    trades: list[Trade] = []
    async with asyncio.timeout(5):
        while len(trades) < 3:
            message = json.loads((await ws.receive()).data, parse_float=Decimal)
            trades += [e for e in normalize(message, market) if isinstance(e, Trade)]
    await ws.close()
    return trades


@pytest.mark.parametrize(("market", "symbol"), [(Market.SPOT, "BTC/USDT"), (Market.FUTURE, "BTC/USDT:USDT")])
async def test_backfilled_trades_equal_the_streams_on_the_simulator(market, symbol):
    async with Simulator(exchanges=["gate"]) as sim, aiohttp.ClientSession() as http:
        streamed = await stream_trades(http, sim, market, symbol)
        filler = backfiller(market, sim.endpoints("gate", market), sim.credentials_for("gate"))
        try:
            fetched = await filler.fetch(symbol, streamed[0].timestamp - 5000)
        finally:
            await filler.close()
    assert fetched == sorted(streamed, key=lambda t: (t.timestamp, t.trade_id))
    assert [t.client_order_id for t in fetched] == ["alpha-1", "alpha-1", None]
    assert {t.source for t in fetched} == {Source.REST}

