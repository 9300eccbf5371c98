"""Binance frames → events: the docs' samples read by hand, real fills, and the decisions normalize.py documents."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import attrs
import pytest

from exchanges.binance.normalize import normalize
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade
from tests.exchanges.conftest import load_samples

SAMPLES = load_samples("binance")


def sample(source_part: str) -> dict:
    (found,) = [s for s in SAMPLES if source_part in s["source"]]
    return found


def assert_exact(value: Decimal | None, text: str) -> None:
    """Equal to the wire text AND the same digits and exponent (nothing rounded or re-scaled)."""
    assert value is not None and value.as_tuple() == Decimal(text).as_tuple()


def assert_fields(event, expected: dict) -> None:
    for name, want in expected.items():
        got = getattr(event, name)
        if isinstance(want, str) and isinstance(got, Decimal):
            assert_exact(got, want)
        else:
            assert got == want, name


# --- the docs' samples (tests/data/exchanges/binance.samples.json), expected values read off each message ---

SPOT_SAMPLE_NEW = {  # executionReport: s ETHBTC, i 4293153, c mUvo…, S BUY, o LIMIT, X NEW, q/p/z, T
    "exchange": "binance",
    "market": Market.SPOT,
    "symbol": "ETH/BTC",
    "symbol_raw": "ETHBTC",
    "order_id": "4293153",
    "client_order_id": "mUvoqJxFIILMdfAW5iGSOW",
    "side": Side.BUY,
    "order_type": "limit",
    "status": OrderStatus.NEW,
    "status_raw": "NEW",
    "amount": "1.00000000",
    "price": "0.10264410",
    "filled": "0.00000000",
    "timestamp": 1499405658657,
}
SAMPLE_EXPECTATIONS = [
    ("user-data-stream.md @ commit 947d9ba", Market.SPOT, SPOT_SAMPLE_NEW),
    ("user-data-stream.md @ HEAD a5e0bc3", Market.SPOT, SPOT_SAMPLE_NEW),  # same payload in the WS-API wrapper
    (
        "Event-Order-Update",
        Market.FUTURE,
        {  # o.s BTCUSDT, o.c TEST, o.S SELL, o.o TRAILING_STOP_MARKET, o.q 0.001, o.p "0", o.X NEW, o.T
            "exchange": "binance",
            "market": Market.FUTURE,
            "symbol": "BTC/USDT:USDT",
            "symbol_raw": "BTCUSDT",
            "order_id": "8886774",
            "client_order_id": "TEST",
            "side": Side.SELL,
            "order_type": "trailing_stop_market",
            "status": OrderStatus.NEW,
            "status_raw": "NEW",
            "amount": "0.001",
            "price": None,  # "p": "0": a trailing stop has no limit price
            "filled": "0",
            "timestamp": 1568879465650,
        },
    ),
]


def test_every_sample_has_an_expectation():
    assert len(SAMPLES) == len(SAMPLE_EXPECTATIONS)


@pytest.mark.parametrize("source_part, market, expected", SAMPLE_EXPECTATIONS, ids=[s for s, *_ in SAMPLE_EXPECTATIONS])
def test_doc_sample_normalizes_to_one_order_update(source_part, market, expected):
    message = sample(source_part)
    assert Market(message["market"]) is market
    (update,) = normalize(message["raw"], market)
    assert isinstance(update, OrderUpdate)
    assert_fields(update, expected)
    assert update.raw is message["raw"]


# --- fills: real captures quoted in ccxt 4.5.90 pro/binance.py (parse_ws_trade comments), wrapped by hand ---

SPOT_FILL = {
    "subscriptionId": 0,
    "event": {
        "e": "executionReport", "E": 1611063861489, "s": "BNBUSDT", "c": "m4M6AD5MF3b1ERe65l4SPq", "S": "BUY",
        "o": "MARKET", "f": "GTC", "q": "2.00000000", "p": "0.00000000", "P": "0.00000000", "F": "0.00000000",
        "g": -1, "C": "", "x": "TRADE", "X": "PARTIALLY_FILLED", "r": "NONE", "i": 1296882607, "l": "0.33200000",
        "z": "0.33200000", "L": "46.86600000", "n": "0.00033200", "N": "BNB", "T": 1611063861488, "t": 109747654,
        "I": 2696953381, "w": False, "m": False, "M": True, "O": 1611063861488, "Z": "15.55951200",
        "Y": "15.55951200", "Q": "0.00000000",
    },
}
FUTURE_FILL = {
    "e": "ORDER_TRADE_UPDATE", "E": 1612095165368, "T": 1612095165362,
    "o": {
        "s": "BTCUSDT", "c": "pb2jD6ZQHpfzSdUac8VqMK", "S": "SELL", "o": "MARKET", "f": "GTC", "q": "0.001",
        "p": "0", "ap": "33468.46000", "sp": "0", "x": "TRADE", "X": "FILLED", "i": 13351197194, "l": "0.001",
        "z": "0.001", "L": "33468.46", "n": "0.00027086", "N": "BNB", "T": 1612095165362, "t": 458032604,
        "b": "0", "a": "0", "m": False, "R": False, "wt": "CONTRACT_PRICE", "ot": "MARKET", "ps": "BOTH",
        "cp": False, "rp": "0.00335000", "pP": False, "si": 0, "ss": 0,
    },
}
# "Event: Trade Lite" response example (developers.binance.com .../user-data-streams/Event-Trade-Lite).
TRADE_LITE = {
    "e": "TRADE_LITE", "E": 1721895408092, "T": 1721895408214, "s": "BTCUSDT", "q": "0.001", "p": "0",
    "m": False, "c": "z8hcUoOsqEdKMeKPSABslD", "S": "BUY", "L": "64089.20", "l": "0.040", "t": 109100866,
    "i": 8886774,
}


def test_execution_report_trade_yields_order_update_then_trade():
    update, trade = normalize(SPOT_FILL, Market.SPOT)
    assert isinstance(update, OrderUpdate) and isinstance(trade, Trade)
    assert_fields(update, {
        "symbol": "BNB/USDT", "order_id": "1296882607", "client_order_id": "m4M6AD5MF3b1ERe65l4SPq",
        "side": Side.BUY, "order_type": "market", "status": OrderStatus.PARTIALLY_FILLED,
        "status_raw": "PARTIALLY_FILLED", "amount": "2.00000000", "price": None, "filled": "0.33200000",
        "timestamp": 1611063861488,
    })
    assert_fields(trade, {
        "exchange": "binance", "market": Market.SPOT, "symbol": "BNB/USDT", "symbol_raw": "BNBUSDT",
        "trade_id": "109747654", "order_id": "1296882607", "client_order_id": "m4M6AD5MF3b1ERe65l4SPq",
        "side": Side.BUY, "amount": "0.33200000", "price": "46.86600000", "cost": "15.55951200",
        "fee_cost": "0.00033200", "fee_currency": "BNB", "is_maker": False, "timestamp": 1611063861488,
    })
    assert trade.raw is SPOT_FILL


def test_execution_report_cancel_uses_original_client_id_from_C():
    message = copy.deepcopy(SPOT_FILL)
    message["event"].update(x="CANCELED", X="CANCELED", c="cancelRequest42", C="myOrder7", t=-1, l="0.00000000")
    (update,) = normalize(message, Market.SPOT)
    assert update.client_order_id == "myOrder7"
    assert update.status is OrderStatus.CANCELED


def test_execution_report_expired_in_match_maps_to_expired_and_keeps_raw_status():
    message = copy.deepcopy(SPOT_FILL)
    message["event"].update(x="TRADE_PREVENTION", X="EXPIRED_IN_MATCH")
    (update,) = normalize(message, Market.SPOT)
    assert (update.status, update.status_raw) == (OrderStatus.EXPIRED, "EXPIRED_IN_MATCH")


def test_order_trade_update_trade_yields_order_update_then_trade_with_cost_l_times_L():
    update, trade = normalize(FUTURE_FILL, Market.FUTURE)
    assert_fields(update, {
        "symbol": "BTC/USDT:USDT", "order_id": "13351197194", "status": OrderStatus.FILLED, "filled": "0.001",
        "amount": "0.001", "price": None, "order_type": "market", "timestamp": 1612095165362,
    })
    assert_fields(trade, {
        "market": Market.FUTURE, "symbol": "BTC/USDT:USDT", "symbol_raw": "BTCUSDT", "trade_id": "458032604",
        "order_id": "13351197194", "client_order_id": "pb2jD6ZQHpfzSdUac8VqMK", "side": Side.SELL,
        "amount": "0.001", "price": "33468.46", "cost": "33.46846", "fee_cost": "0.00027086",
        "fee_currency": "BNB", "is_maker": False, "timestamp": 1612095165362,
    })


def test_order_trade_update_without_commission_gives_no_fee():
    message = copy.deepcopy(FUTURE_FILL)
    del message["o"]["n"], message["o"]["N"]
    _, trade = normalize(message, Market.FUTURE)
    assert (trade.fee_cost, trade.fee_currency) == (None, None)


def test_order_trade_update_negative_commission_is_a_rebate_kept_negative():
    message = copy.deepcopy(FUTURE_FILL)
    message["o"].update(n="-0.00100000", N="USDT", m=True)
    _, trade = normalize(message, Market.FUTURE)
    assert_exact(trade.fee_cost, "-0.00100000")
    assert trade.is_maker is True


LIQUIDATION = {
    "e": "ORDER_TRADE_UPDATE", "E": 1700000000100, "T": 1700000000090,
    "o": {
        "s": "ETHUSDT", "c": "autoclose-1700000000090", "S": "SELL", "o": "LIQUIDATION", "f": "IOC", "q": "0.500",
        "p": "1800.00", "ap": "1801.50", "sp": "0", "x": "CALCULATED", "X": "FILLED", "i": 77, "l": "0.500",
        "z": "0.500", "L": "1801.50", "n": "0.45037500", "N": "USDT", "T": 1700000000090, "t": 5001, "m": False,
        "R": True, "ps": "BOTH", "rp": "-10.0",
    },
}


def test_calculated_liquidation_with_fill_fields_yields_a_trade():
    update, trade = normalize(LIQUIDATION, Market.FUTURE)
    assert update.order_type == "liquidation"
    assert_fields(trade, {
        "symbol": "ETH/USDT:USDT", "trade_id": "5001", "order_id": "77", "side": Side.SELL, "amount": "0.500",
        "price": "1801.50", "cost": "900.75000", "fee_cost": "0.45037500", "timestamp": 1700000000090,
    })


@pytest.mark.parametrize("change", [{"l": "0"}, {"l": None}], ids=["zero_last_qty", "no_last_qty"])
def test_calculated_without_a_fill_yields_only_the_order_update(change):
    message = copy.deepcopy(LIQUIDATION)
    message["o"].update(change)
    if change["l"] is None:
        del message["o"]["l"]
    (update,) = normalize(message, Market.FUTURE)
    assert isinstance(update, OrderUpdate)


def test_trade_lite_yields_a_trade_without_fee():
    (trade,) = normalize(TRADE_LITE, Market.FUTURE)
    assert_fields(trade, {
        "symbol": "BTC/USDT:USDT", "symbol_raw": "BTCUSDT", "trade_id": "109100866", "order_id": "8886774",
        "client_order_id": "z8hcUoOsqEdKMeKPSABslD", "side": Side.BUY, "amount": "0.040", "price": "64089.20",
        "cost": "2563.56800", "fee_cost": None, "fee_currency": None, "is_maker": False, "timestamp": 1721895408214,
    })


def test_trade_lite_and_order_trade_update_of_one_fill_share_dedup_key_and_fields():
    # The ORDER_TRADE_UPDATE that carries the TRADE_LITE sample's fill, built by hand from its fields.
    full = {
        "e": "ORDER_TRADE_UPDATE", "E": 1721895408095, "T": 1721895408214,
        "o": {"s": "BTCUSDT", "c": "z8hcUoOsqEdKMeKPSABslD", "S": "BUY", "o": "MARKET", "q": "0.001", "p": "0",
              "x": "TRADE", "X": "PARTIALLY_FILLED", "i": 8886774, "l": "0.040", "z": "0.040", "L": "64089.20",
              "n": "1.02542720", "N": "USDT", "T": 1721895408214, "t": 109100866, "m": False},
    }
    _, from_update = normalize(full, Market.FUTURE)
    (from_lite,) = normalize(TRADE_LITE, Market.FUTURE)
    assert from_lite.dedup_key == from_update.dedup_key
    assert from_lite == attrs.evolve(from_update, fee_cost=None, fee_currency=None)


def test_dated_usdm_contract_gets_ccxt_style_expiry_symbol():
    message = copy.deepcopy(FUTURE_FILL)
    message["o"]["s"] = "BTCUSDT_250627"
    update, trade = normalize(message, Market.FUTURE)
    assert update.symbol == trade.symbol == "BTC/USDT:USDT-250627"
    assert trade.symbol_raw == "BTCUSDT_250627"


def test_json_numbers_decoded_as_decimal_are_accepted_exactly():
    text = json.dumps(SPOT_FILL).replace('"l": "0.33200000"', '"l": 0.33200000')
    message = json.loads(text, parse_float=Decimal)
    _, trade = normalize(message, Market.SPOT)
    assert_exact(trade.amount, "0.33200000")


# --- frames that are not order events ---

NOT_EVENTS = [
    ({"id": 1747385641636, "status": 200, "result": {"subscriptionId": 0}}, Market.SPOT),
    ({"subscriptionId": 0, "event": {"e": "outboundAccountPosition", "E": 1, "u": 1, "B": []}}, Market.SPOT),
    ({"subscriptionId": 0, "event": {"e": "eventStreamTerminated", "E": 1}}, Market.SPOT),
    ({"event": {"e": "serverShutdown", "E": 1770123456789}}, Market.SPOT),
    ({"e": "listenKeyExpired", "E": 1576653824250, "listenKey": "OfYGbUzi3PraNagEkdKuFwUHn48brFsItTdsuiIXruc"},
     Market.FUTURE),
    ({"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {"m": "ORDER", "B": [], "P": []}}, Market.FUTURE),
    ({"id": 1, "result": None}, Market.FUTURE),
    (FUTURE_FILL, Market.SPOT),  # a futures event on a spot connection is not ours to read
    (SPOT_FILL, Market.FUTURE),
    (b"\x00\x01binary", Market.SPOT),
    ([SPOT_FILL], Market.SPOT),
    ("pong", Market.FUTURE),
]


@pytest.mark.parametrize("message, market", NOT_EVENTS)
def test_non_order_frames_give_nothing(message, market):
    assert normalize(message, market) == []


# --- malformed order events ---

def mangled_spot(**fields) -> dict:
    message = copy.deepcopy(SPOT_FILL)
    message["event"].update(fields)
    return message


MALFORMED = [
    ("unknown_side", mangled_spot(S="HOLD"), Market.SPOT),
    ("unknown_status", mangled_spot(X="SOMETHING_NEW"), Market.SPOT),
    ("float_quantity", mangled_spot(l=0.332), Market.SPOT),
    ("not_a_number", mangled_spot(L="46.8x"), Market.SPOT),
    ("nan_price", mangled_spot(L="NaN"), Market.SPOT),
    ("float_trade_id", mangled_spot(t=109747654.0), Market.SPOT),
    ("text_timestamp", mangled_spot(T="1611063861488"), Market.SPOT),
    ("text_maker_flag", mangled_spot(m="false"), Market.SPOT),
    ("missing_quote_qty", {"subscriptionId": 0, "event": {k: v for k, v in SPOT_FILL["event"].items() if k != "Y"}},
     Market.SPOT),
    ("order_not_an_object", {"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": "x"}, Market.FUTURE),
    ("lite_without_trade_id", {k: v for k, v in TRADE_LITE.items() if k != "t"}, Market.FUTURE),
]


@pytest.mark.parametrize("message, market", [(m, k) for _, m, k in MALFORMED], ids=[n for n, _, _ in MALFORMED])
def test_malformed_order_event_raises_normalize_error_with_frame(message, market):
    with pytest.raises(NormalizeError) as caught:
        normalize(message, market)
    assert caught.value.raw is message
