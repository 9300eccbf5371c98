"""Bitget (v2 classic) order entry: client ids, WebSocket trading on the private socket (granted per account), REST
through the ccxt client's endpoint calls, and what each of Bitget's answers means for an order request.

WebSocket (https://www.bitget.com/api-doc/spot/websocket/private/Place-Order-Channel, …/Cancel-Order-Channel and
the contract pages): on `wss://ws.bitget.com/v2/ws/private` after the stream's own login, `{"op": "trade", "args":
[{"id", "instType", "instId", "channel": "place-order" | "cancel-order", "params": {…}}]}`; "Please contact your BD
or RM to apply for access permissions". No amend, no query, no batch, no plan orders. Answers:

    {"event": "trade", "arg": [{"id": "ts7", "instType": "SPOT", "channel": "place-order", "instId": "BTCUSDT",
      "params": {"orderId": "1376695893517410304", "clientOid": "s1-kx2…"}}], "code": 0, "msg": "Success", "ts": …}
    {"event": "error", "arg": [{"id": "ts8", …, "channel": "place-order", "params": {…as sent}}],
     "code": 43027, "msg": "The minimum order value 1 is not met", "ts": …}

REST (ccxt `bitget`, classic account): spot `/api/v2/spot/trade/{place-order,cancel-order,orderInfo}`, futures
`/api/v2/mix/order/{place-order,cancel-order,detail,modify-order}`, TP/SL `/api/v2/mix/order/place-tpsl-order`
(profit_plan / loss_plan: a market order of `size` when the trigger is reached) with `cancel-plan-order`,
`orders-plan-pending` and `orders-plan-history`. ccxt's unified calls are not used: they round through the
market's precision (which the offline client has not) and size spot market buys from a price it asks for.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from decimal import Decimal
from typing import Any

from exchanges.bitget.rest import raw_symbol
from framework.events import Market, OrderStatus, Side
from framework.orders.ccxt_outcome import error_outcome
from framework.orders.model import (
    Outcome, OutcomeKind, accepted, acked, ambiguous, not_found, not_sent, rejected,
)
from framework.venue import OrderRules, RestOrderRules, WsTradingRules
from framework.orders.client_ids import base36 as _base36, prefixed_id

INST_TYPE = {Market.SPOT: "SPOT", Market.FUTURE: "USDT-FUTURES"}
MARGIN_COIN = "USDT"
MARGIN_MODE = "crossed"  # one-way position mode, cross margin (what the account stream reads)
CLIENT_ID_MAX = 50  # "clientOid or clientOrderId length cannot greater than 50" (40304; 40305 says 64)
REQUEST_ID_MAX = 40  # "Unique Identifier Length<= 40 ("^[0-9A-Za-z_:#\-+\s]*$")"
VALIDITY_MS = 30_000  # a signed REST request is refused 30 s after its ACCESS-TIMESTAMP (40008)
RATE = 10.0  # place / cancel: 10 a second per UID, shared by REST and WebSocket ("shared with Rest API")

_FORCE = {"limit": "gtc", "market": "gtc", "ioc": "ioc", "post_only": "post_only"}
_CHANNEL = {"place": "place-order", "cancel": "cancel-order"}
_OP = {v: k for k, v in _CHANNEL.items()}
_PLAN = {"take_profit": "profit_plan", "stop_loss": "loss_plan"}
_ORDER_STATUS = {"init": OrderStatus.NEW, "new": OrderStatus.NEW, "live": OrderStatus.NEW,
                 "partially_filled": OrderStatus.PARTIALLY_FILLED, "filled": OrderStatus.FILLED,
                 "cancelled": OrderStatus.CANCELED, "canceled": OrderStatus.CANCELED}
_PLAN_STATUS = {"live": OrderStatus.NEW, "not_trigger": OrderStatus.NEW, "executing": OrderStatus.NEW,
                "executed": OrderStatus.FILLED, "triggered": OrderStatus.FILLED, "cancelled": OrderStatus.CANCELED,
                "canceled": OrderStatus.CANCELED, "fail_execute": OrderStatus.REJECTED,
                "fail_trigger": OrderStatus.REJECTED}

# What Bitget's codes mean for an order request (REST code table of the classic API, which the v2 WebSocket trade
# answers use too: 43027, 43001, 40774, 41101 in captured frames; ccxt's `exceptions`). Any other code of five or
# more digits is a definite refusal; a code that is not (429, "1", none at all) leaves the outcome unknown.
AMBIGUOUS_CODES = frozenset({
    "1", "429", "30006", "30007",  # system error; too many requests (not documented as "not executed")
    "40010", "40015", "40200", "40604", "40725", "40908", "40910",  # timed out, abnormal, upgrade, busy, concurrent
    "43059", "45001", "45023", "45024", "49040", "50008", "50031", "80002",  # "please try again", unknown errors
    "25000", "25001", "25003",  # the v3 WebSocket table's system error / timed out / concurrent operation
})
NOT_FOUND_CODES = frozenset({"43001", "43004", "40768", "40109", "45057", "43020", "43025", "22001", "25204",
                             "31007"})
# A duplicate clientOid says an order with it exists: on a retry, the earlier attempt. Never a rejection.
DUPLICATE_CODES = frozenset({"43118", "45034", "40786", "50060", "25212"})
# WebSocket trading not granted to this account ("Permission has not been obtained yet… contact customer
# service"; the BD/RM gate): the request was not executed, and REST may take it. The code the live venue sends for
# an account without the grant is not documented (UNVERIFIED); these are Bitget's permission refusals.
WS_REFUSED_CODES = frozenset({"40301", "40014", "25620"})
_WS_NOT_LOGGED_IN = "30004"  # "User not logged in": this socket took nothing; REST may
# The entitlement probe: a cancel of a client id no order has. Granted: "the order does not exist"; not granted:
# the permission refusal. Error answers echo the request's params, which is how decode knows the probe's answer.
PROBE_CLIENT_OID = "tradesync-ws-probe"
PROBE_SYMBOL = "BTCUSDT"
_LOGIN_CODES = frozenset({"30005", "30011", "30012", "30013", "30014", "30015"})  # the stream's login answers


def client_id(market: Market, prefix: str, n: int) -> str:
    """`<prefix>-<n in base 36>`: what the order channels report as clientOid / clientOId."""
    return prefixed_id("bitget", prefix, n, limit=CLIENT_ID_MAX, allowed="A-Za-z0-9_-",
                       described="letters, digits, '_' or '-'")


def amended_client_id(old: str, amount: Decimal, price: Decimal) -> str:
    """The newClientOid of an amend that names none: the old id's prefix and a tail as long as its own, drawn from
    (old id, new terms). A retry of the same amend names the same new id, so Bitget's duplicate check catches a
    second modify; the prefix keeps the order routed to its strategy."""
    prefix, dash, tail = old.rpartition("-")
    if not dash or not prefix:
        prefix, tail = old[:CLIENT_ID_MAX - 9], ""
    size = max(min(max(len(tail), 8), CLIENT_ID_MAX - 1 - len(prefix)), 1)
    seed = hashlib.sha256(f"{old}|{format(amount, 'f')}|{format(price, 'f')}".encode()).digest()
    return f"{prefix}-{_base36(int.from_bytes(seed, 'big'))[-size:]}"


def request_id(n: int) -> str:
    """`ts<n>`: the trade op's `id` (the private stream sends no ids of its own)."""
    return f"ts{n}"


