"""Bybit frames → events: the docs' samples read by hand, and the decisions the normalizer documents."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from exchanges.bybit.normalize import normalize
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade
from tests.exchanges.conftest import load_samples

SAMPLES = {s["source"].split(" -- ")[0].rsplit("/", 1)[1].split(" ")[0]: s for s in load_samples("bybit")}

# Read off the docs' messages by hand (sources in tests/data/exchanges/bybit.samples.json).
EXECUTION_SAMPLE_TRADE = {  # execution.mdx "Stream Example" (category linear)
    "symbol": "BTC/USDT:USDT",
    "symbol_raw": "BTCUSDT",
    "trade_id": "0ab1bdf7-4219-438b-b30a-32ec863018f7",
    "order_id": "9aac161b-8ed6-450d-9cab-c5cc67c21784",
    "client_order_id": None,
    "side": Side.SELL,
    "amount": Decimal("0.5"),
    "price": Decimal("95900.1"),
    "cost": Decimal("47950.05"),
    "fee_cost": Decimal("26.3725275"),
    "fee_currency": "USDT",
    "is_maker": False,
    "timestamp": 1746270400353,
}
FAST_EXECUTION_SAMPLE_TRADE = {  # fast-execution.mdx "Stream Example" (topic execution.fast, no fee, no value)
    "symbol": "ICP/USDT:USDT",
    "symbol_raw": "ICPUSDT",
    "trade_id": "3510f361-0add-5c7b-a2e7-9679810944fc",
    "order_id": "443d63fa-b4c3-4297-b7b1-23bca88b04dc",
    "client_order_id": "test-00001",
    "side": Side.SELL,
    "amount": Decimal("3000"),
    "price": Decimal("12.015"),
    "cost": Decimal("36045"),  # 3000 × 12.015
    "fee_cost": None,
    "fee_currency": None,
    "is_maker": False,
    "timestamp": 1716800399334,
}


def _assert_fields(event, expected: dict) -> None:
    assert {name: getattr(event, name) for name in expected} == expected


def _execution(**fields) -> dict:
    row = {
        "category": "spot",
        "symbol": "BTCUSDT",
        "execId": "2100000000071536721",
        "orderId": "1823391425327542528",
        "orderLinkId": "strat-a-42",
        "side": "Buy",
        "execType": "Trade",
        "execQty": "0.001200",
        "execPrice": "59000.10",
        "execValue": "70.80012",
        "execFee": "0.0000012",
        "feeCurrency": "BTC",
        "isMaker": True,
        "execTime": "1723600000123",
    }
    row.update(fields)
    return {"id": "100401071_BTCUSDT_2100000000071536721", "topic": "execution", "creationTime": 1723600000130,
            "data": [{k: v for k, v in row.items() if v is not None}]}


def _order(**fields) -> dict:
    row = {
        "category": "linear",
        "symbol": "ETHUSDT",
        "orderId": "fd4300ae-7847-404e-b947-b46980a4d140",
        "orderLinkId": "strat-b-7",
        "side": "Sell",
        "orderType": "Limit",
        "price": "3500.50",
        "qty": "1.20",
        "orderStatus": "PartiallyFilled",
        "cumExecQty": "0.40",
        "marketUnit": "",
        "createdTime": "1723600000000",
        "updatedTime": "1723600000456",
    }
    row.update(fields)
    return {"id": "5923240c6880ab-c59f", "topic": "order", "creationTime": 1723600000460,
            "data": [{k: v for k, v in row.items() if v is not None}]}


def test_docs_execution_sample_yields_one_linear_trade():
    sample = SAMPLES["execution.mdx"]
    [trade] = normalize(sample["raw"], Market.FUTURE)
    assert isinstance(trade, Trade)
    _assert_fields(trade, EXECUTION_SAMPLE_TRADE)
    assert trade.exchange == "bybit" and trade.market is Market.FUTURE
    assert trade.raw is sample["raw"]["data"][0]


def test_docs_fast_execution_sample_yields_trade_with_computed_cost_and_no_fee():
    [trade] = normalize(SAMPLES["fast-execution.mdx"]["raw"], Market.FUTURE)
    _assert_fields(trade, FAST_EXECUTION_SAMPLE_TRADE)


@pytest.mark.parametrize("name", ["execution.mdx", "fast-execution.mdx"])
def test_docs_linear_samples_give_nothing_on_the_spot_connection(name):
    assert normalize(SAMPLES[name]["raw"], Market.SPOT) == []


@pytest.mark.parametrize("market", [Market.SPOT, Market.FUTURE])
def test_docs_option_order_sample_is_outside_our_markets(market):
    assert SAMPLES["order.mdx"]["raw"]["data"][0]["category"] == "option"
    assert normalize(SAMPLES["order.mdx"]["raw"], market) == []


def test_sample_decoded_with_decimal_floats_keeps_the_same_values():
    text = json.dumps(SAMPLES["execution.mdx"]["raw"])
    [trade] = normalize(json.loads(text, parse_float=Decimal), Market.FUTURE)
    _assert_fields(trade, EXECUTION_SAMPLE_TRADE)


def test_spot_execution_keeps_wire_text_exactly():
    [trade] = normalize(_execution(), Market.SPOT)
    _assert_fields(trade, {
        "symbol": "BTC/USDT", "symbol_raw": "BTCUSDT", "trade_id": "2100000000071536721",
        "order_id": "1823391425327542528", "client_order_id": "strat-a-42", "side": Side.BUY,
        "amount": Decimal("0.001200"), "price": Decimal("59000.10"), "cost": Decimal("70.80012"),
        "fee_cost": Decimal("0.0000012"), "fee_currency": "BTC", "is_maker": True, "timestamp": 1723600000123,
    })
    assert str(trade.amount) == "0.001200" and str(trade.price) == "59000.10"


def test_execution_without_value_costs_qty_times_price_exactly():
    # 38 significant digits: more than the default decimal context (28) would keep.
    frame = _execution(execQty="1234567890.123456789", execPrice="98765432109.87654321", execValue="")
    [trade] = normalize(frame, Market.SPOT)
    assert trade.cost == Decimal(f"{1234567890123456789 * 9876543210987654321}E-17")


def test_one_frame_keeps_only_rows_of_the_connection_market_inverse_among_futures():
    frame = _execution()
    linear = dict(frame["data"][0], category="linear", execId="lin-1", feeCurrency="USDT")
    inverse = dict(frame["data"][0], category="inverse", execId="inv-1", symbol="BTCUSD", feeCurrency="")
    frame["data"] += [linear, inverse]
    assert [t.trade_id for t in normalize(frame, Market.SPOT)] == ["2100000000071536721"]
    assert [(t.trade_id, t.market, t.symbol) for t in normalize(frame, Market.FUTURE)] == [
        ("lin-1", Market.FUTURE, "BTC/USDT:USDT"), ("inv-1", Market.FUTURE, "BTC/USD:BTC")]


def test_inverse_fill_is_recorded_in_usd_contracts_with_its_cost_in_the_coin():
    row = {"category": "inverse", "symbol": "BTCUSD", "execId": "e5f1c2d4-inv", "orderId": "o-inv-1",
           "orderLinkId": "s1-7", "side": "Buy", "execType": "Trade", "execQty": "1000", "execPrice": "64000",
           "execValue": "0.015625", "execFee": "0.000008594", "feeCurrency": "", "isMaker": False,
           "execTime": "1746270400353"}
    [trade] = normalize({"topic": "execution", "data": [row]}, Market.FUTURE)
    _assert_fields(trade, {
        "market": Market.FUTURE, "symbol": "BTC/USD:BTC", "symbol_raw": "BTCUSD", "client_order_id": "s1-7",
        "amount": Decimal("1000"),  # USD contracts: 1 contract = 1 USD
        "price": Decimal("64000"), "cost": Decimal("0.015625"),  # in BTC: 1000 / 64000
        "fee_cost": Decimal("0.000008594"), "fee_currency": "BTC",  # inverse fees are in the settle coin
    })
    [fast] = normalize({"topic": "execution.fast", "data": [dict(row, execValue="")]}, Market.FUTURE)
    assert fast.cost == Decimal("0.015625")


@pytest.mark.parametrize(("raw", "symbol"), [
    ("BTCUSD", "BTC/USD:BTC"),
    ("ETHUSD", "ETH/USD:ETH"),
    ("BTCUSDH25", "BTC/USD:BTC-250328"),  # March 2025: delivered on its last Friday
    ("BTCUSDM25", "BTC/USD:BTC-250627"),
    ("ETHUSDU25", "ETH/USD:ETH-250926"),
    ("BTCUSDZ22", "BTC/USD:BTC-221230"),  # Bybit's BTCUSD1230 of 2022
])
def test_inverse_symbols_unify_like_ccxt(raw, symbol):
    [trade] = normalize(_execution(category="inverse", symbol=raw), Market.FUTURE)
    assert (trade.symbol_raw, trade.symbol) == (raw, symbol)
    [update] = normalize(_order(category="inverse", symbol=raw), Market.FUTURE)
    assert update.symbol == symbol


def test_option_fill_is_a_dead_letter_of_the_future_connection_and_the_other_rows_go_on():
    from framework.validate import RowsRejected

    frame = _execution(category="linear", execId="lin-1")
    option = dict(frame["data"][0], category="option", execId="opt-1", symbol="BTC-27JUN25-70000-C")
    frame["data"].append(option)
    with pytest.raises(RowsRejected) as info:
        normalize(frame, Market.FUTURE)
    assert [t.trade_id for t in info.value.events] == ["lin-1"]
    [(kept, reason)] = info.value.rejected
    assert kept["data"] == [option] and kept["topic"] == "execution"
    assert reason == "bybit execution row is malformed: ValueError(\"'option' fills are not recorded: no market here holds them\")"
    assert [t.trade_id for t in normalize(frame, Market.SPOT)] == []  # the future connection speaks for them


def test_a_malformed_row_is_its_own_dead_letter_and_its_neighbours_are_recorded():
    from framework.validate import RowsRejected

    frame = _execution()
    frame["data"] = [dict(frame["data"][0], execId="bad", execPrice="abc"), dict(frame["data"][0], execId="good")]
    with pytest.raises(RowsRejected) as info:
        normalize(frame, Market.SPOT)
    assert [t.trade_id for t in info.value.events] == ["good"]
    assert [kept["data"][0]["execId"] for kept, _ in info.value.rejected] == ["bad"]


def test_classic_spot_fill_with_empty_exec_type_and_fee_is_a_trade_without_fee():
    # Spot rows of classic accounts (captured in 2023): execType and execFee empty, no feeCurrency.
    row = {"category": "spot", "symbol": "ETHUSDT", "execId": "2100000000042461239", "orderId": "1512871429539414016",
           "orderLinkId": "", "side": "Sell", "execType": "", "execQty": "0.10", "execPrice": "1825.51",
           "execValue": "", "execFee": "", "isMaker": True, "execTime": "1693303622611", "blockTradeId": ""}
    [trade] = normalize({"topic": "execution", "data": [row]}, Market.SPOT)
    _assert_fields(trade, {
        "symbol": "ETH/USDT", "trade_id": "2100000000042461239", "side": Side.SELL, "amount": Decimal("0.10"),
        "price": Decimal("1825.51"), "cost": Decimal("182.5510"), "fee_cost": None, "fee_currency": None,
        "client_order_id": None, "is_maker": True, "timestamp": 1693303622611,
    })
    with pytest.raises(NormalizeError, match="unknown execType ''"):  # only spot rows leave it empty
        normalize({"topic": "execution", "data": [dict(row, category="linear")]}, Market.FUTURE)


def test_several_executions_in_one_frame_keep_their_order():
    frame = _execution()
    frame["data"].append(dict(frame["data"][0], execId="second", execQty="0.5"))
    assert [(t.trade_id, t.amount) for t in normalize(frame, Market.SPOT)] == [
        ("2100000000071536721", Decimal("0.001200")), ("second", Decimal("0.5"))]


@pytest.mark.parametrize("exec_type", ["Funding", "Delivery", "Settle"])
def test_cash_flow_exec_types_are_not_fills(exec_type):
    assert normalize(_execution(category="linear", execType=exec_type), Market.FUTURE) == []


@pytest.mark.parametrize("exec_type", ["Trade", "AdlTrade", "BustTrade", "BlockTrade", "MovePosition",
                                       "FutureSpread", "UNKNOWN"])
def test_position_moving_exec_types_are_fills(exec_type):
    [trade] = normalize(_execution(category="linear", execType=exec_type), Market.FUTURE)
    assert trade.trade_id == "2100000000071536721"


def test_unknown_exec_type_raises_normalize_error_with_the_frame():
    frame = _execution(execType="Airdrop")
    with pytest.raises(NormalizeError, match="Airdrop") as info:
        normalize(frame, Market.SPOT)
    assert info.value.raw is frame


@pytest.mark.parametrize(
    ("side", "fee", "is_maker", "currency"),
    [
        ("Buy", "0.0000012", False, "BTC"),  # paid in the coin received
        ("Sell", "0.07", True, "USDT"),
        ("Buy", "-0.01", True, "USDT"),  # rebate: the other coin
        ("Sell", "-0.0000001", True, "BTC"),
        ("Buy", "0", True, "USDT"),  # zero maker fee: rebate branch of the instruction
        ("Buy", "0", False, "BTC"),
    ],
)
def test_spot_fee_currency_follows_bybit_instruction_when_not_sent(side, fee, is_maker, currency):
    [trade] = normalize(_execution(side=side, execFee=fee, isMaker=is_maker, feeCurrency=None), Market.SPOT)
    assert (trade.fee_cost, trade.fee_currency) == (Decimal(fee), currency)


def test_linear_fee_currency_is_the_settle_coin_when_not_sent():
    frame = _execution(category="linear", symbol="ETHPERP", feeCurrency="")
    [trade] = normalize(frame, Market.FUTURE)
    assert (trade.symbol, trade.fee_currency) == ("ETH/USDC:USDC", "USDC")


def test_negative_exec_fee_is_a_rebate_kept_negative():
    [trade] = normalize(_execution(category="linear", execFee="-0.0123", feeCurrency="USDT"), Market.FUTURE)
    assert trade.fee_cost == Decimal("-0.0123")


@pytest.mark.parametrize(
    ("raw", "symbol"),
    [
        ("BTCUSDT", "BTC/USDT:USDT"),
        ("BTCUSDC", "BTC/USDC:USDC"),
        ("BTCPERP", "BTC/USDC:USDC"),
        ("BTCUSDT-21FEB25", "BTC/USDT:USDT-250221"),
        ("BTC-24MAR23", "BTC/USDC:USDC-230324"),
        ("ETH-7JUN24", "ETH/USDC:USDC-240607"),
    ],
)
def test_linear_symbols_unify_like_ccxt(raw, symbol):
    [trade] = normalize(_execution(category="linear", symbol=raw), Market.FUTURE)
    assert (trade.symbol_raw, trade.symbol) == (raw, symbol)


@pytest.mark.parametrize("raw", ["BTCUSDT-21XYZ25", "BTC-AAFEB25", "XYZ"])
def test_unreadable_linear_symbol_raises_normalize_error(raw):
    with pytest.raises(NormalizeError):
        normalize(_execution(category="linear", symbol=raw), Market.FUTURE)


def test_linear_limit_order_update_carries_qty_price_and_filled():
    [update] = normalize(_order(), Market.FUTURE)
    assert isinstance(update, OrderUpdate)
    _assert_fields(update, {
        "exchange": "bybit", "market": Market.FUTURE, "symbol": "ETH/USDT:USDT", "symbol_raw": "ETHUSDT",
        "order_id": "fd4300ae-7847-404e-b947-b46980a4d140", "client_order_id": "strat-b-7", "side": Side.SELL,
        "order_type": "limit", "status": OrderStatus.PARTIALLY_FILLED, "status_raw": "PartiallyFilled",
        "amount": Decimal("1.20"), "price": Decimal("3500.50"), "filled": Decimal("0.40"),
        "timestamp": 1723600000456,
    })


@pytest.mark.parametrize(
    ("status_raw", "status"),
    [
        ("Created", OrderStatus.NEW),
        ("New", OrderStatus.NEW),
        ("Active", OrderStatus.NEW),
        ("Untriggered", OrderStatus.NEW),
        ("Triggered", OrderStatus.NEW),
        ("PartiallyFilled", OrderStatus.PARTIALLY_FILLED),
        ("Filled", OrderStatus.FILLED),
        ("Cancelled", OrderStatus.CANCELED),
        ("PartiallyFilledCanceled", OrderStatus.CANCELED),
        ("Deactivated", OrderStatus.CANCELED),
        ("Rejected", OrderStatus.REJECTED),
    ],
)
def test_order_status_maps_and_keeps_the_venue_text(status_raw, status):
    [update] = normalize(_order(orderStatus=status_raw), Market.FUTURE)
    assert (update.status, update.status_raw) == (status, status_raw)


def test_unknown_order_status_raises_normalize_error():
    with pytest.raises(NormalizeError):
        normalize(_order(orderStatus="Exploded"), Market.FUTURE)


def test_market_order_has_no_limit_price():
    [update] = normalize(_order(orderType="Market", price="3400.00"), Market.FUTURE)
    assert (update.order_type, update.price, update.amount) == ("market", None, Decimal("1.20"))


@pytest.mark.parametrize("unit", ["", "quoteCoin", None])
def test_spot_market_buy_in_quote_coin_takes_amount_from_filled(unit):
    frame = _order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="100",
                   cumExecQty="0.0017", orderStatus="Filled", marketUnit=unit)
    [update] = normalize(frame, Market.SPOT)
    assert (update.symbol, update.amount, update.filled) == ("BTC/USDT", Decimal("0.0017"), Decimal("0.0017"))


def test_spot_market_buy_in_base_coin_keeps_qty():
    frame = _order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.002",
                   cumExecQty="0", orderStatus="New", marketUnit="baseCoin")
    [update] = normalize(frame, Market.SPOT)
    assert update.amount == Decimal("0.002")


def test_spot_market_sell_qty_is_base_coin():
    frame = _order(category="spot", symbol="BTCUSDT", side="Sell", orderType="Market", qty="0.002",
                   cumExecQty="0.001", marketUnit="")
    [update] = normalize(frame, Market.SPOT)
    assert update.amount == Decimal("0.002")


def test_empty_price_on_limit_order_is_none():
    [update] = normalize(_order(price=""), Market.FUTURE)
    assert update.price is None


@pytest.mark.parametrize(
    "frame",
    [
        {"success": True, "ret_msg": "", "op": "auth", "conn_id": "cejreaspqfh3sjdnldmg-p"},
        {"success": True, "ret_msg": "", "op": "subscribe", "conn_id": "cejreassvfrsfvb9v1a0-2m"},
        {"req_id": "test", "op": "pong", "args": ["1675418560633"], "conn_id": "cfcb820tfqr7sql"},
        {"topic": "wallet", "id": "1", "creationTime": 1, "data": [{"accountType": "UNIFIED"}]},
        {"topic": "orderbook.50.BTCUSDT", "data": {"s": "BTCUSDT"}},
        [], [1, 2], "pong", b"\x00\x01", None, 42,
    ],
)
def test_non_event_frames_give_nothing(frame):
    assert normalize(frame, Market.SPOT) == []


def test_float_quantity_is_refused():
    frame = _execution(execQty=0.0012)
    with pytest.raises(NormalizeError, match="float"):
        normalize(frame, Market.SPOT)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("side", "BUY"), ("side", None), ("execQty", "abc"), ("execQty", "0"), ("execQty", "NaN"),
        ("execPrice", "Infinity"), ("execTime", "1.7e12"), ("execTime", 1.5), ("execId", ""), ("orderId", 7),
        ("isMaker", "false"), ("feeCurrency", 5), ("category", None), ("execFee", []),
    ],
)
def test_malformed_execution_field_raises_normalize_error(field, value):
    frame = _execution()
    row = frame["data"][0]
    if value is None:
        del row[field]
    else:
        row[field] = value
    with pytest.raises(NormalizeError) as info:
        normalize(frame, Market.SPOT)
    assert info.value.raw is frame


@pytest.mark.parametrize("data", [None, {}, "rows", [None], [[1]], ["category"]])
def test_malformed_data_raises_normalize_error(data):
    frame = copy.deepcopy(_order())
    frame["data"] = data
    if data is None:
        del frame["data"]
    with pytest.raises(NormalizeError):
        normalize(frame, Market.FUTURE)


def test_cost_beyond_decimal_range_raises_normalize_error_rather_than_rounding():
    with pytest.raises(NormalizeError):
        normalize(_execution(execQty="1E+600000", execPrice="1E+600000", execValue=""), Market.SPOT)
