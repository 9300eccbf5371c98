"""Bybit v5 private `order` / `execution` frames → OrderUpdate / Trade (pure; exact decimals from the wire text).

Docs: https://bybit-exchange.github.io/docs/v5/websocket/private/execution , .../private/order ,
.../private/fast-execution , https://bybit-exchange.github.io/docs/v5/enum#exectype and
https://bybit-exchange.github.io/docs/v5/enum#spot-fee-currency-instruction

One socket carries every category; a row counts when its `category`'s market is the connection's
(spot ↔ "spot"; future ↔ "linear", USDT/USDC perpetuals and dated futures, and "inverse", coin-margined
perpetuals and dated futures). An inverse fill's amount is in the venue's unit, USD contracts (1 contract
= 1 USD); its cost is `execValue`, in the coin (qty / price); its symbol is ccxt's, `BTC/USD:BTC` for the
perpetual BTCUSD and `BTC/USD:BTC-250627` for BTCUSDM25 (month code and year; delivery on the month's last
Friday, Bybit's schedule). "option" fills (no market of ours holds them) and rows of a category not known
here are not recorded: the future connection keeps each as its own dead letter, with the reason. A row
that cannot be read is its own dead letter too (RowsRejected); the frame's other rows go on.

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
MovePosition, FutureSpread and UNKNOWN (classic accounts): each moves a position at a price; spot rows of
classic accounts (captured in 2023) carry `"execType": ""` and `"execFee": ""`: a trade without a fee. Funding,
Delivery and Settle are cash flows or settlements at a reference price, not fills: they give [].
An execType not listed raises NormalizeError, so a new kind is seen (the frame is logged) before it
is trusted. Without `feeCurrency`, the fee is in the settle coin for linear, and for spot in the coin
received (buy → base, sell → quote) unless it is a rebate (fee < 0, or a zero fee on a maker fill),
which comes in the other coin (Bybit's "Spot fee currency instruction").

An order row (topic `order`): `orderId`, `orderLinkId`, `symbol`, `side`, `orderType`,
`orderStatus` (status_raw), `qty` (amount), `price` (None for market orders), `cumExecQty` (filled),
`marketUnit`, `updatedTime` (timestamp). Cancelled / PartiallyFilledCanceled with `timeInForce` IOC or FOK (market
orders are IOC) is EXPIRED: the rest expired, nobody cancelled it. A spot market order whose `qty` is in quote coin
(`marketUnit` quoteCoin, or unset on a buy) has no base amount until it fills: amount = cumExecQty.
"""

from __future__ import annotations

import calendar
import re
from datetime import date
from decimal import Context, Decimal, Inexact
from typing import Any

from exchanges.symbols import unify
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade, to_decimal
from framework.validate import RowsRejected

EXCHANGE = "bybit"

_MARKETS = {"spot": Market.SPOT, "linear": Market.FUTURE, "inverse": Market.FUTURE}
_INVERSE_DATED = re.compile(r"([A-Z0-9]+)USD([FGHJKMNQUVXZ])(\d{2})")  # BTCUSDM25: June 2025
_MONTH_CODES = {code: month for month, code in enumerate("FGHJKMNQUVXZ", start=1)}
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
    rows = message.get("data")
    if not isinstance(rows, list):
        raise NormalizeError(f"bybit {topic} frame is malformed: data is {type(rows).__name__}, not a list",
                             raw=message)
    events: list[Trade | OrderUpdate] = []
    rejected: list[tuple[dict, str]] = []
    for row in rows:
        try:
            category = row["category"]
            row_market = _MARKETS.get(category)
            if row_market is None:
                if kind == "execution" and market is Market.FUTURE:  # one connection speaks for them
                    raise ValueError(f"{category!r} fills are not recorded: no market here holds them")
                continue
            if row_market is market:
                event = parse(row, market, category)
                if event is not None:
                    events.append(event)
        # ArithmeticError: decimal's signals (InvalidOperation, and Inexact from _exact_product).
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            rejected.append(({**message, "data": [row]}, f"bybit {topic} row is malformed: {exc!r}"))
    if rejected:
        raise RowsRejected(events, rejected, raw=message)
    return events


