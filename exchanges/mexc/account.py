"""MEXC account state → BalanceUpdate / PositionUpdate: spot `spot@private.account.v3.api.pb` (protobuf; legacy JSON
`spot@private.account.v3.api`), contract `push.personal.asset` and `push.personal.position` (JSON numbers), and
the REST snapshot ccxt's `fetch_balance` / `fetch_positions` fetch (spot `GET /api/v3/account`, contract
`GET /api/v1/private/account/assets` and `GET /api/v1/private/position/open_positions`).

Spot "Spot Account Update" (https://www.mexc.com/api-docs/spot-v3/websocket-user-data-streams), one asset a push,
shown decoded (the body is `privateAccount`, field 307 of the wrapper; see proto.py):

    {channel: "spot@private.account.v3.api.pb", createTime: 1736417034305, sendTime: 1736417034307,
     privateAccount {vcoinName: "USDT", coinId: "128f…", balanceAmount: "21.94210356004384",  # available
                     balanceAmountChange: "10", frozenAmount: "0", frozenAmountChange: "0",
                     type: "CONTRACT_TRANSFER",  # why: ENTRUST_PLACE, ENTRUST, TRADE_FEE, DEPOSIT, …
                     time: 1736416910000}}       # settlement time, ms
    legacy: {"c": "spot@private.account.v3.api", "d": {"a": asset, "c": change ms, "f": free, "fd": its change,
             "l": frozen, "ld": its change, "o": type}, "t": event ms}

free = balanceAmount, locked = frozenAmount, total = their sum (the spot REST answer's free / locked, as ccxt
reads both); `reason` = the change type; timestamp = `time` (ccxt's choice), else the push's createTime /
sendTime. The `…Change` fields are not kept: the absolute figures say it all.

Contract (https://www.mexc.com/api-docs/futures/websocket-api, Private channels "Asset" and "Position"):

    {"channel": "push.personal.asset", "data": {"currency": "USDT", "availableBalance": 0.7514236,
     "frozenBalance": 0, "positionMargin": 0, "cashBalance": …, "bonus": 0}, "ts": 1610005070083}
    {"channel": "push.personal.position", "data": {"positionId": 1397818, "symbol": "CRV_USDT",
     "holdVol": 0,                       # contracts
     "positionType": 1,                  # 1 long, 2 short
     "openType": 1,                      # 1 isolated, 2 cross
     "state": 3,                         # 1 holding, 2 system holding, 3 closed
     "openAvgPrice": 0.736, "openAvgPriceFullyScale": "…",  # the full-precision text (2025 docs)
     "liquidatePrice": 0, "realised": -0.0005, "leverage": 15, "pnl": …, "updateTime": …, …}, "ts": …}

Futures balance: free = availableBalance, locked = frozenBalance (orders) + positionMargin, total = their sum,
the wallet without unrealized PnL; `bonus` (trial funds) is left out. ccxt reads free and used = frozenBalance
only, so its `used` / `total` leave out the position margin: the snapshot here reads MEXC's answer, not
ccxt's totals. Timestamp: the push's `ts` (the data has no time of its own).

Positions: size = holdVol × the contract size (`exchanges.symbols.contract_size`, as normalize.py converts;
BTC_USDT 0.0001), `contracts` = holdVol; direction from positionType, flat when holdVol is 0 or state 3 (a
closed record keeps its old averages: a flat position gets no entry or liquidation price); entry price =
openAvgPriceFullyScale, else openAvgPrice (ccxt's entryPrice); liquidatePrice 0 = none; realized = `realised`;
unrealized = `pnl` (UNVERIFIED: the 2025 position sample carries `pnl` next to `realised` and the table's
description of it was not readable; the 2021 docs have no unrealized figure, and neither gives a mark price).
Timestamp: `updateTime` when the record has one, else the push's `ts`.

MEXC's records say nothing of the account's position mode (push.personal.position.mode says it): by default a
record is the symbol's one-way (net) position; `hedge_mode=True` makes it the long or short leg its
positionType names. In one-way mode a flip closes the old position (a flat record of its type) and opens one
of the other type: the last record read is the position.
"""

from __future__ import annotations

import json
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

from google.protobuf.message import DecodeError

from exchanges.mexc.normalize import EXCHANGE
from exchanges.mexc.proto import AccountPushDataV3ApiWrapper
from exchanges.symbols import contract_size, unify
from framework.account import AccountEvent, BalanceUpdate, Direction, PositionSide, PositionUpdate
from framework.errors import NormalizeError
from framework.events import Market, Source, to_decimal

SPOT_ACCOUNT = "spot@private.account.v3.api.pb"
SPOT_ACCOUNT_JSON = "spot@private.account.v3.api"  # legacy JSON (docs to 2024-12)
ASSET, POSITION = "push.personal.asset", "push.personal.position"
ACCOUNT_CHANNELS = {Market.SPOT: (SPOT_ACCOUNT,), Market.FUTURE: (ASSET, POSITION)}
ACCOUNT_FILTERS = ("asset", "position")  # the contract personal.filter names of ASSET and POSITION

