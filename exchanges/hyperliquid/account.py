"""Hyperliquid perp account state: the `clearinghouseState` push → a USDC BalanceUpdate and a PositionUpdate a coin.

Docs: https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/subscriptions
(`clearinghouseState`, data `ClearinghouseState`) and info-endpoint/perpetuals ("Retrieve user's perpetuals
account summary": the inner object and its sample). Of the account subscriptions the docs list:
- `clearinghouseState` `{"type": "clearinghouseState", "user": "0x…", "dex": ""}` pushes the perp account
  summary of one dex: margin summary, withdrawable, every open position. It is the object ccxt's
  fetch_balance / fetch_positions read over REST (`POST /info` `{"type": "clearinghouseState", "user": …}`),
  so a push and the snapshot on (re)connect say the same thing in the same words; ccxt.pro 4.5.90's
  watch_balance and watch_positions subscribe to it too. The chosen one.
- `webData2` (the frontend's aggregate: this state plus open orders, every coin's context, vaults…) is heavy
  and no longer in the docs' subscription list; `webData3` holds no clearinghouse state any more (user flags,
  vault equity, open-interest caps).
- `activeAssetData` (one coin: leverage, maxTradeSzs, availableToTrade) has no balance and no position size.

Annotated push (the docs' REST sample in the docs' `ClearinghouseState` envelope):

    {"channel": "clearinghouseState",
     "data": {"dex": "",                   # "" is the first perp dex: the one read here
              "user": "0x…",
              "clearinghouseState": {
                  "assetPositions": [{"type": "oneWay",      # one net position a coin
                                      "position": {"coin": "ETH",
                                                   "szi": "0.0335",      # signed size in the coin: + long
                                                   "entryPx": "2986.3",
                                                   "positionValue": "100.02765",  # |szi| × mark price
                                                   "unrealizedPnl": "-0.0134",
                                                   "leverage": {"type": "isolated", "value": 20,
                                                                "rawUsd": "-95.059824"},  # rawUsd: isolated only
                                                   "liquidationPx": "2866.26936529",  # null: none
                                                   "marginUsed": "4.967826", "maxLeverage": 50,
                                                   "returnOnEquity": "-0.0026789",
                                                   "cumFunding": {"allTime": "514.085417", …}}}],
                  "marginSummary": {"accountValue": "13109.482328", "totalMarginUsed": "4.967826",
                                    "totalNtlPos": "100.02765", "totalRawUsd": "13009.454678"},
                  "crossMarginSummary": {…the cross positions' part…},
                  "crossMaintenanceMarginUsed": "0.0",
                  "withdrawable": "13104.514502",
                  "time": 1708622398623}}}         # ms

USDC balance, as ccxt.pro's watch_balance reads it: total = marginSummary.accountValue, free = withdrawable,
locked = marginSummary.totalMarginUsed (in the docs' sample free + locked = total). Hyperliquid keeps no
wallet figure apart: accountValue already holds every position's unrealized PnL, so `total` does too.

Positions: size = |szi| (the venue counts the coin: contracts = size), direction from the sign, entryPx, the
mark price as positionValue / |szi| (the push has none of its own; ccxt derives it the same way),
unrealizedPnl, leverage.value, leverage.type as the margin mode, liquidationPx. No realized PnL is pushed.

Each push is the dex's whole state and lists open positions only: a coin it no longer lists is flat.
`normalize_account` keeps no memory, so it is given `held`, the positions the connection holds open
(`AccountRules.positions_in_full`): each one the push leaves out comes back flat at the push's time. A push of
another dex (HIP-3, which we do not subscribe) is not read: its collateral, the balance's coin and its
symbols' quote, is not known offline.

The REST snapshot on every (re)connect reads the same object: ccxt's fetch_balance keeps the clearinghouse
state as `info`, and `rest_snapshot` reads it with `clearinghouse_events`. ccxt's unified figures are not
ours: its free is accountValue − totalMarginUsed (not withdrawable), its positions carry no time, and its
numbers may be floats where the venue wrote an average entry's 28 digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from exchanges.hyperliquid.auth import wallet_address
from exchanges.hyperliquid.normalize import _MALFORMED, EXCHANGE, SETTLE, _int, _list, _market_symbol
from framework.account import BalanceUpdate, Direction, PositionUpdate
from framework.errors import NormalizeError
from framework.events import Market, Source, to_decimal

if TYPE_CHECKING:
    from framework.venue import Credentials

ACCOUNT_CHANNELS = ("clearinghouseState",)  # acked with one subscriptionResponse each, like the others
MAIN_DEX = ""
_MARGIN_MODES = frozenset({"cross", "isolated"})


def account_subscriptions(credentials: Credentials) -> list[dict]:
    """The subscribe frames of the account channels (by address, the first perp dex), sent by the private
    socket's handshake after the order ones. A malformed address is a ConfigError."""
    user = wallet_address(credentials.wallet_address)
    return [{"method": "subscribe", "subscription": {"type": channel, "user": user}} for channel in ACCOUNT_CHANNELS]


