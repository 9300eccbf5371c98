"""Hyperliquid `userFills` and `orderUpdates` pushes → Trade / OrderUpdate (perpetuals; spot and HIP-3 coins skipped).

Docs: https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/subscriptions
(WsUserFills / WsFill, WsOrder). Annotated samples:

    {"channel": "userFills",
     "data": {"isSnapshot": true,          # first push after subscribing: recent fills, replayed
              "user": "0x15f4…",
              "fills": [{"coin": "BTC",     # perp name; spot is "@107" / "PURR/USDC", HIP-3 "xyz:TSLA"
                         "px": "72528.0", "sz": "0.11693",
                         "side": "A",       # "B" bid = buy, "A" ask = sell
                         "time": 1710208712815,
                         "oid": 7484888874, "tid": 567547935839686,
                         "cloid": null,     # our client order id ("0x" + 32 hex) or null
                         "crossed": true,   # took liquidity: taker
                         "fee": "2.968244", # paid; negative = rebate (our sign already)
                         "feeToken": "USDC",  # absent on older pushes: USDC
                         "dir": "Close Long", "closedPnl": "-0.81851", "hash": "0xc5ad…", ...}]}}

    {"channel": "orderUpdates",
     "data": [{"order": {"coin": "BTC", "side": "B", "limitPx": "30000.0",
                         "sz": "0.001",     # REMAINING size
                         "origSz": "0.001", # ordered size
                         "oid": 7456484275, "timestamp": 1710163596492, "cloid": "0x…"},
               "status": "open",           # filled, canceled, triggered, rejected, marginCanceled, …
               "statusTimestamp": 1710163596492}]}

Snapshot fills are emitted like live ones: TradeSync's dedup absorbs the replay, and a snapshot fill
never stored before is a fill we missed while disconnected. `fee` already includes any `builderFee`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from exchanges.symbols import unify
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade, to_decimal

EXCHANGE = "hyperliquid"
SETTLE = "USDC"

_SIDES = {"B": Side.BUY, "A": Side.SELL}
_STATUSES = {
    "open": OrderStatus.NEW,
    "triggered": OrderStatus.NEW,  # a trigger order went live on the book
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "scheduledCancel": OrderStatus.CANCELED,  # the dead man's switch fired
    "rejected": OrderStatus.REJECTED,
}
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError)


def normalize(message: Any, market: Market) -> list[Trade | OrderUpdate]:
    """Events in a decoded frame; `[]` for acks, pongs and other channels; NormalizeError if malformed."""
    if type(message) is not dict:
        return []
    channel = message.get("channel")
    try:
        if channel == "userFills":
            return _fills(message["data"], market)
        if channel == "orderUpdates":
            return _order_updates(message["data"], market)
    except _MALFORMED as exc:
        raise NormalizeError(f"malformed hyperliquid {channel} push: {exc!r}", raw=message) from None
    return []


def _fills(data: dict, market: Market) -> list[Trade | OrderUpdate]:
    events: list[Trade | OrderUpdate] = []
    for fill in _list(data["fills"]):
        coin = fill["coin"]
        if not _is_perp(coin):
            continue
        amount = to_decimal(fill["sz"])
        price = to_decimal(fill["px"])
        crossed = fill["crossed"]
        if type(crossed) is not bool:
            raise TypeError(f"crossed must be true or false, got {crossed!r}")
        events.append(
            Trade(
                exchange=EXCHANGE,
                market=market,
                symbol=_symbol(market, coin),
                symbol_raw=coin,
                trade_id=_id(fill["tid"]),
                order_id=_id(fill["oid"]),
                client_order_id=_optional_text(fill.get("cloid")),
                side=_SIDES[fill["side"]],
                amount=amount,
                price=price,
                cost=amount * price,  # exact: far fewer digits than the 28 of the Decimal context
                fee_cost=to_decimal(fill["fee"]),
                fee_currency=_optional_text(fill.get("feeToken")) or SETTLE,
                is_maker=not crossed,
                timestamp=_int(fill["time"]),
                raw=fill,
            )
        )
    return events


def _order_updates(data: list, market: Market) -> list[Trade | OrderUpdate]:
    events: list[Trade | OrderUpdate] = []
    for entry in _list(data):
        order = entry["order"]
        coin = order["coin"]
        if not _is_perp(coin):
            continue
        amount = to_decimal(order["origSz"])
        filled = amount - to_decimal(order["sz"])
        if filled < 0:
            raise ValueError(f"remaining sz {order['sz']!r} exceeds origSz {order['origSz']!r}")
        status_raw = entry["status"]
        status = _status(status_raw)
        if status is OrderStatus.NEW and filled:
            status = OrderStatus.PARTIALLY_FILLED
        events.append(
            OrderUpdate(
                exchange=EXCHANGE,
                market=market,
                symbol=_symbol(market, coin),
                symbol_raw=coin,
                order_id=_id(order["oid"]),
                client_order_id=_optional_text(order.get("cloid")),
                side=_SIDES[order["side"]],
                order_type="limit",
                status=status,
                status_raw=status_raw,
                amount=amount,
                price=to_decimal(order["limitPx"]),
                filled=filled,
                timestamp=_int(entry["statusTimestamp"]),
                raw=entry,
            )
        )
    return events


def _status(status_raw: Any) -> OrderStatus:
    """The documented statuses, and their families: `…Canceled` (e.g. marginCanceled), `…Rejected` (tickRejected)."""
    if type(status_raw) is not str:
        raise TypeError(f"status must be a string, got {status_raw!r}")
    status = _STATUSES.get(status_raw)
    if status is None and status_raw.endswith("Canceled"):
        status = OrderStatus.CANCELED
    elif status is None and status_raw.endswith("Rejected"):
        status = OrderStatus.REJECTED
    if status is None:
        raise ValueError(f"unknown order status {status_raw!r}")
    return status


def _is_perp(coin: Any) -> bool:
    """Core perps are bare names (`BTC`, `kPEPE`); spot is `@107` or `PURR/USDC`; HIP-3 perps are `dex:NAME`."""
    if type(coin) is not str or not coin:
        raise TypeError(f"coin must be a non-empty string, got {coin!r}")
    return coin[0] != "@" and "/" not in coin and ":" not in coin


@lru_cache(maxsize=4096)
def _symbol(market: Market, coin: str) -> str:
    return unify(EXCHANGE, market, f"{coin}/{SETTLE}", settle=SETTLE)


def _list(value: Any) -> list:
    if type(value) is not list:
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _id(value: Any) -> str:
    if type(value) is int or (type(value) is str and value):
        return str(value)
    raise TypeError(f"an id must be an integer or a non-empty string, got {value!r}")


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"a time must be integer milliseconds, got {value!r}")
    return value


def _optional_text(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value or None
    raise TypeError(f"expected a string or null, got {value!r}")
