"""Bitget backfill rules: the documented REST history rows, through ccxt, give the stream's Trade for the same fill.

ccxt runs offline: its `fetch` is replaced by one that records the URL and answers with the docs' response
(https://www.bitget.com/api-doc/spot/trade/Get-Fills, .../contract/trade/Get-Order-Fills, Response Example).
The stream side is normalize.py on the `fill` / `orders` pushes Bitget would send for that fill.

Neither history endpoint returns a clientOid, so a backfilled Trade has client_order_id None where the stream's
has one: the comparisons below say so explicitly (it is not part of the dedup key).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import attrs
import pytest

from exchanges import get_exchange
from exchanges.bitget.normalize import normalize
from exchanges.bitget.rest import BACKFILL, DAY_MS, fix_row, raw_symbol
from exchanges.connector import Credentials
from exchanges.simulator import Simulator
from framework.venue import Endpoints
from framework.backfill import Backfiller
from framework.events import ConnectionKey, Market, Source, Trade
from framework.retry import rest_call_policy

FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=3)
CREDS = Credentials(api_key="bg_key", secret="bg_secret", passphrase="bg_pass")
LIVE = Endpoints(ws="wss://ws.bitget.com", rest="https://api.bitget.com")

# Verbatim from https://www.bitget.com/api-doc/spot/trade/Get-Fills (Response Example).
SPOT_DOC = {
    "code": "00000", "msg": "success", "requestTime": 1695865274510,
    "data": [{
        "userId": "**********", "symbol": "BTCUSDT", "orderId": "12345678910", "tradeId": "12345678910",
        "orderType": "market", "side": "buy", "priceAvg": "13000", "size": "0.0007", "amount": "9.1",
        "feeDetail": {"deduction": "no", "feeCoin": "BTC", "totalDeductionFee": "", "totalFee": "-0.0000007"},
        "tradeScope": "taker", "cTime": "1695865232579", "uTime": "1695865233027",
    }],
}
# Verbatim from https://www.bitget.com/api-doc/contract/trade/Get-Order-Fills (Response Example): a fee paid
# in BGB ("deduction": "yes"), the symbol in lower case.
FUTURE_DOC = {
    "code": "00000",
    "data": {
        "fillList": [{
            "tradeId": "123", "symbol": "ethusdt", "orderId": "121212", "price": "1900", "baseVolume": "1",
            "feeDetail": [{"deduction": "yes", "feeCoin": "BGB", "totalDeductionFee": "-0.017118519726",
                           "totalFee": "-0.017118519726"}],
            "side": "buy", "quoteVolume": "1902", "profit": "102", "enterPointSource": "api", "tradeSide": "close",
            "posMode": "hedge_mode", "tradeScope": "taker", "cTime": "1627293509612",
        }],
        "endId": "123",
    },
    "msg": "success", "requestTime": 1627293504612,
}

# The same fills as the stream pushes them (Fill-Channel / Order-Channel push data shapes).
SPOT_FILL_PUSH = {
    "action": "snapshot", "arg": {"instType": "SPOT", "channel": "fill", "instId": "default"},
    "data": [{
        "orderId": "12345678910", "clientOid": "my-order-1", "tradeId": "12345678910", "symbol": "BTCUSDT",
        "orderType": "market", "side": "buy", "priceAvg": "13000", "size": "0.0007", "amount": "9.1",
        "tradeScope": "taker",
        "feeDetail": [{"feeCoin": "BTC", "deduction": "no", "totalDeductionFee": "0", "totalFee": "0.0000007"}],
        "cTime": "1695865232579", "uTime": "1695865233027",
    }],
    "ts": 1695865233100,
}
SPOT_ORDER_PUSH = {
    "action": "snapshot", "arg": {"instType": "SPOT", "channel": "orders", "instId": "default"},
    "data": [{
        "instId": "BTCUSDT", "orderId": "12345678910", "clientOid": "my-order-1", "size": "9.1", "newSize": "0.0007",
        "notional": "9.1", "orderType": "market", "force": "gtc", "side": "buy", "accBaseVolume": "0.0007",
        "priceAvg": "13000", "status": "filled", "cTime": "1695865232500", "uTime": "1695865232579",
        "tradeId": "12345678910", "baseVolume": "0.0007", "fillPrice": "13000", "fillTime": "1695865232579",
        "fillFee": "-0.0000007", "fillFeeCoin": "BTC", "tradeScope": "T",
    }],
    "ts": 1695865233100,
}
FUTURE_FILL_PUSH = {
    "action": "snapshot", "arg": {"instType": "USDT-FUTURES", "channel": "fill", "instId": "default"},
    "data": [{
        "orderId": "121212", "clientOid": "my-order-2", "tradeId": "123", "symbol": "ETHUSDT", "side": "buy",
        "orderType": "market", "posMode": "hedge_mode", "price": "1900", "baseVolume": "1", "quoteVolume": "1902",
        "profit": "102", "tradeSide": "close", "tradeScope": "taker",
        "feeDetail": [{"feeCoin": "BGB", "deduction": "yes", "totalDeductionFee": "-0.017118519726",
                       "totalFee": "-0.017118519726"}],
        "cTime": "1627293509612", "uTime": "1627293509612",
    }],
    "ts": 1627293509700,
}


def backfiller(market: Market) -> Backfiller:
    key = ConnectionKey(exchange="bitget", market=market, account="default")
    target = Endpoints(ws="ws://sim.invalid", rest=f"http://sim.invalid/bitget_{market.value}")
    return Backfiller(key, BACKFILL, CREDS, LIVE, target, retry_policy=FAST_REST)


def answering(bf: Backfiller, symbols: list[str], *responses: dict) -> list[str]:
    """Point the backfiller's ccxt client at canned responses (one per call, the last repeated); returns the URLs."""
    exchange = bf._client(symbols)
    urls: list[str] = []

    async def fetch(url, method="GET", headers=None, body=None):
        urls.append(url)
        assert headers["ACCESS-KEY"] == CREDS.api_key and headers["ACCESS-PASSPHRASE"] == CREDS.passphrase
        return copy.deepcopy(responses[min(len(urls), len(responses)) - 1])

    exchange.fetch = fetch
    return urls


