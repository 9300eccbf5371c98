"""Gate private-stream frames → `OrderUpdate` / `Trade` (pure; the only module that knows Gate's field names).

Docs: spot https://www.gate.io/docs/developers/apiv4/ws/en/#orders-channel and #user-trades-channel;
futures https://www.gate.io/docs/developers/futures/ws/en/#orders-api and #user-trades-api.
Frames are `{"channel", "event": "update", "result": [row, ...]}`; acks, pongs, other channels give `[]`.
Orders and fills come on separate channels: one row gives one event (never an `[OrderUpdate, Trade]` pair).

spot.orders row (annotated)::

    {"id": "399123456",              order_id
     "text": "t-testtext",           client_order_id "testtext" (user texts carry Gate's `t-`; "apiv4", "web", … → None)
     "currency_pair": "BTC_USDT", "type": "limit", "side": "sell",
     "amount": "0.0001",             order qty (quote currency for market buys, as Gate sends it)
     "price": "26253.3",             limit price ("0" → None)
     "left": "0.0001",               filled = amount - left
     "update_time_ms": "1694655225315",  timestamp
     "event": "put",                 put / update (open) or finish; status_raw while open
     "finish_as": "open", ...}       status_raw once finished: filled, cancelled, ioc, stp, poc, small, ...

spot.usertrades row::

    {"id": 5736713, "order_id": "30784428", "currency_pair": "BTC_USDT",
     "create_time_ms": "1605176741123.456",  timestamp (sub-ms digits dropped)
     "side": "sell", "amount": "1.00000000", "price": "10000.00000000", "role": "taker",
     "fee": "0.00200000000000", "fee_currency": "USDT", "point_fee": "0", "gt_fee": "0", "text": "apiv4"}

futures.orders row (numbers may be JSON numbers: the connection decodes them as Decimal)::

    {"id": 4872460, "contract": "BTC_USDT", "size": -3,   signed contracts: negative = sell
     "left": 0, "price": 40000.4,                         price 0 = market order
     "status": "finished", "finish_as": "filled", "text": "-",   status "open" while live
     "create_time_ms": 1628736847325, "finish_time_ms": 1628736848321,   timestamp: finish, else create

futures.usertrades row::

    {"id": "3335259", "order_id": "4872460", "contract": "BTC_USDT", "size": 1, "price": "40000.4",
     "role": "maker", "create_time_ms": 1628736848321, "fee": 0.0009290592, "point_fee": 0, "text": "api"}

Decisions: a user `text` must start with `t-` (docs, order `text` rules: "prefixed with t-", at most 28 bytes
after it); ccxt adds the prefix to a clientOrderId without it. The client order id is the part after `t-`, the id
the strategy chose, so fills route by the strategy's prefix; other texts (apiv4, web, api, …) are Gate's own marks
of where an order came from, not client ids. Futures `amount` is contracts (abs(size), as ccxt), `cost` =
contracts × price × contract size (`exchanges.symbols.contract_size`, else `FALLBACK_CONTRACT_SIZES`, else 1);
`Trade.base_amount` / `OrderUpdate.base_amount` / `base_filled` give coins (contracts × that size).
Gate's `fee` is the fee deducted (negative = rebate, as with a negative maker rate `mkfr`): our sign already, kept
as sent. A zero `fee` with a non-zero `gt_fee` / `point_fee` (fee paid in GT / points) reports that amount in
"GT" / "POINT". Futures fees are in the settle currency (USDT); futures symbols are unified with settle USDT (the
USDT-settled socket).
"""

from __future__ import annotations

from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any, Callable

from exchanges.symbols import contract_size, register_contract_sizes, unify
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade, to_decimal

EXCHANGE = "gate"
SETTLE = "USDT"
# Base units per contract of the largest USDT perpetuals, for when no market metadata was registered.
FALLBACK_CONTRACT_SIZES = {"BTC_USDT": Decimal("0.0001"), "ETH_USDT": Decimal("0.01")}
# Registered unless known, so Trade/OrderUpdate.contract_size (and base_amount) use the size cost is computed with.
register_contract_sizes(EXCHANGE, {k: v for k, v in FALLBACK_CONTRACT_SIZES.items()
                                   if contract_size(EXCHANGE, k) is None})

_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # products and differences never round
_ONE = Decimal(1)
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_CLOSE_SIDES = {"close_long": Side.SELL, "close_short": Side.BUY}  # `auto_size` of a size-0 close order
_MAKER = {"maker": True, "taker": False}
# How a finished order with quantity left ended; unlisted reasons (cancelled, stp, liquidated, ...) are cancels.
_FINISHED = {
    "filled": OrderStatus.FILLED,
    "ioc": OrderStatus.EXPIRED,
    "fok": OrderStatus.EXPIRED,
    "poc": OrderStatus.REJECTED,
    "small": OrderStatus.REJECTED,
}
_FEE_SUBSTITUTES = (("gt_fee", "GT"), ("point_fee", "POINT"))
_USER_TEXT = "t-"  # the prefix Gate requires on a user-defined order text


