"""Gate normalize and classify under generated frames: exact decimals from the wire, only NormalizeError on junk."""

from __future__ import annotations

import json
from decimal import Decimal, localcontext

from hypothesis import given
from hypothesis import strategies as st

from exchanges.gate.normalize import FALLBACK_CONTRACT_SIZES, normalize
from exchanges.gate.stream import GateStream
from framework.errors import AuthError, NormalizeError, SubscriptionError
from framework.events import Market, OrderStatus, Side

positive_texts = st.from_regex(r"(0|[1-9][0-9]{0,14})\.[0-9]{1,18}|[1-9][0-9]{0,14}", fullmatch=True).filter(
    lambda text: Decimal(text) != 0
)
fee_texts = st.from_regex(r"-?(0|[1-9][0-9]{0,5})\.[0-9]{1,16}", fullmatch=True)
ids = st.integers(min_value=1, max_value=2**63) | st.from_regex(r"[1-9][0-9]{0,18}", fullmatch=True)
ms_texts = st.from_regex(r"1[0-9]{12}(\.[0-9]{1,3})?", fullmatch=True)
pairs = st.sampled_from(["BTC_USDT", "ETH_USDT", "GT_USDT", "DOGE_USDT", "SOL_BTC"])
texts = st.sampled_from(["apiv4", "web", "-", "t-alpha-1", "t-x", "t-"])


def exact(value: Decimal, text: str) -> bool:
    """Equal to the text, exponent included (`1.50` keeps two places)."""
    return value.as_tuple() == Decimal(text).as_tuple()


def product(*factors: Decimal) -> Decimal:
    with localcontext() as context:
        context.prec = 200
        result = Decimal(1)
        for factor in factors:
            result *= factor
        return result


def wire(channel: str, row_json: str) -> dict:
    """A frame as the connection decodes it: JSON numbers become Decimal with their own text."""
    frame = f'{{"time": 1, "channel": "{channel}", "event": "update", "result": [{row_json}]}}'
    return json.loads(frame, parse_float=Decimal)


@given(
    trade_id=ids, order_id=ids, pair=pairs, side=st.sampled_from(["buy", "sell"]), amount=positive_texts,
    price=positive_texts, fee=fee_texts, role=st.sampled_from(["maker", "taker"]), ms=ms_texts, text=texts,
)
def test_spot_trades_keep_wire_decimals(trade_id, order_id, pair, side, amount, price, fee, role, ms, text):
    row = {
        "id": trade_id, "order_id": order_id, "currency_pair": pair, "create_time_ms": ms, "side": side,
        "amount": amount, "price": price, "role": role, "fee": fee, "fee_currency": "USDT", "text": text,
    }
    [trade] = normalize({"channel": "spot.usertrades", "event": "update", "result": [row]}, Market.SPOT)
    assert exact(trade.amount, amount) and exact(trade.price, price)
    assert trade.cost == product(Decimal(amount), Decimal(price))
    assert (trade.trade_id, trade.order_id) == (str(trade_id), str(order_id))
    assert trade.side is Side(side) and trade.is_maker is (role == "maker")
    assert trade.timestamp == int(ms.split(".")[0])
    assert trade.client_order_id == (text[2:] if text.startswith("t-") and len(text) > 2 else None)
    if Decimal(fee) != 0:
        assert exact(trade.fee_cost, fee) and trade.fee_currency == "USDT"


@given(
    contracts=positive_texts, sell=st.booleans(), price=positive_texts, fee=fee_texts, pair=pairs,
    number_form=st.booleans(), trade_id=st.from_regex(r"[1-9][0-9]{0,12}", fullmatch=True),
)
def test_futures_trades_from_json_numbers_keep_wire_decimals(contracts, sell, price, fee, pair, number_form, trade_id):
    size = ("-" if sell else "") + contracts
    size_json = size if number_form else json.dumps(size)
    price_json = price if number_form else json.dumps(price)
    row_json = (
        f'{{"id": "{trade_id}", "order_id": "5", "contract": "{pair}", "size": {size_json}, "price": {price_json},'
        f' "role": "taker", "fee": {fee}, "point_fee": 0, "create_time_ms": 1700000000123, "text": "t-q"}}'
    )
    [trade] = normalize(wire("futures.usertrades", row_json), Market.FUTURE)
    assert exact(trade.amount, contracts) and exact(trade.price, price)
    assert trade.side is (Side.SELL if sell else Side.BUY)
    multiplier = FALLBACK_CONTRACT_SIZES.get(pair, Decimal(1))
    assert trade.cost == product(Decimal(contracts), Decimal(price), multiplier)
    if Decimal(fee) != 0:
        assert exact(trade.fee_cost, fee) and trade.fee_currency == "USDT"
    assert trade.symbol == pair.replace("_", "/") + ":USDT" and trade.timestamp == 1700000000123


