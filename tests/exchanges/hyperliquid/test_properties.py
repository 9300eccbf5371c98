"""Hyperliquid normalize and payload under generated input: exact decimals, and only NormalizeError on junk."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges.hyperliquid.auth import action_payload
from exchanges.hyperliquid.normalize import normalize
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, Side

decimal_texts = st.from_regex(r"-?(0|[1-9][0-9]{0,11})(\.[0-9]{1,10})?", fullmatch=True)
positive_texts = st.from_regex(r"(0|[1-9][0-9]{0,7})\.[0-9]{1,8}|[1-9][0-9]{0,7}", fullmatch=True)
ids = st.integers(min_value=0, max_value=2**63)
times = st.integers(min_value=0, max_value=2**53)
perp_coins = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,9}", fullmatch=True)
cloids = st.none() | st.from_regex(r"0x[0-9a-f]{32}", fullmatch=True)

wire_fills = st.fixed_dictionaries(
    {
        "coin": perp_coins, "px": positive_texts, "sz": positive_texts, "side": st.sampled_from(["A", "B"]),
        "time": times, "oid": ids, "tid": ids, "crossed": st.booleans(), "fee": decimal_texts,
        "dir": st.sampled_from(["Open Long", "Close Short"]), "closedPnl": decimal_texts, "hash": st.just("0x00"),
    },
    optional={"cloid": cloids, "feeToken": st.sampled_from(["USDC", "HYPE", None]), "builderFee": positive_texts},
)


def exact(value: Decimal, text: str) -> bool:
    """Equal to the text, exponent included (`72528.0` stays one decimal place)."""
    return value.as_tuple() == Decimal(text).as_tuple()


@given(fills=st.lists(wire_fills, max_size=5), snapshot=st.sampled_from([None, True, False]))
def test_generated_fills_survive_with_exact_decimals(fills, snapshot):
    data = {"user": "0x" + "1" * 40, "fills": fills}
    if snapshot is not None:
        data["isSnapshot"] = snapshot
    trades = normalize({"channel": "userFills", "data": data}, Market.FUTURE)
    assert len(trades) == len(fills)
    for trade, wire in zip(trades, fills):
        assert exact(trade.amount, wire["sz"]) and exact(trade.price, wire["px"]) and exact(trade.fee_cost, wire["fee"])
        assert trade.cost == Decimal(wire["sz"]) * Decimal(wire["px"])
        assert (trade.trade_id, trade.order_id, trade.timestamp) == (str(wire["tid"]), str(wire["oid"]), wire["time"])
        assert trade.side is (Side.BUY if wire["side"] == "B" else Side.SELL)
        assert trade.is_maker is not wire["crossed"]
        assert trade.client_order_id == wire.get("cloid")
        assert trade.fee_currency == (wire.get("feeToken") or "USDC")
        assert trade.symbol == f"{wire['coin'].upper()}/USDC:USDC" and trade.symbol_raw == wire["coin"]


statuses = st.sampled_from(["open", "triggered", "filled", "canceled", "rejected", "marginCanceled", "perpMarginRejected"])


@given(
    orig_units=st.integers(min_value=0, max_value=10**12),
    left_share=st.fractions(min_value=0, max_value=1),
    places=st.integers(min_value=0, max_value=8),
    price=positive_texts,
    status_raw=statuses,
    oid=ids,
)
def test_generated_order_updates_have_exact_filled_amounts(orig_units, left_share, places, price, status_raw, oid):
    left_units = int(orig_units * left_share)
    orig, left = (str(Decimal(units).scaleb(-places)) for units in (orig_units, left_units))
    entry = {"order": {"coin": "BTC", "side": "B", "limitPx": price, "sz": left, "oid": oid, "timestamp": 1, "origSz": orig},
             "status": status_raw, "statusTimestamp": 2}
    [update] = normalize({"channel": "orderUpdates", "data": [entry]}, Market.FUTURE)
    assert exact(update.amount, orig) and exact(update.price, price)
    assert update.filled == Decimal(orig) - Decimal(left)
    assert (update.order_id, update.status_raw, update.timestamp) == (str(oid), status_raw, 2)
    if status_raw in ("open", "triggered"):
        assert update.status is (OrderStatus.PARTIALLY_FILLED if left_units < orig_units else OrderStatus.NEW)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.decimals() | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def outcome(frame):
    try:
        return normalize(frame, Market.FUTURE)
    except NormalizeError as exc:
        assert exc.raw is frame
        return exc


@given(frame=json_values)
def test_junk_frames_give_nothing_or_normalize_error(frame):
    result = outcome(frame)
    assert isinstance(result, (list, NormalizeError))


@given(channel=st.sampled_from(["userFills", "orderUpdates"]), data=json_values)
def test_junk_bodies_on_event_channels_give_nothing_or_normalize_error(channel, data):
    assert isinstance(outcome({"channel": channel, "data": data}), (list, NormalizeError))


REQUIRED_FILL = ["coin", "px", "sz", "side", "time", "oid", "tid", "crossed", "fee"]
REQUIRED_ORDER = ["coin", "side", "limitPx", "sz", "oid", "origSz"]


@given(fill=wire_fills, field=st.sampled_from(REQUIRED_FILL))
def test_a_fill_missing_a_required_field_raises_normalize_error(fill, field):
    del fill[field]
    with pytest.raises(NormalizeError):
        normalize({"channel": "userFills", "data": {"fills": [fill]}}, Market.FUTURE)


@given(field=st.sampled_from(REQUIRED_ORDER + ["status", "statusTimestamp"]))
def test_an_order_update_missing_a_required_field_raises_normalize_error(field):
    entry = {"order": {"coin": "BTC", "side": "B", "limitPx": "1", "sz": "1", "oid": 1, "timestamp": 1, "origSz": "1"},
             "status": "open", "statusTimestamp": 1}
    del (entry if field in entry else entry["order"])[field]
    with pytest.raises(NormalizeError):
        normalize({"channel": "orderUpdates", "data": [entry]}, Market.FUTURE)


@given(fill=wire_fills, field=st.sampled_from(REQUIRED_FILL), junk=json_values)
def test_a_fill_with_a_mangled_field_gives_events_or_normalize_error(fill, field, junk):
    fill[field] = junk
    assert isinstance(outcome({"channel": "userFills", "data": {"fills": [fill]}}), (list, NormalizeError))


action_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=20) | st.dictionaries(st.text(max_size=8), inner, max_size=20),
    max_leaves=40,
)


@settings(max_examples=200)
@given(action=st.dictionaries(st.text(max_size=8), action_values, max_size=20), nonce=st.integers(min_value=0, max_value=2**64 - 1))
def test_action_payload_matches_an_independent_msgpack(action, nonce):
    msgpack = pytest.importorskip("ccxt.static_dependencies.msgpack")
    assert action_payload(action, nonce) == msgpack.packb(action) + nonce.to_bytes(8, "big") + b"\x00"