def stream_trade(push: dict, market: Market) -> Trade:
    [trade] = [e for e in normalize(copy.deepcopy(push), market) if isinstance(e, Trade)]
    return trade


def without_client_id(trade: Trade) -> Trade:
    return attrs.evolve(trade, client_order_id=None)


# rules ----------------------------------------------------------------------------------------------------------
def test_rules_values():
    assert get_exchange("bitget").backfill is BACKFILL
    assert BACKFILL.ccxt_id == "bitget" and BACKFILL.needs_symbol
    assert BACKFILL.page_limit == 100  # both endpoints: "Default: 100, max 100"
    assert BACKFILL.window_ms == 90 * DAY_MS == 7_776_000_000  # "must not exceed 90 days" / "three months"
    assert BACKFILL.params == {Market.FUTURE: {"productType": "USDT-FUTURES"}}
    assert BACKFILL.options[Market.SPOT] == {"defaultType": "spot", "uta": False}
    assert BACKFILL.options[Market.FUTURE]["defaultType"] == "swap" and BACKFILL.options[Market.FUTURE]["uta"] is False
    assert raw_symbol(Market.SPOT, "BTC/USDT") == raw_symbol(Market.FUTURE, "BTC/USDT:USDT") == "BTCUSDT"
    assert BACKFILL.contract_size(Market.FUTURE, "BTCUSDT") is None  # USDT-FUTURES sizes are base coin


@pytest.mark.parametrize("market, symbol, path, extra", [
    (Market.SPOT, "BTC/USDT", "/bitget_spot/api/v2/spot/trade/fills", {}),
    (Market.FUTURE, "BTC/USDT:USDT", "/bitget_future/api/v2/mix/order/fills", {"productType": "USDT-FUTURES"}),
])
async def test_one_request_per_window_with_start_end_limit_and_no_uta_probe(market, symbol, path, extra):
    bf = backfiller(market)
    bf.rules = attrs.evolve(bf.rules, history_ms=None)  # the window split alone
    empty = {"code": "00000", "msg": "success", "requestTime": 1,
             "data": [] if market is Market.SPOT else {"fillList": [], "endId": None}}
    urls = answering(bf, [symbol], empty)
    t0 = 1_700_000_000_000
    try:
        assert await bf.fetch(symbol, t0, t0 + 100 * DAY_MS) == []
    finally:
        await bf.close()
    assert len(urls) == 2  # 100 days: a 90-day window, then the rest; no /api/v3/account/settings call
    queries = [dict(parse_qsl(urlsplit(u).query)) for u in urls]
    assert all(urlsplit(u).path == path for u in urls)
    # Each request spans at most 90 days including the 1 ms margins on both sides.
    first_end = t0 + 90 * DAY_MS - 3
    assert queries[0] == {"symbol": "BTCUSDT", "startTime": str(t0 - 1), "endTime": str(first_end + 1),
                          "limit": "100"} | extra
    assert int(queries[0]["endTime"]) - int(queries[0]["startTime"]) <= 90 * DAY_MS
    assert queries[1]["startTime"] == str(first_end + 1 - 1)


