"""Binance account channels → BalanceUpdate / PositionUpdate: spot `outboundAccountPosition` and `balanceUpdate`,
USD-M `ACCOUNT_UPDATE`; and the REST snapshot ccxt fetches (`snapshot_events`).

Spot, "User Data Streams" (https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream), delivered by
the WebSocket API in the `{"subscriptionId", "event"}` wrapper. After an order or fill, the absolute free and
locked figures of the assets it may have changed::

    {"e": "outboundAccountPosition", "E": 1564034571105,  # event time
     "u": 1564034571073,                                  # time of the account update: our timestamp
     "B": [{"a": "ETH", "f": "10000.000000", "l": "0.000000"}]}  # asset, free, locked

A deposit, withdrawal or transfer says only how one balance moved (a delta, no absolute figure)::

    {"e": "balanceUpdate", "E": 1573200697110, "a": "BTC", "d": "100.00000000", "T": 1573200697068}  # T: clear time

USD-M, "Event: Balance and Position Update" (https://developers.binance.com/docs/derivatives/usds-margined-futures
/user-data-streams/Event-Balance-and-Position-Update), the assets and positions a change touched, with the reason
`a.m` (ORDER, FUNDING_FEE, DEPOSIT, …)::

    {"e": "ACCOUNT_UPDATE", "E": 1564745798939, "T": 1564745798938,  # T: transaction time, our timestamp
     "a": {"m": "ORDER",
           "B": [{"a": "USDT", "wb": "122624.12345678",    # wallet balance (no unrealized PnL): our total
                  "cw": "100.12345678", "bc": "50.12345678"}],  # cross wallet, change other than PnL and fees
           "P": [{"s": "BTCUSDT", "pa": "-10",             # signed amount in the base coin (contract size 1)
                  "ep": "6563.86000", "bep": "6563.6",     # entry, breakeven price
                  "cr": "-45.04000000", "up": "-1423.15600",  # accumulated realized PnL before fees, unrealized
                  "mt": "isolated", "iw": "6570.42511771", "ps": "SHORT"}]}}  # margin type, isolated wallet, leg

A crossed FUNDING_FEE update has no `P` at all. ACCOUNT_UPDATE carries no available balance, mark price,
leverage or liquidation price: its balances have only `total` (free and locked stay None), its positions no
mark/leverage/liquidation. The REST snapshot has them.

No subscription is needed for any of these: the spot WebSocket-API user data subscription and the USD-M
listenKey stream push them alongside the order events, unasked (`account_subscribe_frames` is empty).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from exchanges.binance.normalize import _EXACT, EXCHANGE, _ms, _symbol, _text, dispatch
from framework.account import AccountEvent, BalanceUpdate, Direction, PositionSide, PositionUpdate
from framework.events import Market, Source, to_decimal

_POSITION_SIDES = {"BOTH": PositionSide.NET, "LONG": PositionSide.LONG, "SHORT": PositionSide.SHORT}
_MARGIN_MODES = {"cross": "cross", "crossed": "cross", "isolated": "isolated"}  # MARGIN_CALL spells it CROSSED


def account_subscribe_frames(market: Market) -> list[dict]:
    """The frames the private connection must add for the account channels: none on Binance (see above)."""
    return []


def _decimal(value: Any) -> Decimal:
    return to_decimal(_text(value))


def _asset(value: Any) -> str:
    asset = _text(value)
    if not asset:
        raise ValueError("an empty asset")
    return asset


def _rows(value: Any) -> list[dict]:
    if type(value) is not list or any(type(row) is not dict for row in value):
        raise TypeError(f"expected a list of objects, got {value!r}")
    return value


def _direction(amount: Decimal) -> Direction:
    return Direction.LONG if amount > 0 else Direction.SHORT if amount < 0 else Direction.FLAT


def _outbound_account_position(event: dict, market: Market, raw: Any) -> list[AccountEvent]:
    """Absolute figures; total = free + locked (what Binance's spot account means by a balance)."""
    timestamp = _ms(event["u"])
    updates: list[AccountEvent] = []
    for row in _rows(event["B"]):
        free, locked = _decimal(row["f"]), _decimal(row["l"])
        updates.append(BalanceUpdate(
            exchange=EXCHANGE, market=market, asset=_asset(row["a"]), free=free, locked=locked,
            total=_EXACT.add(free, locked), timestamp=timestamp, raw=raw,
        ))
    return updates


def _balance_update(event: dict, market: Market, raw: Any) -> list[AccountEvent]:
    return [BalanceUpdate(exchange=EXCHANGE, market=market, asset=_asset(event["a"]), delta=_decimal(event["d"]),
                          timestamp=_ms(event["T"]), raw=raw)]


def _account_update(event: dict, market: Market, raw: Any) -> list[AccountEvent]:
    data, timestamp = event["a"], _ms(event["T"])
    reason = _text(data["m"])
    updates: list[AccountEvent] = [
        BalanceUpdate(exchange=EXCHANGE, market=market, asset=_asset(row["a"]), total=_decimal(row["wb"]),
                      reason=reason, timestamp=timestamp, raw=raw)
        for row in _rows(data["B"])
    ]
    for row in _rows(data.get("P", [])):
        symbol_raw = _text(row["s"])
        amount = _decimal(row["pa"])
        size = amount.copy_abs()  # abs() would round to the context's 28 digits
        updates.append(PositionUpdate(
            exchange=EXCHANGE, market=market, symbol=_symbol(market, symbol_raw), symbol_raw=symbol_raw,
            position_side=_POSITION_SIDES[row["ps"]], direction=_direction(amount), size=size, contracts=size,
            entry_price=_decimal(row["ep"]), unrealized_pnl=_decimal(row["up"]), realized_pnl=_decimal(row["cr"]),
            margin_mode=_MARGIN_MODES[_text(row["mt"]).lower()], timestamp=timestamp, raw=raw,
        ))
    return updates


_HANDLERS: dict[tuple[Market, str], Callable[[dict, Market, Any], list[AccountEvent]]] = {
    (Market.SPOT, "outboundAccountPosition"): _outbound_account_position,
    (Market.SPOT, "balanceUpdate"): _balance_update,
    (Market.FUTURE, "ACCOUNT_UPDATE"): _account_update,
}
ACCOUNT_CHANNELS = {market: frozenset(name for m, name in _HANDLERS if m is market) for market in Market}
"""Per market, the event types that carry balances or positions (everything else normalizes to `[]`)."""


def normalize_account(message: Any, market: Market) -> list[AccountEvent]:
    """One decoded frame → its BalanceUpdates and PositionUpdates, or `[]` for any other frame."""
    return dispatch(_HANDLERS, message, market)


# REST snapshot -------------------------------------------------------------------------------------------------
def snapshot_events(market: Market, balance: dict, positions: list[dict], timestamp: int) -> list[AccountEvent]:
    """The account as ccxt's `fetch_balance` and `fetch_positions` (futures) returned it, taken at `timestamp`.

    Read from each answer's raw `info` (ccxt 4.5.90: spot `GET /api/v3/account`, USD-M `GET /fapi/v3/account` and
    `GET /fapi/v3/positionRisk`): ccxt's USD-M `total` is `marginBalance`, which counts unrealized PnL, where
    ours is the wallet (`walletBalance`); free is `availableBalance`, locked `initialMargin`. Like ccxt, an asset
    whose `updateTime` is 0 is left out (never initialized, its figures are not valid). fetch_positions leaves out
    flat positions (entry price 0), so a position missing here is closed. v3 rows have no leverage (v2 rows do).
    """
    info = balance["info"]
    updates: list[AccountEvent] = []
    common = {"exchange": EXCHANGE, "market": market, "timestamp": timestamp, "source": Source.REST}
    if market is Market.SPOT:
        for row in _rows(info["balances"]):
            free, locked = _decimal(row["free"]), _decimal(row["locked"])
            updates.append(BalanceUpdate(**common, asset=_asset(row["asset"]), free=free, locked=locked,
                                         total=_EXACT.add(free, locked), raw=row))
        return updates
    for row in _rows(info["assets"]):
        if int(row.get("updateTime") or 0) == 0:
            continue
        updates.append(BalanceUpdate(**common, asset=_asset(row["asset"]), free=_decimal(row["availableBalance"]),
                                     locked=_decimal(row["initialMargin"]), total=_decimal(row["walletBalance"]),
                                     raw=row))
    for position in positions:
        row = position["info"]
        symbol_raw = _text(row["symbol"])
        amount = _decimal(row["positionAmt"])
        size = amount.copy_abs()
        liquidation = _decimal(row["liquidationPrice"])
        leverage = row.get("leverage")
        updates.append(PositionUpdate(
            **common, symbol=_symbol(market, symbol_raw), symbol_raw=symbol_raw,
            position_side=_POSITION_SIDES[row["positionSide"]], direction=_direction(amount), size=size,
            contracts=size, entry_price=_decimal(row["entryPrice"]), mark_price=_decimal(row["markPrice"]),
            unrealized_pnl=_decimal(row["unRealizedProfit"]), leverage=None if leverage is None else _decimal(leverage),
            liquidation_price=liquidation or None, margin_mode=position.get("marginMode"), raw=row,
        ))
    return updates