def _text(value: Decimal) -> str:
    return format(value, "f")


def _size(request: Any) -> str:
    """The `size` Bitget takes: base coin, except a spot market buy, which is sized in the quote coin (amount ×
    the request's reference price)."""
    if request.market is Market.SPOT and request.order_type == "market" and request.side is Side.BUY:
        if request.price is None:
            raise ValueError("a bitget spot market buy is sized in the quote coin: give price= (amount × price is "
                             "spent), or place a limit / ioc order")
        return _text(request.amount * request.price)
    return _text(request.amount)


def _place_params(request: Any) -> dict[str, str]:
    """The order's fields, as the WebSocket place-order params and the REST place-order body share them."""
    if request.trigger_price is not None:
        raise ValueError("bitget TP/SL orders are plan orders, placed over REST only")
    market = request.market
    if market is Market.SPOT and request.reduce_only:
        raise ValueError("bitget spot orders cannot be reduce-only")
    order_type = "market" if request.order_type == "market" else "limit"
    params = {"orderType": order_type, "side": request.side.value, "size": _size(request),
              "force": _FORCE[request.order_type], "clientOid": request.client_order_id}
    if order_type == "limit":
        if request.price is None:
            raise ValueError(f"a bitget {request.order_type} order needs a price")
        params["price"] = _text(request.price)
    if market is Market.FUTURE:
        params.update(marginCoin=MARGIN_COIN, marginMode=MARGIN_MODE, reduceOnly="YES" if request.reduce_only else "NO")
    return params


