"""Bybit backfill rules: a /v5/execution/list row read through ccxt gives the stream's Trade; every fill kind is fetched."""

from __future__ import annotations

import asyncio
import copy
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import attrs
import pytest

from exchanges.bybit import SPEC
from exchanges.bybit.normalize import normalize
from exchanges.bybit.rest import BACKFILL, contract_size, fetch_rows, fix_row, raw_symbol
from exchanges.bybit.stream import LIVE
from exchanges.simulator import Simulator
from exchanges.simulator.venues.bybit import BybitSim
from framework.venue import Endpoints
from framework.backfill import Backfiller
from framework.events import ConnectionKey, Market, Side, Source, Trade, now_ms
from framework.retry import rest_call_policy

DAY_MS = 24 * 3600 * 1000
FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=3)
OFFLINE = Endpoints(ws="ws://127.0.0.1:9/bybit", rest="http://127.0.0.1:9/bybit")  # never called: parsing only

# bybit-exchange/docs docs/v5/order/execution.mdx "Response Example" (result.list[0], by hand).
DOCS_ROW = {
    "symbol": "ETHPERP", "orderType": "Market", "underlyingPrice": "", "orderLinkId": "", "side": "Buy",
    "indexPrice": "", "orderId": "8c065341-7b52-4ca9-ac2c-37e31ac55c94", "stopOrderType": "UNKNOWN",
    "leavesQty": "0", "execTime": "1672282722429", "feeCurrency": "", "isMaker": False, "execFee": "0.071409",
    "feeRate": "0.0006", "execId": "e0cbe81d-0f18-5866-9415-cf319b5dab3b", "tradeIv": "", "blockTradeId": "",
    "markPrice": "1183.54", "execPrice": "1190.15", "markIv": "", "orderQty": "0.1", "orderPrice": "1236.9",
    "execValue": "119.015", "execType": "Trade", "execQty": "0.1", "closedSize": "", "extraFees": "",
    "seq": 4688002127,
}
# The same fill read off the docs' row by hand: ETHPERP is the USDC perpetual, fee in its settle coin.
DOCS_TRADE = {
    "symbol": "ETH/USDC:USDC", "symbol_raw": "ETHPERP", "trade_id": "e0cbe81d-0f18-5866-9415-cf319b5dab3b",
    "order_id": "8c065341-7b52-4ca9-ac2c-37e31ac55c94", "client_order_id": None, "side": Side.BUY,
    "amount": Decimal("0.1"), "price": Decimal("1190.15"), "cost": Decimal("119.015"),
    "fee_cost": Decimal("0.071409"), "fee_currency": "USDC", "is_maker": False, "timestamp": 1672282722429,
}
# ccxt #17244: a linear Funding row as Bybit lists it without an execType filter (not a fill).
FUNDING_ROW = {
    "symbol": "BTCUSDT", "execFee": "-8.0758617716", "execId": "d93e7b3c-8319-4c3e-9d2f-1d3c8a369d56",
    "execPrice": "26898.2", "execQty": "3.00238", "execType": "Funding", "execValue": "80758.617716",
    "isMaker": False, "feeRate": "0.0001", "tradeIv": "", "markIv": "", "blockTradeId": "", "markPrice": "26898.2",
    "indexPrice": "", "underlyingPrice": "", "leavesQty": "0", "orderId": "16791", "orderLinkId": "",
    "orderPrice": "0", "orderQty": "0", "orderType": "UNKNOWN", "stopOrderType": "UNKNOWN", "side": "Sell",
    "execTime": "1679184000000", "isLeverage": "0", "createType": "",
}
SPOT_ROW = {  # a spot row in the same shape (spot has no createType); values by hand
    "symbol": "BTCUSDT", "orderId": "1823391425327542528", "orderLinkId": "my-link-1", "side": "Buy",
    "orderPrice": "65000.5", "orderQty": "0.010", "leavesQty": "0", "orderType": "Limit", "stopOrderType": "",
    "execFee": "0.000005", "execId": "2100000000071536721", "execPrice": "65000.5", "execQty": "0.010",
    "execType": "Trade", "execValue": "650.005", "execTime": "1723550000123", "feeCurrency": "BTC",
    "isMaker": False, "feeRate": "0.0005", "tradeIv": "", "markIv": "", "markPrice": "", "indexPrice": "",
    "underlyingPrice": "", "blockTradeId": "", "closedSize": "", "seq": 9, "extraFees": "", "isLeverage": "0",
}


def backfiller(market: Market, endpoints: Endpoints = OFFLINE, credentials=None, rules=BACKFILL) -> Backfiller:
    from exchanges.connector import Credentials

    creds = credentials or Credentials(api_key="k", secret="s")
    return Backfiller(ConnectionKey(exchange="bybit", market=market), rules, creds, LIVE, endpoints,
                      retry_policy=FAST_REST)


