"""Bitget v2 private pushes (`orders` and `fill` channels) → OrderUpdate / Trade, with exact decimals. Pure.

Docs (Push Data / Push Parameters):
  spot     https://www.bitget.com/api-doc/spot/websocket/private/Order-Channel
           https://www.bitget.com/api-doc/spot/websocket/private/Fill-Channel
  futures  https://www.bitget.com/api-doc/contract/websocket/private/Order-Channel
           https://www.bitget.com/api-doc/contract/websocket/private/Fill-Channel

A push is `{"action": "snapshot"|"update", "arg": {"instType", "channel", "instId"}, "data": [row, ...],
"ts": ms}`. An `orders` row (the futures docs sample, annotated):

    {"instId": "BTCUSDT",                symbol_raw (`fill` rows name it "symbol")
     "orderId": "1", "clientOId": "1",   futures docs spell clientOId; spot and `fill` rows clientOid
     "side": "buy", "orderType": "market",
     "size": "0.01",                     order qty in base coin (spot: "newSize"; spot "size" is quote for buys)
     "price": "0",                       limit price; "0" or absent for market orders → None
     "accBaseVolume": "0.01",            cumulative filled qty
     "status": "filled",                 live | partially_filled | filled | canceled (spot: cancelled)
     "uTime": "1695718781146",           order update time → OrderUpdate.timestamp
     "tradeId": "1111111111",            the latest fill, when the push carries one: its id,
     "baseVolume": "0.01",               qty,
     "fillPrice": "27000.5",             price,
     "fillTime": "1695718781146",        time,
     "fillFee": "-0.162003",             fee ("negative value" = paid),
     "fillFeeCoin": "USDT",              fee currency,
     "tradeScope": "T"}                  T taker / M maker

A futures `fill` row: {"orderId", "clientOid", "tradeId", "symbol", "side", "price", "baseVolume",
"quoteVolume", "tradeScope": "taker", "feeDetail": [{"feeCoin": "USDT", "totalFee": "-0.183717"}], "cTime"};
a spot `fill` row has "priceAvg" (this fill's price), "size" (qty) and "amount" (quote) instead.

Decisions:
- fee_cost is positive when paid. The `orders` fillFee and the futures `fill` totalFee are negative when paid
  (docs: "negative value"; sample -0.183717): negated. The spot `fill` totalFee is positive when paid (docs
  sample 0.01538655 = 0.06 % of 25.644246; ccxt's captured push: 0.000074 on a 0.074 LTC buy): kept. So both
  channels give one fill the same fee. Only feeDetail[0] is read (one fee coin per fill).
- An `orders` row that carries a fill (tradeId set, baseVolume non-zero) yields [OrderUpdate, Trade]. That
  Trade has the dedup key of the `fill` channel's Trade for the same fill (same symbol, tradeId, orderId), so
  TradeSync stores one row whichever comes first. Its cost is baseVolume × fillPrice (fillNotionalUsd is a
  USD valuation, not the quote amount).
- USDT-FUTURES sizes are base coin, so no contract multiplier applies; the unified symbol settles in the quote.
- OrderUpdate.amount is the order size as sent: for a spot market buy that is a quote amount.
"""

from __future__ import annotations

from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, InvalidOperation
from typing import Any

from exchanges.symbols import unify
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Trade, to_decimal

EXCHANGE = "bitget"

_STATUS = {
    "init": OrderStatus.NEW,
    "new": OrderStatus.NEW,
    "live": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
}
# `orders` rows say T/M, `fill` rows taker/maker; the spot Fill-Channel docs sample spells it "marker".
_IS_MAKER = {"T": False, "M": True, "taker": False, "maker": True, "marker": True}
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # products without rounding
_MALFORMED = (KeyError, IndexError, TypeError, ValueError, InvalidOperation, AttributeError)


def normalize(message: Any, market: Market) -> list[Trade | OrderUpdate]:
    """Events of one decoded frame; `[]` for acks, errors, pongs and other channels."""
    if not isinstance(message, dict) or "event" in message:
        return []
    arg = message.get("arg")
    channel = arg.get("channel") if isinstance(arg, dict) else None
    if channel != "orders" and channel != "fill":  # compared, not hashed: a junk channel may be a list
        return []
    parse = _order_events if channel == "orders" else _fill_events
    try:
        rows = message["data"]
        if not isinstance(rows, list):
            raise TypeError(f"data must be a list, got {type(rows).__name__}")
        events: list[Trade | OrderUpdate] = []
        for row in rows:
            events.extend(parse(row, market))
        return events
    except _MALFORMED as exc:
        raise NormalizeError(f"bitget {channel} push: {type(exc).__name__}: {exc}", raw=message) from exc


