"""Binance private events → Trade / OrderUpdate: spot `executionReport`, USD-M `ORDER_TRADE_UPDATE` and `TRADE_LITE`.

Spot, "Order Update" (https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream#order-update),
delivered by the WebSocket API wrapped as `{"subscriptionId": 0, "event": {...}}`; a real fill as ccxt quotes it::

    {"e": "executionReport", "E": 1611063861489,  # event type, event time
     "s": "BNBUSDT", "S": "BUY", "o": "MARKET",     # symbol, side, order type
     "c": "m4M6AD5MF3b1ERe65l4SPq", "C": "",        # client id; C = the ORIGINAL client id on cancels
     "i": 1296882607, "q": "2.00000000", "p": "0.00000000",  # order id, order qty, limit price (0: none)
     "x": "TRADE", "X": "PARTIALLY_FILLED",         # execution type (TRADE = a fill), order status
     "z": "0.33200000", "T": 1611063861488,         # cumulative filled qty, transaction time (ms)
     "t": 109747654, "l": "0.33200000", "L": "46.86600000",  # fill: trade id (-1 if none), last qty, last price
     "Y": "15.55951200", "n": "0.00033200", "N": "BNB", "m": false}  # last quote qty, commission, asset, maker

USD-M futures, "Event: Order Update"
(https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-Order-Update)::

    {"e": "ORDER_TRADE_UPDATE", "E": 1612095165368, "T": 1612095165362,
     "o": {"s": "BTCUSDT", "c": "pb2jD6ZQHpfzSdUac8VqMK", "S": "SELL", "o": "MARKET",
           "q": "0.001", "p": "0", "x": "TRADE", "X": "FILLED", "i": 13351197194,
           "z": "0.001", "T": 1612095165362,                 # cumulative filled qty, order trade time
           "t": 458032604, "l": "0.001", "L": "33468.46",    # trade id, last qty, last price
           "n": "0.00027086", "N": "BNB", "m": false}}       # commission (absent when none), asset, maker

`o.x == "CALCULATED"` (a liquidation) is a fill too when it carries a non-zero `l`.
"Event: Trade Lite" (.../user-data-streams/Event-Trade-Lite), a low-latency copy of the same fill::

    {"e": "TRADE_LITE", "E": 1721895408092, "T": 1721895408214, "s": "BTCUSDT", "q": "0.001", "p": "0",
     "m": false, "c": "z8hcUoOsqEdKMeKPSABslD", "S": "BUY", "L": "64089.20", "l": "0.040",
     "t": 109100866, "i": 8886774}

It gives the Trade of the ORDER_TRADE_UPDATE fill (same dedup key, amounts, cost, maker flag; its `T` is the
transaction time, as `o.T`) without the commission, which TRADE_LITE does not carry. Fees: Binance's `n` is
what the fill cost us (positive paid, negative a rebate), our sign already. USD-M quantities are in base
units (contract size 1), so cost = l × L; spot cost is the venue's `Y`. A zero limit price becomes None.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

from exchanges.symbols import unify
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade, to_decimal

EXCHANGE = "binance"

_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # products of wire decimals, never rounded
_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
_STATUSES = {
    "NEW": OrderStatus.NEW,
    "PENDING_NEW": OrderStatus.NEW,  # spot order-list legs waiting for their trigger
    "NEW_INSURANCE": OrderStatus.NEW,  # futures liquidation with the insurance fund
    "NEW_ADL": OrderStatus.NEW,  # futures counterparty liquidation (ADL)
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,  # self-trade prevention
}


def event_name(message: Any) -> str | None:
    """The event type (`e`) of a frame, looked up inside the WebSocket-API wrapper; None for responses and junk."""
    if type(message) is not dict:
        return None
    event = message.get("event", message)
    name = event.get("e") if type(event) is dict else None
    return name if type(name) is str else None


def _text(value: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"expected text, got {value!r}")
    return value


def _id(value: Any) -> str:
    if type(value) is int or type(value) is str:
        return str(value)
    raise TypeError(f"an id must be an integer or text, got {value!r}")


def _ms(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"a timestamp must be integer milliseconds, got {value!r}")
    return value


def _flag(value: Any) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _limit_price(value: Any) -> Decimal | None:
    price = to_decimal(value)
    return price if price else None


def _symbol(market: Market, raw: str) -> str:
    """`BTC/USDT`, `BTC/USDT:USDT`; a dated USD-M contract `BTCUSDT_250627` → `BTC/USDT:USDT-250627` (ccxt's form)."""
    pair, _, expiry = raw.partition("_")
    if expiry and market is Market.FUTURE:
        return f"{unify(EXCHANGE, market, pair)}-{expiry}"
    return unify(EXCHANGE, market, raw)


def _common(o: dict, market: Market, client_id: Any, raw: Any) -> dict[str, Any]:
    """The fields an order update and its fill share, which spot, USD-M and TRADE_LITE name alike."""
    symbol_raw = _text(o["s"])
    return {
        "exchange": EXCHANGE,
        "market": market,
        "symbol": _symbol(market, symbol_raw),
        "symbol_raw": symbol_raw,
        "order_id": _id(o["i"]),
        "client_order_id": _optional_text(client_id),
        "side": _SIDES[o["S"]],
        "timestamp": _ms(o["T"]),
        "raw": raw,
    }


def _order_update(o: dict, common: dict[str, Any]) -> OrderUpdate:
    status_raw = _text(o["X"])
    return OrderUpdate(
        **common,
        order_type=_text(o["o"]),
        status=_STATUSES[status_raw],
        status_raw=status_raw,
        amount=to_decimal(o["q"]),
        price=_limit_price(o["p"]),
        filled=to_decimal(o["z"]),
    )


def _fill(o: dict, common: dict[str, Any], cost: Decimal | None) -> Trade:
    amount = to_decimal(o["l"])
    price = to_decimal(o["L"])
    fee = o.get("n")
    return Trade(
        **common,
        trade_id=_id(o["t"]),
        amount=amount,
        price=price,
        cost=_EXACT.multiply(amount, price) if cost is None else cost,
        fee_cost=None if fee is None else to_decimal(fee),
        fee_currency=_optional_text(o.get("N")),
        is_maker=_flag(o["m"]),
    )


def _execution_report(event: dict, market: Market, raw: Any) -> list[OrderUpdate | Trade]:
    common = _common(event, market, event.get("C") or event["c"], raw)
    update = _order_update(event, common)
    if event["x"] != "TRADE":
        return [update]
    return [update, _fill(event, common, to_decimal(event["Y"]))]


def _order_trade_update(event: dict, market: Market, raw: Any) -> list[OrderUpdate | Trade]:
    o = event["o"]
    common = _common(o, market, o["c"], raw)
    update = _order_update(o, common)
    execution = o["x"]
    if execution == "TRADE" or (execution == "CALCULATED" and "t" in o and "l" in o and to_decimal(o["l"])):
        return [update, _fill(o, common, None)]
    return [update]


def _trade_lite(event: dict, market: Market, raw: Any) -> list[OrderUpdate | Trade]:
    return [_fill(event, _common(event, market, event["c"], raw), None)]


_HANDLERS: dict[tuple[Market, str], Callable[[dict, Market, Any], list[OrderUpdate | Trade]]] = {
    (Market.SPOT, "executionReport"): _execution_report,
    (Market.FUTURE, "ORDER_TRADE_UPDATE"): _order_trade_update,
    (Market.FUTURE, "TRADE_LITE"): _trade_lite,
}
ORDER_EVENTS = {market: frozenset(name for m, name in _HANDLERS if m is market) for market in Market}
"""Per market, the event types that carry orders or fills (everything else normalizes to `[]`)."""


def normalize(message: Any, market: Market) -> list[OrderUpdate | Trade]:
    """One decoded frame → `[OrderUpdate]`, `[OrderUpdate, Trade]`, `[Trade]` (TRADE_LITE) or `[]`."""
    return dispatch(_HANDLERS, message, market)


def dispatch(handlers: dict, message: Any, market: Market) -> list:
    """The handler of a frame's (market, event name) over its event (the WS-API wraps it in `event`), `[]` when
    there is none; what it raises on is a malformed frame (NormalizeError, the frame kept)."""
    handler = handlers.get((market, event_name(message)))
    if handler is None:
        return []
    event = message.get("event", message)
    try:
        return handler(event, market, message)
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:  # decimal signals
        raise NormalizeError(f"binance {event['e']} event is malformed: {exc!r}", raw=message) from None