@given(
    amount=positive_texts, left_share=st.integers(min_value=0, max_value=4),
    event=st.sampled_from(["put", "update", "finish"]),
    finish_as=st.sampled_from(["open", "filled", "cancelled", "ioc", "stp", "poc", "small", "-"]), price=positive_texts,
)
def test_spot_orders_fill_is_amount_minus_left_exactly(amount, left_share, event, finish_as, price):
    left = str(Decimal(amount) * left_share / 4)
    row = {
        "id": "1", "text": "t-a", "currency_pair": "BTC_USDT", "type": "limit", "side": "buy", "amount": amount,
        "price": price, "left": left, "update_time_ms": "1700000000000", "event": event, "finish_as": finish_as,
    }
    [order] = normalize({"channel": "spot.orders", "event": "update", "result": [row]}, Market.SPOT)
    assert exact(order.amount, amount) and exact(order.price, price)
    with localcontext() as context:
        context.prec = 200
        assert order.filled == Decimal(amount) - Decimal(left)
    if event != "finish":
        assert order.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED) and order.status_raw == event
    else:
        assert order.status.is_terminal and order.status_raw == finish_as


@given(size=st.integers(min_value=-10**9, max_value=10**9).filter(bool), left_part=st.integers(0, 10**9),
       finished=st.booleans(), price=positive_texts)
def test_futures_orders_amount_is_absolute_contracts(size, left_part, finished, price):
    left = (abs(size) * left_part // 10**9) * (1 if size > 0 else -1)
    status = '"finished", "finish_as": "cancelled"' if finished else '"open"'
    row_json = (
        f'{{"id": 12, "contract": "ETH_USDT", "size": {size}, "left": {left}, "price": {price}, "status": {status},'
        f' "create_time_ms": 1700000000000, "text": "-"}}'
    )
    [order] = normalize(wire("futures.orders", row_json), Market.FUTURE)
    assert order.amount == abs(size) and order.filled == abs(size) - abs(left)
    assert order.side is (Side.BUY if size > 0 else Side.SELL) and exact(order.price, price)
    assert order.status.is_terminal is finished


json_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.decimals(allow_nan=False)
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
channels = st.sampled_from(["spot.orders", "spot.usertrades", "futures.orders", "futures.usertrades", "spot.pong"])


def outcome_is_events_or_normalize_error(message) -> None:
    try:
        events = normalize(message, Market.SPOT)
    except NormalizeError as exc:
        assert exc.raw is message
    else:
        assert isinstance(events, list)


@given(message=json_values | st.binary(max_size=32))
def test_junk_frames_give_list_or_normalize_error(message):
    outcome_is_events_or_normalize_error(message)


@given(channel=channels, result=json_values)
def test_junk_results_on_private_channels_give_list_or_normalize_error(channel, result):
    outcome_is_events_or_normalize_error({"channel": channel, "event": "update", "result": result})


VALID_ROWS = {
    "spot.orders": {
        "id": "1", "text": "t-a", "currency_pair": "BTC_USDT", "type": "limit", "side": "buy", "amount": "1",
        "price": "2", "left": "1", "update_time_ms": "1700000000000", "event": "put", "finish_as": "open",
    },
    "spot.usertrades": {
        "id": 1, "order_id": "2", "currency_pair": "BTC_USDT", "create_time_ms": "1700000000000.1", "side": "sell",
        "amount": "1", "price": "2", "role": "maker", "fee": "0.1", "fee_currency": "USDT", "text": "apiv4",
    },
    "futures.orders": {
        "id": 1, "contract": "BTC_USDT", "size": 2, "left": 1, "price": Decimal("3.5"), "status": "open",
        "create_time_ms": 1700000000000, "text": "-",
    },
    "futures.usertrades": {
        "id": "1", "order_id": "2", "contract": "BTC_USDT", "size": -1, "price": "3", "role": "taker",
        "fee": Decimal("0.01"), "create_time_ms": 1700000000000, "text": "-",
    },
}


@given(channel=st.sampled_from(sorted(VALID_ROWS)), data=st.data(), replacement=json_values, drop=st.booleans())
def test_valid_events_with_a_field_removed_or_mangled_give_list_or_normalize_error(channel, data, replacement, drop):
    row = dict(VALID_ROWS[channel])
    field = data.draw(st.sampled_from(sorted(row)))
    if drop:
        del row[field]
    else:
        row[field] = replacement
    outcome_is_events_or_normalize_error({"channel": channel, "event": "update", "result": [row]})


@given(message=json_values)
def test_classify_gives_a_kind_or_a_venue_refusal(message):
    try:
        GateStream().classify(message, Market.SPOT)
    except (AuthError, SubscriptionError) as exc:
        assert exc.exchange == "gate"
