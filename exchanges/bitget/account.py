"""Bitget v2 private account channels (`account`, `positions`) → BalanceUpdate / PositionUpdate, exact decimals.
Pure, but for `fetch_snapshot` (the REST read at every (re)connect).

Docs (Push Data / Push Parameters):
  spot     https://www.bitget.com/api-doc/spot/websocket/private/Account-Channel
  futures  https://www.bitget.com/api-doc/contract/websocket/private/Account-Channel
           https://www.bitget.com/api-doc/contract/websocket/private/Positions-Channel
REST snapshots (what ccxt 4.5.90 calls with `uta: False`, and `fetch_snapshot` through the same client;
`snapshot_balances` / `snapshot_positions` read the rows): spot `GET /api/v2/spot/account/assets`
(fetch_balance), futures `GET /api/v2/mix/account/accounts?productType=USDT-FUTURES` (fetch_balance) and
`GET /api/v2/mix/position/all-position?productType=USDT-FUTURES&marginCoin=USDT` (fetch_positions).

Subscribing: `{"instType": "SPOT" | "USDT-FUTURES", "channel": "account", "coin": "default"}` (the account channel
names its scope `coin`, not `instId`) and, on futures, `{"instType": "USDT-FUTURES", "channel": "positions",
"instId": "default"}`; both docs say "Only default is supported now". Each is acked once like `orders`.

Rows and what is read off them:
- spot `account`: {"coin", "available", "frozen" (held by open orders), "locked" (fiat-merchant and similar
  locks), "limitAvailable", "uTime"} → free = available, locked = frozen + locked, total = their sum; time uTime.
  A push after an order or fill carries the coins it changed; the first push after subscribing carries them all.
- futures `account`: {"marginCoin", "frozen", "available", "maxOpenPosAvailable", "maxTransferOut", "equity",
  "usdtEquity", "unrealizedPL", …}, no time of its own (the push's `ts` is used). `available` is the wallet
  balance without unrealized PnL, order freezes and position margin included: ccxt's captured push has
  available == equity with frozen 5.365815 and maxOpenPosAvailable = available − frozen; the docs' push has
  equity = available − 0.2 (the PnL) and maxOpenPosAvailable 549.71 under available with nothing frozen; the
  REST docs' sample has available −4500.10 = accountEquity −4767.74 − unrealizedPL −267.64. So total = available,
  free = maxOpenPosAvailable (what new positions may use), locked = the difference (margin in use, freezes).
  REST rows name the free part crossedMaxAvailable / isolatedMaxAvailable (by the account's marginMode).
- `positions`: {"posId", "instId" (REST: "symbol"), "marginCoin", "marginSize", "marginMode" crossed|isolated,
  "holdSide" long|short, "posMode" one_way_mode|hedge_mode, "total" (base coin: USDT-M counts no contracts),
  "openPriceAvg", "leverage" (a JSON number here, text over REST), "achievedProfits" (realized PnL),
  "unrealizedPL", "liquidationPrice", "markPrice", "cTime", "uTime"}. Every push is a snapshot of ALL open
  positions of the instType (action "snapshot", `data: []` when none): a closed position is not sent flat,
  it is left out (pybotters' captured pushes: the last row, then `data: []`). A stateless normalizer cannot
  see an absence, so `normalize_account` takes `held`, the positions the caller holds: those the push leaves
  out come back flat. One-way positions are NET; hedge-mode legs are LONG / SHORT.
- liquidationPrice ≤ 0 → None: Bitget writes a negative one when the position cannot be liquidated (captured
  one-way long "-5.882918946895"), as ccxt drops it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

from exchanges.bitget.normalize import _ms, _text
from exchanges.symbols import unify
from framework.account import AccountEvent, BalanceUpdate, Direction, PositionSide, PositionUpdate
from framework.errors import NormalizeError
from framework.events import Market, Source, to_decimal

EXCHANGE = "bitget"
INST_TYPE = {Market.SPOT: "SPOT", Market.FUTURE: "USDT-FUTURES"}
# The account channels each market's private connection subscribes to, besides `orders` and `fill`.
ACCOUNT_CHANNELS = {Market.SPOT: ("account",), Market.FUTURE: ("account", "positions")}

_ZERO = Decimal(0)
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # differences without rounding
_MALFORMED = (KeyError, IndexError, TypeError, ValueError, InvalidOperation, AttributeError)
_MARGIN_MODE = {"crossed": "cross", "isolated": "isolated"}
_HOLD_SIDE = {"long": Direction.LONG, "short": Direction.SHORT}


def account_subscribe(market: Market) -> dict:
    """The subscribe op the private handshake sends after the `orders` / `fill` one, for the account channels
    (one ack per arg: `stream.acks_expected` counts them)."""
    inst_type = INST_TYPE[market]
    args: list[dict] = [{"instType": inst_type, "channel": "account", "coin": "default"}]
    if "positions" in ACCOUNT_CHANNELS[market]:
        args.append({"instType": inst_type, "channel": "positions", "instId": "default"})
    return {"op": "subscribe", "args": args}


def normalize_account(message: Any, market: Market, *, held: Iterable[PositionUpdate] = ()) -> list[AccountEvent]:
    """Events of one decoded frame of the `account` / `positions` channels; `[]` for anything else (acks,
    errors, other channels, another product's pushes).

    `held`: the positions the caller holds on this connection (its latest PositionUpdates; anything else in it
    is skipped); a `positions` push that leaves one of them out closed it, and it comes back flat at the push's
    `ts`."""
    if not isinstance(message, dict) or "event" in message:
        return []
    arg = message.get("arg")
    if not isinstance(arg, dict):
        return []
    channel = arg.get("channel")
    if channel != "account" and channel != "positions":  # compared, not hashed: a junk channel may be a list
        return []
    if arg.get("instType") != INST_TYPE[market] or (channel == "positions" and market is Market.SPOT):
        return []
    try:
        rows = message["data"]
        if not isinstance(rows, list):
            raise TypeError(f"data must be a list, got {type(rows).__name__}")
        if channel == "account":
            return [_balance(row, market, message, Source.WEBSOCKET) for row in rows]
        events = [_position(row, market, lambda: _ms(message["ts"]), Source.WEBSOCKET) for row in rows]
        return events + _closed(events, held, market, message)
    except _MALFORMED as exc:
        raise NormalizeError(f"bitget {channel} push: {type(exc).__name__}: {exc}", raw=message) from exc


def snapshot_balances(rows: Any, market: Market, timestamp: int) -> list[BalanceUpdate]:
    """The REST balance snapshot: the `data` rows of the spot assets / futures accounts endpoint (ccxt's
    `fetch_balance()["info"]`), read as the stream reads its rows; `timestamp` is when it was taken
    (futures rows carry no time; spot rows their uTime)."""
    try:
        return [_balance(row, market, {"ts": timestamp}, Source.REST) for row in _rows(rows)]
    except _MALFORMED as exc:
        raise NormalizeError(f"bitget balance snapshot: {type(exc).__name__}: {exc}", raw=rows) from exc


def snapshot_positions(rows: Any, market: Market, timestamp: int) -> list[PositionUpdate]:
    """The REST position snapshot: the all-position rows (each ccxt position's `info`); a row's time is its
    uTime (else cTime, else `timestamp`). Positions the snapshot leaves out are closed, as on the stream."""
    try:
        return [_position(row, market, lambda: timestamp, Source.REST) for row in _rows(rows)]
    except _MALFORMED as exc:
        raise NormalizeError(f"bitget position snapshot: {type(exc).__name__}: {exc}", raw=rows) from exc


async def fetch_snapshot(exchange: Any, market: Market, now: int) -> list[AccountEvent]:
    """`AccountRules.fetch`: the REST snapshot through the ccxt client's endpoint calls, the ones its fetch_balance
    / fetch_positions make (spot assets with `assetType=all`, not only the coins held: a coin sold to zero while
    the socket was down comes back at zero; USDT-M accounts and all-position), read from Bitget's rows.

    Not through fetch_balance itself: its answer keeps the rows (`info`) but not the response's `requestTime`,
    Bitget's time of the read. Futures account rows have no time of their own, and stamped with the answer's
    arrival instead, a wallet read before a fill but answered after its push would be newer than that push and
    undo it until the next change. `now` stands in if an answer has no requestTime."""
    if market is Market.SPOT:
        assets = await exchange.privateSpotGetV2SpotAccountAssets({"assetType": "all"})
        return snapshot_balances(_data(assets), market, _read_at(assets, now))
    product = {"productType": INST_TYPE[market]}
    accounts = await exchange.privateMixGetV2MixAccountAccounts(product)
    positions = await exchange.privateMixGetV2MixPositionAllPosition({**product, "marginCoin": "USDT"})
    return [*snapshot_balances(_data(accounts), market, _read_at(accounts, now)),
            *snapshot_positions(_data(positions), market, _read_at(positions, now))]


def _data(answer: Any) -> Any:
    if not isinstance(answer, dict):
        raise NormalizeError(f"bitget account snapshot: an answer that is no object: {answer!r:.200}", raw=answer)
    return answer.get("data")


def _read_at(answer: dict, now: int) -> int:
    stamp = answer.get("requestTime")
    try:
        return now if stamp is None else _ms(stamp)
    except (TypeError, ValueError) as exc:
        raise NormalizeError(f"bitget account snapshot: requestTime: {exc}", raw=answer) from exc


def _rows(rows: Any) -> list:
    if not isinstance(rows, list):
        raise TypeError(f"rows must be a list, got {type(rows).__name__}")
    return rows


def _balance(row: dict, market: Market, message: dict, source: Source) -> BalanceUpdate:
    if market is Market.SPOT:
        free = to_decimal(row["available"])
        locked = _EXACT.add(to_decimal(row["frozen"]), _decimal(row, "locked"))
        total = _EXACT.add(free, locked)
        asset = _text(row, "coin")
        timestamp = _ms(row["uTime"]) if row.get("uTime") not in (None, "") else _ms(message["ts"])
    else:
        total = to_decimal(row["available"])
        if "maxOpenPosAvailable" in row:  # the push
            free = to_decimal(row["maxOpenPosAvailable"])
        else:  # the REST accounts row
            isolated = row.get("marginMode") == "isolated"
            free = to_decimal(row["isolatedMaxAvailable" if isolated else "crossedMaxAvailable"])
        locked = _EXACT.subtract(total, free)
        asset = _text(row, "marginCoin")
        timestamp = _ms(message["ts"])
    return BalanceUpdate(exchange=EXCHANGE, market=market, asset=asset, free=free, locked=locked, total=total,
                         timestamp=timestamp, source=source, raw=row)


def _position(row: dict, market: Market, fallback_ms, source: Source) -> PositionUpdate:
    raw_symbol = _text(row, "instId" if "instId" in row else "symbol")
    hold_side = row["holdSide"]
    direction = _HOLD_SIDE.get(hold_side)
    if direction is None:
        raise ValueError(f"unknown holdSide {hold_side!r}")
    pos_mode = row.get("posMode")
    if pos_mode not in (None, "one_way_mode", "hedge_mode"):
        raise ValueError(f"unknown posMode {pos_mode!r}")
    margin_mode = row.get("marginMode")
    if margin_mode not in (None, *_MARGIN_MODE):
        raise ValueError(f"unknown marginMode {margin_mode!r}")
    size = to_decimal(row["total"])
    if size < 0:
        raise ValueError(f"total {size} is negative (holdSide gives the direction)")
    liquidation = _optional(row, "liquidationPrice")
    stamp = next((row[k] for k in ("uTime", "cTime") if row.get(k) not in (None, "")), None)
    return PositionUpdate(
        exchange=EXCHANGE,
        market=market,
        symbol=unify(EXCHANGE, market, raw_symbol),
        symbol_raw=raw_symbol,
        position_side=PositionSide(hold_side) if pos_mode == "hedge_mode" else PositionSide.NET,
        direction=direction if size else Direction.FLAT,
        size=size,
        contracts=size,  # USDT-M sizes are base coin
        entry_price=to_decimal(row["openPriceAvg"]),
        mark_price=_optional(row, "markPrice"),
        unrealized_pnl=_optional(row, "unrealizedPL"),
        realized_pnl=_optional(row, "achievedProfits"),
        leverage=_optional(row, "leverage"),
        liquidation_price=liquidation if liquidation is not None and liquidation > 0 else None,
        margin_mode=_MARGIN_MODE.get(margin_mode),
        timestamp=_ms(stamp) if stamp is not None else fallback_ms(),
        source=source,
        raw=row,
    )


def _closed(listed: list[PositionUpdate], held: Iterable[PositionUpdate], market: Market,
            message: dict) -> list[PositionUpdate]:
    """Flat updates for the held positions a `positions` snapshot no longer lists."""
    present = {(p.symbol, p.position_side) for p in listed}
    gone = [p for p in held if isinstance(p, PositionUpdate) and p.exchange == EXCHANGE and p.market is market
            and p.direction is not Direction.FLAT and (p.symbol, p.position_side) not in present]
    if not gone:
        return []
    timestamp = _ms(message["ts"])
    return [PositionUpdate(exchange=EXCHANGE, market=market, account=p.account, symbol=p.symbol,
                           symbol_raw=p.symbol_raw, position_side=p.position_side, direction=Direction.FLAT,
                           size=_ZERO, contracts=_ZERO, timestamp=timestamp, raw=message)
            for p in gone]


def _decimal(row: dict, key: str) -> Decimal:
    """An amount the row may leave out (0 then)."""
    value = row.get(key)
    return _ZERO if value is None or value == "" else to_decimal(value)


def _optional(row: dict, key: str) -> Decimal | None:
    value = row.get(key)
    return None if value is None or value == "" else to_decimal(value)
