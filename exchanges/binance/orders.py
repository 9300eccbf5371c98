"""Binance order entry: spot over the WebSocket API on the user stream's own socket, USD-M over `ws-fapi` (a socket
of its own), both with the same requests as REST through ccxt; client ids, the frames, and what an answer means.

Requests (binance-spot-api-docs web-socket-api.md; USD-M WebSocket API "Trade" pages, the connector SDK's text):
`{"id", "method", "params"}`, every request signed on its own (`apiKey`, `timestamp`, `recvWindow` and the hex
HMAC-SHA256 `signature` over the sorted params, auth.py). Spot: `order.place` / `order.cancel` / `order.status`,
amends as `order.amend.keepPriority` (a quantity decrease, same order) or `order.cancelReplace` (a new order: new
orderId). USD-M: `order.place` / `order.cancel` / `order.modify` / `order.status`; TP/SL as `algoOrder.place` /
`algoOrder.cancel` (REST `GET /fapi/v1/algoOrder` queries them). REST takes the same params on the matching
endpoints (`/api/v3/order`, `/api/v3/order/cancelReplace`, `/api/v3/order/amend/keepPriority`, `/fapi/v1/order`,
`/fapi/v1/algoOrder`), called through the ccxt client's endpoint methods: the numbers go out as our exact text.

Answers `{"id", "status", "result" | "error": {"code", "msg"[, "data"]}}` (REST: the body alone). What they mean
(web-socket-api.md "Status codes", errors.md): 200 the result; 4XX "the issue is on your side" — final, except the
not-found answers (-2013, "Unknown order sent." under -2011/-2038/-2010) and a duplicate client id on a place (-2010
"Duplicate order sent.", USD-M -4116, algo -20132: our ids are unique per intent, so an earlier attempt placed it —
ambiguous, to be found by a query); 5XX "execution status is unknown", -1000/-1001/-1006/-1007 likewise; an error
with `"id": null` names no request. Cancels rename the order's client id (spot `newClientOrderId`): we rename it
to `<id>-c`, so a query by client id still finds a cancelled order (the REST query tries both names).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from exchanges.binance.auth import sign, ws_api_payload
from exchanges.binance.rest import raw_symbol
from exchanges.binance.stream import LIVE_ENDPOINTS
from framework.events import Market, OrderStatus, Side, now_ms
from framework.orders.ccxt_outcome import error_outcome
from framework.orders.model import (Amend, OrderRef, OrderRequest, OrderType, Outcome, OutcomeKind, accepted,
                                    ambiguous, not_found, rejected)
from framework.venue import Credentials, Endpoints, OrderRules, RestOrderRules, WsTradingRules
from framework.orders.client_ids import base36 as _base36, prefixed_id

VALIDITY_MS = 5000  # the recvWindow every request carries (Binance's default; the venue refuses it later)
WS_FAPI_LIVE = "wss://ws-fapi.binance.com/ws-fapi/v1"
WS_FAPI_PATH = "/ws-fapi/v1"
REQUEST_PREFIX = "ts-"  # our request ids; the user stream's own subscription uses integer ids
CANCELED_SUFFIX = "-c"  # a cancelled order's client id becomes <id>-c
ID_LIMIT = 36 - len(CANCELED_SUFFIX)  # spot and USD-M take 36 characters; room left for the cancel rename

_STATUS = {
    "NEW": OrderStatus.NEW, "PENDING_NEW": OrderStatus.NEW, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED, "PENDING_CANCEL": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED, "EXPIRED": OrderStatus.EXPIRED, "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
# USD-M Algo Service statuses ("Event: Algo Order Update"): TRIGGERING/TRIGGERED put an order in the book; FINISHED
# is read from the executed quantity.
_ALGO_STATUS = {"NEW": OrderStatus.NEW, "TRIGGERING": OrderStatus.NEW, "TRIGGERED": OrderStatus.NEW,
                "CANCELED": OrderStatus.CANCELED, "REJECTED": OrderStatus.REJECTED, "EXPIRED": OrderStatus.EXPIRED}
AMBIGUOUS_CODES = frozenset({-1000, -1001, -1006, -1007})  # unknown, internal error, unexpected answer, timeout
DUPLICATE_CODES = frozenset({-4116, -20132})  # USD-M duplicate clientOrderId / clientAlgoId (spot: -2010 + message)
UNKNOWN_ORDER = "Unknown order sent."
DUPLICATE_ORDER = "Duplicate order sent."


# client ids -----------------------------------------------------------------------------------------------------


def client_id(market: Market, prefix: str, n: int) -> str:
    """`<prefix>-<n in base 36>`: what the user stream reports, at most 34 characters of [A-Za-z0-9_-]."""
    return prefixed_id("binance", prefix, n, limit=ID_LIMIT, allowed="A-Za-z0-9_-",
                       described="letters, digits, '_' or '-'")


def canceled_name(coid: str) -> str:
    """The client id a cancel gives the order (freeing its own for reuse, as Binance requires a new one)."""
    return coid + CANCELED_SUFFIX


def request_id(n: int) -> str:
    return REQUEST_PREFIX + _base36(n)


# requests (one reading for both paths) -------------------------------------------------------------------------
def _text(value: Decimal) -> str:
    return format(value, "f")


def _by_id(ref: OrderRef, id_key: str = "orderId", coid_key: str = "origClientOrderId") -> dict[str, str]:
    return {id_key: ref.order_id} if ref.order_id else {coid_key: ref.client_order_id}


def _place(request: OrderRequest) -> tuple[str, dict[str, Any]]:
    market = request.market
    params: dict[str, Any] = {"symbol": raw_symbol(market, request.symbol), "side": request.side.value.upper()}
    if request.trigger_price is not None:
        if market is not Market.FUTURE:
            raise ValueError("binance spot has no TP/SL orders here: conditional orders are USD-M only")
        if request.trigger not in ("take_profit", "stop_loss"):
            raise ValueError(f"a conditional order's trigger is take_profit or stop_loss, not {request.trigger!r}")
        params.update(algoType="CONDITIONAL",
                      type="TAKE_PROFIT_MARKET" if request.trigger == "take_profit" else "STOP_MARKET",
                      quantity=_text(request.amount), triggerPrice=_text(request.trigger_price),
                      reduceOnly="true", workingType="CONTRACT_PRICE", clientAlgoId=request.client_order_id)
        return "algoOrder.place", params
    kind = request.order_type
    if kind is OrderType.MARKET:
        params["type"] = "MARKET"
    elif kind is OrderType.POST_ONLY and market is Market.SPOT:
        params["type"] = "LIMIT_MAKER"
    else:
        params.update(type="LIMIT", timeInForce={OrderType.IOC: "IOC", OrderType.POST_ONLY: "GTX"}.get(kind, "GTC"))
    params["quantity"] = _text(request.amount)
    if kind is not OrderType.MARKET:
        if request.price is None:
            raise ValueError(f"a {kind.value} order needs a price")
        params["price"] = _text(request.price)
    if request.reduce_only:
        if market is Market.SPOT:
            raise ValueError("binance spot orders cannot be reduce-only")
        params["reduceOnly"] = "true"
    params.update(newClientOrderId=request.client_order_id, newOrderRespType="RESULT")
    return "order.place", params


def _cancel(ref: OrderRef) -> tuple[str, dict[str, Any]]:
    if ref.conditional:
        return "algoOrder.cancel", _by_id(ref, "algoId", "clientAlgoId")
    params = {"symbol": raw_symbol(ref.market, ref.symbol), **_by_id(ref)}
    if ref.market is Market.SPOT:
        params["newClientOrderId"] = canceled_name(ref.client_order_id)
    return "order.cancel", params


def _query(ref: OrderRef) -> tuple[str, dict[str, Any]]:
    if ref.conditional:
        return "algoOrder.status", _by_id(ref, "algoId", "clientAlgoId")  # REST only (GET /fapi/v1/algoOrder)
    return "order.status", {"symbol": raw_symbol(ref.market, ref.symbol), **_by_id(ref)}


def _needed(value: Any, what: str) -> Any:
    if value is None:
        raise ValueError(f"a binance amend needs the order's {what} (OrderRef.{what} or the Amend's)")
    return value


def _amend(amend: Amend) -> tuple[str, dict[str, Any]]:
    ref = amend.ref
    if ref.conditional:
        raise ValueError("binance TP/SL (algo) orders cannot be amended: cancel and place again")
    symbol = raw_symbol(ref.market, ref.symbol)
    price = amend.price if amend.price is not None else ref.price
    amount = amend.amount if amend.amount is not None else ref.amount
    if ref.market is Market.FUTURE:  # order.modify: LIMIT only, side + quantity + price all required
        return "order.modify", {"symbol": symbol, **_by_id(ref), "side": Side.parse(_needed(ref.side, "side")).value.upper(),
                                "quantity": _text(_needed(amount, "amount")), "price": _text(_needed(price, "price"))}
    same_price = amend.price is None or amend.price == ref.price
    if same_price and amend.amount is not None and (ref.amount is None or amend.amount < ref.amount):
        # Keeps the order, its id and its queue place; a quantity decrease only.
        return "order.amend.keepPriority", {"symbol": symbol, **_by_id(ref), "newQty": _text(amend.amount),
                                            "newClientOrderId": ref.client_order_id}
    return "order.cancelReplace", {
        "symbol": symbol, "cancelReplaceMode": "STOP_ON_FAILURE", **_by_id(ref, "cancelOrderId",
                                                                           "cancelOrigClientOrderId"),
        "cancelNewClientOrderId": canceled_name(ref.client_order_id),
        "side": Side.parse(_needed(ref.side, "side")).value.upper(), "type": "LIMIT", "timeInForce": "GTC",
        "quantity": _text(_needed(amount, "amount")), "price": _text(_needed(price, "price")),
        "newClientOrderId": amend.client_order_id or ref.client_order_id, "newOrderRespType": "RESULT",
    }


def _request(op: str, subject: Any) -> tuple[str, dict[str, Any]]:
    if op == "place":
        return _place(subject)
    if op == "cancel":
        return _cancel(subject)
    if op == "query":
        return _query(subject)
    if op == "amend":
        return _amend(subject)
    raise ValueError(f"unknown order op {op!r}")


# WebSocket ------------------------------------------------------------------------------------------------------
def ws_url(market: Market, endpoints: Endpoints) -> str | None:
    """USD-M trades on ws-fapi (its own socket; the simulator serves it under the market's base); spot rides the
    user stream's WebSocket-API socket (None)."""
    if market is Market.SPOT:
        return None
    if endpoints == LIVE_ENDPOINTS[Market.FUTURE]:
        return WS_FAPI_LIVE
    return endpoints.ws.rstrip("/") + WS_FAPI_PATH


def encode(op: str, subject: Any, credentials: Credentials, market: Market, req_id: str, now: int,
           prepared: Any = None) -> dict:
    method, params = _request(op, subject)
    if method == "algoOrder.status":
        raise ValueError("binance has no WebSocket query for algo (TP/SL) orders: query them over REST")
    params.update(apiKey=credentials.api_key or "", recvWindow=VALIDITY_MS, timestamp=now)
    params["signature"] = sign(credentials.secret or "", ws_api_payload(params))
    return {"id": req_id, "method": method, "params": params}


def decode(message: Any, market: Market) -> tuple[str | None, Outcome] | None:
    """An answer to one of our requests → (its id, Outcome); an error naming no request → (None, AMBIGUOUS); None
    for anything else (user stream events, the stream's own subscription answer)."""
    if type(message) is not dict or "status" not in message or "id" not in message:
        return None
    req_id, status = message["id"], message["status"]
    if req_id is None:
        if status == 200:
            return None
        error = message.get("error") if type(message.get("error")) is dict else {}
        return None, ambiguous(f"error naming no request: {status} {error.get('code')} {error.get('msg')}",
                               error.get("code"))
    if type(req_id) is not str or not req_id.startswith(REQUEST_PREFIX):
        return None
    if status == 200:
        return req_id, result_outcome(message.get("result"))
    error = message.get("error")
    return req_id, error_answer(status if type(status) is int else 500, error if type(error) is dict else {})


# answers (both paths) -------------------------------------------------------------------------------------------
def _decimal(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def _nonzero(value: Any) -> Decimal | None:
    number = _decimal(value)
    return number if number else None


def order_outcome(row: dict) -> Outcome:
    """An order as Binance writes it (place RESULT, cancel, status, modify; spot and USD-M alike)."""
    return accepted(row.get("orderId"), client_order_id=row.get("clientOrderId") or None,
                    status=_STATUS.get(row.get("status")), amount=_decimal(row.get("origQty", row.get("qty"))),
                    filled=_decimal(row.get("executedQty")), price=_nonzero(row.get("price")),
                    average=_nonzero(row.get("avgPrice")))


def algo_outcome(row: dict) -> Outcome:
    """A USD-M algo (TP/SL) order: place answer or `GET /fapi/v1/algoOrder`."""
    raw = row.get("algoStatus")
    executed = _decimal(row.get("executedQty")) or Decimal(0)
    status = _ALGO_STATUS.get(raw)
    if raw == "FINISHED":
        status = OrderStatus.FILLED if executed and executed == _decimal(row.get("quantity")) else OrderStatus.CANCELED
    return accepted(row.get("algoId"), client_order_id=row.get("clientAlgoId") or None, status=status,
                    amount=_decimal(row.get("quantity")), filled=executed, price=_nonzero(row.get("price")),
                    average=_nonzero(row.get("avgPrice")))


def result_outcome(result: Any) -> Outcome:
    if type(result) is not dict:
        return accepted()
    if type(result.get("amendedOrder")) is dict:  # order.amend.keepPriority
        return order_outcome(result["amendedOrder"])
    if type(result.get("newOrderResponse")) is dict:  # order.cancelReplace: the new order
        return order_outcome(result["newOrderResponse"])
    if "algoId" in result:
        if "algoStatus" in result:
            return algo_outcome(result)
        return accepted(result["algoId"], client_order_id=result.get("clientAlgoId") or None,
                        status=OrderStatus.CANCELED)  # algoOrder.cancel: {"algoId", "clientAlgoId", "code": "200"}
    return order_outcome(result)


def _retry_after(error: dict) -> float | None:
    data = error.get("data")
    until = data.get("retryAfter") if type(data) is dict else None
    return max(0.0, (until - now_ms()) / 1000) if type(until) is int else None


def error_answer(status: int, error: dict) -> Outcome:
    """A refusal (`error` = {"code", "msg"[, "data"]}) under an HTTP-like status, as an Outcome."""
    code, msg = error.get("code"), str(error.get("msg", ""))
    text = f"{status} {code} {msg}"[:300]
    if status >= 500 or code in AMBIGUOUS_CODES:
        return ambiguous(f"execution status unknown ({text})", code)
    data = error.get("data")
    if code in (-2021, -2022) and type(data) is dict:  # order.cancelReplace, STOP_ON_FAILURE
        cancel, new = data.get("cancelResponse"), data.get("newOrderResponse")
        if data.get("cancelResult") == "SUCCESS" and type(cancel) is dict:
            return rejected(code, f"the order was cancelled, its replacement refused ({text}: "
                                  f"{new.get('msg') if type(new) is dict else ''})",
                            order_id=str(cancel.get("orderId")), status=OrderStatus.CANCELED)
        if data.get("newOrderResult") == "SUCCESS" and type(new) is dict:
            return order_outcome(new)
        if type(cancel) is dict and cancel.get("msg") == UNKNOWN_ORDER:
            return not_found(cancel.get("code"), f"{text}: {UNKNOWN_ORDER}")
        return rejected(code, text)
    if code == -2013 or (code in (-2010, -2011, -2038) and msg == UNKNOWN_ORDER):
        return not_found(code, text)
    if code in DUPLICATE_CODES or (code == -2010 and msg == DUPLICATE_ORDER):
        return ambiguous(f"duplicate client id: an earlier attempt placed this order ({text})", code)
    if code == -2026:  # archived: cancelled or expired over 90 days ago without a fill
        return accepted(None, status=OrderStatus.CANCELED, filled=Decimal(0), message=text)
    return rejected(code, text, retry_after=_retry_after(error) if status in (418, 429) else None)


def exception_outcome(exc: BaseException) -> Outcome:
    """A ccxt exception from a Binance endpoint: the venue's `{"code", "msg"}` it quotes, read as the WS answer
    would be (ccxt hides the HTTP status: a 418/429 is its DDoSProtection); anything else as ccxt_outcome says."""
    import ccxt

    found = re.search(r"\{.*\}", str(exc))
    try:
        body = json.loads(found.group(0)) if found else None
    except ValueError:
        body = None
    if type(body) is not dict or type(body.get("code")) is not int:
        return error_outcome(exc)
    return error_answer(429 if isinstance(exc, ccxt.DDoSProtection) else 400, body)


# REST (ccxt endpoint methods) -----------------------------------------------------------------------------------
_REST = {  # (market, method) -> the ccxt endpoint method; None: an endpoint ccxt 4.5.90 does not list
    (Market.SPOT, "order.place"): "private_post_order", (Market.SPOT, "order.cancel"): "private_delete_order",
    (Market.SPOT, "order.status"): "private_get_order",
    (Market.SPOT, "order.cancelReplace"): "private_post_order_cancelreplace",
    (Market.SPOT, "order.amend.keepPriority"): None,
    (Market.FUTURE, "order.place"): "fapiprivate_post_order", (Market.FUTURE, "order.cancel"): "fapiprivate_delete_order",
    (Market.FUTURE, "order.status"): "fapiprivate_get_order", (Market.FUTURE, "order.modify"): "fapiprivate_put_order",
    (Market.FUTURE, "algoOrder.place"): "fapiprivate_post_algoorder",
    (Market.FUTURE, "algoOrder.cancel"): "fapiprivate_delete_algoorder",
    (Market.FUTURE, "algoOrder.status"): "fapiprivate_get_algoorder",
}


async def _rest(client: Any, market: Market, method: str, params: dict[str, Any]) -> Outcome:
    params = {**params, "recvWindow": VALIDITY_MS}  # ccxt adds timestamp and signature
    name = _REST[(market, method)]
    try:
        if name is None:  # PUT /api/v3/order/amend/keepPriority
            response = await client.request("order/amend/keepPriority", ["private"], "PUT", params)
        else:
            response = await getattr(client, name)(params)
    except Exception as exc:  # noqa: BLE001 - every failure is classified; CancelledError is not an Exception
        return exception_outcome(exc)
    return result_outcome(response)


async def rest_place(client: Any, request: OrderRequest, prepared: Any = None) -> Outcome:
    return await _rest(client, request.market, *_place(request))


async def rest_cancel(client: Any, ref: OrderRef) -> Outcome:
    return await _rest(client, ref.market, *_cancel(ref))


async def rest_amend(client: Any, amend: Amend) -> Outcome:
    return await _rest(client, amend.ref.market, *_amend(amend))


async def rest_query(client: Any, ref: OrderRef) -> Outcome:
    """By order id when known, else by client id; a spot order our cancel renamed is found under `<id>-c`."""
    outcome = await _rest(client, ref.market, *_query(ref))
    if outcome.kind is OutcomeKind.NOT_FOUND and ref.market is Market.SPOT and not ref.order_id:
        renamed = OrderRef(market=ref.market, symbol=ref.symbol, client_order_id=canceled_name(ref.client_order_id))
        found = await _rest(client, ref.market, *_query(renamed))
        return outcome if found.kind is OutcomeKind.NOT_FOUND else found
    return outcome


NOTES = (
    "Binance: spot orders go over the WebSocket API on the user stream's socket, USD-M over ws-fapi; REST through "
    "ccxt is the fallback. Every request carries recvWindow 5000 ms (the venue refuses it afterwards, so a query "
    "after that is conclusive). Client ids are the strategy prefix + '-' + a base-36 number, at most 34 characters "
    "of [A-Za-z0-9_-], unique among OPEN orders only: the venue accepts an id again once its order is done, and a "
    "cancel renames the order to '<id>-c' (cancels and queries go by order id once known). Spot amends: a quantity "
    "decrease keeps the order (amend.keepPriority); any other change is a cancel-replace, a new order with a new "
    "order id and the full amount given (fills of the old order are not netted). USD-M amends (order.modify) are "
    "for limit orders and lose queue priority. TP/SL: USD-M only, as algo orders (reduce-only market on trigger; "
    "queried over REST; their stream events are ALGO_UPDATE). Spot has no reduce-only. Limits: spot 50 orders / "
    "10 s and 160 000 / day per account, USD-M 300 / 10 s and 1 200 / min; the budget here is the spot one "
    "(4/s, burst 10)."
)

ORDERS = OrderRules(
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    client_id=client_id,
    ws=WsTradingRules(
        url=ws_url, shared=True, encode=encode, decode=decode,
        ops=frozenset({"place", "cancel", "amend", "query"}), validity_ms=VALIDITY_MS,
        ping=None, ping_interval=20.0, rate=4.0, burst=10, request_id=request_id,
    ),
    rest=RestOrderRules(place=rest_place, cancel=rest_cancel, query=rest_query, amend=rest_amend,
                        validity_ms=VALIDITY_MS, rate=4.0),
    conditional=frozenset({Market.FUTURE}),
    renames_on_cancel=True,
    notes=NOTES,
)