_EXACT = Context(prec=1000, Emax=MAX_EMAX, Emin=MIN_EMIN)  # contracts × size never rounds
_ZERO = Decimal(0)
_DIRECTIONS = {1: Direction.LONG, 2: Direction.SHORT}
_LEGS = {1: PositionSide.LONG, 2: PositionSide.SHORT}
_MARGIN_MODES = {1: "isolated", 2: "cross"}
_CLOSED = 3
_MALFORMED = (KeyError, TypeError, ValueError, InvalidOperation, AttributeError, DecodeError)


def account_subscriptions(market: Market) -> list[dict]:
    """The frames that add the account channels to a socket subscribed to orders and fills only (the live
    handshake, stream.py, names them in its own subscription and filter instead).

    Spot: a SUBSCRIPTION of the account channel on the listenKey socket (acked like the orders/deals one).
    Contract: a login pushes every private channel unless a `personal.filter` narrows it, and a later filter
    replaces the earlier one: this one names orders and fills again with asset and position.
    """
    if market is Market.SPOT:
        return [{"method": "SUBSCRIPTION", "params": [SPOT_ACCOUNT]}]
    filters = [{"filter": name} for name in ("order", "order.deal", *ACCOUNT_FILTERS)]
    return [{"method": "personal.filter", "param": {"filters": filters}}]


def normalize_account(message: Any, market: Market, *, hedge_mode: bool = False) -> list[AccountEvent]:
    """The balances and positions in one frame (`bytes` for a spot protobuf push); [] for any other frame."""
    try:
        if isinstance(message, (bytes, bytearray, memoryview)):
            return _spot_protobuf(bytes(message))
        if isinstance(message, dict):
            channel = message.get("channel")
            if channel == ASSET:
                return [_future_balance(message["data"], _ms(message["ts"]), message, Source.WEBSOCKET)]
            if channel == POSITION:
                data = message["data"]
                stamp = _ms(data["updateTime"] if data.get("updateTime") is not None else message["ts"])
                return [_position(data, stamp, hedge_mode, message, Source.WEBSOCKET)]
            if message.get("c") == SPOT_ACCOUNT_JSON:
                return [_spot_json(message)]
        return []
    except _MALFORMED as exc:
        raise NormalizeError(f"mexc: malformed account push ({type(exc).__name__}: {exc})", raw=message) from None


def balances_from_rest(answer: Any, market: Market, timestamp: int) -> list[BalanceUpdate]:
    """Every balance in MEXC's REST answer (spot `GET /api/v3/account`, contract `GET …/account/assets`),
    stamped `timestamp` (when the snapshot was taken: neither answer says when it was true)."""
    try:
        if market is Market.SPOT:
            return [
                _balance(Market.SPOT, _text_id(row["asset"]), row["free"], row["locked"], None, timestamp, answer,
                         Source.REST)
                for row in answer["balances"]
            ]  # fmt: skip
        return [_future_balance(row, timestamp, answer, Source.REST) for row in _contract_data(answer)]
    except _MALFORMED as exc:
        raise NormalizeError(f"mexc: malformed balance answer ({type(exc).__name__}: {exc})", raw=answer) from None


def positions_from_rest(answer: Any, hedge_mode: bool = False) -> list[PositionUpdate]:
    """Every open position in a contract `GET …/position/open_positions` answer (each row as the push's data)."""
    try:
        rows = _contract_data(answer)
        return [_position(row, _ms(row["updateTime"]), hedge_mode, answer, Source.REST) for row in rows]
    except _MALFORMED as exc:
        raise NormalizeError(f"mexc: malformed position answer ({type(exc).__name__}: {exc})", raw=answer) from None


async def fetch_snapshot(exchange: Any, market: Market, now: int, hedge_mode: bool = False) -> list[AccountEvent]:
    """The account as ccxt fetches it (`fetch_balance`, then `fetch_positions` on contracts), read from MEXC's
    answers with exact numbers: ccxt keeps contract JSON numbers as floats and its swap totals lack the position
    margin. Each answer is re-read from `exchange.last_http_response`; where that is another call's answer (the
    backfill shares the client), ccxt's copy is read instead.
    """
    balance = await exchange.fetch_balance()
    events: list[AccountEvent] = list(balances_from_rest(_answer(exchange, balance["info"]), market, now))
    if market is not Market.SPOT:
        positions = await exchange.fetch_positions()
        rows = [position["info"] for position in positions]
        events += positions_from_rest(_answer(exchange, {"success": True, "code": 0, "data": rows}), hedge_mode)
    return events


# frames ---------------------------------------------------------------------------------------------------------------
def _spot_protobuf(frame: bytes) -> list[AccountEvent]:
    push = AccountPushDataV3ApiWrapper.FromString(frame)
    if push.WhichOneof("body") != "privateAccount":
        if push.channel == SPOT_ACCOUNT:
            raise ValueError("an account push without its privateAccount body")
        return []  # orders, deals, market data: not account state
    body = push.privateAccount
    stamp = _ms(body.time or push.createTime or push.sendTime)
    return [_balance(Market.SPOT, _text_id(body.vcoinName), body.balanceAmount, body.frozenAmount, body.type,
                     stamp, frame, Source.WEBSOCKET)]


