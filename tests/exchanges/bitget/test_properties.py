"""Properties: wire-format Bitget pushes keep their decimals exactly; junk raises only NormalizeError (or gives [])."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges.bitget.normalize import normalize
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Trade

SETTINGS = settings(max_examples=200, deadline=None)

DIGITS = "0123456789"
unsigned_text = st.builds(  # "12", "0.0100", "007.5": any digits, trailing zeros kept
    lambda whole, frac: whole if frac is None else f"{whole}.{frac}",
    st.text(DIGITS, min_size=1, max_size=14),
    st.none() | st.text(DIGITS, min_size=1, max_size=14),
)
signed_text = st.builds(lambda sign, text: sign + text, st.sampled_from(["", "-"]), unsigned_text)
ids = st.text("0123456789abcdefXYZ_-", min_size=1, max_size=24)
ms_text = st.integers(min_value=0, max_value=2**45).map(str)
sides = st.sampled_from(["buy", "sell"])
raw_symbols = st.builds(
    "".join, st.tuples(st.sampled_from(["BTC", "ETH", "SOL", "PEPE", "1000BONK"]), st.sampled_from(["USDT", "USDC"]))
)
markets = st.sampled_from([Market.SPOT, Market.FUTURE])
STATUSES = {
    "live": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
}
INST_TYPE = {Market.SPOT: "SPOT", Market.FUTURE: "USDT-FUTURES"}


def _same(value: Decimal, text: str) -> bool:
    """Equal to the wire text digit for digit, exponent included (`0.0100` stays `0.0100`)."""
    return isinstance(value, Decimal) and value.as_tuple() == Decimal(text).as_tuple()


def _push(channel: str, market: Market, row: dict) -> dict:
    return {
        "action": "update",
        "arg": {"instType": INST_TYPE[market], "channel": channel, "instId": "default"},
        "data": [row],
        "ts": 1700000000000,
    }


@st.composite
def fill_pushes(draw, market: Market):
    qty, price, quote, fee = draw(unsigned_text), draw(unsigned_text), draw(unsigned_text), draw(signed_text)
    row = {
        "orderId": draw(ids), "tradeId": draw(ids), "symbol": draw(raw_symbols), "side": draw(sides),
        "orderType": draw(st.sampled_from(["limit", "market"])),
        "tradeScope": draw(st.sampled_from(["taker", "maker"])),
        "feeDetail": [{"feeCoin": "USDT", "deduction": "no", "totalDeductionFee": "0", "totalFee": fee}],
        "cTime": draw(ms_text), "uTime": draw(ms_text),
    }
    if market is Market.SPOT:
        row.update(priceAvg=price, size=qty, amount=quote)
    else:
        row.update(price=price, baseVolume=qty, quoteVolume=quote, posMode="one_way_mode")
    return _push("fill", market, row), (qty, price, quote, fee)


@st.composite
def order_pushes(draw, market: Market):
    size, filled, last_qty, fill_price = (draw(unsigned_text) for _ in range(4))
    fee = draw(signed_text)
    row = {
        "instId": draw(raw_symbols), "orderId": draw(ids), "clientOid": draw(ids), "side": draw(sides),
        "orderType": "limit", "price": draw(unsigned_text), "accBaseVolume": filled,
        "status": draw(st.sampled_from(sorted(STATUSES))), "cTime": draw(ms_text), "uTime": draw(ms_text),
        "tradeId": draw(ids), "baseVolume": last_qty, "fillPrice": fill_price, "fillTime": draw(ms_text),
        "fillFee": fee, "fillFeeCoin": "USDT", "tradeScope": draw(st.sampled_from(["T", "M"])),
    }
    row["newSize" if market is Market.SPOT else "size"] = size
    return _push("orders", market, row), row


@SETTINGS
@given(data=st.data(), market=markets)
def test_fill_push_keeps_wire_decimals_exactly(data, market):
    push, (qty, price, quote, fee) = data.draw(fill_pushes(market))
    (trade,) = normalize(push, market)
    row = push["data"][0]
    assert isinstance(trade, Trade)
    assert _same(trade.amount, qty) and _same(trade.price, price) and _same(trade.cost, quote)
    wire_fee = Decimal(fee)
    assert _same(trade.fee_cost, fee if market is Market.SPOT else str(wire_fee.copy_negate()))
    assert (trade.trade_id, trade.order_id, trade.symbol_raw) == (row["tradeId"], row["orderId"], row["symbol"])
    assert trade.timestamp == int(row["cTime"])


@SETTINGS
@given(data=st.data(), market=markets)
def test_order_push_keeps_decimals_and_adds_trade_only_for_a_real_fill(data, market):
    push, row = data.draw(order_pushes(market))
    events = normalize(push, market)
    update = events[0]
    assert isinstance(update, OrderUpdate)
    assert update.status is STATUSES[row["status"]] and update.status_raw == row["status"]
    assert _same(update.filled, row["accBaseVolume"])
    assert _same(update.amount, row["newSize" if market is Market.SPOT else "size"])
    assert update.price == (Decimal(row["price"]) or None)
    if Decimal(row["baseVolume"]) == 0:
        assert len(events) == 1
        return
    _, trade = events
    assert _same(trade.amount, row["baseVolume"]) and _same(trade.price, row["fillPrice"])
    assert Fraction(trade.cost) == Fraction(Decimal(row["baseVolume"])) * Fraction(Decimal(row["fillPrice"]))
    assert trade.fee_cost == -Decimal(row["fillFee"])
    assert trade.dedup_key[3:] == (trade.symbol, row["tradeId"], row["orderId"])


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12),
    st.decimals(allow_nan=True, allow_infinity=True),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=5)),
    max_leaves=20,
)


def _normalize_or_normalize_error(frame, market):
    try:
        result = normalize(frame, market)
    except NormalizeError as exc:
        assert exc.raw is frame
        return None
    assert isinstance(result, list)
    return result


envelopes = st.fixed_dictionaries(
    {"arg": st.fixed_dictionaries({"channel": st.one_of(st.sampled_from(["orders", "fill"]), json_values)})},
    optional={"data": json_values, "action": json_values, "event": json_values},
)


@SETTINGS
@given(frame=st.one_of(json_values, envelopes, st.binary(max_size=32), st.text(max_size=32)), market=markets)
def test_junk_frames_raise_only_normalize_error(frame, market):
    _normalize_or_normalize_error(frame, market)


@SETTINGS
@given(
    channel=st.sampled_from(["orders", "fill"]),
    data=st.one_of(json_values, st.lists(st.dictionaries(st.text(max_size=12), json_scalars, max_size=8), max_size=3)),
    market=markets,
)
def test_junk_rows_in_a_real_envelope_raise_only_normalize_error(channel, data, market):
    frame = {"action": "snapshot", "arg": {"instType": INST_TYPE[market], "channel": channel}, "data": data}
    _normalize_or_normalize_error(frame, market)


@SETTINGS
@given(
    data=st.data(),
    market=markets,
    junk=st.one_of(st.just(KeyError), json_scalars, st.lists(json_scalars, max_size=2)),  # KeyError: remove it
)
def test_valid_push_with_one_field_removed_or_mangled_raises_only_normalize_error(data, market, junk):
    kind = data.draw(st.sampled_from(["orders", "fill"]))
    push = data.draw(order_pushes(market) if kind == "orders" else fill_pushes(market))[0]
    row = push["data"][0]
    key = data.draw(st.sampled_from(sorted(row)))
    if junk is KeyError:
        del row[key]
    else:
        row[key] = junk
    _normalize_or_normalize_error(push, market)
