"""Hyperliquid pushes → events: the docs' samples read by hand, then each rule on a hand-made push."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from exchanges.hyperliquid.normalize import normalize
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade
from framework.validate import RowsRejected
from tests.exchanges.conftest import load_samples

SAMPLES = {s["source"]: s for s in load_samples("hyperliquid")}
FILL_SOURCE = "ccxt 4.5.90 python/ccxt/pro/hyperliquid.py lines 654-679 (comment in handle_my_trades)"
ORDER_SOURCE = next(s for s in SAMPLES if s.startswith("ccxt 4.5.90 python/ccxt/pro/hyperliquid.py lines 1436-1453"))
USER = "0x15f43d1f2dee81424afd891943262aa90f22cc2a"


def decoded(frame) -> object:
    """The frame as the connection hands it over: JSON numbers with a fraction become Decimals."""
    return json.loads(json.dumps(frame), parse_float=Decimal)


def fill(**changes) -> dict:
    base = {
        "coin": "ETH", "px": "2381.1", "sz": "0.0841", "side": "B", "time": 1704262888911,
        "startPosition": "0.0", "dir": "Open Long", "closedPnl": "0.0", "hash": "0x09d7", "oid": 3929354691,
        "crossed": False, "fee": "-0.006009", "tid": 128423918764978, "feeToken": "USDC",
        "cloid": "0x00000000000000000000000000000001",
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not ...}


def fills_push(*fills, snapshot=None) -> dict:
    data = {"user": USER, "fills": list(fills)}
    if snapshot is not None:
        data["isSnapshot"] = snapshot
    return {"channel": "userFills", "data": data}


def order_push(*entries) -> dict:
    return {"channel": "orderUpdates", "data": list(entries)}


def order_entry(status="open", sz="1.5", orig="1.5", **changes) -> dict:
    order = {"coin": "SOL", "side": "A", "limitPx": "187.25", "sz": sz, "oid": 90001, "timestamp": 1710000000000, "origSz": orig}
    order.update(changes)
    return {"order": order, "status": status, "statusTimestamp": 1710000000123}


# --- the docs' samples, expected values read off the message -------------------------------------


def test_sample_user_fills_snapshot_yields_its_fill_as_a_trade():
    [trade] = normalize(decoded(SAMPLES[FILL_SOURCE]["raw"]), Market.FUTURE)
    assert isinstance(trade, Trade)
    assert (trade.exchange, trade.market, trade.symbol, trade.symbol_raw) == ("hyperliquid", Market.FUTURE, "BTC/USDC:USDC", "BTC")
    assert (trade.trade_id, trade.order_id, trade.client_order_id) == ("567547935839686", "7484888874", None)
    assert trade.side is Side.SELL
    assert trade.amount == Decimal("0.11693") and str(trade.amount) == "0.11693"
    assert trade.price == Decimal("72528.0") and str(trade.price) == "72528.0"
    assert trade.cost == Decimal("8480.69904")  # 0.11693 × 72528.0
    assert (trade.fee_cost, trade.fee_currency) == (Decimal("2.968244"), "USDC")  # no feeToken on this push
    assert trade.is_maker is False  # crossed: true
    assert trade.timestamp == 1710208712815
    assert trade.account == "default"


def test_sample_order_update_open_yields_a_new_order():
    [update] = normalize(decoded(SAMPLES[ORDER_SOURCE]["raw"]), Market.FUTURE)
    assert isinstance(update, OrderUpdate)
    assert (update.symbol, update.symbol_raw, update.order_id, update.client_order_id) == ("BTC/USDC:USDC", "BTC", "7456484275", None)
    assert (update.side, update.order_type) == (Side.BUY, "limit")
    assert (update.status, update.status_raw) == (OrderStatus.NEW, "open")
    assert (update.amount, update.price, update.filled) == (Decimal("0.001"), Decimal("30000.0"), Decimal("0"))
    assert update.timestamp == 1710163596492


def test_every_sample_is_a_future_sample_this_venue_covers():
    assert {s["market"] for s in SAMPLES.values()} == {"future"}
    assert sorted(s["kind"] for s in SAMPLES.values()) == ["order_update", "trade"]


# --- fills ------------------------------------------------------------------------------------


def test_live_maker_fill_keeps_its_rebate_negative_and_its_cloid():
    [trade] = normalize(fills_push(fill()), Market.FUTURE)
    assert (trade.symbol, trade.side, trade.is_maker) == ("ETH/USDC:USDC", Side.BUY, True)
    assert (trade.fee_cost, trade.fee_currency) == (Decimal("-0.006009"), "USDC")
    assert trade.client_order_id == "0x00000000000000000000000000000001"
    assert trade.cost == Decimal("200.25051")  # 0.0841 × 2381.1 = 190.488 + 9.76251
    assert trade.raw["tid"] == 128423918764978


def test_snapshot_and_live_pushes_of_one_fill_give_equal_trades_for_dedup():
    [replayed] = normalize(fills_push(fill(), snapshot=True), Market.FUTURE)
    [live] = normalize(fills_push(fill()), Market.FUTURE)
    assert replayed == live and replayed.dedup_key == live.dedup_key


def test_fee_token_other_than_usdc_is_kept():
    [trade] = normalize(fills_push(fill(feeToken="HYPE", fee="0.01")), Market.FUTURE)
    assert (trade.fee_cost, trade.fee_currency) == (Decimal("0.01"), "HYPE")


def test_fill_numbers_sent_as_json_numbers_keep_their_text():
    frame = '{"channel":"userFills","data":{"user":"0x1","fills":[{"coin":"BTC","px":72528.0,"sz":0.00010,' \
            '"side":"A","time":1,"oid":2,"tid":3,"crossed":true,"fee":0.5}]}}'
    [trade] = normalize(json.loads(frame, parse_float=Decimal), Market.FUTURE)
    assert (str(trade.price), str(trade.amount), str(trade.fee_cost)) == ("72528.0", "0.00010", "0.5")


def test_spot_and_hip3_fills_are_recorded_in_their_own_market_and_an_unknown_spot_index_is_a_dead_letter():
    push = fills_push(fill(coin="@107", tid=1), fill(coin="PURR/USDC", tid=2, feeToken="PURR"),
                      fill(coin="xyz:SP500", tid=3), fill(coin="kPEPE", tid=4), fill(coin="#14730", tid=5))
    with pytest.raises(RowsRejected) as caught:
        normalize(push, Market.FUTURE)
    assert [(t.trade_id, t.market, t.symbol_raw, t.symbol, t.fee_currency) for t in caught.value.events] == [
        ("2", Market.SPOT, "PURR/USDC", "PURR/USDC", "PURR"),  # a spot buy pays its fee in the token bought
        ("3", Market.FUTURE, "xyz:SP500", "XYZ-SP500/USDC:USDC", "USDC"),  # ccxt: the dex kept in the base
        ("4", Market.FUTURE, "kPEPE", "KPEPE/USDC:USDC", "USDC"),
    ]
    (spot, spot_reason), (outcome, outcome_reason) = caught.value.rejected
    assert spot == {"channel": "userFills", "data": {"user": USER, "fills": [push["data"]["fills"][0]]}}
    assert "spot coin '@107' has no symbol offline: teach it with register_markets" in spot_reason
    assert outcome["data"]["fills"][0]["tid"] == 5 and "'#14730' is an outcome market" in outcome_reason


def test_a_taught_spot_index_is_recorded_with_its_pair(monkeypatch):
    from exchanges import symbols

    monkeypatch.setitem(symbols._metadata, ("hyperliquid", Market.SPOT), {"@107": "HYPE/USDC"})
    symbols.unify.cache_clear()
    try:
        [trade] = normalize(fills_push(fill(coin="@107", px="38.512", sz="2.5", feeToken="HYPE")), Market.FUTURE)
    finally:
        symbols.unify.cache_clear()
    assert (trade.market, trade.symbol, trade.symbol_raw, trade.cost) == (
        Market.SPOT, "HYPE/USDC", "@107", Decimal("96.2800"))


def test_hip3_collateral_is_the_fee_token_and_without_one_the_fill_is_a_dead_letter():
    [trade] = normalize(fills_push(fill(coin="flx:CRCL", feeToken="USDH")), Market.FUTURE)
    assert (trade.market, trade.symbol, trade.fee_currency) == (Market.FUTURE, "FLX-CRCL/USDH:USDH", "USDH")
    with pytest.raises(RowsRejected, match="HIP-3 coin 'xyz:SP500' came without feeToken"):
        normalize(fills_push(fill(coin="xyz:SP500", feeToken=...)), Market.FUTURE)


def test_order_updates_of_spot_and_hip3_coins_keep_their_market_and_unknown_ones_are_left_out():
    entries = [{"order": {"coin": coin, "side": "B", "limitPx": "10.0", "sz": "1.0", "oid": oid, "timestamp": 1710163596492,
                          "origSz": "1.0"}, "status": "open", "statusTimestamp": 1710163596492}
               for coin, oid in (("PURR/USDC", 1), ("xyz:SP500", 2), ("@107", 3))]
    updates = normalize({"channel": "orderUpdates", "data": entries}, Market.FUTURE)
    assert [(u.order_id, u.market, u.symbol) for u in updates] == [("1", Market.SPOT, "PURR/USDC")]


def test_one_push_of_several_fills_yields_them_in_order():
    trades = normalize(fills_push(fill(tid=7), fill(tid=8, side="A")), Market.FUTURE)
    assert [(t.trade_id, t.side) for t in trades] == [("7", Side.BUY), ("8", Side.SELL)]


def test_empty_snapshot_yields_nothing():
    assert normalize(fills_push(snapshot=True), Market.FUTURE) == []


@pytest.mark.parametrize(
    "bad_fill",
    [
        fill(px=72528.0),  # a float: not exact
        fill(sz="abc"),
        fill(fee=None),
        fill(side="S"),
        fill(crossed="true"),
        fill(tid=None),
        fill(oid=""),
        fill(time="1704262888911"),
        fill(cloid=1),
        fill(coin=""),
        fill(coin=None),
        fill(tid=...),
        fill(px=...),
        fill(crossed=...),
    ],
)
def test_malformed_fill_raises_normalize_error_with_the_frame(bad_fill):
    push = fills_push(bad_fill)
    with pytest.raises(NormalizeError) as caught:
        normalize(push, Market.FUTURE)
    assert caught.value.raw is push


@pytest.mark.parametrize("data", [None, [], {"user": USER}, {"fills": {"coin": "BTC"}}, {"fills": "x"}])
def test_user_fills_push_with_a_malformed_body_raises_normalize_error(data):
    with pytest.raises(NormalizeError):
        normalize({"channel": "userFills", "data": data}, Market.FUTURE)


# --- order updates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_raw", "sz", "status", "filled"),
    [
        ("open", "1.5", OrderStatus.NEW, Decimal("0")),
        ("open", "0.4", OrderStatus.PARTIALLY_FILLED, Decimal("1.1")),
        ("triggered", "1.5", OrderStatus.NEW, Decimal("0")),
        ("filled", "0.0", OrderStatus.FILLED, Decimal("1.5")),
        ("canceled", "0.4", OrderStatus.CANCELED, Decimal("1.1")),
        ("marginCanceled", "1.5", OrderStatus.CANCELED, Decimal("0")),
        ("siblingFilledCanceled", "1.5", OrderStatus.CANCELED, Decimal("0")),
        ("scheduledCancel", "1.5", OrderStatus.CANCELED, Decimal("0")),
        ("rejected", "1.5", OrderStatus.REJECTED, Decimal("0")),
        ("tickRejected", "1.5", OrderStatus.REJECTED, Decimal("0")),
        ("iocCancelRejected", "1.5", OrderStatus.REJECTED, Decimal("0")),
    ],
)
def test_order_status_maps_and_filled_is_orig_size_minus_remaining(status_raw, sz, status, filled):
    [update] = normalize(order_push(order_entry(status_raw, sz=sz)), Market.FUTURE)
    assert (update.status, update.status_raw, update.filled, update.amount) == (status, status_raw, filled, Decimal("1.5"))
    assert (update.symbol, update.side, update.price, update.timestamp) == ("SOL/USDC:USDC", Side.SELL, Decimal("187.25"), 1710000000123)


def test_order_update_carries_its_cloid():
    [update] = normalize(order_push(order_entry(cloid="0x0000000000000000000000000000abcd")), Market.FUTURE)
    assert update.client_order_id == "0x0000000000000000000000000000abcd"


def test_one_order_push_of_several_entries_yields_them_in_order_skipping_spot():
    push = order_push(order_entry("open", oid=1), order_entry("open", oid=2, coin="@1"), order_entry("canceled", oid=3))
    assert [(u.order_id, u.status) for u in normalize(push, Market.FUTURE)] == [("1", OrderStatus.NEW), ("3", OrderStatus.CANCELED)]


@pytest.mark.parametrize(
    "bad_entry",
    [
        order_entry("mystery"),
        order_entry(None),
        order_entry("open", sz="2", orig="1.5"),  # more left than ordered
        order_entry("open", side="buy"),
        order_entry("open", limitPx=187.25),
        order_entry("open", oid=None),
        {"order": None, "status": "open", "statusTimestamp": 1},
        {"status": "open", "statusTimestamp": 1},
        "open",
    ],
)
def test_malformed_order_update_raises_normalize_error(bad_entry):
    with pytest.raises(NormalizeError):
        normalize(order_push(bad_entry), Market.FUTURE)


def test_order_updates_data_that_is_not_a_list_raises_normalize_error():
    with pytest.raises(NormalizeError):
        normalize({"channel": "orderUpdates", "data": order_entry()}, Market.FUTURE)


# --- frames that carry no event ---------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": {"type": "userFills", "user": USER}}},
        {"channel": "pong"},
        {"channel": "error", "data": "Invalid subscription"},
        {"channel": "user", "data": {"fills": []}},
        {"channel": ["userFills"]},
        {},
        [],
        "pong",
        b"\x00\x01",
        None,
    ],
)
def test_frames_without_events_yield_nothing(frame):
    assert normalize(frame, Market.FUTURE) == []