def _trade(row: dict, market: Market, category: str) -> Trade | None:
    exec_type = row.get("execType", "Trade")
    if exec_type == "" and category == "spot":  # classic-account spot rows (2023) leave it empty: a trade
        exec_type = "Trade"
    if exec_type in _NON_FILL_EXEC_TYPES:
        return None
    if exec_type not in _FILL_EXEC_TYPES:
        raise ValueError(f"unknown execType {exec_type!r}")
    raw = _text(row["symbol"])
    symbol = _symbol(raw, market, category)
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
        cost=_cost(amount, price, category) if value is None or value == "" else to_decimal(value),
        fee_cost=fee,
        fee_currency=fee_currency,
        is_maker=is_maker,
        timestamp=_ms(row["execTime"]),
        raw=row,
    )


def _order_update(row: dict, market: Market, category: str) -> OrderUpdate:
    raw = _text(row["symbol"])
    side = _SIDES[row["side"]]
    order_type = _text(row["orderType"])
    status_raw = row["orderStatus"]
    status = _STATUSES[status_raw]
    if status is OrderStatus.CANCELED and status_raw != "Deactivated" and row.get("timeInForce") in ("IOC", "FOK"):
        status = OrderStatus.EXPIRED  # an IOC / FOK (or market) order's unfilled rest: nobody cancelled it
    filled = to_decimal(row["cumExecQty"])
    is_market = order_type == "Market"
    unit = row.get("marketUnit")
    qty_in_quote = market is Market.SPOT and is_market and (unit == "quoteCoin" or (not unit and side is Side.BUY))
    return OrderUpdate(
        exchange=EXCHANGE,
        market=market,
        symbol=_symbol(raw, market, category),
        symbol_raw=raw,
        order_id=_text(row["orderId"]),
        client_order_id=_optional_text(row.get("orderLinkId")),
        side=side,
        order_type=order_type,
        status=status,
        status_raw=status_raw,
        amount=filled if qty_in_quote else to_decimal(row["qty"]),
        price=None if is_market else _optional_decimal(row.get("price")),
        filled=filled,
        timestamp=_ms(row["updatedTime"]),
        raw=row,
    )


def _symbol(raw: str, market: Market, category: str = "linear") -> str:
    """Unified symbol; linear also has USDC perpetuals (`BTCPERP`) and dated futures (`BTCUSDT-21FEB25`, `BTC-24MAR23`)."""
    if market is Market.SPOT:
        return unify(EXCHANGE, market, raw)
    if category == "inverse":
        return _inverse_symbol(raw)
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


def _inverse_symbol(raw: str) -> str:
    """ccxt's symbol of an inverse contract: quote USD, settled in the base coin; dated ones end in the delivery day."""
    dated = _INVERSE_DATED.fullmatch(raw)
    if dated:
        base, code, yy = dated.groups()
        year, month = 2000 + int(yy), _MONTH_CODES[code]
        last = calendar.monthrange(year, month)[1]
        day = last - (date(year, month, last).weekday() - calendar.FRIDAY) % 7  # the month's last Friday
        return f"{base}/USD:{base}-{yy}{month:02d}{day:02d}"
    if raw.endswith("USD") and len(raw) > 3 and raw.isalnum():
        return f"{raw[:-3]}/USD:{raw[:-3]}"
    raise ValueError(f"cannot read the inverse symbol {raw!r}")


def _cost(amount: Decimal, price: Decimal, category: str) -> Decimal:
    """Without `execValue`: qty × price (exact); inverse, qty USD contracts / price in coin (28 digits, rounded)."""
    if category == "inverse":
        return amount / price
    return _exact_product(amount, price)


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
