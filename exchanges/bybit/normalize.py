"""Bybit v5 private `order` / `execution` frames → OrderUpdate / Trade (pure; exact decimals from the wire text).

Docs: https://bybit-exchange.github.io/docs/v5/websocket/private/execution , .../private/order ,
.../private/fast-execution , https://bybit-exchange.github.io/docs/v5/enum#exectype and
https://bybit-exchange.github.io/docs/v5/enum#spot-fee-currency-instruction

One socket carries every category; a row counts when its `category` is the connection's market
(spot ↔ "spot", future ↔ "linear": USDT/USDC perpetuals and dated futures). "inverse" (coin-margined,
qty in USD contracts) and "option" rows give nothing here.

An execution row (topic `execution`; `execution.fast` rows carry only the fields marked *):

    {"topic": "execution", "id": "386825804_BTCUSDT_140612148849382", "creationTime": 1746270400355,
     "data": [{
        "category": "linear",                # * spot | linear | inverse | option
        "symbol": "BTCUSDT",                 # * symbol_raw
        "execId": "0ab1bdf7-4219-...",       # * trade_id
        "orderId": "9aac161b-8ed6-...",      # * order_id
        "orderLinkId": "",                   # * client_order_id ("" = none)
        "side": "Sell",                      # * Buy | Sell
        "execType": "Trade",                 #   absent on execution.fast (all of them are trades)
        "execQty": "0.5",                    # * amount, in base coin (linear too)
        "execPrice": "95900.1",              # * price
        "execValue": "47950.05",             #   cost, in quote coin (else execQty × execPrice)
        "execFee": "26.3725275",             #   fee_cost: + paid, - rebate (Bybit's sign is ours)
        "feeCurrency": "USDT",               #   fee_currency (newer payloads; else derived, below)
        "isMaker": false,                    # * is_maker
        "execTime": "1746270400353",         # * timestamp, ms as text
        ...}]}

Fills are execTypes Trade, AdlTrade (auto-deleveraging), BustTrade (liquidation takeover), BlockTrade,
MovePosition, FutureSpread and UNKNOWN (classic accounts): each moves a position at a price. Funding,
Delivery and Settle are cash flows or settlements at a reference price, not fills: they give [].
An execType not listed raises NormalizeError, so a new kind is seen (the frame is logged) before it
is trusted. Without `feeCurrency`, the fee is in the settle coin for linear, and for spot in the coin
received (buy → base, sell → quote) unless it is a rebate (fee < 0, or a zero fee on a maker fill),
which comes in the other coin (Bybit's "Spot fee currency instruction").

An order row (topic `order`): `orderId`, `orderLinkId`, `symbol`, `side`, `orderType`,
`orderStatus` (status_raw), `qty` (amount), `price` (None for market orders), `cumExecQty` (filled),
`marketUnit`, `updatedTime` (timestamp). A spot market order whose `qty` is in quote coin
(`marketUnit` quoteCoin, or unset on a buy) has no base amount until it fills: amount = cumExecQty.
"""

from __future__ import annotations

from decimal import Context, Decimal, Inexact
from typing import Any

from exchanges.symbols import unify
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade, to_decimal

EXCHANGE = "bybit"

_CATEGORIES = {Market.SPOT: "spot", Market.FUTURE: "linear"}
_SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}
_FILL_EXEC_TYPES = frozenset({"Trade", "AdlTrade", "BustTrade", "BlockTrade", "MovePosition", "FutureSpread", "UNKNOWN"})
_NON_FILL_EXEC_TYPES = frozenset({"Funding", "Delivery", "Settle"})
_STATUSES = {
    "Created": OrderStatus.NEW,
    "New": OrderStatus.NEW,
    "Active": OrderStatus.NEW,
    "Untriggered": OrderStatus.NEW,
    "Triggered": OrderStatus.NEW,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELED,
    "PartiallyFilledCanceled": OrderStatus.CANCELED,
    "Deactivated": OrderStatus.CANCELED,
    "Rejected": OrderStatus.REJECTED,
}
_MONTHS = {m: f"{i:02d}" for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}


def normalize(message: Any, market: Market) -> list[Trade | OrderUpdate]:
    """The events of one decoded frame for `market`; acks, pongs and other topics give []."""
    topic = message.get("topic") if isinstance(message, dict) else None
    if not isinstance(topic, str):
        return []
    kind = topic.partition(".")[0]
    if kind == "execution":
        parse = _trade
    elif kind == "order":
        parse = _order_update
    else:
        return []
    category = _CATEGORIES[market]
    try:
        rows = message["data"]
        if not isinstance(rows, list):
            raise TypeError(f"data is {type(rows).__name__}, not a list")
        events = []
        for row in rows:
            if row["category"] == category:
                event = parse(row, market)
                if event is not None:
                    events.append(event)
        return events
    # ArithmeticError: decimal's signals (InvalidOperation, and Inexact from _exact_product).
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        raise NormalizeError(f"bybit {topic} frame is malformed: {exc!r}", raw=message) from None