async def rest_trade(market: Market, symbol: str, info: dict) -> Trade | None:
    """The row as the backfill reads it: ccxt's parse over offline markets, then fix_row, then to_trade."""
    b = backfiller(market)
    try:
        exchange = b._client([symbol])
        row = exchange.parse_trades([copy.deepcopy(info)], exchange.market(symbol))[0]
        fixed = fix_row(market, row)
        return None if fixed is None else b.to_trade(fixed)
    finally:
        await b.close()


def stream_trade(market: Market, info: dict) -> Trade:
    category = "spot" if market is Market.SPOT else "linear"
    [trade] = normalize({"topic": "execution", "data": [{"category": category, **info}]}, market)
    return trade


# rules ------------------------------------------------------------------------------------------------------------
def test_rules_are_wired_with_bybits_limits():
    assert SPEC.backfill is BACKFILL
    assert BACKFILL.ccxt_id == "bybit"
    assert BACKFILL.window_ms == 7 * DAY_MS  # endTime - startTime <= 7 days
    assert BACKFILL.page_limit == 100  # limit [1, 100]
    assert BACKFILL.needs_symbol is True
    assert BACKFILL.options[Market.SPOT]["defaultType"] == "spot"
    assert (BACKFILL.options[Market.FUTURE]["defaultType"], BACKFILL.options[Market.FUTURE]["defaultSubType"]) == (
        "swap", "linear")
    assert BACKFILL.options[Market.FUTURE]["fetchMarkets"] == {"types": ["linear"]}
    assert BACKFILL.params == {}  # ccxt's execType=Trade default is undone by fetch_rows, not by a param


@pytest.mark.parametrize(("market", "symbol", "raw"), [
    (Market.SPOT, "BTC/USDT", "BTCUSDT"),
    (Market.SPOT, "ETH/USDC", "ETHUSDC"),
    (Market.FUTURE, "BTC/USDT:USDT", "BTCUSDT"),
    (Market.FUTURE, "ETH/USDC:USDC", "ETHPERP"),
    (Market.FUTURE, "BTC/USDT:USDT-250221", "BTCUSDT-21FEB25"),
    (Market.FUTURE, "BTC/USDC:USDC-230324", "BTC-24MAR23"),
])
def test_raw_symbols_match_the_stream_and_the_simulator(market, symbol, raw):
    assert raw_symbol(market, symbol) == raw == BybitSim().raw_symbol(market, symbol)
    assert stream_trade(market, {**SPOT_ROW, "symbol": raw}).symbol == symbol  # normalize reads it back


def test_linear_amounts_are_coins_not_contracts():
    assert contract_size(Market.FUTURE, "BTCUSDT") == Decimal(1)
    assert contract_size(Market.SPOT, "BTCUSDT") is None


# one row → the stream's Trade ----------------------------------------------------------------------------------------
async def test_the_docs_history_row_gives_the_streams_trade():
    trade = await rest_trade(Market.FUTURE, "ETH/USDC:USDC", DOCS_ROW)
    assert {name: getattr(trade, name) for name in DOCS_TRADE} == DOCS_TRADE
    assert trade == stream_trade(Market.FUTURE, DOCS_ROW)
    assert (trade.source, trade.exchange, trade.market) == (Source.REST, "bybit", Market.FUTURE)
    assert trade.raw["execId"] == DOCS_ROW["execId"]


async def test_a_spot_row_keeps_its_client_order_id_and_fee_coin():
    trade = await rest_trade(Market.SPOT, "BTC/USDT", SPOT_ROW)
    assert trade == stream_trade(Market.SPOT, SPOT_ROW)
    assert (trade.client_order_id, trade.fee_cost, trade.fee_currency) == ("my-link-1", Decimal("0.000005"), "BTC")


@pytest.mark.parametrize(("side", "fee", "maker", "coin"), [
    ("Buy", "0.000005", False, "BTC"),  # paid in the coin received
    ("Sell", "0.325", False, "USDT"),
    ("Buy", "0", False, "BTC"),  # ccxt says USDT: it reads a zero fee as a rebate whatever the liquidity
    ("Buy", "0", True, "USDT"),  # a zero maker fee is a rebate: the other coin
    ("Buy", "-0.01", True, "USDT"),
    ("Sell", "-0.0000001", True, "BTC"),
])
async def test_spot_fee_coin_without_fee_currency_follows_the_stream(side, fee, maker, coin):
    info = SPOT_ROW | {"side": side, "execFee": fee, "isMaker": maker, "feeCurrency": ""}
    trade = await rest_trade(Market.SPOT, "BTC/USDT", info)
    assert trade == stream_trade(Market.SPOT, info)
    assert (trade.fee_cost, trade.fee_currency) == (Decimal(fee), coin)


async def test_empty_value_and_fee_read_like_the_stream():
    info = SPOT_ROW | {"execValue": "", "execFee": "", "feeCurrency": "", "orderLinkId": ""}
    trade = await rest_trade(Market.SPOT, "BTC/USDT", info)
    assert trade == stream_trade(Market.SPOT, info)
    assert (trade.cost, trade.fee_cost, trade.fee_currency, trade.client_order_id) == (
        Decimal("650.005"), None, None, None)