def normalize_account(message: Any, market: Market, *,
                      held: Iterable[PositionUpdate] = ()) -> list[BalanceUpdate | PositionUpdate]:
    """The USDC balance, then each open position, of a `clearinghouseState` push; `[]` for any other frame
    (and for another dex's push); NormalizeError when the push cannot be read.

    `held`: the positions the caller holds open on this connection (anything else in it is skipped); those the
    push no longer lists were closed, and come back flat at the push's time after the listed ones."""
    if type(message) is not dict or message.get("channel") not in ACCOUNT_CHANNELS:
        return []
    try:
        data = message["data"]
        dex = data["dex"]
        if type(dex) is not str:
            raise TypeError(f"dex must be a string, got {dex!r}")
        if dex != MAIN_DEX:
            return []
        events = clearinghouse_events(data["clearinghouseState"], raw=message)
    except _MALFORMED as exc:
        raise NormalizeError(f"malformed hyperliquid clearinghouseState push: {exc!r}", raw=message) from None
    return events + _closed(events, held, message)


async def rest_snapshot(exchange: Any, market: Market, now: int) -> list[BalanceUpdate | PositionUpdate]:
    """`AccountRules.fetch`: one ccxt fetch_balance, whose `info` is the clearinghouse state, read as a push is.
    The balance and the positions are then of one moment (fetch_positions would ask for the same object again).
    `enableUnifiedMargin: False` asks for that state at once: ccxt otherwise first asks userAbstraction and, for a
    unified account, reads the spot state instead. NormalizeError when the state cannot be read."""
    balance = await exchange.fetch_balance({"enableUnifiedMargin": False})
    state = balance.get("info")
    try:
        return clearinghouse_events(state, source=Source.REST)
    except _MALFORMED as exc:
        raise NormalizeError(f"malformed hyperliquid clearinghouseState answer: {exc!r}", raw=state) from None


def clearinghouse_events(state: dict, *, source: Source = Source.WEBSOCKET,
                         raw: Any = None) -> list[BalanceUpdate | PositionUpdate]:
    """The events of one clearinghouse state (the push's inner object, or the REST body ccxt keeps as `info`:
    a snapshot read this way says what the stream says). Raises KeyError/TypeError/ValueError if malformed."""
    raw = state if raw is None else raw
    timestamp = _int(state["time"])
    summary = state["marginSummary"]
    events: list[BalanceUpdate | PositionUpdate] = [BalanceUpdate(
        exchange=EXCHANGE,
        market=Market.FUTURE,
        asset=SETTLE,
        free=_amount(state["withdrawable"]),
        locked=_amount(summary["totalMarginUsed"]),
        total=_amount(summary["accountValue"]),
        timestamp=timestamp,
        source=source,
        raw=raw,
    )]
    for entry in _list(state["assetPositions"]):
        events.append(_position(entry, timestamp, source, raw))
    return events


def _position(entry: dict, timestamp: int, source: Source, raw: Any) -> PositionUpdate:
    if entry["type"] != "oneWay":
        raise ValueError(f"unknown position type {entry['type']!r}")
    position = entry["position"]
    coin = position["coin"]
    market, symbol = _market_symbol(coin, SETTLE)
    if market is not Market.FUTURE:
        raise ValueError(f"coin {coin!r} is not a perp")
    signed = _amount(position["szi"])
    size = abs(signed)
    leverage = position["leverage"]
    mode = leverage["type"]
    if mode not in _MARGIN_MODES:
        raise ValueError(f"unknown leverage type {mode!r}")
    value = _amount(position["positionValue"])
    return PositionUpdate(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        symbol_raw=coin,
        direction=Direction.LONG if signed > 0 else Direction.SHORT if signed < 0 else Direction.FLAT,
        size=size,
        contracts=size,
        entry_price=_optional_amount(position["entryPx"]),
        mark_price=value / size if size else None,
        unrealized_pnl=_amount(position["unrealizedPnl"]),
        leverage=to_decimal(leverage["value"]),  # a number in the docs, text in some of ccxt's samples
        liquidation_price=_optional_amount(position["liquidationPx"]),
        margin_mode=mode,
        timestamp=timestamp,
        source=source,
        raw=raw,
    )


def _closed(events: list[BalanceUpdate | PositionUpdate], held: Iterable[PositionUpdate],
            message: dict) -> list[PositionUpdate]:
    """Flat updates for the held positions a push no longer lists (its balance event carries the push's time)."""
    listed = {e.symbol for e in events if isinstance(e, PositionUpdate)}
    gone = [p for p in held if isinstance(p, PositionUpdate) and p.exchange == EXCHANGE and p.market is Market.FUTURE
            and p.direction is not Direction.FLAT and p.symbol not in listed]
    timestamp = events[0].timestamp
    return [PositionUpdate(exchange=EXCHANGE, market=Market.FUTURE, account=p.account, symbol=p.symbol,
                           symbol_raw=p.symbol_raw, direction=Direction.FLAT, size=0, contracts=0,
                           timestamp=timestamp, raw=message)
            for p in gone]


def _amount(value: Any) -> Decimal:
    """A figure as the venue writes it: decimal text (never a JSON number, which would arrive as a float)."""
    if type(value) is not str:
        raise TypeError(f"expected decimal text, got {value!r}")
    return to_decimal(value)


def _optional_amount(value: Any) -> Decimal | None:
    return None if value is None else _amount(value)
