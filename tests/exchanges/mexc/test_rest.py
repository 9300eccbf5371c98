"""MEXC backfill rules: the documented history rows read through ccxt give the stream's Trade for the same fill,
the request each window sends, the venue's limits, and the paging against the simulator (both markets).

The Backfiller calls `rules.fetch_rows` instead of `exchange.fetch_my_trades` and runs each row through
`rules.fix_row` before `to_trade`; the row tests below do the same by hand.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import attrs
import pytest

from exchanges import get_exchange
from exchanges.connector import Credentials
from exchanges.mexc import SPEC
from exchanges.mexc.normalize import normalize
from exchanges.mexc.proto import PrivateDealsV3Api, PushDataV3ApiWrapper
from exchanges.mexc.rest import BACKFILL, PAGE_LIMIT, WINDOW_MS, contract_size, fetch_rows, fix_row, raw_symbol
from exchanges.simulator import Simulator
from framework.venue import Endpoints
from framework.backfill import Backfiller, BackfillRules
from framework.connection import decode_frame
from framework.events import ConnectionKey, Market, Side, Source, Trade
from framework.retry import rest_call_policy

pytestmark = pytest.mark.timeout(60)

CREDS = Credentials(api_key="mx0aBYs33eIilxBW5C", secret="45d0b3c26f2644f19bfb98b07741b2f5")
NOWHERE = Endpoints(ws="ws://127.0.0.1:9", rest="http://127.0.0.1:9")  # offline markets, no call made
FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=6)
DAY_MS = 24 * 3600 * 1000


def offline_backfiller(market: Market, rules: BackfillRules = BACKFILL) -> Backfiller:
    key = ConnectionKey(exchange="mexc", market=market)
    return Backfiller(key, rules, CREDS, SPEC.stream.endpoints(market), NOWHERE)


def same_fill(rest: Trade, stream: Trade) -> None:
    assert rest.source is Source.REST
    assert rest == stream  # received_at / source / raw are not compared


# rules ----------------------------------------------------------------------------------------------------------------
def test_rules_values():
    assert get_exchange("mexc").backfill is BACKFILL
    assert BACKFILL.ccxt_id == "mexc"
    assert BACKFILL.options == {Market.SPOT: {"defaultType": "spot"}, Market.FUTURE: {"defaultType": "swap"}}
    assert BACKFILL.params == {Market.SPOT: {}, Market.FUTURE: {"page_num": 1}}
    assert (BACKFILL.window_ms, BACKFILL.page_limit, BACKFILL.needs_symbol) == (7 * DAY_MS, 100, True)
    assert BACKFILL.history_ms == 30 * DAY_MS  # spot: "only the transaction records in the past 1 month"
    assert (WINDOW_MS, PAGE_LIMIT) == (7 * DAY_MS, 100)
    assert WINDOW_MS <= 30 * DAY_MS  # spot: the past month only; contract: ≤ 90 days per request
    assert raw_symbol(Market.SPOT, "BTC/USDT") == "BTCUSDT"
    assert raw_symbol(Market.FUTURE, "BTC/USDT:USDT") == "BTC_USDT"
    assert contract_size(Market.SPOT, "BTCUSDT") is None
    assert contract_size(Market.FUTURE, "BTC_USDT") == Decimal("0.0001")  # as normalize.py converts
    assert contract_size(Market.FUTURE, "ETH_USDT") == Decimal("0.01")
    assert contract_size(Market.FUTURE, "ZZTOP_USDT") == Decimal(1)


def test_rules_carry_the_hooks():
    assert (BACKFILL.fetch_rows, BACKFILL.fix_row) == (fetch_rows, fix_row)


# documented rows → the stream's Trade ---------------------------------------------------------------------------------
# The spot "Spot Account Deals" sample (normalize.py's docstring) and the same fill as an "Account Trade List" row
# (the documented fields: symbol, id, orderId, orderListId, price, qty, quoteQty, commission, commissionAsset, time,
# isBuyer, isMaker, isBestMatch, isSelfTrade, clientOrderId).
SPOT_DEAL = PrivateDealsV3Api(
    price="3.6962", quantity="1", amount="3.6962", tradeType=2, isMaker=False, tradeId="505979017439002624X1",
    orderId="C02__505979017439002624115", clientOrderId="", feeAmount="0.0003998377369698171", feeCurrency="MX",
    time=1736417034280,
)
SPOT_ROW = (
    '{"symbol": "MXUSDT", "id": "505979017439002624X1", "orderId": "C02__505979017439002624115", "orderListId": -1,'
    ' "price": "3.6962", "qty": "1", "quoteQty": "3.6962", "commission": "0.0003998377369698171",'
    ' "commissionAsset": "MX", "time": 1736417034280, "isBuyer": false, "isMaker": false, "isBestMatch": true,'
    ' "isSelfTrade": false, "clientOrderId": null}'
)


def spot_stream_trade(deal: PrivateDealsV3Api) -> Trade:
    frame = PushDataV3ApiWrapper(channel="spot@private.deals.v3.api.pb", symbol="MXUSDT", sendTime=deal.time,
                                 privateDeals=deal).SerializeToString()
    (trade,) = normalize(frame, Market.SPOT)
    return trade


@pytest.mark.parametrize("client_order_id", [None, "my-order-7"])
async def test_spot_history_row_gives_the_streams_trade(client_order_id):
    deal = PrivateDealsV3Api()
    deal.CopyFrom(SPOT_DEAL)
    deal.clientOrderId = client_order_id or ""
    row = json.loads(SPOT_ROW)  # as ccxt parses the answer
    row["clientOrderId"] = client_order_id
    backfiller = offline_backfiller(Market.SPOT)
    exchange = backfiller._client(["MX/USDT"])
    try:
        rest = backfiller.to_trade(fix_row(Market.SPOT, exchange.parse_trade(row, exchange.market("MX/USDT"))))
    finally:
        await backfiller.close()
    stream = spot_stream_trade(deal)
    same_fill(rest, stream)
    assert (rest.side, rest.client_order_id, rest.fee_cost) == (Side.SELL, client_order_id,
                                                              Decimal("0.0003998377369698171"))


# The contract "push.personal.order.deal" sample (normalize.py's docstring) and the same fill as an order_deals row
# (the documented fields: id, symbol, side, vol, price, feeCurrency, fee, timestamp, profit, isTaker, category,
# orderId, opponentOrderId). ccxt's own sample row adds positionMode and spells the taker flag `taker`.
CONTRACT_PUSH = (
    '{"channel": "push.personal.order.deal", "data": {"id": 987654321, "orderId": 123456789,'
    ' "externalOid": "ext_001", "symbol": "BTC_USDT", "side": %d, "vol": 10, "price": 45000.5, "fee": 0.225,'
    ' "feeCurrency": "USDT", "isTaker": true, "timestamp": 1760942212000}}'
)
CONTRACT_ROW = (
    '{"id": 987654321, "symbol": "BTC_USDT", "side": %d, "vol": 10, "price": 45000.5, "feeCurrency": "USDT",'
    ' "fee": 0.225, "timestamp": 1760942212000, "profit": 0, "isTaker": true, "category": 1,'
    ' "orderId": 123456789, "opponentOrderId": 0}'
)


@pytest.mark.parametrize("side, expected", [(1, Side.BUY), (2, Side.BUY), (3, Side.SELL), (4, Side.SELL)])
@pytest.mark.parametrize("shape", ["documented", "ccxt-sample", "with-external-oid"])
async def test_contract_history_row_gives_the_streams_trade(side, expected, shape):
    row = json.loads(CONTRACT_ROW % side)  # JSON numbers as ccxt parses them (floats)
    if shape == "ccxt-sample":
        row["positionMode"] = 1
        row["taker"] = row.pop("isTaker")
    elif shape == "with-external-oid":
        row["externalOid"] = "ext_001"
    backfiller = offline_backfiller(Market.FUTURE)
    exchange = backfiller._client(["BTC/USDT:USDT"])
    try:
        parsed = exchange.parse_trade(row, exchange.market("BTC/USDT:USDT"))  # as fetch_my_trades would give it
        rest = backfiller.to_trade(fix_row(Market.FUTURE, parsed))
    finally:
        await backfiller.close()
    (stream,) = normalize(decode_frame(CONTRACT_PUSH % side), Market.FUTURE)
    if shape != "with-external-oid":  # the documented row carries no client order id (not in the dedup key)
        stream = attrs.evolve(stream, client_order_id=None)
    same_fill(rest, stream)
    assert (rest.side, rest.amount, rest.cost) == (expected, Decimal(10), Decimal("45.0005"))  # 10 × 45000.5 × 0.0001
    assert (rest.trade_id, rest.order_id, rest.is_maker, rest.timestamp) == ("987654321", "123456789", False,
                                                                             1760942212000)


def test_fix_row_is_idempotent_and_refuses_an_unknown_side():
    row = {"symbol": "BTC/USDT:USDT", "info": json.loads(CONTRACT_ROW % 2)}
    once = fix_row(Market.FUTURE, row)
    assert fix_row(Market.FUTURE, once) == once
    assert (once["side"], once["fee"], once["takerOrMaker"]) == ("buy", {"cost": "0.225", "currency": "USDT"},
                                                                 "taker")
    with pytest.raises(ValueError, match="unknown side 7"):
        fix_row(Market.FUTURE, {"info": json.loads(CONTRACT_ROW % 7)})


# the request of one window --------------------------------------------------------------------------------------------
async def test_contract_window_asks_end_time_until_and_keeps_every_number_exact():
    """order_deals gets start_time / end_time = the window (not ccxt's since + 90 days, nor an `until=`), page_num 1,
    page_size; the rows come back whatever their time (the caller filters), with the numbers MEXC wrote."""
    row = (CONTRACT_ROW % 3).replace('"fee": 0.225', '"fee": 0.12345678901234567891')
    text = '{"success": true, "code": 0, "data": [' + row + "]}"
    calls = []
    backfiller = offline_backfiller(Market.FUTURE)
    exchange = backfiller._client(["BTC/USDT:USDT"])

    async def order_deals(params):
        calls.append(params)
        exchange.last_http_response = text
        return json.loads(text)  # floats, as ccxt parses

    exchange.contractPrivateGetOrderListOrderDeals = order_deals
    try:
        rows = await fetch_rows(exchange, "BTC/USDT:USDT", 1760000000000, 100, {"page_num": 1, "until": 1760000099999})
        trade = backfiller.to_trade(fix_row(Market.FUTURE, rows[0]))
    finally:
        await backfiller.close()
    assert calls == [{"symbol": "BTC_USDT", "page_num": 1, "start_time": 1760000000000, "end_time": 1760000099999,
                      "page_size": 100}]
    assert trade.fee_cost == Decimal("0.12345678901234567891")  # a float would keep 17 digits
    assert (trade.side, trade.timestamp) == (Side.SELL, 1760942212000)  # outside the window: still returned


# against the simulator ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("market, symbol", [("spot", "BTC/USDT"), ("future", "BTC/USDT:USDT")])
async def test_backfill_pages_through_more_fills_than_a_page_holds(market, symbol):
    async with Simulator(exchanges=["mexc"], seed=5) as sim:
        rules = attrs.evolve(BACKFILL, page_limit=7)
        for i in range(40):
            await sim.fill("mexc", market, symbol, "buy" if i % 2 else "sell", "0.001", f"100.{i}")
            if i % 3 == 0:
                await asyncio.sleep(0.003)  # spread them over a few milliseconds, some share one
        fills = sim.ledger("mexc", market).fills
        key = sim.connector("mexc", market).key
        backfiller = Backfiller(key, rules, sim.credentials_for("mexc"), SPEC.stream.endpoints(key.market),
                                sim.endpoints("mexc", market), retry_policy=FAST_REST)
        try:
            trades = await backfiller.fetch(symbol, fills[0].time - 1000)
        finally:
            await backfiller.close()
        assert [t.trade_id for t in trades] == [f.trade_id for f in fills]
        venue = sim.venue("mexc")
        for trade, fill in zip(trades, fills):
            expected = venue.expected_trade(Market.parse(market), fill)
            got = {name: getattr(trade, name) for name in expected} | {"side": trade.side.value}
            assert got == expected


async def test_contract_close_fills_keep_their_side_and_match_the_pushed_trades():
    """Buy, sell twice as much (closes the long, opens a short), buy: sides 1, 4, 3→4 (one order), 2 on the wire."""
    async with Simulator(exchanges=["mexc"], seed=7) as sim:
        symbol = "BTC/USDT:USDT"
        await sim.fill("mexc", "future", symbol, "buy", "0.0010", "60000")
        await sim.fill("mexc", "future", symbol, "sell", "0.0020", "60010", parts=2)
        await sim.fill("mexc", "future", symbol, "buy", "0.0030", "59990.5")
        ledger = sim.ledger("mexc", "future")
        venue = sim.venue("mexc")
        rows = [venue._deal_row(ledger, f, "BTC_USDT") for f in ledger.fills]
        assert [r["side"] for r in rows] == [1, 4, 4, 2]  # an order's deals share its side
        key = sim.connector("mexc", "future").key
        backfiller = Backfiller(key, BACKFILL, sim.credentials_for("mexc"), SPEC.stream.endpoints(key.market),
                                sim.endpoints("mexc", "future"), retry_policy=FAST_REST)
        try:
            trades = await backfiller.fetch(symbol, ledger.fills[0].time - 1000)
        finally:
            await backfiller.close()
        assert [t.side for t in trades] == [Side.BUY, Side.SELL, Side.SELL, Side.BUY]
        for trade, fill, row in zip(trades, ledger.fills, rows):
            # The order query gives the backfilled fill the order's externalOid, as the push carries it.
            external_oid = venue._external_oid(fill.order_id, fill.client_order_id)
            push = {"channel": "push.personal.order.deal", "data": row | {"externalOid": external_oid}}
            (stream,) = normalize(decode_frame(json.dumps(push, default=str)), Market.FUTURE)
            same_fill(trade, stream)
            assert trade.amount == fill.amount / Decimal("0.0001")
