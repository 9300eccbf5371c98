"""MEXC normalize under generated frames: decimals survive exactly, junk raises only NormalizeError."""

from __future__ import annotations

from decimal import Decimal, localcontext

from hypothesis import given
from hypothesis import strategies as st

from exchanges.mexc.normalize import normalize
from exchanges.mexc.proto import PrivateDealsV3Api, PrivateOrdersV3Api, PushDataV3ApiWrapper
from framework.errors import NormalizeError
from framework.events import Market, OrderUpdate, Trade

decimal_texts = st.from_regex(r"\A(0|[1-9][0-9]{0,14})(\.[0-9]{1,22})?\Z")
positive_texts = decimal_texts.filter(lambda t: Decimal(t) != 0)
ids = st.text(st.characters(codec="utf-8", categories=("L", "N", "P")), min_size=1, max_size=40)
stamps = st.integers(1, 2**62)
symbols = st.sampled_from([("BTCUSDT", "BTC/USDT"), ("MXUSDT", "MX/USDT"), ("ETHBTC", "ETH/BTC")])


def _same(value: Decimal, text: str) -> bool:
    """Equal to the text, digits and exponent included."""
    return type(value) is Decimal and value.as_tuple() == Decimal(text).as_tuple()


def _json_number(text: str):
    """What `json.loads(..., parse_float=Decimal)` gives for a JSON number written as `text`."""
    return Decimal(text) if "." in text else int(text)


@given(symbols, decimal_texts, decimal_texts, decimal_texts, decimal_texts, ids, ids, st.sampled_from([1, 2]), stamps)
def test_spot_protobuf_deal_keeps_every_decimal_exactly(symbol, qty, price, cost, fee, trade_id, order_id, side, t):
    push = PushDataV3ApiWrapper(channel="spot@private.deals.v3.api.pb", symbol=symbol[0], sendTime=t)
    push.privateDeals.CopyFrom(PrivateDealsV3Api(price=price, quantity=qty, amount=cost, tradeType=side,
                                                 tradeId=trade_id, orderId=order_id, feeAmount=fee,
                                                 feeCurrency="MX", time=t))  # fmt: skip
    (trade,) = normalize(push.SerializeToString(), Market.SPOT)
    assert _same(trade.amount, qty) and _same(trade.price, price) and _same(trade.cost, cost)
    assert _same(trade.fee_cost, fee)
    assert (trade.symbol, trade.trade_id, trade.order_id, trade.side.value, trade.timestamp) == (
        symbol[1], trade_id, order_id, "buy" if side == 1 else "sell", t,
    )  # fmt: skip


@given(symbols, decimal_texts, decimal_texts, decimal_texts, ids, st.sampled_from([1, 2, 3, 4, 5]), stamps)
def test_spot_protobuf_order_keeps_every_decimal_exactly(symbol, qty, price, filled, order_id, status, t):
    push = PushDataV3ApiWrapper(channel="spot@private.orders.v3.api.pb", symbol=symbol[0], sendTime=t)
    push.privateOrders.CopyFrom(PrivateOrdersV3Api(id=order_id, price=price, quantity=qty, orderType=1,
                                                   tradeType=2, cumulativeQuantity=filled, status=status))  # fmt: skip
    (order,) = normalize(push.SerializeToString(), Market.SPOT)
    assert _same(order.amount, qty) and _same(order.price, price) and _same(order.filled, filled)
    assert (order.order_id, order.status_raw, order.timestamp) == (order_id, str(status), t)


@given(st.sampled_from(["BTC_USDT", "ETH_USDT", "DOGE_USDT"]), positive_texts, positive_texts, decimal_texts,
       st.integers(0, 2**63), st.integers(0, 2**63), st.sampled_from([1, 2, 3, 4]), st.booleans(), stamps)  # fmt: skip
def test_contract_fill_keeps_decimals_and_costs_vol_price_size(symbol, vol, price, fee, trade_id, order_id, side,
                                                               taker, t):  # fmt: skip
    data = {"id": trade_id, "symbol": symbol, "side": side, "vol": _json_number(vol), "price": _json_number(price),
            "fee": _json_number(fee), "feeCurrency": "USDT", "timestamp": t, "isTaker": taker, "orderId": order_id}
    (trade,) = normalize({"channel": "push.personal.order.deal", "data": data}, Market.FUTURE)  # fmt: skip
    assert _same(trade.amount, vol) and _same(trade.price, price) and _same(trade.fee_cost, fee)
    size = {"BTC_USDT": Decimal("0.0001"), "ETH_USDT": Decimal("0.01"), "DOGE_USDT": Decimal(1)}[symbol]
    with localcontext() as exact:
        exact.prec = 200
        assert trade.cost == Decimal(vol) * Decimal(price) * size
    assert (trade.trade_id, trade.order_id, trade.is_maker) == (str(trade_id), str(order_id), not taker)


@given(positive_texts, decimal_texts, st.sampled_from([1, 2, 3, 4, 5]), st.integers(1, 2**63))
def test_contract_order_keeps_decimals_from_json_number_or_string(vol, deal_vol, state, order_id):
    data = {"orderId": order_id, "symbol": "BTC_USDT", "side": 4, "orderType": 1, "price": "123.45",
            "vol": _json_number(vol), "dealVol": deal_vol, "state": state, "updateTime": 1700000000000}  # fmt: skip
    (order,) = normalize({"channel": "push.personal.order", "data": data}, Market.FUTURE)
    assert _same(order.amount, vol) and _same(order.filled, deal_vol) and _same(order.price, "123.45")


