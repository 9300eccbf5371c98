"""MEXC private frames → Trade / OrderUpdate: spot protobuf pushes (and legacy JSON), contract JSON pushes.

Spot (https://www.mexc.com/api-docs/spot-v3/websocket-user-data-streams, "Spot Account Deals" and
"Spot Account Orders") arrives as binary `PushDataV3ApiWrapper` frames, shown here decoded:

    {channel: "spot@private.deals.v3.api.pb", symbol: "MXUSDT", sendTime: 1736417034332,
     privateDeals {price: "3.6962", quantity: "1", amount: "3.6962",  # price, base qty, quote cost
                   tradeType: 2, isMaker: false,                      # 1 buy, 2 sell
                   tradeId: "505979017439002624X1", orderId: "C02__505979017439002624115", clientOrderId: "",
                   feeAmount: "0.0003998377369698171", feeCurrency: "MX",  # positive = paid
                   time: 1736417034280}}                              # fill time, ms
    {channel: "spot@private.orders.v3.api.pb", symbol: "MXUSDT", sendTime: 1736417034281,  # update ms
     privateOrders {id: "C02__...", clientId: "", price: "3.5121", quantity: "1", tradeType: 2,
                    orderType: 5,  # 1 limit, 2 post only, 3 IOC, 4 FOK, 5 market, 100 stop limit
                    cumulativeQuantity: "1", status: 2}}  # 1 new 2 filled 3 partial 4 canceled 5 partly canceled

Legacy JSON spot pushes (docs to 2024-12): `c` channel, `s` symbol, `t` event ms, `d` = deal {p, v, a,
S, T time, t id, c, i order, m maker, n fee, N} or order {i, c, p, v, o type, S, s status, cv filled}.

Contract (https://www.mexc.com/api-docs/futures/websocket-api, Private channels), JSON numbers:

    {"channel": "push.personal.order.deal", "data": {
        "id": 987654321, "orderId": 123456789, "externalOid": "ext_001",  # trade, order, client ids
        "symbol": "BTC_USDT", "side": 1,  # 1 open long, 2 close short (buy); 3 open short, 4 close long
        "vol": 10, "price": 45000.5,      # vol in contracts
        "fee": 0.225, "feeCurrency": "USDT", "isTaker": true, "timestamp": 1760942212000}}
    {"channel": "push.personal.order", "data": {
        "orderId": 123456789, "externalOid": "ext_001", "symbol": "BTC_USDT", "side": 1, "orderType": 1,
        "price": 45000.5, "vol": 10, "dealVol": 5, "updateTime": 1760942212000,
        "state": 2}}                      # 1 pending, 2 open, 3 filled, 4 canceled, 5 invalid

Fees keep MEXC's sign, which is ours (positive = paid, negative = rebate). Contract `vol` counts
contracts: amounts and `filled` stay in contracts (as ccxt does; `base_amount` / `base_filled` give coins,
from the Trade's `contract_size`); Trade.cost = vol × price × size
(`exchanges.symbols.contract_size`; BTC_USDT 0.0001 / ETH_USDT 0.01 registered below unless known,
else 1). One frame is one event (orders and fills have their own channels). Market orders get
`price=None`: MEXC sends a reference price there, not a limit.
"""

from __future__ import annotations

from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

from google.protobuf.message import DecodeError

from exchanges.mexc.proto import PushDataV3ApiWrapper
from exchanges.symbols import contract_size, register_contract_sizes, unify
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade, to_decimal

EXCHANGE = "mexc"
_DEFAULT_SIZES = {"BTC_USDT": Decimal("0.0001"), "ETH_USDT": Decimal("0.01")}  # base units per contract
register_contract_sizes(EXCHANGE, {k: v for k, v in _DEFAULT_SIZES.items() if contract_size(EXCHANGE, k) is None})