# WebSocket -----------------------------------------------------------------------------------------------------------
def encode(op: str, subject: Any, credentials: Any, market: Market, req_id: str, now_ms: int,
           prepared: Any = None) -> dict:
    """A `trade` op (no signature: the socket's login authenticates it; no timestamp: Bitget's trade frame has no
    validity window). ValueError for what this socket cannot do (amend, query, TP/SL). "probe": the entitlement
    probe, a cancel of PROBE_CLIENT_OID."""
    if op == "probe":
        return {"op": "trade", "args": [{"id": req_id, "instType": INST_TYPE[market], "instId": PROBE_SYMBOL,
                                         "channel": _CHANNEL["cancel"], "params": {"clientOid": PROBE_CLIENT_OID}}]}
    if op not in _CHANNEL:
        raise ValueError(f"bitget WebSocket trading has no {op!r} (only place-order and cancel-order)")
    if op == "place":
        params = _place_params(subject)
    else:
        if subject.conditional:
            raise ValueError("bitget TP/SL orders are cancelled over REST only")
        params = ({"clientOid": subject.client_order_id} if subject.client_order_id
                  else {"orderId": subject.order_id})
    return {"op": "trade", "args": [{"id": req_id, "instType": INST_TYPE[market],
                                     "instId": raw_symbol(market, subject.symbol), "channel": _CHANNEL[op],
                                     "params": params}]}


def decode(message: Any, market: Market) -> tuple[str | None, Outcome] | None:
    """A trade answer → (its id, Outcome); an error frame naming no request → (None, AMBIGUOUS); anything else
    (pushes, subscription acks and errors, login answers, "pong") → None."""
    if not isinstance(message, dict):
        return None
    event, arg = message.get("event"), message.get("arg")
    if event not in ("trade", "error"):
        return None
    code = message.get("code")
    code = None if code is None else str(code)
    if event == "error" and arg is None:
        if code in _LOGIN_CODES:
            return None
        return None, ambiguous(f"bitget error naming no request: {message.get('msg', '')} (code {code})", code)
    if not isinstance(arg, list):
        return None  # a subscription's error: its arg is an object
    first = arg[0] if arg and isinstance(arg[0], dict) else {}
    req_id = first.get("id")
    op = _OP.get(first.get("channel"), "place")
    if not isinstance(req_id, str) or not req_id:
        return None, ambiguous(f"bitget trade answer without its id: {message.get('msg', '')}", code)
    params = first.get("params") if isinstance(first.get("params"), dict) else {}
    if op == "cancel" and params.get("clientOid") == PROBE_CLIENT_OID:
        return req_id, _probe_answer(event, code, str(message.get("msg", "")))
    if event == "trade" and code in ("0", "00000"):
        order_id = params.get("orderId")
        if op == "place" and not order_id:
            return req_id, ambiguous("bitget place-order answer without an orderId", code)
        return req_id, accepted(order_id, client_order_id=params.get("clientOid") or None)
    return req_id, classify(code, str(message.get("msg", "")), op, websocket=True)


