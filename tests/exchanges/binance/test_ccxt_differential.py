"""Our Binance fills agree with ccxt.pro's own parser (parse_ws_trade, handle_order_update) on the same frames.

ccxt is built offline: markets are given by hand (no load_markets call) and `number = str`, so ccxt keeps the
wire text and both sides compare as exact Decimals.
"""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges.binance.normalize import normalize
from framework.events import Market, Trade
from tests.exchanges.binance.test_normalize import FUTURE_FILL, LIQUIDATION, SPOT_FILL
from tests.exchanges.binance.test_properties import decimal_texts

ccxtpro = pytest.importorskip("ccxt.pro")


def market(symbol_id: str, base: str, quote: str, swap: bool) -> dict:
    return {
        "id": symbol_id, "symbol": f"{base}/{quote}" + (f":{quote}" if swap else ""), "base": base, "quote": quote,
        "settle": quote if swap else None, "baseId": base, "quoteId": quote, "settleId": quote if swap else None,
        "type": "swap" if swap else "spot", "spot": not swap, "swap": swap, "future": False, "option": False,
        "contract": swap, "linear": True if swap else None, "inverse": False if swap else None,
        "contractSize": 1 if swap else None, "active": True, "precision": {}, "limits": {},
    }


MARKETS = [
    market("BNBUSDT", "BNB", "USDT", swap=False),
    market("ETHBTC", "ETH", "BTC", swap=False),
    market("BTCUSDT", "BTC", "USDT", swap=True),
    market("ETHUSDT", "ETH", "USDT", swap=True),
]


class RecordingClient:
    """Stands in for ccxt's websocket Client: keeps what each message hash was resolved with."""

    def __init__(self) -> None:
        self.resolved: dict[str, object] = {}

    def resolve(self, value, message_hash) -> None:
        self.resolved[message_hash] = value


@pytest.fixture(scope="module")
def ccxt_binance():
    exchange = ccxtpro.binance({"newUpdates": False})
    exchange.set_markets(MARKETS)
    exchange.number = str
    return exchange


def assert_agrees(ours: Trade, theirs: dict) -> None:
    assert ours.trade_id == theirs["id"]
    assert ours.order_id == theirs["order"]
    assert ours.symbol == theirs["symbol"]
    assert ours.side.value == theirs["side"]
    assert ours.amount == Decimal(theirs["amount"])
    assert ours.price == Decimal(theirs["price"])
    assert ours.cost == Decimal(theirs["cost"])
    assert ours.timestamp == theirs["timestamp"]
    assert ("maker" if ours.is_maker else "taker") == theirs["takerOrMaker"]
    fee = theirs["fee"]
    if ours.fee_cost is None:
        assert fee is None
    else:
        assert ours.fee_cost == Decimal(fee["cost"]) and ours.fee_currency == fee["currency"]


def ccxt_handled_trade(exchange, event: dict) -> dict:
    """The fill ccxt resolves on its `myTrades` hash after its handle_order_update path read `event`."""
    exchange.myTrades = None
    exchange.orders = None
    client = RecordingClient()
    exchange.handle_order_update(client, copy.deepcopy(event))
    (trade,) = list(client.resolved["myTrades"])
    return trade


def test_spot_execution_report_fill_agrees_with_parse_ws_trade(ccxt_binance):
    _, ours = normalize(SPOT_FILL, Market.SPOT)
    assert_agrees(ours, ccxt_binance.parse_ws_trade(copy.deepcopy(SPOT_FILL["event"])))


def test_spot_execution_report_fill_agrees_with_handle_order_update(ccxt_binance):
    _, ours = normalize(SPOT_FILL, Market.SPOT)
    assert_agrees(ours, ccxt_handled_trade(ccxt_binance, SPOT_FILL["event"]))


def test_future_order_trade_update_fill_agrees_with_parse_ws_trade(ccxt_binance):
    _, ours = normalize(FUTURE_FILL, Market.FUTURE)
    assert_agrees(ours, ccxt_binance.parse_ws_trade(copy.deepcopy(FUTURE_FILL["o"])))


def test_future_order_trade_update_fill_agrees_with_handle_order_update(ccxt_binance):
    _, ours = normalize(FUTURE_FILL, Market.FUTURE)
    assert_agrees(ours, ccxt_handled_trade(ccxt_binance, FUTURE_FILL))


def test_liquidation_fill_ccxt_does_not_report_as_my_trade(ccxt_binance):
    # ccxt only reads x == TRADE as a fill; a CALCULATED liquidation fill is ours alone (documented difference).
    _, ours = normalize(LIQUIDATION, Market.FUTURE)
    client = RecordingClient()
    ccxt_binance.handle_order_update(client, copy.deepcopy(LIQUIDATION))
    assert "myTrades" not in client.resolved
    assert ours.trade_id == "5001"


positive_texts = decimal_texts().filter(lambda text: not text.startswith("-") and Decimal(text) > 0)
fill_fields = st.fixed_dictionaries({
    "l": positive_texts,
    "L": positive_texts,
    "n": positive_texts,
    "N": st.sampled_from(["BNB", "USDT", "BTC", "ETH"]),
    "t": st.integers(min_value=1, max_value=2**62),
    "i": st.integers(min_value=1, max_value=2**62),
    "T": st.integers(min_value=1, max_value=2**45),
    "S": st.sampled_from(["BUY", "SELL"]),
    "m": st.booleans(),
})


@settings(max_examples=100, deadline=None)
@given(fill_fields, positive_texts, st.sampled_from(["BNBUSDT", "ETHBTC"]))
def test_generated_spot_fills_agree_with_ccxt(ccxt_binance, fields, quote_qty, symbol):
    message = copy.deepcopy(SPOT_FILL)
    message["event"].update(fields, Y=quote_qty, s=symbol)
    _, ours = normalize(message, Market.SPOT)
    assert_agrees(ours, ccxt_binance.parse_ws_trade(copy.deepcopy(message["event"])))


@settings(max_examples=100, deadline=None)
@given(fill_fields, st.sampled_from(["BTCUSDT", "ETHUSDT"]))
def test_generated_future_fills_agree_with_ccxt(ccxt_binance, fields, symbol):
    message = copy.deepcopy(FUTURE_FILL)
    message["o"].update(fields, s=symbol)
    _, ours = normalize(message, Market.FUTURE)
    assert_agrees(ours, ccxt_binance.parse_ws_trade(copy.deepcopy(message["o"])))
