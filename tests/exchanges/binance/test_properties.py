"""Properties of Binance normalize: exact decimals from generated wire messages, and junk raises only NormalizeError."""

from __future__ import annotations

import copy
from decimal import Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges.binance.normalize import normalize
from framework.errors import NormalizeError
from framework.events import Market, OrderUpdate, Side, Trade


@st.composite
def decimal_texts(draw) -> str:
    """Wire-style decimal text: optional sign, up to 16 integer digits, 0–18 fraction digits (zeros kept)."""
    sign = "-" if draw(st.integers(0, 9)) == 0 else ""
    places = draw(st.integers(0, 18))
    whole = draw(st.integers(0, 10**16 - 1))
    return f"{sign}{whole}" + (f".{draw(st.integers(0, 10**places - 1)):0{places}d}" if places else "")


ids = st.one_of(st.integers(0, 2**63 - 1), st.text("abcdefXYZ0123456789-_", min_size=1, max_size=36))
client_ids = st.text("abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_", min_size=1, max_size=36)
sides = st.sampled_from(["BUY", "SELL"])
statuses = st.sampled_from(["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"])
times = st.integers(min_value=0, max_value=2**53)
symbols = st.sampled_from(["BTCUSDT", "ETHBTC", "BNBFDUSD", "SOLUSDC", "DOGETRY"])
SPOT_EXECUTIONS = st.sampled_from(["NEW", "TRADE", "CANCELED", "EXPIRED", "TRADE_PREVENTION"])
FUTURE_EXECUTIONS = st.sampled_from(["NEW", "TRADE", "CANCELED", "EXPIRED", "AMENDMENT"])
UNIFIED = {
    Market.SPOT: {"BTCUSDT": "BTC/USDT", "ETHBTC": "ETH/BTC", "BNBFDUSD": "BNB/FDUSD", "SOLUSDC": "SOL/USDC",
                  "DOGETRY": "DOGE/TRY"},
    Market.FUTURE: {"BTCUSDT": "BTC/USDT:USDT", "ETHBTC": "ETH/BTC:BTC", "BNBFDUSD": "BNB/FDUSD:FDUSD",
                    "SOLUSDC": "SOL/USDC:USDC", "DOGETRY": "DOGE/TRY:TRY"},
}
assets = st.sampled_from(["BNB", "USDT", "BTC", None])


@st.composite
def execution_reports(draw, execution=SPOT_EXECUTIONS):
    return {
        "subscriptionId": draw(st.integers(0, 10)),
        "event": {
            "e": "executionReport", "E": draw(times), "s": draw(symbols), "c": draw(client_ids),
            "C": draw(st.one_of(st.just(""), st.none(), client_ids)), "S": draw(sides),
            "o": draw(st.sampled_from(["LIMIT", "MARKET", "LIMIT_MAKER", "STOP_LOSS_LIMIT"])), "f": "GTC",
            "q": draw(decimal_texts()), "p": draw(decimal_texts()), "x": draw(execution), "X": draw(statuses),
            "i": draw(ids), "l": draw(decimal_texts()), "z": draw(decimal_texts()), "L": draw(decimal_texts()),
            "n": draw(decimal_texts()), "N": draw(assets), "T": draw(times), "t": draw(ids), "w": False,
            "m": draw(st.booleans()), "Y": draw(decimal_texts()), "Z": draw(decimal_texts()),
        },
    }


@st.composite
def order_trade_updates(draw, execution=FUTURE_EXECUTIONS):
    order = {
        "s": draw(symbols), "c": draw(client_ids), "S": draw(sides), "o": draw(st.sampled_from(["LIMIT", "MARKET"])),
        "q": draw(decimal_texts()), "p": draw(decimal_texts()), "x": draw(execution), "X": draw(statuses),
        "i": draw(ids), "l": draw(decimal_texts()), "z": draw(decimal_texts()), "L": draw(decimal_texts()),
        "T": draw(times), "t": draw(ids), "m": draw(st.booleans()), "ps": "BOTH",
    }
    if draw(st.booleans()):
        order.update(n=draw(decimal_texts()), N=draw(assets))
    return {"e": "ORDER_TRADE_UPDATE", "E": draw(times), "T": draw(times), "o": order}


@st.composite
def trade_lites(draw):
    return {
        "e": "TRADE_LITE", "E": draw(times), "T": draw(times), "s": draw(symbols), "q": draw(decimal_texts()),
        "p": draw(decimal_texts()), "m": draw(st.booleans()), "c": draw(client_ids), "S": draw(sides),
        "L": draw(decimal_texts()), "l": draw(decimal_texts()), "t": draw(ids), "i": draw(ids),
    }