def _trade(row: dict, market: Market) -> Trade | None:
    exec_type = row.get("execType", "Trade")
    if exec_type in _NON_FILL_EXEC_TYPES:
        return None
    if exec_type not in _FILL_EXEC_TYPES:
        raise ValueError(f"unknown execType {exec_type!r}")
    raw = _text(row["symbol"])
    symbol = _symbol(raw, market)
    side = _SIDES[row["side"]]
    amount = to_decimal(row["execQty"])
    if amount <= 0:
        raise ValueError(f"execQty must be positive, got {amount}")
    price = to_decimal(row["execPrice"])
    value = row.get("execValue")
    is_maker = row.get("isMaker")
    if is_maker is not None and not isinstance(is_maker, bool):
        raise TypeError(f"isMaker must be a boolean, got {is_maker!r}")
    fee = _optional_decimal(row.get("execFee"))
    fee_currency = _optional_text(row.get("feeCurrency"))
    if fee is not None and fee_currency is None:
        fee_currency = _fee_currency(symbol, market, side, fee, is_maker)
    return Trade(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        symbol_raw=raw,
        trade_id=_text(row["execId"]),
        order_id=_text(row["orderId"]),
        client_order_id=_optional_text(row.get("orderLinkId")),
        side=side,
        amount=amount,
        price=price,
        cost=_exact_product(amount, price) if value is None or value == "" else to_decimal(value),
        fee_cost=fee,
        fee_currency=fee_currency,
        is_maker=is_maker,
        timestamp=_ms(row["execTime"]),
        raw=row,
    )


def _order_update(row: dict, market: Market) -> OrderUpdate:
    raw = _text(row["symbol"])
    side = _SIDES[row["side"]]
    order_type = _text(row["orderType"])
    status_raw = row["orderStatus"]
    filled = to_decimal(row["cumExecQty"])
    is_market = order_type == "Market"
    unit = row.get("marketUnit")
    qty_in_quote = market is Market.SPOT and is_market and (unit == "quoteCoin" or (not unit and side is Side.BUY))
    return OrderUpdate(
        exchange=EXCHANGE,
        market=market,
        symbol=_symbol(raw, market),
        symbol_raw=raw,
        order_id=_text(row["orderId"]),
        client_order_id=_optional_text(row.get("orderLinkId")),
        side=side,
        order_type=order_type,
        status=_STATUSES[status_raw],
        status_raw=status_raw,
        amount=filled if qty_in_quote else to_decimal(row["qty"]),
        price=None if is_market else _optional_decimal(row.get("price")),
        filled=filled,
        timestamp=_ms(row["updatedTime"]),
        raw=row,
    )


def _symbol(raw: str, market: Market) -> str:
    """Unified symbol; linear also has USDC perpetuals (`BTCPERP`) and dated futures (`BTCUSDT-21FEB25`, `BTC-24MAR23`)."""
    if market is Market.SPOT:
        return unify(EXCHANGE, market, raw)
    pair, _, expiry = raw.partition("-")
    if pair.endswith("PERP"):
        pair = pair[:-4] + "USDC"
    elif expiry and not pair.endswith("USDT"):
        pair += "USDC"
    symbol = unify(EXCHANGE, market, pair)
    if not expiry:
        return symbol
    day, month, year = expiry[:-5], expiry[-5:-2], expiry[-2:]
    if not (day.isdigit() and year.isdigit() and len(day) <= 2):
        raise ValueError(f"cannot read the expiry of {raw!r}")
    return f"{symbol}-{year}{_MONTHS[month]}{day.zfill(2)}"


def _fee_currency(symbol: str, market: Market, side: Side, fee: Decimal, is_maker: bool | None) -> str:
    base, _, rest = symbol.partition("/")
    quote, _, settle = rest.partition(":")
    if market is Market.FUTURE:
        return settle.partition("-")[0]
    rebate = fee < 0 or (fee == 0 and bool(is_maker))
    return base if (side is Side.BUY) != rebate else quote


def _exact_product(a: Decimal, b: Decimal) -> Decimal:
    """a × b unrounded (it has no more digits than its factors together); an out-of-range result raises."""
    digits = len(a.as_tuple().digits) + len(b.as_tuple().digits)
    return Context(prec=digits, traps=[Inexact]).multiply(a, b)


def _text(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    raise ValueError(f"expected a non-empty string, got {value!r}")


def _optional_text(value: Any) -> str | None:
    return None if value is None or value == "" else _text(value)


def _optional_decimal(value: Any) -> Decimal | None:
    return None if value is None or value == "" else to_decimal(value)


def _ms(value: Any) -> int:
    if type(value) is int or (isinstance(value, str) and value.isdigit()):
        return int(value)
    raise ValueError(f"not a time in ms: {value!r}")
