"""Gate normalize: the docs' samples read by hand, order states, futures contracts and fees, malformed events."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from exchanges.gate.normalize import normalize
from exchanges.symbols import register_contract_sizes
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade
from tests.exchanges.conftest import DATA, load_samples

# Decoded as the connection does (`parse_float=Decimal`): futures samples carry JSON numbers.
SAMPLES = json.loads((DATA / "gate.samples.json").read_text(), parse_float=Decimal)
SPOT_ORDERS = 'Gate "Spot WebSocket v4" docs (https://www.gate.io/docs/developers/apiv4/ws/en/ , section "Orders'
SPOT_TRADES = 'Gate "Spot WebSocket v4" docs, section "User Trades Channel"'
FUTURES_ORDERS = 'Gate "Futures WebSocket v4" docs (section "Orders API"'
FUTURES_TRADES = 'Gate "Futures WebSocket v4" docs (section "User trades API"'

# Read off each sample by hand. Futures samples are the docs' BTC_USD contract: on the USDT-settled
# socket it unifies with settle USDT, and no contract size is known for it, so cost = size × price.
EXPECTED = {
    SPOT_ORDERS: OrderUpdate(
        exchange="gate", market="spot", symbol="BTC/USDT", symbol_raw="BTC_USDT", order_id="399123456",
        client_order_id="testtext", side="sell", order_type="limit", status="new", status_raw="put",
        amount=Decimal("0.0001"), price=Decimal("26253.3"), filled=Decimal("0"), timestamp=1694655225315,
    ),
    SPOT_TRADES: Trade(
        exchange="gate", market="spot", symbol="BTC/USDT", symbol_raw="BTC_USDT", trade_id="5736713",
        order_id="30784428", client_order_id=None, side="sell", amount=Decimal("1.00000000"),
        price=Decimal("10000.00000000"), cost=Decimal("10000"), fee_cost=Decimal("0.002"), fee_currency=None,
        is_maker=False, timestamp=1605176741123,
    ),
    FUTURES_ORDERS: OrderUpdate(
        exchange="gate", market="future", symbol="BTC/USD:USDT", symbol_raw="BTC_USD", order_id="4872460",
        client_order_id=None, side="buy", order_type="limit", status="filled", status_raw="filled",
        amount=Decimal("1"), price=Decimal("40000.4"), filled=Decimal("1"), timestamp=1628736848321,
    ),
    FUTURES_TRADES: Trade(
        exchange="gate", market="future", symbol="BTC/USD:USDT", symbol_raw="BTC_USD", trade_id="3335259",
        order_id="4872460", client_order_id=None, side="buy", amount=Decimal("1"), price=Decimal("40000.4"),
        cost=Decimal("40000.4"), fee_cost=Decimal("0.0009290592"), fee_currency="USDT", is_maker=True,
        timestamp=1628736848321,
    ),
}


def _expected_for(source: str):
    matches = [value for prefix, value in EXPECTED.items() if source.startswith(prefix)]
    assert len(matches) == 1, source
    return matches[0]


@pytest.mark.parametrize("sample", SAMPLES, ids=[s["kind"] + "-" + s["market"] for s in SAMPLES])
def test_docs_sample_normalizes_to_hand_read_values(sample):
    events = normalize(sample["raw"], Market(sample["market"]))
    assert events == [_expected_for(sample["source"])]
    assert events[0].raw is sample["raw"]["result"][0]


def test_every_sample_source_has_a_hand_read_expectation():
    assert sorted(_expected_for(s["source"]).event_type.value for s in SAMPLES) == [
        "order_update", "order_update", "trade", "trade",
    ]


def test_futures_samples_decoded_with_floats_are_refused():
    floats = {s["source"]: s["raw"] for s in load_samples("gate") if s["market"] == "future"}
    for raw in floats.values():
        with pytest.raises(NormalizeError) as caught:
            normalize(raw, Market.FUTURE)
        assert caught.value.raw is raw


def test_spot_trade_keeps_exact_decimal_text():
    [trade] = normalize(next(s["raw"] for s in SAMPLES if s["raw"]["channel"] == "spot.usertrades"), Market.SPOT)
    assert (str(trade.amount), str(trade.price)) == ("1.00000000", "10000.00000000")
    assert str(trade.fee_cost) == "0.00200000000000"
    assert str(trade.cost) == "10000.0000000000000000"


def spot_order(**fields) -> dict:
    row = {
        "id": "42", "text": "t-strat1-7", "currency_pair": "ETH_USDT", "type": "limit", "side": "buy",
        "amount": "2.5", "price": "3000.10", "left": "2.5", "update_time_ms": "1700000000123", "event": "put",
        "finish_as": "open",
    }
    row.update(fields)
    return {"time": 1700000000, "channel": "spot.orders", "event": "update", "result": [row]}


def futures_order(**fields) -> dict:
    row = {
        "id": 77, "contract": "BTC_USDT", "size": -3, "left": -3, "price": Decimal("60000.5"), "status": "open",
        "finish_as": "_new", "create_time_ms": 1700000000100, "text": "t-abc",
    }
    row.update(fields)
    return {"time": 1700000000, "channel": "futures.orders", "event": "update", "result": [row]}


def futures_trade(**fields) -> dict:
    row = {
        "id": "9001", "order_id": "77", "contract": "BTC_USDT", "size": -2, "price": "60000.5", "role": "maker",
        "fee": Decimal("-0.003"), "point_fee": 0, "create_time_ms": 1700000000200, "text": "web",
    }
    row.update(fields)
    return {"time": 1700000000, "channel": "futures.usertrades", "event": "update", "result": [row]}


@pytest.mark.parametrize(
    ("fields", "status", "status_raw", "filled"),
    [
        ({"event": "update", "left": "1.0"}, OrderStatus.PARTIALLY_FILLED, "update", Decimal("1.5")),
        ({"event": "finish", "finish_as": "filled", "left": "0"}, OrderStatus.FILLED, "filled", Decimal("2.5")),
        ({"event": "finish", "finish_as": "cancelled", "left": "2"}, OrderStatus.CANCELED, "cancelled", Decimal(".5")),
        ({"event": "finish", "finish_as": "ioc", "left": "1"}, OrderStatus.EXPIRED, "ioc", Decimal("1.5")),
        ({"event": "finish", "finish_as": "poc", "left": "2.5"}, OrderStatus.REJECTED, "poc", Decimal("0")),
        ({"event": "finish", "finish_as": "stp", "left": "2.5"}, OrderStatus.CANCELED, "stp", Decimal("0")),
        ({"event": "finish", "finish_as": None, "left": "0"}, OrderStatus.FILLED, "finish", Decimal("2.5")),
    ],
)
def test_spot_order_events_map_to_status(fields, status, status_raw, filled):
    [order] = normalize(spot_order(**fields), Market.SPOT)
    assert (order.status, order.status_raw, order.filled) == (status, status_raw, filled)
    assert (order.symbol, order.side, order.client_order_id) == ("ETH/USDT", Side.BUY, "strat1-7")
    assert order.timestamp == 1700000000123


def test_spot_market_buy_finished_filled_with_quote_dust_left_is_filled():
    frame = spot_order(type="market", price="0", amount="100", left="0.0000001", event="finish", finish_as="filled")
    [order] = normalize(frame, Market.SPOT)
    assert (order.status, order.order_type, order.price, order.filled) == (
        OrderStatus.FILLED, "market", None, Decimal("99.9999999"),
    )


def test_spot_order_without_user_text_has_no_client_order_id():
    [order] = normalize(spot_order(text="apiv4"), Market.SPOT)
    assert order.client_order_id is None


def test_futures_sell_order_partly_filled_is_partially_filled_with_contract_amounts():
    [order] = normalize(futures_order(left=-1), Market.FUTURE)
    assert (order.side, order.amount, order.filled) == (Side.SELL, Decimal("3"), Decimal("2"))
    assert (order.status, order.status_raw) == (OrderStatus.PARTIALLY_FILLED, "open")
    assert (order.symbol, order.timestamp, order.client_order_id) == ("BTC/USDT:USDT", 1700000000100, "abc")


def test_futures_open_order_without_fill_is_new():
    [order] = normalize(futures_order(), Market.FUTURE)
    assert (order.status, order.filled, order.price, order.order_type) == (
        OrderStatus.NEW, Decimal("0"), Decimal("60000.5"), "limit",
    )


def test_futures_finished_order_uses_finish_time_and_finish_as():
    frame = futures_order(status="finished", finish_as="cancelled", left=-2, finish_time_ms=1700000000999)
    [order] = normalize(frame, Market.FUTURE)
    assert (order.status, order.status_raw, order.timestamp) == (OrderStatus.CANCELED, "cancelled", 1700000000999)


def test_futures_market_order_has_no_price():
    [order] = normalize(futures_order(price=0, size=5, left=0, status="finished", finish_as="filled"), Market.FUTURE)
    assert (order.order_type, order.price, order.side, order.status) == ("market", None, Side.BUY, OrderStatus.FILLED)


def test_futures_close_order_of_size_zero_takes_side_from_auto_size():
    [order] = normalize(futures_order(size=0, left=0, auto_size="close_long"), Market.FUTURE)
    assert order.side is Side.SELL


def test_futures_trade_cost_uses_fallback_contract_size_and_keeps_rebate_negative():
    [trade] = normalize(futures_trade(), Market.FUTURE)
    assert (trade.side, trade.amount, trade.price) == (Side.SELL, Decimal("2"), Decimal("60000.5"))
    assert trade.cost == Decimal("12.0001")  # 2 contracts × 60000.5 × 0.0001 BTC
    assert (trade.fee_cost, trade.fee_currency, trade.is_maker) == (Decimal("-0.003"), "USDT", True)
    assert (trade.trade_id, trade.order_id, trade.client_order_id) == ("9001", "77", None)


def test_futures_trade_cost_prefers_registered_contract_size():
    register_contract_sizes("gate", {"GATETESTA_USDT": Decimal("10")})
    [trade] = normalize(futures_trade(contract="GATETESTA_USDT", size=3, price="0.25"), Market.FUTURE)
    assert (trade.cost, trade.symbol) == (Decimal("7.5"), "GATETESTA/USDT:USDT")


def test_futures_trade_of_unknown_contract_costs_size_times_price():
    [trade] = normalize(futures_trade(contract="GATETESTB_USDT", size=4, price="1.5"), Market.FUTURE)
    assert trade.cost == Decimal("6")


def test_futures_trade_with_decimal_size_from_size_decimal_header():
    [trade] = normalize(futures_trade(size="0.5", price="100"), Market.FUTURE)
    assert (trade.amount, trade.side) == (Decimal("0.5"), Side.BUY)


def test_fee_paid_in_points_is_reported_in_points():
    [trade] = normalize(futures_trade(fee=0, point_fee=Decimal("0.02")), Market.FUTURE)
    assert (trade.fee_cost, trade.fee_currency) == (Decimal("0.02"), "POINT")


def test_spot_fee_paid_in_gt_is_reported_in_gt():
    frame = {
        "channel": "spot.usertrades", "event": "update",
        "result": [{
            "id": 1, "order_id": "2", "currency_pair": "GT_USDT", "create_time_ms": "1700000000000.5",
            "side": "buy", "amount": "3", "price": "5.1", "role": "maker", "fee": "0", "fee_currency": "GT",
            "point_fee": "0", "gt_fee": "0.0012", "text": "t-x",
        }],
    }
    [trade] = normalize(frame, Market.SPOT)
    assert (trade.fee_cost, trade.fee_currency, trade.cost, trade.timestamp) == (
        Decimal("0.0012"), "GT", Decimal("15.3"), 1700000000000,
    )


def test_frame_with_two_rows_gives_two_events_in_order():
    frame = futures_trade()
    frame["result"].append(dict(frame["result"][0], id="9002", size=1))
    trades = normalize(frame, Market.FUTURE)
    assert [(t.trade_id, t.side) for t in trades] == [("9001", Side.SELL), ("9002", Side.BUY)]


@pytest.mark.parametrize(
    "frame",
    [
        {"time": 1, "channel": "spot.orders", "event": "subscribe", "error": None, "result": {"status": "success"}},
        {"time": 1, "channel": "futures.pong", "event": "", "error": None, "result": None},
        {"time": 1, "channel": "spot.balances", "event": "update", "result": [{"currency": "USDT"}]},
        {"time": 1, "channel": "futures.usertrades", "event": "unsubscribe", "result": {"status": "success"}},
        {"channel": "spot.usertrades", "event": "update", "result": []},
        [1, 2],
        b"\x00\x01",
        "pong",
    ],
)
def test_non_events_give_nothing(frame):
    assert normalize(frame, Market.SPOT) == []


@pytest.mark.parametrize(
    "frame",
    [
        spot_order(side="hold"),
        spot_order(amount="lots"),
        spot_order(price=1.5),
        spot_order(id=None),
        spot_order(type=7),
        futures_order(size=0, left=0),
        futures_order(price=60000.5),
        futures_trade(create_time_ms=None),
        {"channel": "spot.usertrades", "event": "update", "result": {"id": 1}},
        {"channel": "futures.orders", "event": "update"},
    ],
)
def test_malformed_events_raise_normalize_error_with_frame(frame):
    with pytest.raises(NormalizeError) as caught:
        normalize(frame, Market.SPOT)
    assert caught.value.raw is frame


def test_missing_field_error_names_channel():
    frame = futures_trade()
    del frame["result"][0]["order_id"]
    with pytest.raises(NormalizeError, match="futures.usertrades"):
        normalize(frame, Market.FUTURE)
