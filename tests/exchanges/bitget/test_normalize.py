"""Golden Bitget pushes → the events read off them by hand; acks and junk → [] or NormalizeError."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from exchanges.bitget.normalize import normalize
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade
from tests.exchanges.conftest import load_samples

SAMPLES = load_samples("bitget")

# Expected events per sample of bitget.samples.json, written by reading each message.
EXPECTED_FROM_SAMPLES = [
    (
        "contract/websocket/private/Fill-Channel",
        [
            Trade(
                exchange="bitget", market="future", symbol="BTC/USDT:USDT", symbol_raw="BTCUSDT",
                trade_id="222", order_id="111", client_order_id="111", side="buy",
                amount=Decimal("0.01"), price=Decimal("51000.5"), cost=Decimal("510.005"),
                fee_cost=Decimal("0.183717"), fee_currency="USDT", is_maker=False, timestamp=1703577336606,
            )
        ],
    ),
    (
        "contract/websocket/private/Order-Channel",
        [
            OrderUpdate(
                exchange="bitget", market="future", symbol="BTC/USDT:USDT", symbol_raw="BTCUSDT",
                order_id="1", client_order_id="1", side="buy", order_type="market",
                status="filled", status_raw="filled", amount=Decimal("0.01"), price=None,
                filled=Decimal("0.01"), timestamp=1695718781146,
            ),
            Trade(
                exchange="bitget", market="future", symbol="BTC/USDT:USDT", symbol_raw="BTCUSDT",
                trade_id="1111111111", order_id="1", client_order_id="1", side="buy",
                amount=Decimal("0.01"), price=Decimal("27000.5"), cost=Decimal("270.005"),
                fee_cost=Decimal("0.162003"), fee_currency="USDT", is_maker=False, timestamp=1695718781146,
            ),
        ],
    ),
]

# Verbatim from https://www.bitget.com/api-doc/spot/websocket/private/Fill-Channel (Push Data).
SPOT_FILL_DOC = {
    "action": "snapshot",
    "arg": {"instType": "SPOT", "channel": "fill", "instId": "default"},
    "data": [
        {
            "orderId": "111", "tradeId": "111", "symbol": "BTCUSDT", "orderType": "limit", "side": "buy",
            "priceAvg": "42740.41", "size": "0.0006", "amount": "25.644246", "tradeScope": "marker",
            "feeDetail": [{"feeCoin": "USDT", "deduction": "no", "totalDeductionFee": "0", "totalFee": "0.01538655"}],
            "cTime": "1703580202094", "uTime": "1703580202094",
        },
        {
            "orderId": "111", "tradeId": "222", "symbol": "BTCUSDT", "orderType": "limit", "side": "buy",
            "priceAvg": "42741.46", "size": "0.0006", "amount": "25.644876", "tradeScope": "marker",
            "feeDetail": [{"feeCoin": "USDT", "deduction": "no", "totalDeductionFee": "0", "totalFee": "0.01538693"}],
            "cTime": "1703580202094", "uTime": "1703580202094",
        },
    ],
    "ts": 1703580202416,
}

# Verbatim from ccxt 4.5.90 python/ccxt/pro/bitget.py, handle_my_trades (a captured spot `fill` push).
SPOT_FILL_CCXT = {
    "action": "snapshot",
    "arg": {"instType": "SPOT", "channel": "fill", "instId": "default"},
    "data": [
        {
            "orderId": "1169142457356959747", "tradeId": "1169142457636958209", "symbol": "LTCUSDT",
            "orderType": "market", "side": "buy", "priceAvg": "81.069", "size": "0.074", "amount": "5.999106",
            "tradeScope": "taker",
            "feeDetail": [{"feeCoin": "LTC", "deduction": "no", "totalDeductionFee": "0", "totalFee": "0.000074"}],
            "cTime": "1714471204194", "uTime": "1714471204194",
        }
    ],
    "ts": 1714471204270,
}

# Verbatim from https://www.bitget.com/api-doc/spot/websocket/private/Order-Channel (Push Data).
SPOT_ORDERS_DOC = {
    "action": "snapshot",
    "arg": {"instType": "SPOT", "channel": "orders", "instId": "BTCUSDT"},
    "data": [
        {
            "instId": "BTCUSDT", "orderId": "1", "clientOid": "1", "size": "8.0000", "newSize": "500.0000",
            "notional": "8.000000", "orderType": "market", "force": "gtc", "side": "buy", "fillPrice": "26256.0",
            "tradeId": "1", "baseVolume": "0.0003", "fillTime": "1695797773286", "fillFee": "-0.00000018",
            "fillFeeCoin": "BTC", "tradeScope": "T", "accBaseVolume": "0.0003", "priceAvg": "26256.0",
            "status": "partially_filled", "cTime": "1695797773257", "uTime": "1695797773326",
            "stpMode": "cancel_taker", "feeDetail": [{"feeCoin": "BTC", "fee": "-0.00000018"}],
            "enterPointSource": "WEB",
        }
    ],
    "ts": 1695797773370,
}

FUTURES_ORDERS = next(s["raw"] for s in SAMPLES if s["kind"] == "order_update")
FUTURES_FILL = next(s["raw"] for s in SAMPLES if s["kind"] == "trade")


def _with_row(message: dict, **changes) -> dict:
    """A copy of a one-row push with fields replaced (value None removes the field)."""
    result = copy.deepcopy(message)
    row = result["data"][0]
    for key, value in changes.items():
        if value is None:
            row.pop(key, None)
        else:
            row[key] = value
    return result


def test_expected_table_covers_every_sample():
    assert len(EXPECTED_FROM_SAMPLES) == len(SAMPLES)


@pytest.mark.parametrize("sample, expected", list(zip(SAMPLES, EXPECTED_FROM_SAMPLES)), ids=["fill", "orders"])
def test_sample_normalizes_to_hand_read_events(sample, expected):
    source_fragment, events = expected
    assert source_fragment in sample["source"]
    assert normalize(sample["raw"], Market(sample["market"])) == events


def test_futures_fill_fee_paid_is_negative_on_wire_and_positive_here():
    (trade,) = normalize(FUTURES_FILL, Market.FUTURE)
    assert trade.fee_cost == Decimal("0.183717")
    assert trade.cost == Decimal("510.005")


def test_futures_orders_push_with_fill_yields_order_update_then_trade():
    events = normalize(FUTURES_ORDERS, Market.FUTURE)
    assert [type(e) for e in events] == [OrderUpdate, Trade]
    assert events[0].status is OrderStatus.FILLED
    assert events[1].trade_id == "1111111111"


def test_spot_fill_doc_sample_yields_two_trades_with_fee_kept_positive():
    assert normalize(SPOT_FILL_DOC, Market.SPOT) == [
        Trade(
            exchange="bitget", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", trade_id="111",
            order_id="111", side="buy", amount=Decimal("0.0006"), price=Decimal("42740.41"),
            cost=Decimal("25.644246"), fee_cost=Decimal("0.01538655"), fee_currency="USDT", is_maker=True,
            timestamp=1703580202094,
        ),
        Trade(
            exchange="bitget", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", trade_id="222",
            order_id="111", side="buy", amount=Decimal("0.0006"), price=Decimal("42741.46"),
            cost=Decimal("25.644876"), fee_cost=Decimal("0.01538693"), fee_currency="USDT", is_maker=True,
            timestamp=1703580202094,
        ),
    ]


def test_spot_fill_captured_by_ccxt_charges_fee_in_base_coin():
    assert normalize(SPOT_FILL_CCXT, Market.SPOT) == [
        Trade(
            exchange="bitget", market="spot", symbol="LTC/USDT", symbol_raw="LTCUSDT",
            trade_id="1169142457636958209", order_id="1169142457356959747", side="buy",
            amount=Decimal("0.074"), price=Decimal("81.069"), cost=Decimal("5.999106"),
            fee_cost=Decimal("0.000074"), fee_currency="LTC", is_maker=False, timestamp=1714471204194,
        )
    ]


def test_spot_orders_doc_sample_yields_order_update_then_trade_with_negated_fee():
    assert normalize(SPOT_ORDERS_DOC, Market.SPOT) == [
        OrderUpdate(
            exchange="bitget", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", order_id="1",
            client_order_id="1", side="buy", order_type="market", status="partially_filled",
            status_raw="partially_filled", amount=Decimal("500.0000"), price=None, filled=Decimal("0.0003"),
            timestamp=1695797773326,
        ),
        Trade(
            exchange="bitget", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", trade_id="1",
            order_id="1", client_order_id="1", side="buy", amount=Decimal("0.0003"), price=Decimal("26256.0"),
            cost=Decimal("7.8768"), fee_cost=Decimal("0.00000018"), fee_currency="BTC", is_maker=False,
            timestamp=1695797773286,
        ),
    ]


def test_orders_trade_has_the_dedup_key_of_the_fill_channel_trade_for_the_same_fill():
    # One spot fill seen on both channels: the fill row uses the orders push's ids, price, qty and fee.
    fill_push = _with_row(
        SPOT_FILL_DOC, tradeId="1", orderId="1", priceAvg="26256.0", size="0.0003", amount="7.8768",
        feeDetail=[{"feeCoin": "BTC", "deduction": "no", "totalDeductionFee": "0", "totalFee": "0.00000018"}],
    )
    fill_push["data"] = fill_push["data"][:1]
    (_, from_orders) = normalize(SPOT_ORDERS_DOC, Market.SPOT)
    (from_fill,) = normalize(fill_push, Market.SPOT)
    assert from_orders.dedup_key == from_fill.dedup_key == ("bitget", "spot", "default", "BTC/USDT", "1", "1")
    for field in ("amount", "price", "cost", "fee_cost", "fee_currency"):
        assert getattr(from_orders, field) == getattr(from_fill, field), field


def test_live_order_without_fill_yields_only_order_update_with_limit_price():
    push = _with_row(
        FUTURES_ORDERS, status="live", orderType="limit", price="26000.5", accBaseVolume="0",
        tradeId=None, baseVolume=None, fillPrice=None, fillTime=None, fillFee=None, fillFeeCoin=None,
    )
    (update,) = normalize(push, Market.FUTURE)
    assert update.status is OrderStatus.NEW
    assert update.status_raw == "live"
    assert update.price == Decimal("26000.5")
    assert update.filled == Decimal(0)


def test_order_push_with_zero_base_volume_carries_no_trade():
    push = _with_row(FUTURES_ORDERS, status="live", baseVolume="0", accBaseVolume="0")
    assert [type(e) for e in normalize(push, Market.FUTURE)] == [OrderUpdate]


@pytest.mark.parametrize(
    "status_raw, market, status",
    [
        ("cancelled", Market.SPOT, OrderStatus.CANCELED),
        ("canceled", Market.FUTURE, OrderStatus.CANCELED),
        ("partially_filled", Market.FUTURE, OrderStatus.PARTIALLY_FILLED),
        ("live", Market.SPOT, OrderStatus.NEW),
    ],
)
def test_order_status_maps_both_cancel_spellings(status_raw, market, status):
    source = SPOT_ORDERS_DOC if market is Market.SPOT else FUTURES_ORDERS
    update = normalize(_with_row(source, status=status_raw), market)[0]
    assert (update.status, update.status_raw) == (status, status_raw)


def test_sell_side_and_maker_scope_are_read():
    push = _with_row(FUTURES_FILL, side="sell", tradeScope="maker")
    (trade,) = normalize(push, Market.FUTURE)
    assert (trade.side, trade.is_maker) == (Side.SELL, True)


def test_fill_without_fee_detail_keeps_the_fill_with_unknown_fee():
    (trade,) = normalize(_with_row(FUTURES_FILL, feeDetail=[]), Market.FUTURE)
    assert (trade.fee_cost, trade.fee_currency) == (None, None)


def test_futures_rebate_on_wire_becomes_negative_fee_here():
    detail = [{"feeCoin": "USDT", "deduction": "no", "totalDeductionFee": "0", "totalFee": "0.0051"}]
    (trade,) = normalize(_with_row(FUTURES_FILL, feeDetail=detail), Market.FUTURE)
    assert trade.fee_cost == Decimal("-0.0051")


@pytest.mark.parametrize(
    "frame",
    [
        "pong",
        b"\x00\x01",
        [],
        None,
        {"event": "login", "code": 0},
        {"event": "subscribe", "arg": {"instType": "SPOT", "channel": "orders", "instId": "default"}},
        {"event": "error", "code": 30005, "msg": "login failed"},
        {"action": "snapshot", "arg": {"instType": "SPOT", "channel": "account", "coin": "default"}, "data": [{}]},
        {"action": "snapshot", "arg": "orders", "data": [{}]},
        {"action": "snapshot", "arg": {"channel": ["orders"]}, "data": [{}]},
    ],
    ids=[
        "pong", "bytes", "list", "none", "login-ack", "subscribe-ack", "error", "other-channel", "bad-arg",
        "list-channel",
    ],
)
def test_non_event_frames_give_no_events(frame):
    assert normalize(frame, Market.SPOT) == []


def test_empty_data_gives_no_events():
    assert normalize({**FUTURES_FILL, "data": []}, Market.FUTURE) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "exploded"},
        {"side": "long"},
        {"size": 0.01},
        {"size": "abc"},
        {"accBaseVolume": None},
        {"orderId": ""},
        {"uTime": 1695718781146.0},
        {"instId": "???"},
        {"fillPrice": None},
        {"fillFee": "NaN"},
        {"tradeScope": ["T"]},
    ],
    ids=lambda c: ",".join(f"{k}={v!r}" for k, v in c.items()),
)
def test_malformed_order_row_raises_normalize_error_with_frame(changes):
    push = _with_row(FUTURES_ORDERS, **changes)
    with pytest.raises(NormalizeError) as caught:
        normalize(push, Market.FUTURE)
    assert caught.value.raw is push


@pytest.mark.parametrize(
    "push",
    [
        {**FUTURES_FILL, "data": {"tradeId": "1"}},
        {**FUTURES_FILL, "data": ["row"]},
        {key: value for key, value in FUTURES_FILL.items() if key != "data"},
        _with_row(FUTURES_FILL, feeDetail=[{"feeCoin": "USDT"}]),
        _with_row(FUTURES_FILL, feeDetail="-0.1"),
        _with_row(FUTURES_FILL, quoteVolume=None),
        _with_row(FUTURES_FILL, tradeId={"id": 1}),
    ],
    ids=["data-dict", "data-str-row", "no-data", "fee-no-total", "fee-str", "no-quote", "id-dict"],
)
def test_malformed_fill_push_raises_normalize_error(push):
    with pytest.raises(NormalizeError):
        normalize(push, Market.FUTURE)