async def test_a_start_older_than_the_90_days_bitget_keeps_is_clamped(market=Market.SPOT):
    bf = backfiller(market)
    empty = {"code": "00000", "msg": "success", "requestTime": 1, "data": []}
    urls = answering(bf, ["BTC/USDT"], empty)
    t0 = 1_700_000_000_000
    try:
        await bf.fetch("BTC/USDT", t0 - 400 * DAY_MS, t0)
    finally:
        await bf.close()
    (query,) = [dict(parse_qsl(urlsplit(u).query)) for u in urls]
    assert int(query["startTime"]) == t0 - 90 * DAY_MS + 60_000 - 1


# documented rows → the stream's Trade ---------------------------------------------------------------------------
async def _rows(market: Market, symbol: str, response: dict) -> tuple[Backfiller, list[dict]]:
    bf = backfiller(market)
    answering(bf, [symbol], response)
    return bf, await bf._call(bf._exchange, symbol, 1_600_000_000_000, 1_700_000_000_000)


async def test_documented_spot_row_is_the_streams_trade():
    bf, rows = await _rows(Market.SPOT, "BTC/USDT", SPOT_DOC)
    try:
        [row] = rows
        fixed = bf.to_trade(fix_row(Market.SPOT, row))
        plain = bf.to_trade(row)  # today's framework, without fix_row: the same for this row
    finally:
        await bf.close()
    expected = Trade(
        exchange="bitget", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", trade_id="12345678910",
        order_id="12345678910", client_order_id=None, side="buy", amount=Decimal("0.0007"), price=Decimal(13000),
        cost=Decimal("9.1"), fee_cost=Decimal("0.0000007"), fee_currency="BTC", is_maker=False,
        timestamp=1695865232579,
    )
    assert fixed == plain == expected and fixed.source is Source.REST
    assert fixed.dedup_key == stream_trade(SPOT_FILL_PUSH, Market.SPOT).dedup_key
    assert without_client_id(stream_trade(SPOT_FILL_PUSH, Market.SPOT)) == fixed
    assert without_client_id(stream_trade(SPOT_ORDER_PUSH, Market.SPOT)) == fixed
    assert fixed.raw == SPOT_DOC["data"][0]


async def test_documented_futures_row_with_a_bgb_fee_is_the_streams_trade():
    bf, rows = await _rows(Market.FUTURE, "ETH/USDT:USDT", FUTURE_DOC)
    try:
        [row] = rows
        fixed = bf.to_trade(fix_row(Market.FUTURE, row))
    finally:
        await bf.close()
    expected = Trade(
        exchange="bitget", market="future", symbol="ETH/USDT:USDT", symbol_raw="ETHUSDT", trade_id="123",
        order_id="121212", side="buy", amount=Decimal(1), price=Decimal(1900), cost=Decimal(1902),
        fee_cost=Decimal("0.017118519726"), fee_currency="BGB", is_maker=False, timestamp=1627293509612,
    )
    assert fixed == expected
    assert without_client_id(stream_trade(FUTURE_FILL_PUSH, Market.FUTURE)) == fixed


# fix_row ----------------------------------------------------------------------------------------------------------
def _ccxt_row(info: dict, **changes) -> dict:
    row = {"info": info, "id": info["tradeId"], "order": info["orderId"], "symbol": "BTC/USDT", "side": "buy",
           "takerOrMaker": info.get("tradeScope"), "price": "13000", "amount": "0.0007", "cost": "9.1",
           "timestamp": 1695865232579, "fee": {"cost": "0.0000007", "currency": "BTC"}, "clientOrderId": None}
    return row | changes