_EXACT = Context(prec=1000, Emax=MAX_EMAX, Emin=MIN_EMIN)  # products never round
_SPOT_SIDES = {1: Side.BUY, 2: Side.SELL}
_FUTURE_SIDES = {1: Side.BUY, 2: Side.BUY, 3: Side.SELL, 4: Side.SELL}
_ORDER_TYPES = {1: "limit", 2: "limit", 3: "limit", 4: "limit", 5: "market", 6: "market", 100: "stop_limit"}
_SPOT_STATUS = {1: OrderStatus.NEW, 2: OrderStatus.FILLED, 3: OrderStatus.PARTIALLY_FILLED, 4: OrderStatus.CANCELED,
                5: OrderStatus.CANCELED}  # 5 = partially filled, then canceled
_FUTURE_STATUS = {1: OrderStatus.NEW, 3: OrderStatus.FILLED, 4: OrderStatus.CANCELED, 5: OrderStatus.REJECTED}
_MALFORMED = (KeyError, TypeError, ValueError, InvalidOperation, AttributeError, DecodeError)


def normalize(message: Any, market: Market) -> list[Trade | OrderUpdate]:
    """The events in one frame (`bytes` for a protobuf push); [] for acks, pongs and other channels."""
    try:
        if isinstance(message, (bytes, bytearray, memoryview)):
            return _spot_protobuf(message)
        if isinstance(message, dict):
            channel = message.get("channel")
            if channel == "push.personal.order.deal":
                return [_future_trade(message)]
            if channel == "push.personal.order":
                return [_future_order(message)]
            channel = message.get("c")
            if channel == "spot@private.deals.v3.api":
                return [_spot_json_trade(message)]
            if channel == "spot@private.orders.v3.api":
                return [_spot_json_order(message)]
        return []
    except _MALFORMED as exc:
        raise NormalizeError(f"mexc: malformed private push ({type(exc).__name__}: {exc})", raw=message) from None