def _probe_answer(event: str, code: str | None, message: str) -> Outcome:
    """The probe's answer: ACCEPTED (this account may trade here), REJECTED (not granted), else what it was."""
    outcome = classify(code, message, "cancel", websocket=True)
    if event == "trade" or outcome.kind is OutcomeKind.NOT_FOUND:
        return accepted(None, message="websocket trading granted")
    if code in WS_REFUSED_CODES:
        return rejected(code, f"bitget websocket trading is not granted to this account: {message} (ask Bitget's "
                              "BD/RM for access, or leave bitget out of websocket_opt_in)")
    return outcome


def classify(code: str | None, message: str, op: str, *, websocket: bool = False) -> Outcome:
    """What a Bitget error code means for a request of `op` ("place" | "cancel" | "query" | "amend")."""
    text = f"bitget {code}: {message}"[:300]
    if code in DUPLICATE_CODES:
        return ambiguous(f"{text} (an order with this clientOid exists: an earlier attempt may have placed it)",
                         code)
    if code in WS_REFUSED_CODES and websocket:
        return not_sent(f"{text} (WebSocket trading is not granted to this account)", code=code)
    if code == _WS_NOT_LOGGED_IN and websocket:
        return not_sent(f"{text} (the socket is not logged in)", code=code)
    if code in NOT_FOUND_CODES and op != "place":
        return not_found(code, text)
    if code is None or code in AMBIGUOUS_CODES or not (code.isdigit() and len(code) >= 5):
        return ambiguous(text, code)
    return rejected(code, text)


# REST ----------------------------------------------------------------------------------------------------------------
_BODY_CODE = re.compile(r'"code"\s*:\s*"?([0-9A-Za-z_-]+)"?')


def _failure(exc: BaseException, op: str) -> Outcome:
    """A ccxt exception: Bitget's own code when its body came back (ccxt maps some codes wrongly for orders: 40010
    "Request timed out" as an authentication error), else what the exception itself says."""
    text = str(exc)
    found = _BODY_CODE.search(text)
    if found is None or found.group(1) == "00000":
        outcome = error_outcome(exc)
        if outcome.kind is OutcomeKind.NOT_FOUND and op == "place":
            return ambiguous(outcome.message)
        return outcome
    message = ""
    try:
        message = str(json.loads(text[text.index("{"):]).get("msg", ""))
    except (ValueError, AttributeError):
        pass
    return classify(found.group(1), message, op)


async def _call(op: str, method: Any, body: dict) -> dict | Outcome:
    try:
        answer = await method(body)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is classified, none is lost
        return _failure(exc, op)
    return answer if isinstance(answer, dict) else {}


def _product(market: Market, symbol: str) -> dict[str, str]:
    body = {"symbol": raw_symbol(market, symbol)}
    if market is Market.FUTURE:
        body.update(productType=INST_TYPE[market], marginCoin=MARGIN_COIN)
    return body


def _tpsl_body(request: Any) -> dict[str, str]:
    """A profit_plan / loss_plan: `size` of the position (one-way: holdSide is the position's side, the opposite of
    the closing order's) closed at the market once the last price reaches triggerPrice."""
    if request.market is not Market.FUTURE:
        raise ValueError("bitget TP/SL orders exist on USDT futures only")
    if request.trigger not in _PLAN:
        raise ValueError(f"trigger must be take_profit or stop_loss, got {request.trigger!r}")
    hold = "buy" if request.side is Side.SELL else "sell"
    return {**_product(request.market, request.symbol), "planType": _PLAN[request.trigger],
            "triggerPrice": _text(request.trigger_price), "triggerType": "fill_price", "executePrice": "0",
            "holdSide": hold, "size": _text(request.amount), "clientOid": request.client_order_id}


