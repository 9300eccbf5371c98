"""Bybit normalize under generated frames: wire decimals survive exactly, junk raises only NormalizeError."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges.bybit.normalize import normalize
from framework.errors import NormalizeError
from framework.events import Market, OrderUpdate, Trade

CATEGORY = {Market.SPOT: "spot", Market.FUTURE: "linear"}
BASES = ["BTC", "ETH", "SOL", "1000PEPE", "XRP", "MNT"]
QUOTES = ["USDT", "USDC"]
STATUSES = ["Created", "New", "Active", "Untriggered", "Triggered", "PartiallyFilled", "Filled", "Cancelled",
            "PartiallyFilledCanceled", "Deactivated", "Rejected"]
FILL_EXEC_TYPES = ["Trade", "AdlTrade", "BustTrade", "BlockTrade", "MovePosition", "FutureSpread", "UNKNOWN"]

digits = st.text(alphabet="0123456789", min_size=1, max_size=12)
unsigned_text = st.builds(
    lambda whole, frac: f"{int(whole)}.{frac}" if frac else str(int(whole)),
    digits,
    st.one_of(st.just(""), digits),
)
positive_text = unsigned_text.filter(lambda t: Decimal(t) > 0)
signed_text = st.builds(lambda sign, t: sign + t, st.sampled_from(["", "-"]), unsigned_text)
ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=40)
ms_text = st.integers(min_value=0, max_value=2**53).map(str)
markets = st.sampled_from([Market.SPOT, Market.FUTURE])


def _same_text(value: Decimal, text: str) -> bool:
    """Equal to the wire text down to its exponent (trailing zeros kept)."""
    return value.as_tuple() == Decimal(text).as_tuple()


@st.composite
def execution_rows(draw, market: Market) -> dict:
    return {
        "category": CATEGORY[market],
        "symbol": draw(st.sampled_from(BASES)) + draw(st.sampled_from(QUOTES)),
        "execId": draw(ids),
        "orderId": draw(ids),
        "orderLinkId": draw(st.one_of(st.just(""), ids)),
        "side": draw(st.sampled_from(["Buy", "Sell"])),
        "execType": draw(st.sampled_from(FILL_EXEC_TYPES)),
        "execQty": draw(positive_text),
        "execPrice": draw(positive_text),
        "execValue": draw(st.one_of(st.just(""), positive_text)),
        "execFee": draw(st.one_of(st.just(""), signed_text)),
        "feeCurrency": draw(st.sampled_from(["", "USDT", "BTC", "MNT"])),
        "isMaker": draw(st.booleans()),
        "execTime": draw(ms_text),
    }


@st.composite
def order_rows(draw, market: Market) -> dict:
    return {
        "category": CATEGORY[market],
        "symbol": draw(st.sampled_from(BASES)) + draw(st.sampled_from(QUOTES)),
        "orderId": draw(ids),
        "orderLinkId": draw(st.one_of(st.just(""), ids)),
        "side": draw(st.sampled_from(["Buy", "Sell"])),
        "orderType": "Limit",
        "orderStatus": draw(st.sampled_from(STATUSES)),
        "price": draw(positive_text),
        "qty": draw(positive_text),
        "cumExecQty": draw(unsigned_text),
        "updatedTime": draw(ms_text),
    }


@given(data=st.data(), market=markets)
def test_generated_executions_keep_wire_decimals_exactly(data, market):
    rows = data.draw(st.lists(execution_rows(market), min_size=1, max_size=4))
    trades = normalize({"topic": "execution", "id": "x", "creationTime": 1, "data": rows}, market)
    assert len(trades) == len(rows)
    for trade, row in zip(trades, rows):
        assert isinstance(trade, Trade)
        assert (trade.trade_id, trade.order_id, trade.timestamp) == (row["execId"], row["orderId"],
                                                                     int(row["execTime"]))
        assert trade.client_order_id == (row["orderLinkId"] or None)
        assert trade.side.value == row["side"].lower()
        assert _same_text(trade.amount, row["execQty"]) and _same_text(trade.price, row["execPrice"])
        if row["execValue"]:
            assert _same_text(trade.cost, row["execValue"])
        else:
            assert Fraction(trade.cost) == Fraction(row["execQty"]) * Fraction(row["execPrice"])
        if row["execFee"]:
            assert _same_text(trade.fee_cost, row["execFee"])
            assert trade.fee_currency
        else:
            assert trade.fee_cost is None and trade.fee_currency == (row["feeCurrency"] or None)
        assert trade.is_maker is row["isMaker"]


@given(data=st.data(), market=markets)
def test_generated_order_updates_keep_wire_decimals_exactly(data, market):
    row = data.draw(order_rows(market))
    [update] = normalize({"topic": "order", "id": "x", "creationTime": 1, "data": [row]}, market)
    assert isinstance(update, OrderUpdate)
    assert (update.order_id, update.status_raw, update.timestamp) == (row["orderId"], row["orderStatus"],
                                                                      int(row["updatedTime"]))
    assert _same_text(update.amount, row["qty"]) and _same_text(update.price, row["price"])
    assert _same_text(update.filled, row["cumExecQty"])


@given(data=st.data(), market=markets)
def test_rows_of_the_other_category_give_nothing(data, market):
    other = Market.FUTURE if market is Market.SPOT else Market.SPOT
    rows = data.draw(st.lists(execution_rows(other), min_size=1, max_size=3))
    assert normalize({"topic": "execution", "data": rows}, market) == []


@given(data=st.data(), market=markets)
def test_generated_frames_survive_a_json_round_trip_with_decimal_floats(data, market):
    rows = data.draw(st.lists(execution_rows(market), min_size=1, max_size=2))
    frame = {"topic": "execution", "data": rows}
    decoded = json.loads(json.dumps(frame), parse_float=Decimal)
    assert normalize(decoded, market) == normalize(frame, market)


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.decimals(allow_nan=True, allow_infinity=True), st.binary(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)
topics = st.sampled_from(["execution", "execution.fast", "order", "order.linear", "wallet", "", "order."])


def _only_normalize_errors(frame, market) -> None:
    try:
        events = normalize(frame, market)
    except NormalizeError as exc:
        assert exc.raw is frame
    else:
        assert isinstance(events, list)
        assert all(isinstance(e, (Trade, OrderUpdate)) for e in events)


@settings(max_examples=300)
@given(frame=json_values, market=markets)
def test_junk_frames_raise_only_normalize_error(frame, market):
    _only_normalize_errors(frame, market)


@settings(max_examples=300)
@given(topic=topics, data=json_values, market=markets)
def test_junk_data_under_an_event_topic_raises_only_normalize_error(topic, data, market):
    _only_normalize_errors({"topic": topic, "data": data}, market)


@settings(max_examples=300)
@given(data=st.data(), market=markets, mangled=json_values, remove=st.booleans(), orders=st.booleans())
def test_valid_rows_with_a_field_removed_or_mangled_raise_only_normalize_error(data, market, mangled, remove,
                                                                               orders):
    row = data.draw(order_rows(market) if orders else execution_rows(market))
    field = data.draw(st.sampled_from(sorted(row)))
    if remove:
        del row[field]
    else:
        row[field] = mangled
    _only_normalize_errors({"topic": "order" if orders else "execution", "data": [row]}, market)


@given(data=st.data(), market=markets)
def test_required_execution_fields_missing_raise_normalize_error(data, market):
    row = data.draw(execution_rows(market))
    field = data.draw(st.sampled_from(["category", "symbol", "execId", "orderId", "side", "execQty", "execPrice",
                                       "execTime"]))
    del row[field]
    frame = {"topic": "execution", "data": [row]}
    try:
        normalize(frame, market)
    except NormalizeError:
        return
    raise AssertionError(f"a frame without {field} was accepted")