def _spot_json(message: dict) -> BalanceUpdate:
    data = message["d"]
    stamp = _ms(data["c"] if data.get("c") is not None else message["t"])
    return _balance(Market.SPOT, _text_id(data["a"]), data["f"], data["l"], data.get("o"), stamp, message,
                    Source.WEBSOCKET)


def _future_balance(data: dict, stamp: int, raw: Any, source: Source) -> BalanceUpdate:
    locked = _number(data["frozenBalance"]) + _number(data["positionMargin"])
    return _balance(Market.FUTURE, _text_id(data["currency"]), data["availableBalance"], locked, None, stamp, raw,
                    source)


def _balance(market: Market, asset: str, free: Any, locked: Any, reason: Any, stamp: int, raw: Any,
             source: Source) -> BalanceUpdate:
    free, locked = _number(free), _number(locked)
    return BalanceUpdate(exchange=EXCHANGE, market=market, asset=asset, free=free, locked=locked,
                         total=_EXACT.add(free, locked), reason=reason, timestamp=stamp, source=source, raw=raw)


def _position(data: dict, stamp: int, hedge_mode: bool, raw: Any, source: Source) -> PositionUpdate:
    symbol_raw = _text_id(data["symbol"])
    kind = data["positionType"]
    if kind not in _DIRECTIONS or isinstance(kind, bool):
        raise ValueError(f"unknown positionType {kind!r}")
    contracts = _number(data["holdVol"])
    if contracts < 0:
        raise ValueError(f"negative holdVol {contracts}")
    flat = not contracts or data.get("state") == _CLOSED
    open_type = data.get("openType")
    if open_type is not None and open_type not in _MARGIN_MODES:
        raise ValueError(f"unknown openType {open_type!r}")
    entry = data.get("openAvgPriceFullyScale") or data["openAvgPrice"]
    liquidation = _optional(data.get("liquidatePrice"))
    return PositionUpdate(
        exchange=EXCHANGE,
        market=Market.FUTURE,
        symbol=unify(EXCHANGE, Market.FUTURE, symbol_raw),
        symbol_raw=symbol_raw,
        position_side=_LEGS[kind] if hedge_mode else PositionSide.NET,
        direction=Direction.FLAT if flat else _DIRECTIONS[kind],
        size=_ZERO if flat else _EXACT.multiply(contracts, contract_size(EXCHANGE, symbol_raw) or Decimal(1)),
        contracts=_ZERO if flat else contracts,
        entry_price=None if flat else _number(entry),
        unrealized_pnl=_optional(data.get("pnl")),
        realized_pnl=_optional(data.get("realised")),
        leverage=_optional(data.get("leverage")),
        liquidation_price=None if flat or not liquidation else liquidation,
        margin_mode=_MARGIN_MODES.get(open_type),
        timestamp=stamp,
        source=source,
        raw=raw,
    )


# values ---------------------------------------------------------------------------------------------------------------
def _number(value: Any) -> Decimal:
    """The wire's number: text, an int, or a JSON number the connection read as a Decimal (never a float)."""
    if value is None or value == "":
        raise ValueError("a missing number")
    return to_decimal(value)


def _optional(value: Any) -> Decimal | None:
    return None if value is None or value == "" else to_decimal(value)


def _text_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"bad name {value!r}")
    return value


def _ms(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not int(value):
        raise ValueError(f"bad timestamp {value!r}")
    return int(value)


def _contract_data(answer: Any) -> list[dict]:
    if answer.get("success") is False:
        raise ValueError(f"refused: {answer.get('code')} {answer.get('message')}")
    rows = answer["data"]
    if not isinstance(rows, list):
        raise TypeError("data is not a list")
    return rows


def _answer(exchange: Any, fallback: dict) -> dict:
    """MEXC's last answer to `exchange`, numbers as their exact text; ccxt's copy (floats as their shortest
    text) when the last answer is not it: its rows must be ccxt's, as many, with the same fields and texts (the
    client is shared with the backfill, whose trade pages must never be read as balances)."""
    text = getattr(exchange, "last_http_response", None)
    try:
        exact = json.loads(text, parse_float=Decimal) if isinstance(text, str) else None
    except ValueError:
        exact = None
    if isinstance(exact, dict):
        mine, theirs = exact.get("data", exact.get("balances")), fallback.get("data", fallback.get("balances"))
        if _same_rows(mine, theirs):
            return exact
    return _floats_as_text(fallback)


def _same_rows(mine: Any, theirs: Any) -> bool:
    """Rows read from the same answer: ccxt keeps its texts as they are, only its numbers are floats."""
    if not (isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs)):
        return False
    return all(
        isinstance(exact, dict) and isinstance(row, dict) and exact.keys() == row.keys()
        and all(exact[name] == value for name, value in row.items() if isinstance(value, str))
        for exact, row in zip(mine, theirs)
    )  # fmt: skip


def _floats_as_text(value: Any) -> Any:
    if isinstance(value, float):
        return str(value)
    if isinstance(value, dict):
        return {key: _floats_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_floats_as_text(item) for item in value]
    return value