async def rest_place(client: Any, request: Any, prepared: Any = None) -> Outcome:
    market = request.market
    try:
        if request.trigger_price is not None:
            body, method = _tpsl_body(request), client.privateMixPostV2MixOrderPlaceTpslOrder
        else:
            body = {**_product(market, request.symbol), **_place_params(request)}
            method = (client.privateSpotPostV2SpotTradePlaceOrder if market is Market.SPOT
                      else client.privateMixPostV2MixOrderPlaceOrder)
    except ValueError as exc:
        return rejected("invalid", str(exc))
    answer = await _call("place", method, body)
    if isinstance(answer, Outcome):
        return answer
    data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
    if not data.get("orderId"):
        return ambiguous("bitget place answer without an orderId")
    return accepted(data["orderId"], client_order_id=data.get("clientOid") or None)


def _ref_params(ref: Any) -> dict[str, str]:
    """By clientOid (Bitget never renames one); by orderId only for an order placed without one."""
    return {"clientOid": ref.client_order_id} if ref.client_order_id else {"orderId": str(ref.order_id)}


async def rest_cancel(client: Any, ref: Any) -> Outcome:
    market = ref.market
    if ref.conditional:
        return await _cancel_plan(client, ref)
    body = {**_product(market, ref.symbol), **_ref_params(ref)}
    method = (client.privateSpotPostV2SpotTradeCancelOrder if market is Market.SPOT
              else client.privateMixPostV2MixOrderCancelOrder)
    answer = await _call("cancel", method, body)
    if isinstance(answer, Outcome):
        return answer
    data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
    return accepted(data.get("orderId"), client_order_id=data.get("clientOid") or None)


async def _cancel_plan(client: Any, ref: Any) -> Outcome:
    body = {**_product(ref.market, ref.symbol), "planType": "profit_loss", "orderIdList": [_ref_params(ref)]}
    answer = await _call("cancel", client.privateMixPostV2MixOrderCancelPlanOrder, body)
    if isinstance(answer, Outcome):
        return answer
    data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
    for row in data.get("successList") or ():
        return accepted(row.get("orderId"), client_order_id=row.get("clientOid") or None)
    for row in data.get("failureList") or ():
        code, message = row.get("errorCode"), str(row.get("errorMsg", ""))
        if code is None and "not exist" in message.lower():
            return not_found(None, f"bitget: {message}")
        return classify(None if code is None else str(code), message, "cancel")
    return ambiguous("bitget cancel-plan-order answer names no order")


async def rest_query(client: Any, ref: Any) -> Outcome:
    """The order's state by clientOid: ACCEPTED with it, NOT_FOUND when Bitget has no such order."""
    market = ref.market
    if ref.conditional:
        return await _query_plan(client, ref)
    params = {**_product(market, ref.symbol), **_ref_params(ref)}
    if market is Market.SPOT:
        params.pop("symbol")  # the order's id names it
        answer = await _call("query", client.privateSpotGetV2SpotTradeOrderInfo, params)
    else:
        params.pop("marginCoin")
        answer = await _call("query", client.privateMixGetV2MixOrderDetail, params)
    if isinstance(answer, Outcome):
        return answer
    data = answer.get("data")
    if isinstance(data, list):  # spot: a list, empty for an unknown order
        data = data[-1] if data else None
    if not isinstance(data, dict) or not data.get("orderId"):
        return not_found(None, "bitget has no such order")
    return _row_outcome(data, data.get("status") or data.get("state"), _ORDER_STATUS,
                        filled=data.get("baseVolume"), amount=data.get("size"))


async def _query_plan(client: Any, ref: Any) -> Outcome:
    """A TP/SL plan among the pending ones, then the finished ones."""
    params = {**_product(ref.market, ref.symbol), **_ref_params(ref), "planType": "profit_loss"}
    params.pop("marginCoin")
    for method in (client.privateMixGetV2MixOrderOrdersPlanPending, client.privateMixGetV2MixOrderOrdersPlanHistory):
        answer = await _call("query", method, params)
        if isinstance(answer, Outcome):
            return answer
        data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
        for row in data.get("entrustedList") or ():
            if row.get("clientOid") == ref.client_order_id or row.get("orderId") == ref.order_id:
                return _row_outcome(row, row.get("planStatus"), _PLAN_STATUS, filled=None, amount=row.get("size"))
    return not_found(None, "bitget has no such TP/SL order")