@given(decimal_texts, decimal_texts, decimal_texts, ids, ids)
def test_legacy_spot_json_deal_keeps_decimals(qty, price, cost, trade_id, order_id):
    frame = {"c": "spot@private.deals.v3.api", "s": "MXUSDT", "t": 1,
             "d": {"p": price, "v": qty, "a": cost, "S": 2, "T": 1678901086198, "t": trade_id, "c": "",
                   "i": order_id, "m": 1, "st": 0, "n": "0.1", "N": "MX"}}  # fmt: skip
    (trade,) = normalize(frame, Market.SPOT)
    assert _same(trade.amount, qty) and _same(trade.price, price)
    assert _same(trade.cost, cost)
    assert trade.is_maker is True


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
    | st.decimals(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)  # fmt: skip
channels = st.sampled_from(["push.personal.order", "push.personal.order.deal", "rs.login", "pong", None])
legacy = st.sampled_from(["spot@private.deals.v3.api", "spot@private.orders.v3.api", "x"])


def _only_events_or_normalize_error(frame, market: Market) -> None:
    try:
        events = normalize(frame, market)
    except NormalizeError as exc:
        assert exc.raw is frame
        return
    assert isinstance(events, list) and all(isinstance(e, (Trade, OrderUpdate)) for e in events)


@given(json_values, st.sampled_from(list(Market)))
def test_random_json_frame_raises_only_normalize_error(frame, market):
    _only_events_or_normalize_error(frame, market)


@given(channels, json_values)
def test_contract_channel_with_random_data_raises_only_normalize_error(channel, data):
    _only_events_or_normalize_error({"channel": channel, "data": data}, Market.FUTURE)


@given(legacy, json_values, json_values, json_values)
def test_legacy_spot_channel_with_random_body_raises_only_normalize_error(channel, d, s, t):
    _only_events_or_normalize_error({"c": channel, "d": d, "s": s, "t": t}, Market.SPOT)


def _valid_frames() -> list:
    deal = PushDataV3ApiWrapper(channel="spot@private.deals.v3.api.pb", symbol="MXUSDT", sendTime=2)
    deal.privateDeals.CopyFrom(PrivateDealsV3Api(price="1", quantity="2", tradeType=1, tradeId="t", orderId="o",
                                                 time=1))  # fmt: skip
    order = PushDataV3ApiWrapper(channel="spot@private.orders.v3.api.pb", symbol="MXUSDT", sendTime=2)
    order.privateOrders.CopyFrom(PrivateOrdersV3Api(id="o", price="1", quantity="2", tradeType=1, orderType=1,
                                                    cumulativeQuantity="0", status=1))  # fmt: skip
    return [
        {"channel": "push.personal.order.deal", "data": {"id": 1, "symbol": "BTC_USDT", "side": 1, "vol": 1,
         "price": Decimal("2.5"), "fee": 0, "timestamp": 1, "isTaker": True, "orderId": 2}},
        {"channel": "push.personal.order", "data": {"orderId": 1, "symbol": "BTC_USDT", "side": 3, "orderType": 1,
         "price": Decimal("2.5"), "vol": 3, "dealVol": 1, "state": 2, "updateTime": 1}},
        {"c": "spot@private.deals.v3.api", "s": "MXUSDT", "t": 1, "d": {"p": "1", "v": "2", "a": "2", "S": 1,
         "T": 1, "t": "x", "c": "", "i": "y", "m": 0, "n": "0", "N": "MX"}},
        {"c": "spot@private.orders.v3.api", "s": "MXUSDT", "t": 1, "d": {"i": "y", "c": "", "p": 1, "v": 2, "o": 1,
         "S": 1, "s": 1, "cv": 0}},
        deal.SerializeToString(),
        order.SerializeToString(),
    ]  # fmt: skip


VALID = _valid_frames()


def test_the_valid_frames_are_valid():
    assert all(len(normalize(frame, Market.SPOT)) == 1 for frame in VALID)


@given(st.sampled_from(VALID[:4]), st.data())
def test_valid_json_event_with_a_field_removed_or_mangled_raises_only_normalize_error(frame, data):
    body_key = "data" if "channel" in frame else "d"
    body = dict(frame[body_key])
    field = data.draw(st.sampled_from(sorted(body)))
    if data.draw(st.booleans()):
        del body[field]
    else:
        body[field] = data.draw(json_values)
    _only_events_or_normalize_error({**frame, body_key: body}, Market.SPOT)


@given(st.sampled_from(VALID[4:]), st.data())
def test_valid_protobuf_frame_with_bytes_cut_or_changed_raises_only_normalize_error(frame, data):
    position = data.draw(st.integers(0, len(frame) - 1))
    if data.draw(st.booleans()):
        mangled = frame[:position]
    else:
        mangled = frame[:position] + bytes([data.draw(st.integers(0, 255))]) + frame[position + 1 :]
    _only_events_or_normalize_error(mangled, Market.SPOT)


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_normalize_error(frame):
    _only_events_or_normalize_error(frame, Market.SPOT)