def _order_events(row: dict, market: Market) -> list[Trade | OrderUpdate]:
    raw_symbol = _text(row, "instId")
    symbol = unify(EXCHANGE, market, raw_symbol)
    order_id = _text(row, "orderId")
    client_order_id = _client_order_id(row)
    status_raw = _text(row, "status")
    status = _STATUS.get(status_raw)
    if status is None:
        raise ValueError(f"unknown order status {status_raw!r}")
    price = row.get("price")
    update = OrderUpdate(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        symbol_raw=raw_symbol,
        order_id=order_id,
        client_order_id=client_order_id,
        side=row["side"],
        order_type=_text(row, "orderType"),
        status=status,
        status_raw=status_raw,
        amount=to_decimal(row["newSize" if market is Market.SPOT else "size"]),
        price=None if price is None or price == "" else to_decimal(price) or None,
        filled=to_decimal(row["accBaseVolume"]),
        timestamp=_ms(row["uTime"]),
        raw=row,
    )
    trade_id = row.get("tradeId")
    amount = None if trade_id is None or trade_id == "" else to_decimal(row["baseVolume"])
    if not amount:
        return [update]
    fill_price = to_decimal(row["fillPrice"])
    fee = row.get("fillFee")
    trade = Trade(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        symbol_raw=raw_symbol,
        trade_id=_text(row, "tradeId"),
        order_id=order_id,
        client_order_id=client_order_id,
        side=row["side"],
        amount=amount,
        price=fill_price,
        cost=_EXACT.multiply(amount, fill_price),
        fee_cost=None if fee is None or fee == "" else to_decimal(fee).copy_negate(),
        fee_currency=_optional_text(row, "fillFeeCoin"),
        is_maker=_IS_MAKER.get(row.get("tradeScope")),
        timestamp=_ms(row["fillTime"]),
        raw=row,
    )
    return [update, trade]


def _fill_events(row: dict, market: Market) -> list[Trade]:
    raw_symbol = _text(row, "symbol")
    spot = market is Market.SPOT
    fee_cost = fee_currency = None
    details = row.get("feeDetail") or ()
    if details:
        first = details[0]
        fee = to_decimal(first["totalFee"])
        fee_cost = fee if spot else fee.copy_negate()
        fee_currency = _optional_text(first, "feeCoin")
    trade = Trade(
        exchange=EXCHANGE,
        market=market,
        symbol=unify(EXCHANGE, market, raw_symbol),
        symbol_raw=raw_symbol,
        trade_id=_text(row, "tradeId"),
        order_id=_text(row, "orderId"),
        client_order_id=_client_order_id(row),
        side=row["side"],
        amount=to_decimal(row["size" if spot else "baseVolume"]),
        price=to_decimal(row["priceAvg" if spot else "price"]),
        cost=to_decimal(row["amount" if spot else "quoteVolume"]),
        fee_cost=fee_cost,
        fee_currency=fee_currency,
        is_maker=_IS_MAKER.get(row.get("tradeScope")),
        timestamp=_ms(row["cTime"]),
        raw=row,
    )
    return [trade]


def _text(row: dict, key: str) -> str:
    """A required id or name: non-empty text (an int id is taken as its text)."""
    value = row[key]
    if type(value) is str and value:
        return value
    if type(value) is int:
        return str(value)
    raise ValueError(f"{key} must be non-empty text, got {value!r}")


def _optional_text(row: dict, key: str) -> str | None:
    value = row.get(key)
    return None if value is None or value == "" else _text(row, key)


def _client_order_id(row: dict) -> str | None:
    return _optional_text(row, "clientOid" if "clientOid" in row else "clientOId")


def _ms(value: Any) -> int:
    """A millisecond time sent as digits text (or an int); floats and bools are refused."""
    if type(value) is str or type(value) is int:
        return int(value)
    raise TypeError(f"time must be integer milliseconds, got {value!r}")
