"""Gate account channels → `BalanceUpdate` / `PositionUpdate` (pure), the signed subscribes they need, and the
REST snapshot read back from ccxt's answers (`snapshot`).

Docs: spot https://www.gate.io/docs/developers/apiv4/ws/en/#spot-balance-channel; futures
https://www.gate.io/docs/developers/futures/ws/en/#balances-api and #positions-api.
Frames are `{"channel", "event": "update", "result": [row, ...]}`, one event per row; any other frame gives `[]`.

spot.balances row (strings; every figure absolute)::

    {"timestamp": "1667556323", "timestamp_ms": "1667556323730",   timestamp (ms)
     "user": "1000001", "currency": "USDT",                         asset
     "change": "0",                                                 how `total` moved (not kept: figures are absolute)
     "total": "222244.3827652", "available": "222244.3827",         total, free
     "freeze": "5", "freeze_change": "5.000000",                    locked (older pushes lack it: None)
     "change_type": "order-create"}                                 reason: order-create, order-match, order-update, ...

futures.balances row (JSON numbers, decoded as Decimal by the connection)::

    {"balance": 9.998739899488,     total: the wallet after the change, without unrealized PnL (REST `total`)
     "change": -0.000002074115, "text": "BTC_USDT:3914424",
     "time": 1547199246, "time_ms": 1547199246123,   timestamp
     "type": "fee",                                  reason: fee, pnl, fund, dnw, refr, ...
     "user": "211xxx", "currency": "btc"}            asset (upper-cased); absent in older pushes: the settle coin

Only the wallet balance: Gate's futures push says nothing of what is available or in use, so `free` and `locked`
are None (the REST snapshot, `GET /futures/usdt/accounts` `available`, has them).

futures.positions row::

    {"contract": "BTC_USDT", "size": "3",            signed contracts (decimal text under X-Gate-Size-Decimal: 1)
     "mode": "single",                               single → net; dual_long / dual_short → the hedge leg
     "entry_price": 40000.36666661111, "liq_price": 0.1,   0 where none applies → None (liq_price is deprecated)
     "leverage": 0, "cross_leverage_limit": 0,      leverage 0 = cross margin at cross_leverage_limit (0: none said);
                                                     a positive leverage = isolated
     "realised_pnl": -1.25e-8, "margin": 49.99, "time_ms": 1628736848321, "update_id": 170919, ...}

Sizes are base units: contracts × the contract size normalize uses (`exchanges.symbols.contract_size`, else its
`FALLBACK_CONTRACT_SIZES`, else 1); `contracts` keeps Gate's count. The push has no mark price or unrealized PnL
(None unless a row carries `mark_price` / `unrealised_pnl`, as REST rows do). Symbols are unified with settle USDT
(the USDT-settled socket), as normalize does.

REST snapshot (`AccountRules.snapshot`): balances are ccxt's unified figures (spot `GET /spot/accounts` available /
locked, futures `GET /futures/usdt/accounts` total / available: ours too); positions are each ccxt position's
`info` row (`GET /futures/usdt/positions`, the stream's fields and `mark_price` / `unrealised_pnl`) read as the
stream's rows are, because ccxt's unified position is not ours: its timestamp is `open_time` (when the position was
first opened, in whole seconds), so the snapshot would lose to every stream state since; its leverage is Gate's 0
for cross margin (no leverage at all); a flat position's entry is "0". A snapshot is stamped with the time of the
answer.
"""

from __future__ import annotations

from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import TYPE_CHECKING, Any, Callable

from exchanges.gate.auth import channel_auth, seconds
from exchanges.gate.normalize import EXCHANGE, FALLBACK_CONTRACT_SIZES, SETTLE
from exchanges.symbols import contract_size, unify
from framework.account import AccountEvent, BalanceUpdate, Direction, PositionSide, PositionUpdate
from framework.errors import ConfigError, NormalizeError
from framework.events import Market, Source, to_decimal

if TYPE_CHECKING:
    from framework.venue import Credentials

# The account channels a private connection subscribes to, per market (besides orders and fills).
ACCOUNT_CHANNELS = {
    Market.SPOT: ("spot.balances",),
    Market.FUTURE: ("futures.balances", "futures.positions"),
}
_ALL = "!all"
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # contracts × contract size never rounds
_ONE = Decimal(1)
_SIDES = {"single": PositionSide.NET, "dual_long": PositionSide.LONG, "dual_short": PositionSide.SHORT}


def account_subscriptions(credentials: Credentials, market: Market, now_ms: int,
                          listen_key: str | None = None) -> list[dict]:
    """The signed subscribes for `ACCOUNT_CHANNELS[market]`, which the handshake sends after orders and fills.

    spot.balances takes no payload (docs: "No payload is required"); futures.balances takes the user id alone
    and futures.positions the user id then `!all`, the id `GateStream.open_listen_key` fetched (`listen_key`).
    """
    if market is Market.FUTURE and not listen_key:
        raise ConfigError("gate futures account channels need the account's user id: pass it as listen_key")
    time_s = seconds(now_ms)
    payloads = {"spot.balances": None, "futures.balances": [listen_key], "futures.positions": [listen_key, _ALL]}
    frames = []
    for number, channel in enumerate(ACCOUNT_CHANNELS[market], start=1):
        # ids past the handshake's (now_ms + 1, + 2): acks of both kinds can be told apart on one socket
        frame: dict[str, Any] = {"time": time_s, "id": now_ms + 100 + number, "channel": channel,
                                 "event": "subscribe"}
        if payloads[channel] is not None:
            frame["payload"] = payloads[channel]
        frame["auth"] = channel_auth(credentials.api_key, credentials.secret, channel, "subscribe", time_s)
        frames.append(frame)
    return frames


