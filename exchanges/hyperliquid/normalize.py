"""Hyperliquid `userFills` and `orderUpdates` pushes → Trade / OrderUpdate, each in its own market (perps, HIP-3, spot).

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

One socket carries every market of the wallet, and each event keeps its own (the connection's key is
the socket's, `hyperliquid_future`), with ccxt's symbols:
- core perps, a bare name (`BTC`, `kPEPE`): Market.FUTURE, `BTC/USDC:USDC`;
- HIP-3 perps of a builder dex, `dex:NAME` (`xyz:SP500`): Market.FUTURE, `XYZ-SP500/USDC:USDC`, the
  base keeping the dex; quote and settle are the dex's collateral, which is the fill's `feeToken`
  (perp fees are paid in collateral), unless `register_markets` taught the symbol;
- spot, `PURR/USDC` (a name) or `@107` (an index into spotMeta): Market.SPOT, `PURR/USDC`; an `@` index
  has no symbol offline unless `register_markets("hyperliquid", Market.SPOT, {"@107": "HYPE/USDC"})`
  taught it. Spot sizes are in the base token; the fee is in `feeToken` (on a buy, the token bought).
A fill whose symbol cannot be known (an unknown `@` index, an outcome `#…`, a HIP-3 fill without
`feeToken`), or that cannot be read, is its own dead letter with the reason (RowsRejected); the frame's
other fills go on. Order updates of such coins are skipped (they are not fills).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from exchanges import symbols
from exchanges.symbols import unify
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade, to_decimal
from framework.validate import RowsRejected

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
    if channel not in ("userFills", "orderUpdates"):
        return []
    try:
        data = message["data"]
        rows = _list(data["fills"]) if channel == "userFills" else _list(data)
    except _MALFORMED as exc:
        raise NormalizeError(f"malformed hyperliquid {channel} push: {exc!r}", raw=message) from None
    parse = _fill if channel == "userFills" else _order_update
    events: list[Trade | OrderUpdate] = []
    rejected: list[tuple[dict, str]] = []
    for row in rows:
        try:
            event = parse(row)
        except _MALFORMED as exc:
            alone = {**message, "data": {**data, "fills": [row]} if channel == "userFills" else [row]}
            rejected.append((alone, f"hyperliquid {channel} row not recorded: {exc!r}"))
            continue
        if event is not None:
            events.append(event)
    if rejected:
        raise RowsRejected(events, rejected, raw=message)
    return events


def _fill(fill: dict) -> Trade:
    coin = fill["coin"]
    fee_token = _optional_text(fill.get("feeToken"))
    market, symbol = _market_symbol(coin, fee_token)
    amount = to_decimal(fill["sz"])
    price = to_decimal(fill["px"])
    crossed = fill["crossed"]
    if type(crossed) is not bool:
        raise TypeError(f"crossed must be true or false, got {crossed!r}")
    return Trade(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        symbol_raw=coin,
        trade_id=_id(fill["tid"]),
        order_id=_id(fill["oid"]),
        client_order_id=_optional_text(fill.get("cloid")),
        side=_SIDES[fill["side"]],
        amount=amount,
        price=price,
        cost=amount * price,  # exact: far fewer digits than the 28 of the Decimal context
        fee_cost=to_decimal(fill["fee"]),
        fee_currency=fee_token or SETTLE,
        is_maker=not crossed,
        timestamp=_int(fill["time"]),
        raw=fill,
    )


def _order_update(entry: dict) -> OrderUpdate | None:
    order = entry["order"]
    coin = order["coin"]
    try:
        market, symbol = _market_symbol(coin, None)
    except UnknownSymbol:
        return None  # not a fill: an order of a coin we cannot name is left out
    amount = to_decimal(order["origSz"])
    filled = amount - to_decimal(order["sz"])
    if filled < 0:
        raise ValueError(f"remaining sz {order['sz']!r} exceeds origSz {order['origSz']!r}")
    status_raw = entry["status"]
    status = _status(status_raw)
    if status is OrderStatus.NEW and filled:
        status = OrderStatus.PARTIALLY_FILLED
    return OrderUpdate(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
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


class UnknownSymbol(ValueError):
    """A coin whose market or symbol cannot be known offline."""


def _market_symbol(coin: Any, collateral: str | None) -> tuple[Market, str]:
    """(market, ccxt symbol) of a fill's coin; UnknownSymbol when it cannot be known offline."""
    if type(coin) is not str or not coin:
        raise TypeError(f"coin must be a non-empty string, got {coin!r}")
    if coin[0] == "@" or "/" in coin:
        return Market.SPOT, _spot_symbol(coin)
    if coin[0] == "#":
        raise UnknownSymbol(f"coin {coin!r} is an outcome market: no market here holds it")
    if ":" in coin:
        return Market.FUTURE, _hip3_symbol(coin, collateral)
    return Market.FUTURE, _symbol(Market.FUTURE, coin)


def _spot_symbol(coin: str) -> str:
    try:
        return unify(EXCHANGE, Market.SPOT, coin)  # spotMeta taught by register_markets, else `BASE/QUOTE`
    except ValueError:
        raise UnknownSymbol(
            f"spot coin {coin!r} has no symbol offline: teach it with register_markets (the venue's spotMeta)"
        ) from None


def _hip3_symbol(coin: str, collateral: str | None) -> str:
    known = _taught(Market.FUTURE, coin)  # not unify's offline rule: `xyz:ETHUSD` would read as ETH against USD
    if known is not None:
        return known
    if not collateral:
        raise UnknownSymbol(f"HIP-3 coin {coin!r} came without feeToken: its dex's collateral is unknown offline")
    dex, _, name = coin.partition(":")
    if not dex or not name:
        raise UnknownSymbol(f"cannot read the HIP-3 coin {coin!r}")
    base = f"{dex}-{name}".upper()
    return f"{base}/{collateral}:{collateral}"


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


def _taught(market: Market, coin: str) -> str | None:
    """The symbol `register_markets` taught for this coin, if any."""
    return symbols._metadata.get((EXCHANGE, market), {}).get(coin)


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