def _ms(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not int(value):
        raise ValueError(f"bad timestamp {value!r}")
    return int(value)


def _maker(flag: Any, taker: bool) -> bool | None:
    """is_maker from a 0/1/false/true flag that says maker (or taker, when `taker`); None when absent."""
    if flag is None:
        return None
    if not isinstance(flag, int) or flag not in (0, 1):
        raise ValueError(f"bad maker/taker flag {flag!r}")
    return bool(flag) is not taker


def _id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise ValueError(f"bad id {value!r}")
    return str(value)


def _spot_protobuf(frame: bytes | bytearray | memoryview) -> list[Trade | OrderUpdate]:
    push = PushDataV3ApiWrapper.FromString(frame)
    body = push.WhichOneof("body")
    if body is None:  # a channel we do not read (account, public)
        return []
    symbol = unify(EXCHANGE, Market.SPOT, push.symbol)
    if body == "privateDeals":
        deal = push.privateDeals
        amount, price = to_decimal(deal.quantity), to_decimal(deal.price)
        return [
            Trade(
                exchange=EXCHANGE,
                market=Market.SPOT,
                symbol=symbol,
                symbol_raw=push.symbol,
                trade_id=_id(deal.tradeId),
                order_id=_id(deal.orderId),
                client_order_id=deal.clientOrderId,
                side=_SPOT_SIDES[deal.tradeType],
                amount=amount,
                price=price,
                cost=deal.amount or _EXACT.multiply(amount, price),
                fee_cost=deal.feeAmount,
                fee_currency=deal.feeCurrency,
                is_maker=deal.isMaker,
                timestamp=_ms(deal.time),
                raw=frame,
            )
        ]
    order = push.privateOrders
    order_type = _ORDER_TYPES.get(order.orderType, str(order.orderType))
    return [
        OrderUpdate(
            exchange=EXCHANGE,
            market=Market.SPOT,
            symbol=symbol,
            symbol_raw=push.symbol,
            order_id=_id(order.id),
            client_order_id=order.clientId,
            side=_SPOT_SIDES[order.tradeType],
            order_type=order_type,
            status=_SPOT_STATUS[order.status],
            status_raw=str(order.status),
            amount=order.quantity,
            price=None if order_type == "market" else order.price,
            filled=order.cumulativeQuantity,
            timestamp=_ms(push.sendTime or push.createTime or order.createTime),
            raw=frame,
        )
    ]


def _spot_json_trade(message: dict) -> Trade:
    deal, symbol_raw = message["d"], message["s"]
    amount, price = to_decimal(deal["v"]), to_decimal(deal["p"])
    return Trade(
        exchange=EXCHANGE,
        market=Market.SPOT,
        symbol=unify(EXCHANGE, Market.SPOT, symbol_raw),
        symbol_raw=symbol_raw,
        trade_id=_id(deal["t"]),
        order_id=_id(deal["i"]),
        client_order_id=deal.get("c"),
        side=_SPOT_SIDES[deal["S"]],
        amount=amount,
        price=price,
        cost=deal["a"] if deal.get("a") not in (None, "") else _EXACT.multiply(amount, price),
        fee_cost=deal.get("n"),
        fee_currency=deal.get("N"),
        is_maker=_maker(deal.get("m"), taker=False),
        timestamp=_ms(deal["T"]),
        raw=message,
    )


def _spot_json_order(message: dict) -> OrderUpdate:
    order, symbol_raw = message["d"], message["s"]
    order_type = _ORDER_TYPES.get(order["o"], str(order["o"]))
    return OrderUpdate(
        exchange=EXCHANGE,
        market=Market.SPOT,
        symbol=unify(EXCHANGE, Market.SPOT, symbol_raw),
        symbol_raw=symbol_raw,
        order_id=_id(order["i"]),
        client_order_id=order.get("c"),
        side=_SPOT_SIDES[order["S"]],
        order_type=order_type,
        status=_SPOT_STATUS[order["s"]],
        status_raw=str(order["s"]),
        amount=order["v"],
        price=None if order_type == "market" else order["p"],
        filled=order["cv"],
        timestamp=_ms(message["t"]),
        raw=message,
    )


def _future_trade(message: dict) -> Trade:
    deal = message["data"]
    symbol_raw = deal["symbol"]
    amount, price = to_decimal(deal["vol"]), to_decimal(deal["price"])
    return Trade(
        exchange=EXCHANGE,
        market=Market.FUTURE,
        symbol=unify(EXCHANGE, Market.FUTURE, symbol_raw),
        symbol_raw=symbol_raw,
        trade_id=_id(deal["id"]),
        order_id=_id(deal["orderId"]),
        client_order_id=deal.get("externalOid"),
        side=_FUTURE_SIDES[deal["side"]],
        amount=amount,
        price=price,
        cost=_EXACT.multiply(_EXACT.multiply(amount, price), contract_size(EXCHANGE, symbol_raw) or 1),
        fee_cost=deal.get("fee"),
        fee_currency=deal.get("feeCurrency"),
        is_maker=_maker(deal.get("isTaker"), taker=True),
        timestamp=_ms(deal["timestamp"]),
        raw=message,
    )


def _future_order(message: dict) -> OrderUpdate:
    order = message["data"]
    symbol_raw, state = order["symbol"], order["state"]
    filled = to_decimal(order["dealVol"])
    order_type = _ORDER_TYPES.get(order["orderType"], str(order["orderType"]))
    status = (OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.NEW) if state == 2 else _FUTURE_STATUS[state]
    return OrderUpdate(
        exchange=EXCHANGE,
        market=Market.FUTURE,
        symbol=unify(EXCHANGE, Market.FUTURE, symbol_raw),
        symbol_raw=symbol_raw,
        order_id=_id(order["orderId"]),
        client_order_id=order.get("externalOid"),
        side=_FUTURE_SIDES[order["side"]],
        order_type=order_type,
        status=status,
        status_raw=str(state),
        amount=order["vol"],
        price=None if order_type == "market" else order["price"],
        filled=filled,
        timestamp=_ms(order["updateTime"]),
        raw=message,
    )