def test_fix_row_takes_the_fee_from_info_whatever_ccxt_made_of_it():
    info = copy.deepcopy(SPOT_DOC["data"][0])
    # a ccxt that honours "deduction": "yes" keeps the sign; one with commonCurrencies renames the coin
    info["feeDetail"] = {"deduction": "yes", "feeCoin": "TONCOIN", "totalDeductionFee": "", "totalFee": "-0.5"}
    row = _ccxt_row(info, fee={"cost": "-0.5", "currency": "TON"})
    assert fix_row(Market.SPOT, row)["fee"] == {"cost": "0.5", "currency": "TONCOIN"}
    assert row["fee"] == {"cost": "-0.5", "currency": "TON"}  # the input is left alone


def test_fix_row_a_rebate_is_a_negative_fee():
    info = copy.deepcopy(FUTURE_DOC["data"]["fillList"][0]) | {"tradeScope": "maker"}
    info["feeDetail"] = [{"deduction": "no", "feeCoin": "USDT", "totalDeductionFee": "0", "totalFee": "0.0038"}]
    fixed = fix_row(Market.FUTURE, _ccxt_row(info, fee={"cost": "-0.0038", "currency": "USDT"}))
    assert fixed["fee"] == {"cost": "-0.0038", "currency": "USDT"} and fixed["takerOrMaker"] == "maker"


@pytest.mark.parametrize("scope, expected", [("marker", "maker"), ("maker", "maker"), ("taker", "taker"),
                                             ("M", "maker"), ("T", "taker")])
def test_fix_row_reads_the_maker_flag_as_the_stream_does(scope, expected):
    info = copy.deepcopy(SPOT_DOC["data"][0]) | {"tradeScope": scope}
    assert fix_row(Market.SPOT, _ccxt_row(info))["takerOrMaker"] == expected


def test_fix_row_takes_a_client_order_id_from_info_when_bitget_sends_one():
    info = copy.deepcopy(SPOT_DOC["data"][0])
    assert fix_row(Market.SPOT, _ccxt_row(info)).get("clientOrderId") is None  # the documented rows have none
    assert fix_row(Market.SPOT, _ccxt_row(info | {"clientOid": "c-1"}))["clientOrderId"] == "c-1"
    assert fix_row(Market.FUTURE, _ccxt_row(info | {"clientOId": "c-2"}))["clientOrderId"] == "c-2"


def test_fix_row_without_fee_detail_keeps_ccxts_fee():
    info = {k: v for k, v in SPOT_DOC["data"][0].items() if k != "feeDetail"}
    row = _ccxt_row(info, fee={"cost": None, "currency": None})
    assert fix_row(Market.SPOT, row)["fee"] == {"cost": None, "currency": None}


# against the simulator: the backfilled Trade of each fill is the streamed one --------------------------------------
@pytest.mark.parametrize("market, symbol", [(Market.SPOT, "BTC/USDT"), (Market.FUTURE, "BTC/USDT:USDT")])
async def test_backfilled_trades_equal_the_streamed_ones_on_the_simulator(market, symbol):
    async with Simulator(exchanges=["bitget"], seed=11) as sim:
        venue = sim.venue("bitget")
        pushed = []
        for side, maker in (("buy", True), ("sell", False)):
            order, fills = await sim.fill("bitget", market, symbol, side, "0.02", "100.7", parts=2, is_maker=maker,
                                          client_order_id=f"cid-{side}")
            for fill in fills:
                arg = {"instType": "SPOT" if market is Market.SPOT else "USDT-FUTURES", "channel": "fill"}
                pushed += normalize({"arg": arg, "data": [venue._fill_row(market, order, fill)]}, market)
        key = sim.connector("bitget", market).key
        bf = Backfiller(key, BACKFILL, sim.credentials_for("bitget"), get_exchange("bitget").stream.endpoints(market),
                        sim.endpoints("bitget", market), retry_policy=FAST_REST)
        try:
            since = sim.ledger("bitget", market).fills[0].time - 1000
            fetched = await bf.fetch(symbol, since)
            rows = await bf._call(bf._exchange, symbol, since, fetched[-1].timestamp + 1)
            fixed = sorted((bf.to_trade(fix_row(market, r)) for r in rows), key=lambda t: (t.timestamp, t.trade_id))
        finally:
            await bf.close()
    streamed = sorted((without_client_id(t) for t in pushed), key=lambda t: (t.timestamp, t.trade_id))
    assert len(streamed) == 4
    # The rows name no client id; the Backfiller's order query gives each fill its order's, as the stream does.
    assert fetched == sorted(pushed, key=lambda t: (t.timestamp, t.trade_id)) and fixed == streamed
    assert {t.client_order_id for t in pushed} == {"cid-buy", "cid-sell"}
