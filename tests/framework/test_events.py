from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.errors import ConfigError
from framework.events import ConnectionKey, Market, OrderStatus, Side, Trade, to_decimal


def make_trade(**overrides):
    fields = dict(
        exchange="binance", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", trade_id="11",
        order_id="22", client_order_id="s1-1", side="BUY", amount="0.00100000", price="65000.10",
        cost="65.00010000", fee_cost="0.00000100", fee_currency="BTC", is_maker=False, timestamp=1700000000000,
    )
    fields.update(overrides)
    return Trade(**fields)


@pytest.mark.parametrize("alias", ["future", "futures", "perpetual", "perp", "swap", "FUTURES", " Swap "])
def test_market_aliases_map_to_future(alias):
    assert Market.parse(alias) is Market.FUTURE


def test_unknown_market_names_the_choices():
    with pytest.raises(ConfigError, match="use one of spot, future"):
        Market.parse("options")


def test_connection_key_string_forms():
    assert str(ConnectionKey(exchange="binance", market="spot")) == "binance_spot"
    assert str(ConnectionKey(exchange="Bybit", market="perp")) == "bybit_future"
    key = ConnectionKey(exchange="binance", market="spot", account="subacct")
    assert str(key) == "binance_spot@subacct"
    assert ConnectionKey.parse("binance_spot@subacct") == key
    assert ConnectionKey.parse("bybit_future") == ConnectionKey(exchange="bybit", market="future")


def test_decimal_converter_refuses_float():
    with pytest.raises(TypeError, match="float"):
        to_decimal(0.1)
    with pytest.raises(TypeError):
        make_trade(amount=0.001)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "abc", ""])
def test_decimal_converter_refuses_non_numbers(text):
    with pytest.raises(ValueError):
        to_decimal(text)


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_text_survives_exactly(value):
    text = str(value)
    assert str(to_decimal(text)) == text


def test_trade_to_dict_has_the_classic_shape_and_extras():
    trade = make_trade()
    d = trade.to_dict()
    assert d["id"] == "11" and d["order_id"] == "22" and d["symbol"] == "BTC/USDT"
    assert d["side"] == "buy" and d["amount"] == Decimal("0.00100000") and str(d["price"]) == "65000.10"
    assert d["cost"] == Decimal("65.00010000") and d["timestamp"] == 1700000000000
    assert d["fee"] == {"cost": Decimal("0.00000100"), "currency": "BTC"}
    assert d["exchange"] == "binance" and d["market"] == "spot" and d["client_order_id"] == "s1-1"
    assert d["is_maker"] is False and d["source"] == "websocket"


def test_trade_equality_ignores_raw_and_receive_time():
    a = make_trade(raw={"x": 1}, received_at=1)
    b = make_trade(raw={"y": 2}, received_at=2)
    assert a == b and a.dedup_key == b.dedup_key
    assert a.dedup_key == ("binance", "spot", "default", "BTC/USDT", "11", "22")
    assert Side.parse("SELL") is Side.SELL and OrderStatus.CANCELED.is_terminal