def _text(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    raise TypeError(f"expected text, got {value!r}")


def _id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _ms(value: Any) -> int:
    return int(to_decimal(value))


def _client_id(text: Any) -> str | None:
    """The user's part of a `t-…` text; None for Gate's own marks (apiv4, web, api, …)."""
    if isinstance(text, str) and text.startswith(_USER_TEXT) and len(text) > len(_USER_TEXT):
        return text[len(_USER_TEXT):]
    return None


def _signed_side(size: Decimal, row: dict) -> Side:
    if size > 0:
        return Side.BUY
    if size < 0:
        return Side.SELL
    return _CLOSE_SIDES[row["auto_size"]]


def _status(finished: bool, finish_as: Any, left: Decimal, filled: Decimal) -> OrderStatus:
    if not finished:
        return OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.NEW
    if not left:
        return OrderStatus.FILLED
    return _FINISHED.get(finish_as, OrderStatus.CANCELED)


def _fee(row: dict, currency: Any) -> tuple[Decimal | None, Any]:
    fee = row.get("fee")
    if fee is None:
        return None, None
    cost = to_decimal(fee)
    if not cost:
        for field, unit in _FEE_SUBSTITUTES:
            substitute = row.get(field)
            if substitute is not None and (paid := to_decimal(substitute)):
                return paid, unit
    return cost, currency


def _spot_order(row: dict) -> OrderUpdate:
    raw = _text(row["currency_pair"])
    event = _text(row["event"])
    finished = event == "finish"
    amount, left = to_decimal(row["amount"]), to_decimal(row["left"])
    filled = _EXACT.subtract(amount, left)
    finish_as = row.get("finish_as")
    return OrderUpdate(
        exchange=EXCHANGE,
        market=Market.SPOT,
        symbol=unify(EXCHANGE, Market.SPOT, raw),
        symbol_raw=raw,
        order_id=_id(row["id"]),
        client_order_id=_client_id(row.get("text")),
        side=_SIDES[row["side"]],
        order_type=_text(row["type"]),
        status=_status(finished, finish_as, left, filled),
        status_raw=(finish_as if finished else None) or event,
        amount=amount,
        price=to_decimal(row["price"]) or None,
        filled=filled,
        timestamp=_ms(row["update_time_ms"]),
        raw=row,
    )


def _spot_trade(row: dict) -> Trade:
    raw = _text(row["currency_pair"])
    amount, price = to_decimal(row["amount"]), to_decimal(row["price"])
    fee_cost, fee_currency = _fee(row, row.get("fee_currency"))
    return Trade(
        exchange=EXCHANGE,
        market=Market.SPOT,
        symbol=unify(EXCHANGE, Market.SPOT, raw),
        symbol_raw=raw,
        trade_id=_id(row["id"]),
        order_id=_id(row["order_id"]),
        client_order_id=_client_id(row.get("text")),
        side=_SIDES[row["side"]],
        amount=amount,
        price=price,
        cost=_EXACT.multiply(amount, price),
        fee_cost=fee_cost,
        fee_currency=fee_currency,
        is_maker=_MAKER.get(row.get("role")),
        timestamp=_ms(row["create_time_ms"]),
        raw=row,
    )


def _future_order(row: dict) -> OrderUpdate:
    raw = _text(row["contract"])
    size = to_decimal(row["size"])
    amount, left = size.copy_abs(), to_decimal(row["left"]).copy_abs()
    filled = _EXACT.subtract(amount, left)
    state = _text(row["status"])
    finished = state == "finished"
    finish_as = row.get("finish_as")
    price = to_decimal(row["price"])
    return OrderUpdate(
        exchange=EXCHANGE,
        market=Market.FUTURE,
        symbol=unify(EXCHANGE, Market.FUTURE, raw, settle=SETTLE),
        symbol_raw=raw,
        order_id=_id(row["id"]),
        client_order_id=_client_id(row.get("text")),
        side=_signed_side(size, row),
        order_type="limit" if price else "market",
        status=_status(finished, finish_as, left, filled),
        status_raw=(finish_as if finished else None) or state,
        amount=amount,
        price=price or None,
        filled=filled,
        timestamp=_ms(row.get("finish_time_ms") or row["create_time_ms"]),
        raw=row,
    )


def _future_trade(row: dict) -> Trade:
    raw = _text(row["contract"])
    size, price = to_decimal(row["size"]), to_decimal(row["price"])
    amount = size.copy_abs()
    multiplier = contract_size(EXCHANGE, raw) or FALLBACK_CONTRACT_SIZES.get(raw, _ONE)
    fee_cost, fee_currency = _fee(row, SETTLE)
    return Trade(
        exchange=EXCHANGE,
        market=Market.FUTURE,
        symbol=unify(EXCHANGE, Market.FUTURE, raw, settle=SETTLE),
        symbol_raw=raw,
        trade_id=_id(row["id"]),
        order_id=_id(row["order_id"]),
        client_order_id=_client_id(row.get("text")),
        side=_signed_side(size, row),
        amount=amount,
        price=price,
        cost=_EXACT.multiply(_EXACT.multiply(amount, price), multiplier),
        fee_cost=fee_cost,
        fee_currency=fee_currency,
        is_maker=_MAKER.get(row.get("role")),
        timestamp=_ms(row["create_time_ms"]),
        raw=row,
    )


_PARSERS: dict[str, Callable[[dict], OrderUpdate | Trade]] = {
    "spot.orders": _spot_order,
    "spot.usertrades": _spot_trade,
    "futures.orders": _future_order,
    "futures.usertrades": _future_trade,
}
CHANNELS = frozenset(_PARSERS)


def normalize(message: Any, market: Market) -> list[Trade | OrderUpdate]:
    """The events of one decoded frame; the channel names the market. Malformed events raise NormalizeError."""
    if not isinstance(message, dict) or message.get("event") != "update":
        return []
    channel = message.get("channel")
    parse = _PARSERS.get(channel) if isinstance(channel, str) else None
    if parse is None:
        return []
    try:
        return [parse(row) for row in message["result"]]
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise NormalizeError(f"gate {channel} event is malformed ({problem})", raw=message) from None