def exact(value: Decimal, text: str) -> bool:
    return value.as_tuple() == Decimal(text).as_tuple()


def check_fill(trade: Trade, fields: dict, cost_text: str | None) -> None:
    assert exact(trade.amount, fields["l"]) and exact(trade.price, fields["L"])
    if cost_text is None:  # USD-M: l × L, never rounded (34 digits at most fit well within 100)
        with localcontext(prec=100):
            assert trade.cost == Decimal(fields["l"]) * Decimal(fields["L"])
    else:
        assert exact(trade.cost, cost_text)
    assert trade.symbol == UNIFIED[trade.market][fields["s"]]
    assert trade.trade_id == str(fields["t"]) and trade.order_id == str(fields["i"])
    assert trade.side is Side(fields["S"].lower()) and trade.is_maker is fields["m"]
    if "n" in fields:
        assert exact(trade.fee_cost, fields["n"]) and trade.fee_currency == fields["N"]
    else:
        assert trade.fee_cost is None


@settings(max_examples=200)
@given(execution_reports())
def test_execution_report_decimals_and_ids_survive_exactly(message):
    event = message["event"]
    events = normalize(message, Market.SPOT)
    update = events[0]
    assert isinstance(update, OrderUpdate)
    assert exact(update.amount, event["q"]) and exact(update.filled, event["z"])
    assert update.price is None if Decimal(event["p"]).is_zero() else exact(update.price, event["p"])
    assert update.order_id == str(event["i"]) and update.status_raw == event["X"]
    assert update.client_order_id == (event["C"] or event["c"])
    if event["x"] == "TRADE":
        (trade,) = events[1:]
        check_fill(trade, event, event["Y"])
        assert trade.client_order_id == update.client_order_id and trade.timestamp == event["T"]
    else:
        assert len(events) == 1


@settings(max_examples=200)
@given(order_trade_updates())
def test_order_trade_update_decimals_survive_and_cost_is_exact_product(message):
    order = message["o"]
    events = normalize(message, Market.FUTURE)
    assert exact(events[0].amount, order["q"]) and exact(events[0].filled, order["z"])
    if order["x"] == "TRADE":
        check_fill(events[1], order, None)
    else:
        assert len(events) == 1


@settings(max_examples=200)
@given(trade_lites())
def test_trade_lite_decimals_survive_exactly(message):
    (trade,) = normalize(message, Market.FUTURE)
    check_fill(trade, message, None)
    assert trade.client_order_id == message["c"] and trade.timestamp == message["T"]


# --- junk ---

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=12,
)
junk_values = json_values | st.decimals() | st.binary(max_size=8)


def only_normalize_errors(message, market) -> None:
    try:
        result = normalize(message, market)
    except NormalizeError as error:
        assert error.raw is message
    else:
        assert isinstance(result, list)


@settings(max_examples=200)
@given(st.one_of(json_values, st.binary(max_size=64), st.text(max_size=64)), st.sampled_from(list(Market)))
def test_random_frames_raise_only_normalize_error(message, market):
    only_normalize_errors(message, market)


@settings(max_examples=200)
@given(
    st.dictionaries(st.sampled_from(["e", "event", "o", "s", "S", "x", "X", "i", "q", "l", "L", "t"]), json_values),
    st.sampled_from(["executionReport", "ORDER_TRADE_UPDATE", "TRADE_LITE"]),
    st.sampled_from(list(Market)),
)
def test_order_events_with_random_fields_raise_only_normalize_error(fields, name, market):
    only_normalize_errors({**fields, "e": name}, market)


def mangle(draw, fields: dict) -> None:
    key = draw(st.sampled_from(sorted(fields)))
    if draw(st.booleans()):
        del fields[key]
    else:
        fields[key] = draw(junk_values)


@st.composite
def mangled_events(draw):
    kind = draw(st.sampled_from(["spot", "future", "lite"]))
    if kind == "spot":
        message = draw(execution_reports(execution=st.just("TRADE")))
        mangle(draw, message["event"] if draw(st.booleans()) else message)
        return message, Market.SPOT
    message = draw(order_trade_updates(execution=st.just("TRADE")) if kind == "future" else trade_lites())
    mangle(draw, message["o"] if kind == "future" and draw(st.booleans()) else message)
    return message, Market.FUTURE


@settings(max_examples=300)
@given(mangled_events())
def test_valid_events_with_a_field_removed_or_mangled_raise_only_normalize_error(case):
    message, market = case
    only_normalize_errors(copy.deepcopy(message), market)
