"""Hyperliquid backfill rules: a documented info row through ccxt gives the stream's Trade; rules; the simulator."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import attrs
import pytest

from exchanges import get_exchange
from exchanges.connector import Credentials
from exchanges.hyperliquid.normalize import normalize
from exchanges.hyperliquid.rest import BACKFILL, PAGE_ROWS, fix_row, raw_symbol, venue_rows
from exchanges.hyperliquid.stream import LIVE
from exchanges.simulator import Simulator
from framework.venue import Endpoints
from framework.backfill import Backfiller
from framework.events import ConnectionKey, Market, Source, now_ms
from framework.retry import rest_call_policy

USER = "0x31ca8395cf837de08b24da3f660e77761dfb974b"
KEY = ConnectionKey(exchange="hyperliquid", market=Market.FUTURE)
OFFLINE = Endpoints(ws="ws://127.0.0.1:9/hyperliquid_future", rest="http://127.0.0.1:9/hyperliquid_future")
FAST_REST = rest_call_policy(initial=0.01, maximum=0.05, jitter=0.01, attempts=3)
# docs: hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint, "Retrieve a user's fills"
# (the response sample; its `// this is optional …` comment on builderFee dropped).
DOC_ROW = {
    "closedPnl": "0.0", "coin": "AVAX", "crossed": False, "dir": "Open Long",
    "hash": "0xa166e3fa63c25663024b03f2e0da011a00307e4017465df020210d3d432e7cb8", "oid": 90542681, "px": "18.435",
    "side": "B", "startPosition": "26.86", "sz": "93.53", "time": 1681222254710, "fee": "0.01", "feeToken": "USDC",
    "builderFee": "0.01", "tid": 118906512037719,
}
# ccxt 4.5.90 hyperliquid.fetch_my_trades comment: a taker close with no builder fee.
CCXT_ROW = {
    "closedPnl": "0.19343", "coin": "ETH", "crossed": True, "dir": "Close Long", "fee": "0.050062",
    "feeToken": "USDC", "hash": "0x09d77c96791e98b5775a04092584ab010d009445119c71e4005c0d634ea322bc",
    "liquidationMarkPx": None, "oid": 3929354691, "px": "2381.1", "side": "A", "startPosition": "0.0841",
    "sz": "0.0841", "tid": 128423918764978, "time": 1704262888911,
}


def offline_backfiller(*symbols: str) -> Backfiller:
    backfiller = Backfiller(KEY, BACKFILL, Credentials(wallet_address=USER), LIVE, OFFLINE)
    backfiller._client(symbols)  # offline markets: no load_markets, no network
    return backfiller


def stream_trade(row: dict):
    (trade,) = normalize({"channel": "userFills", "data": {"user": USER, "fills": [row]}}, Market.FUTURE)
    return trade


# rules --------------------------------------------------------------------------------------------------------------
def test_rules_values():
    assert get_exchange("hyperliquid").backfill is BACKFILL
    assert BACKFILL.ccxt_id == "hyperliquid"
    assert BACKFILL.options == {Market.FUTURE: {"defaultType": "swap"}}
    assert BACKFILL.params == {Market.FUTURE: {}}
    assert BACKFILL.page_limit == PAGE_ROWS == 2000
    assert BACKFILL.window_ms == 24 * 3600 * 1000
    assert BACKFILL.needs_symbol is True
    assert BACKFILL.credentials_map["walletAddress"] == "wallet_address"


@pytest.mark.parametrize(("symbol", "coin"), [("BTC/USDC:USDC", "BTC"), ("ETH/USDC:USDC", "ETH")])
def test_raw_symbol_is_the_coin_the_stream_names(symbol, coin):
    assert raw_symbol(Market.FUTURE, symbol) == coin
    assert stream_trade({**CCXT_ROW, "coin": coin}).symbol == symbol


# a documented row → the stream's Trade ------------------------------------------------------------------------------
async def test_documented_row_with_builder_fee_gives_the_streams_trade():
    backfiller = offline_backfiller("AVAX/USDC:USDC")
    try:
        row = backfiller._exchange.parse_trade(DOC_ROW)
        assert row["fee"]["cost"] == "0.02"  # ccxt adds builderFee to a fee that already holds it
        trade = backfiller.to_trade(fix_row(Market.FUTURE, row))
    finally:
        await backfiller.close()
    expected = stream_trade(DOC_ROW)
    assert trade == expected and trade.dedup_key == expected.dedup_key
    assert (trade.fee_cost, trade.fee_currency, trade.is_maker, trade.side.value) == (
        Decimal("0.01"), "USDC", True, "buy")
    assert (trade.symbol, trade.symbol_raw, trade.amount, trade.price) == (
        "AVAX/USDC:USDC", "AVAX", Decimal("93.53"), Decimal("18.435"))
    assert trade.source is Source.REST and trade.raw == DOC_ROW


@pytest.mark.parametrize("extra", [{}, {"cloid": "0x" + "0f" * 16}, {"feeToken": None}])
async def test_ccxt_sample_row_gives_the_streams_trade(extra):
    source = {**CCXT_ROW, **extra}
    backfiller = offline_backfiller("ETH/USDC:USDC")
    try:
        trade = backfiller.to_trade(fix_row(Market.FUTURE, backfiller._exchange.parse_trade(source)))
    finally:
        await backfiller.close()
    assert trade == stream_trade(source)
    assert trade.client_order_id == extra.get("cloid") and trade.fee_currency == "USDC"
    assert trade.is_maker is False and trade.side.value == "sell" and trade.timestamp == 1704262888911


def test_fix_row_leaves_a_row_without_info_alone_but_for_the_defaults():
    row = {"id": "1", "fee": {"cost": "0.5", "currency": "USDC"}, "info": {}}
    assert fix_row(Market.FUTURE, row) == {"id": "1", "fee": {"cost": "0.5", "currency": "USDC"}, "info": {},
                                           "clientOrderId": None}
    assert row["fee"] == {"cost": "0.5", "currency": "USDC"}  # the caller's row is not changed


def test_venue_rows_counts_the_response_before_ccxt_filters_it():
    class Kept:
        last_json_response = [CCXT_ROW] * 5

    class Text:
        last_json_response = None
        last_http_response = json.dumps([CCXT_ROW] * 4)

    class Refused:
        last_json_response = None
        last_http_response = "Failed to deserialize the JSON body into the target type"

    assert venue_rows(Kept(), [{"id": "1"}]) == 5
    assert venue_rows(Text(), [{"id": "1"}]) == 4
    assert venue_rows(Refused(), [{"id": "1"}]) == 1
    assert venue_rows(object(), [{"id": "1"}, {"id": "2"}]) == 2


# through ccxt against the simulator ---------------------------------------------------------------------------------
def simulator_backfiller(sim: Simulator, rules=BACKFILL) -> Backfiller:
    key = sim.connector("hyperliquid", "future").key
    return Backfiller(key, rules, sim.credentials_for("hyperliquid"), LIVE, sim.endpoints("hyperliquid", "future"),
                      retry_policy=FAST_REST)


async def test_backfill_through_ccxt_gives_the_streams_trades_for_the_asked_coin_only():
    async with Simulator(exchanges=["hyperliquid"], seed=2) as sim:
        _, btc = await sim.fill("hyperliquid", "future", "BTC/USDC:USDC", "buy", "0.030", "65000.5", parts=2,
                                client_order_id="0x" + "ab" * 16)
        await sim.fill("hyperliquid", "future", "ETH/USDC:USDC", "sell", "1.5", "3200.1")
        _, more = await sim.fill("hyperliquid", "future", "BTC/USDC:USDC", "sell", "0.011", "64999.9")
        ledger = sim.ledger("hyperliquid", "future")
        venue = sim.venue("hyperliquid")
        pushed = [stream_trade(venue._fill_row(ledger, f, stream=True)) for f in btc + more]
        backfiller = simulator_backfiller(sim)
        try:
            trades = await backfiller.fetch("BTC/USDC:USDC", btc[0].time - 1000)
            assert venue_rows(backfiller._exchange, trades) == 4  # the venue sent every coin's fills
        finally:
            await backfiller.close()
    assert [t.dedup_key for t in trades] == [t.dedup_key for t in pushed]
    for trade, stream, fill in zip(trades, pushed, btc + more, strict=True):
        # ccxt leaves the cloid in `info` until fix_row is wired: everything else is the stream's
        assert attrs.evolve(trade, client_order_id=stream.client_order_id) == stream
        assert sim.venue("hyperliquid").expected_trade(Market.FUTURE, fill) == {
            "trade_id": trade.trade_id, "order_id": trade.order_id, "side": trade.side.value, "amount": trade.amount,
            "price": trade.price, "fee_cost": trade.fee_cost, "fee_currency": trade.fee_currency,
            "timestamp": trade.timestamp}


async def test_backfill_with_another_wallet_finds_nothing():
    async with Simulator(exchanges=["hyperliquid"]) as sim:
        await sim.fill("hyperliquid", "future", "BTC/USDC:USDC", "buy", "0.010", "100")
        key = sim.connector("hyperliquid", "future").key
        backfiller = Backfiller(key, BACKFILL, Credentials(wallet_address=USER), LIVE,
                                sim.endpoints("hyperliquid", "future"), retry_policy=FAST_REST)
        try:
            assert await backfiller.fetch("BTC/USDC:USDC", now_ms() - 60_000) == []
        finally:
            await backfiller.close()


async def test_a_full_page_of_other_coins_does_not_hide_the_symbols_later_fills():
    async with Simulator(exchanges=["hyperliquid"]) as sim:
        sim.venue("hyperliquid").history_rows = 5
        for _ in range(5):
            await sim.fill("hyperliquid", "future", "ETH/USDC:USDC", "buy", "1", "3200")
            await asyncio.sleep(0.003)  # apart in time: a full window can be split between them
        _, btc = await sim.fill("hyperliquid", "future", "BTC/USDC:USDC", "buy", "0.1", "65000")
        backfiller = simulator_backfiller(sim, attrs.evolve(BACKFILL, page_limit=5))
        try:
            trades = await backfiller.fetch("BTC/USDC:USDC", btc[0].time - 60_000)
        finally:
            await backfiller.close()
    assert [t.trade_id for t in trades] == [f.trade_id for f in btc]