def _text(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    raise TypeError(f"expected text, got {value!r}")


def _ms(value: Any) -> int:
    return int(to_decimal(value))


def _optional(value: Any) -> Decimal | None:
    return None if value is None or value == "" else to_decimal(value)


def _nonzero(value: Any) -> Decimal | None:
    """A figure Gate writes as 0 where none applies (a flat position's entry, no liquidation price, no cross
    leverage limit)."""
    figure = _optional(value)
    return figure if figure else None


def _spot_balance(row: dict) -> BalanceUpdate:
    return BalanceUpdate(
        exchange=EXCHANGE,
        market=Market.SPOT,
        asset=_text(row["currency"]),
        free=to_decimal(row["available"]),
        locked=_optional(row.get("freeze")),
        total=to_decimal(row["total"]),
        reason=row.get("change_type"),
        timestamp=_ms(row["timestamp_ms"]),
        raw=row,
    )


def _futures_balance(row: dict) -> BalanceUpdate:
    currency = row.get("currency")
    return BalanceUpdate(
        exchange=EXCHANGE,
        market=Market.FUTURE,
        asset=SETTLE if currency is None else _text(currency),
        total=to_decimal(row["balance"]),
        reason=row.get("type"),
        timestamp=_ms(row["time_ms"]),
        raw=row,
    )


def _position(row: dict, timestamp: int | None = None) -> PositionUpdate:
    """A position row of the stream (its `time_ms`) or of REST (stamped with `timestamp`: its rows say only when the
    position was opened and last updated, in whole seconds)."""
    raw = _text(row["contract"])
    signed = to_decimal(row["size"])
    contracts = signed.copy_abs()
    multiplier = contract_size(EXCHANGE, raw) or FALLBACK_CONTRACT_SIZES.get(raw, _ONE)
    leverage = to_decimal(row["leverage"])
    cross = not leverage
    mode = row.get("mode")
    return PositionUpdate(
        exchange=EXCHANGE,
        market=Market.FUTURE,
        symbol=unify(EXCHANGE, Market.FUTURE, raw, settle=SETTLE),
        symbol_raw=raw,
        position_side=PositionSide.NET if mode is None else _SIDES[mode],
        direction=Direction.LONG if signed > 0 else Direction.SHORT if signed < 0 else Direction.FLAT,
        size=_EXACT.multiply(contracts, multiplier),
        contracts=contracts,
        entry_price=_nonzero(row.get("entry_price")),
        mark_price=_nonzero(row.get("mark_price")),
        unrealized_pnl=_optional(row.get("unrealised_pnl")),
        realized_pnl=_optional(row.get("realised_pnl")),
        leverage=(_nonzero(row.get("cross_leverage_limit")) if cross else leverage),
        liquidation_price=_nonzero(row.get("liq_price")),
        margin_mode="cross" if cross else "isolated",
        timestamp=_ms(row["time_ms"]) if timestamp is None else timestamp,
        source=Source.WEBSOCKET if timestamp is None else Source.REST,
        raw=row,
    )


_PARSERS: dict[str, Callable[[dict], AccountEvent]] = {
    "spot.balances": _spot_balance,
    "futures.balances": _futures_balance,
    "futures.positions": _position,
}


def normalize_account(message: Any, market: Market) -> list[AccountEvent]:
    """The balance / position events of one decoded frame; a malformed account frame raises NormalizeError."""
    if not isinstance(message, dict) or message.get("event") != "update":
        return []
    channel = message.get("channel")
    parse = _PARSERS.get(channel) if isinstance(channel, str) else None
    if parse is None:
        return []
    try:
        rows = message["result"]
        if not isinstance(rows, list):
            raise TypeError(f"result is {type(rows).__name__}, not a list")
        return [parse(row) for row in rows]
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise NormalizeError(f"gate {channel} event is malformed ({problem})", raw=message) from None


def snapshot(market: Market, balance: dict, positions: list, timestamp: int) -> list[AccountEvent]:
    """ccxt's fetch_balance / fetch_positions answers → REST-sourced events stamped `timestamp` (see the module's
    docstring: balances from ccxt's unified figures, positions from Gate's rows); a malformed row raises
    NormalizeError."""
    totals, free, used = balance.get("total") or {}, balance.get("free") or {}, balance.get("used") or {}
    events: list[AccountEvent] = [
        BalanceUpdate(exchange=EXCHANGE, market=market, asset=asset, free=free.get(asset), locked=used.get(asset),
                      total=totals[asset], timestamp=timestamp, source=Source.REST)
        for asset in sorted(totals)
    ]
    try:
        events += [_position(position["info"], timestamp) for position in positions]
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise NormalizeError(f"gate position snapshot is malformed ({problem})",
                             raw=[p.get("info") if isinstance(p, dict) else p for p in positions]) from None
    return events