def _row_outcome(row: dict, status_text: Any, statuses: dict, *, filled: Any, amount: Any) -> Outcome:
    status = statuses.get(str(status_text))
    filled_ = _decimal(filled)
    if status is OrderStatus.NEW and filled_:
        status = OrderStatus.PARTIALLY_FILLED
    return accepted(row.get("orderId"), client_order_id=row.get("clientOid") or None, status=status,
                    filled=filled_, amount=_decimal(amount), price=_decimal(row.get("price")) or None,
                    average=_decimal(row.get("priceAvg")) or None, message="" if status else f"status {status_text}")


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(value) if isinstance(value, str) else Decimal(str(value))


async def rest_amend(client: Any, amend: Any) -> Outcome:
    """Futures modify-order: a new size and price (both, Bitget takes them together) under a new clientOid. Bitget
    cancels the order and makes the new one asynchronously, so the answer is an ack (no orderId yet)."""
    ref = amend.ref
    if ref.market is not Market.FUTURE or ref.conditional:
        return rejected("NotSupported", "bitget amends only futures limit orders (modify-order); cancel and place "
                                        "again")
    size, price = amend.amount or ref.amount, amend.price or ref.price
    if size is None or price is None:
        return rejected("invalid", "bitget modifies size and price together: the order's amount and price are needed")
    if not ref.client_order_id:
        return rejected("invalid", "bitget amends by clientOid: this order has none")
    new_id = amend.client_order_id or amended_client_id(ref.client_order_id, size, price)
    body = {**_product(ref.market, ref.symbol), **_ref_params(ref), "newClientOid": new_id,
            "newSize": _text(size), "newPrice": _text(price)}
    answer = await _call("amend", client.privateMixPostV2MixOrderModifyOrder, body)
    if isinstance(answer, Outcome):
        return answer
    data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
    return acked(data.get("orderId"), client_order_id=data.get("clientOid") or new_id)


NOTES = (
    "Bitget: spot and USDT futures (one-way mode, cross margin, sizes in the base coin). WebSocket trading rides the "
    "private socket (op trade: place-order / cancel-order only) and is granted per account by Bitget's BD/RM: it is "
    "opt-in, probed at start (a cancel of a client id no order has: 'does not exist' = granted, a permission "
    "refusal = not), and a refusal on any request sends it to REST. The trade "
    "frame carries no timestamp, so no validity window protects a late request: a retry's safety rests on clientOid "
    "being unique (a duplicate, 43118 / 45034, is read as 'an earlier attempt exists'). REST: 10 orders/s per UID, "
    "shared with the WebSocket; a signed request is refused 30 s after its timestamp. Client ids: prefix-base36, at "
    "most 50 characters of letters, digits, '_' and '-'. Amend: futures only (modify-order cancels the order and "
    "makes a new one under a new client id, derived from the old one when none is given; the live docs allow it in "
    "hedge mode only). A spot market buy is sized in "
    "the quote coin: it needs a reference price. TP/SL: futures profit_plan / loss_plan over REST (closing a "
    "position at the market)."
)

ORDERS = OrderRules(
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    client_id=client_id,
    ws=WsTradingRules(
        shared=True, opt_in=True, encode=encode, decode=decode, ops=frozenset({"place", "cancel", "probe"}),
        validity_ms=VALIDITY_MS, rate=RATE, burst=10, request_id=request_id,
    ),
    rest=RestOrderRules(place=rest_place, cancel=rest_cancel, query=rest_query, amend=rest_amend,
                        validity_ms=VALIDITY_MS, rate=RATE),
    conditional=frozenset({Market.FUTURE}),
    notes=NOTES,
)
