"""Bybit v5 private `wallet` / `position` frames → BalanceUpdate / PositionUpdate (pure; exact decimals from the
wire text), and the same rows of the REST snapshot ccxt fetches (`GET /v5/account/wallet-balance`,
`GET /v5/position/list`).

Docs: https://bybit-exchange.github.io/docs/v5/websocket/private/wallet , .../private/position ,
.../v5/account/wallet-balance , .../v5/position and https://bybit-exchange.github.io/docs/v5/enum#positionidx

A wallet frame (topic `wallet`; no snapshot on subscribe, "the unrealised PnL change does not trigger an event"):

    {"id": "592324d2bce751-...", "topic": "wallet", "creationTime": 1700034722104,   # timestamp of every coin
     "data": [{"accountType": "UNIFIED", "totalEquity": "10262.91335023", ...,       # USD totals: not read
               "coin": [{
        "coin": "BTC",                       # asset
        "walletBalance": "0.00102964",       # total (without unrealised PnL: `equity` has it)
        "locked": "0",                       # spot open orders
        "totalOrderIM": "", "totalPositionIM": "",   # derivatives margin ("" in portfolio margin: none)
        "availableToWithdraw": "0.00102964", # free when given (always "" for UNIFIED since 9 Jan 2025)
        "unrealisedPnl": "0", "cumRealisedPnl": "-0.00000973", ...}]}]}

One unified account (UTA) holds spot coins and derivatives margin alike, so both connections read every coin.
`total` = walletBalance; `free` = availableToWithdraw (or a classic spot row's `free`) when it is given, else
walletBalance − locked − totalOrderIM − totalPositionIM (the docs' isolated-margin available balance, bonus left
in); `locked` = total − free. That is ccxt's `fetch_balance` reading of the same fields, so the stream and the
REST snapshot agree (ccxt.pro's `watch_balance` reads `equity` as the total: with unrealised PnL, which the
framework keeps out). walletBalance is taken as sent: since UTA manual borrowing it includes `spotBorrow`.

A position row (topic `position`, or the categorised `position.linear|inverse|option`; one push per order
created, amended or cancelled, changed or not):

    {"category": "linear", "symbol": "BTCUSDT",  # symbol_raw; unified as normalize.py reads it
     "positionIdx": 0,                           # 0 one-way (net), 1 hedge Buy leg (long), 2 hedge Sell leg (short)
     "side": "Buy",                              # Buy long | Sell short | "" (or "None", classic) empty
     "size": "75",                               # always >= 0: contracts = size (base coin on linear)
     "entryPrice": "0.3615",                     # entry_price (REST rows call it `avgPrice`)
     "markPrice": "0.3374", "unrealisedPnl": "-1.8075",
     "cumRealisedPnl": "0.64782276",             # realized_pnl: all time (curRealisedPnl is the holding's only)
     "leverage": "10", "liqPrice": "",           # "" (none known / portfolio margin) → None
     "tradeMode": 0,                             # deprecated, always 0: 1 (isolated) is the only mode it tells
     "updatedTime": "1672364174449", ...}        # timestamp

Values are taken as written: a flat row's "0" entry and liquidation prices stay 0. Inverse sizes stay in the
venue's unit, USD contracts (1 contract = 1 USD), as normalize.py keeps inverse fills. Option positions (no market
of ours holds them) are left out; a spot connection reads no positions. A row that cannot be read is its own dead
letter (RowsRejected); the frame's other rows go on. A frame whose `data` (or an account's `coin`) is not a list,
or a wallet frame without a time, is malformed as a whole (NormalizeError).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exchanges.bybit.normalize import EXCHANGE, _MARKETS, _ms, _optional_decimal, _symbol, _text
from framework.account import BalanceUpdate, Direction, PositionSide, PositionUpdate
from framework.errors import NormalizeError
from framework.events import Market, Source, to_decimal
from framework.validate import RowsRejected

# The all-in-one account topics each market's private connection subscribes after `order` / `execution`, in a
# request of their own (all-in-one too: Bybit refuses all-in-one and categorised topics mixed in one request).
ACCOUNT_CHANNELS = {Market.SPOT: ("wallet",), Market.FUTURE: ("wallet", "position")}
ACCOUNT_REQUEST = "account-"  # the req_id prefix of their subscribe request (Bybit echoes it in the ack)
# The position lists of a futures snapshot: (category, ccxt fetch_positions params), one request each.
POSITION_LISTS = (("linear", {"settleCoin": "USDT"}), ("linear", {"settleCoin": "USDC"}),
                  ("inverse", {"subType": "inverse"}))
_POSITION_SIDES = {0: PositionSide.NET, 1: PositionSide.LONG, 2: PositionSide.SHORT}
_DIRECTIONS = {"Buy": Direction.LONG, "Sell": Direction.SHORT}
_EMPTY_SIDES = frozenset({"", "None"})
_LEG_DIRECTIONS = {PositionSide.LONG: Direction.LONG, PositionSide.SHORT: Direction.SHORT}
_ZERO = Decimal(0)
_USED = ("locked", "totalOrderIM", "totalPositionIM")  # what a coin's open orders and positions hold

AccountEvent = BalanceUpdate | PositionUpdate


def account_subscribe(market: Market, now_ms: int) -> list[dict]:
    """The handshake's subscribe request for the account topics, after the order topics' (one more ack:
    `{"success": true, "op": "subscribe"}`; a refusal names these topics apart from `order` / `execution`)."""
    return [{"req_id": f"{ACCOUNT_REQUEST}{now_ms}", "op": "subscribe", "args": list(ACCOUNT_CHANNELS[market])}]


async def fetch_snapshot(exchange: Any, market: Market, now_ms: int) -> list[AccountEvent]:
    """`AccountRules.fetch`: the account over REST through ccxt, read as the stream's rows are (`rest_snapshot`).
    Positions are asked once per list Bybit keeps: linear one settle coin a request (ccxt asks USDT's alone by
    default, so USDC perpetuals `BTCPERP` need their own), and inverse (as ccxt.pro's watch_positions snapshot does).
    A position left out would be taken as closed. Every event keeps the venue's own time, so `now_ms` is unused."""
    events = rest_snapshot(market, await exchange.fetch_balance(), [])
    if market is Market.FUTURE:
        for category, params in POSITION_LISTS:
            events += rest_positions(market, await exchange.fetch_positions(None, dict(params)), category)
    return events


def normalize_account(message: Any, market: Market) -> list[AccountEvent]:
    """The balance and position events of one decoded frame for `market`; any other frame gives []."""
    topic = message.get("topic") if isinstance(message, dict) else None
    if not isinstance(topic, str):
        return []
    kind = topic.partition(".")[0]
    if kind == "wallet":
        return list(_wallet_events(message, message.get("data"), message.get("creationTime"), market,
                                   Source.WEBSOCKET))
    if kind == "position":
        return list(_position_events(message, message.get("data"), market, Source.WEBSOCKET, "entryPrice"))
    return []


def rest_snapshot(market: Market, balance: dict, positions: list[dict], category: str = "linear") -> list[AccountEvent]:
    """Events of ccxt's `fetch_balance` / `fetch_positions` results, read from the venue's rows they keep in
    `info` exactly as the stream's rows are (ccxt's own parsing differs: a flat position's entry price and side
    are None, `realizedPnl` is curRealisedPnl). The balance is as of the response's `time`."""
    response = balance.get("info")
    if not isinstance(response, dict):
        raise NormalizeError("bybit wallet-balance answer is malformed: no info", raw=balance)
    result = response.get("result")
    accounts = result.get("list") if isinstance(result, dict) else None
    events: list[AccountEvent] = [*_wallet_events(response, accounts, response.get("time"), market, Source.REST)]
    return events + rest_positions(market, positions, category)


def rest_positions(market: Market, positions: list[dict], category: str = "linear") -> list[PositionUpdate]:
    """Events of one ccxt `fetch_positions` answer (one category's list: its rows do not name it); none on spot."""
    if market is not Market.FUTURE:
        return []
    rows = [{"category": category, **position["info"]} for position in positions]
    return _position_events({"topic": "position", "data": rows}, rows, market, Source.REST, "avgPrice")


# wallet -----------------------------------------------------------------------------------------------------------
def _wallet_events(message: dict, accounts: Any, time: Any, market: Market, source: Source) -> list[BalanceUpdate]:
    if not isinstance(accounts, list) or not all(isinstance(a, dict) and isinstance(a.get("coin"), list)
                                                 for a in accounts):
        raise NormalizeError("bybit wallet frame is malformed: data is not a list of accounts with coin lists",
                             raw=message)
    try:
        timestamp = _ms(time)
    except ValueError as exc:
        raise NormalizeError(f"bybit wallet frame is malformed: {exc}", raw=message) from None
    events: list[BalanceUpdate] = []
    rejected: list[tuple[dict, str]] = []
    for account in accounts:
        for coin in account["coin"]:
            try:
                events.append(_balance(coin, market, timestamp, source))
            except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
                alone = {**message, "data": [{**account, "coin": [coin]}]}
                rejected.append((alone, f"bybit wallet coin is malformed: {exc!r}"))
    if rejected:
        raise RowsRejected(events, rejected, raw=message)
    return events


def _balance(coin: dict, market: Market, timestamp: int, source: Source) -> BalanceUpdate:
    total = to_decimal(coin["walletBalance"])
    free = _optional_decimal(coin.get("availableToWithdraw"))
    if free is None:
        free = _optional_decimal(coin.get("free"))
    if free is None:
        used = sum((_optional_decimal(coin.get(name)) or _ZERO for name in _USED), _ZERO)
        free = total - used
    return BalanceUpdate(
        exchange=EXCHANGE, market=market, asset=_text(coin["coin"]), free=free, locked=total - free, total=total,
        timestamp=timestamp, source=source, raw=coin,
    )


# positions --------------------------------------------------------------------------------------------------------
def _position_events(message: dict, rows: Any, market: Market, source: Source, entry_key: str) -> list[PositionUpdate]:
    if not isinstance(rows, list):
        raise NormalizeError(f"bybit position frame is malformed: data is {type(rows).__name__}, not a list",
                             raw=message)
    if market is not Market.FUTURE:
        return []
    events: list[PositionUpdate] = []
    rejected: list[tuple[dict, str]] = []
    for row in rows:
        try:
            category = row["category"]
            if _MARKETS.get(category) is Market.FUTURE:
                events.append(_position(row, category, source, entry_key))
            elif category != "option":
                raise ValueError(f"unknown category {category!r}")
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            rejected.append(({**message, "data": [row]}, f"bybit position row is malformed: {exc!r}"))
    if rejected:
        raise RowsRejected(events, rejected, raw=message)
    return events


def _position(row: dict, category: str, source: Source, entry_key: str) -> PositionUpdate:
    raw = _text(row["symbol"])
    index = row["positionIdx"]
    if type(index) is not int or index not in _POSITION_SIDES:
        raise ValueError(f"positionIdx must be 0, 1 or 2, got {index!r}")
    position_side = _POSITION_SIDES[index]
    size = to_decimal(row["size"])
    if size < 0:
        raise ValueError(f"size must not be negative, got {size}")
    side = row["side"]
    if side not in _DIRECTIONS and side not in _EMPTY_SIDES:
        raise ValueError(f"unknown side {side!r}")
    if size == 0:
        direction = Direction.FLAT
    elif side in _EMPTY_SIDES:
        raise ValueError(f"a position of size {size} has no side")
    else:
        direction = _DIRECTIONS[side]
        if _LEG_DIRECTIONS.get(position_side, direction) is not direction:
            raise ValueError(f"positionIdx {index} is the other leg than side {side!r}")
    return PositionUpdate(
        exchange=EXCHANGE,
        market=Market.FUTURE,
        symbol=_symbol(raw, Market.FUTURE, category),
        symbol_raw=raw,
        position_side=position_side,
        direction=direction,
        size=size,
        contracts=size,
        entry_price=_optional_decimal(row.get(entry_key)),
        mark_price=_optional_decimal(row.get("markPrice")),
        unrealized_pnl=_optional_decimal(row.get("unrealisedPnl")),
        realized_pnl=_optional_decimal(row.get("cumRealisedPnl")),
        leverage=_optional_decimal(row.get("leverage")),
        liquidation_price=_optional_decimal(row.get("liqPrice")),
        margin_mode="isolated" if row.get("tradeMode") == 1 else None,
        timestamp=_ms(row["updatedTime"]),
        source=source,
        raw=row,
    )