# every fill kind, and only fills ------------------------------------------------------------------------------------
@pytest.mark.parametrize("exec_type", ["Trade", "AdlTrade", "BustTrade", "BlockTrade", "MovePosition",
                                       "FutureSpread", "UNKNOWN"])
async def test_every_fill_kind_the_stream_counts_is_kept(exec_type):
    info = DOCS_ROW | {"execType": exec_type}
    assert await rest_trade(Market.FUTURE, "ETH/USDC:USDC", info) == stream_trade(Market.FUTURE, info)


@pytest.mark.parametrize("exec_type", ["Funding", "Settle", "Delivery", "SomethingNew"])
async def test_rows_that_are_not_fills_are_dropped(exec_type):
    info = FUNDING_ROW | {"execType": exec_type}
    assert await rest_trade(Market.FUTURE, "BTC/USDT:USDT", info) is None
    if exec_type != "SomethingNew":
        assert normalize({"topic": "execution", "data": [{"category": "linear", **info}]}, Market.FUTURE) == []


async def test_a_classic_spot_row_without_exec_type_is_a_trade():
    info = SPOT_ROW | {"execType": ""}
    trade = await rest_trade(Market.SPOT, "BTC/USDT", info)
    assert trade == stream_trade(Market.SPOT, SPOT_ROW)


# fetch_rows against the simulator (signed like ccxt signs, no execType) ---------------------------------------------
@pytest.fixture
async def sim():
    async with Simulator(exchanges=["bybit"], seed=11) as simulator:
        yield simulator


async def test_fetch_rows_asks_without_exec_type_and_gets_every_kind(sim):
    venue: BybitSim = sim.venue("bybit")
    _, [adl] = await sim.fill("bybit", "future", "BTC/USDT:USDT", "sell", "0.010", "65000.5")
    venue.label_fill(adl.trade_id, "AdlTrade")
    _, [plain] = await sim.fill("bybit", "future", "BTC/USDT:USDT", "buy", "0.020", "65001")
    funding = venue.add_cash_flow(sim, "future", "BTC/USDT:USDT", "Funding", "sell", "0.010", "65000", "0.065")
    b = backfiller(Market.FUTURE, sim.endpoints("bybit", "future"), sim.credentials_for("bybit"))
    sent: list[dict] = []
    try:
        exchange = b._client(["BTC/USDT:USDT"])
        fetch = exchange.fetch

        async def spy(url, method="GET", headers=None, body=None):
            sent.append(dict(parse_qsl(urlsplit(url).query)))
            return await fetch(url, method, headers, body)

        exchange.fetch = spy
        start = now_ms() - 60_000
        async with asyncio.timeout(10):
            rows = await fetch_rows(exchange, "BTC/USDT:USDT", start, 100, {"until": start + 120_000})
            ccxt_default = await exchange.fetch_my_trades("BTC/USDT:USDT", since=start, limit=100)
        trades = [b.to_trade(r) for r in (fix_row(Market.FUTURE, r) for r in rows) if r is not None]
    finally:
        await b.close()
    assert sent[0] == {"category": "linear", "symbol": "BTCUSDT", "limit": "100", "startTime": str(start),
                       "endTime": str(start + 120_000)}
    assert sent[1]["execType"] == "Trade"
    assert [r["id"] for r in rows] == [adl.trade_id, plain.trade_id, funding.trade_id]  # oldest first
    assert [r["info"]["execType"] for r in rows] == ["AdlTrade", "Trade", "Funding"]
    assert [t.trade_id for t in trades] == [adl.trade_id, plain.trade_id]
    assert [r["id"] for r in ccxt_default] == [plain.trade_id]  # what ccxt alone would have backfilled


async def test_pages_full_of_funding_rows_still_split_and_every_fill_comes_back(sim):
    venue: BybitSim = sim.venue("bybit")
    fills = []
    for i in range(12):
        _, [fill] = await sim.fill("bybit", "future", "BTC/USDT:USDT", "buy" if i % 2 else "sell", "0.001",
                                   f"100.{i}")
        if i % 4 == 1:
            venue.label_fill(fill.trade_id, "BustTrade" if i == 1 else "AdlTrade")
        fills.append(fill)
        for _ in range(2):  # more non-fill rows than fills: pages are full of them
            venue.add_cash_flow(sim, "future", "BTC/USDT:USDT", "Funding", "buy", "0.001", "100", "0.0001")
        await asyncio.sleep(0.002)
    rules = attrs.evolve(BACKFILL, page_limit=5)
    b = Backfiller(ConnectionKey(exchange="bybit", market="future"), rules, sim.credentials_for("bybit"),
                   LIVE, sim.endpoints("bybit", "future"), retry_policy=FAST_REST)
    try:
        async with asyncio.timeout(20):
            trades = await b.fetch("BTC/USDT:USDT", fills[0].time - 1000)
    finally:
        await b.close()
    assert [t.trade_id for t in trades] == [f.trade_id for f in fills]
    for trade, fill in zip(trades, fills, strict=True):
        expected = venue.expected_trade(Market.FUTURE, fill)
        assert {name: getattr(trade, name) for name in expected} | {"side": trade.side.value} == expected
