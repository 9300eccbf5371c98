"""Bybit v5 order entry (spot and linear): the `/v5/trade` socket, and REST through the ccxt client's raw v5
endpoints for the fallback and for reconciliation (Bybit's trade socket has no query op).

Docs: https://bybit-exchange.github.io/docs/v5/websocket/trade/guideline , /v5/order/create-order ,
/v5/order/amend-order , /v5/order/cancel-order , /v5/order/open-order , /v5/order/order-list , /v5/error .

The trade socket (`wss://stream.bybit.com/v5/trade`, its own socket: the private stream stays on /v5/private) is
logged in once with the private stream's `auth` op; each request then carries the header that bounds it:

    {"reqId": "k3x9-2f",                                  # ours, ≤ 36 characters, never twice (20006)
     "header": {"X-BAPI-TIMESTAMP": "1711001595207",      # server_time − recv_window ≤ timestamp < server_time + 1 s,
                "X-BAPI-RECV-WINDOW": "5000"},            # else refused: after that window it never executes
     "op": "order.create",                                # | order.amend | order.cancel
     "args": [{"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.010",
               "price": "65000.5", "timeInForce": "GTC", "orderLinkId": "mm1-lx3k2f9a0"}]}

and is answered by an ack only ("indicates that the request is successfully accepted. Please use websocket order
stream to confirm the order status"): ACKED, with the order id.

    {"reqId": "k3x9-2f", "retCode": 0, "retMsg": "OK", "op": "order.create",
     "data": {"orderId": "a4c1718e-…", "orderLinkId": "mm1-lx3k2f9a0"}, "retExtInfo": {},
     "header": {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "9", "X-Bapi-Limit-Reset-Timestamp": "…",
                "Traceid": "…", "Timenow": "…"}, "connId": "…"}

A `retCode` other than 0 is read by `classify`: the codes NautilusTrader awaits reconciliation for
(`is_bybit_ambiguous_order_error_code`: 429, 10000, 10006, 10016, 10019, 10403, 10429, 170001, 170005, 170007,
170032, 20003, 20006, 500000) and the timeouts and "still processing" answers Bybit words as such (170146, 170147,
110079, 170212) are AMBIGUOUS; a duplicate orderLinkId (110072, spot 170141; 10014) is AMBIGUOUS too: orderLinkId
is "always unique", so it says an order with our id exists — ours, placed by an earlier attempt — and a query
tells which (the REST place asks it at once); "order does not exist" (110001, spot 170213, 170143) is NOT_FOUND
for a cancel or amend (Bybit also says it when a cancel comes too late: it is not "never existed"); every other
code is a final REJECTED (10002: the request came outside its window and was not executed). An error naming no
`reqId` (Bybit leaves it out of some permission refusals: ccxt#29361) concerns every request in flight.

REST: `POST /v5/order/create|amend|cancel` (ack only, ACKED) with the very args the socket sends, signed by ccxt
with its `recvWindow` (set to `VALIDITY_MS` on each call); a query reads `GET /v5/order/realtime` by order id or
orderLinkId, then `GET /v5/order/history` (after a Bybit restart closed orders are only there), rows read by
normalize.py's order reader; NOT_FOUND only when both lists are empty.

Amounts are base units on both categories (linear `qty` is in the coin: contract size 1); spot market orders say
`marketUnit` baseCoin (Bybit's default for a market buy is the quote coin). TP/SL: a conditional market order
with `triggerPrice` — linear with `triggerDirection` (1 rises to it, 2 falls to it), `reduceOnly` and
`closeOnTrigger`; spot as a TP/SL order (`orderFilter` tpslOrder; Bybit infers the direction from the price).
Inverse contracts (qty in USD) are not traded here.
"""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from typing import Any

from exchanges.bybit.auth import auth_args
from exchanges.bybit.normalize import _order_update
from exchanges.bybit.rest import raw_symbol
from framework.events import Market, Side
from framework.orders.ccxt_outcome import error_outcome
from framework.orders.model import (
    Amend, OrderRef, OrderRequest, OrderType, Outcome, OutcomeKind, accepted, acked, ambiguous, not_found, rejected,
)
from framework.venue import Credentials, Endpoints, OrderRules, RestOrderRules, WsTradingRules
from framework.orders.client_ids import base36 as _base36, prefixed_id

CATEGORIES = {Market.SPOT: "spot", Market.FUTURE: "linear"}
VALIDITY_MS = 5000  # X-BAPI-RECV-WINDOW (and ccxt's recvWindow over REST): Bybit's default
LINK_ID_MAX = 36  # orderLinkId: "A max of 36 characters … numbers, letters, dashes, and underscores"
_LINK_ID = re.compile(r"[A-Za-z0-9_-]+")
TRADE_PATH = "/v5/trade"
_PRIVATE_PATH = "/v5/private"
OPS = {"place": "order.create", "amend": "order.amend", "cancel": "order.cancel"}
_ORDER_OPS = frozenset(OPS.values())
_SIDES = {Side.BUY: "Buy", Side.SELL: "Sell"}
_TIME_IN_FORCE = {OrderType.LIMIT: "GTC", OrderType.IOC: "IOC", OrderType.POST_ONLY: "PostOnly"}

# NautilusTrader's list (crates/adapters/bybit/src/http/error.rs), then the timeouts and "processing" answers.
AMBIGUOUS_CODES = frozenset({429, 10000, 10006, 10016, 10019, 10403, 10429, 170001, 170005, 170007, 170032, 20003,
                             20006, 500000, 170146, 170147, 110079, 170212})
DUPLICATE_CODES = frozenset({110072, 170141, 10014})  # the orderLinkId (or request) was seen: the order exists
NOT_FOUND_CODES = frozenset({110001, 170213, 170143})
_RATE_CODES = frozenset({429, 10006, 10429, 10403, 20003, 170005})
_ORIGIN = re.compile(r"origin_string\[[^\]]*\]")


# Request ids never repeat within a socket (20006); this process's own tag keeps them apart from a previous run's.
_RUN = _base36(time.time_ns() // 1_000_000)


def client_id(market: Market, prefix: str, n: int) -> str:
    """`<prefix>-<n in base 36>`: an orderLinkId as the order stream reports it (≤ 36 of [A-Za-z0-9_-])."""
    return prefixed_id("Bybit orderLinkId: bybit", prefix, n, limit=LINK_ID_MAX, allowed="A-Za-z0-9_-",
                       described="letters, digits, '-' and '_'")


def request_id(n: int) -> str:
    return f"{_RUN}-{_base36(n)}"


def trade_url(market: Market, endpoints: Endpoints) -> str:
    """The trade socket beside the private one: `wss://stream.bybit.com/v5/private` → `…/v5/trade`; an override
    that is a bare prefix (the simulator's `ws://127.0.0.1:<port>/bybit_<market>`) gets `/v5/trade` below it."""
    base = endpoints.ws.rstrip("/")
    if base.endswith(_PRIVATE_PATH):
        base = base[: -len(_PRIVATE_PATH)]
    return base + TRADE_PATH


# the request's arguments (the same on the socket and over REST) ------------------------------------------------
def _text(value: Decimal) -> str:
    return format(value, "f")


def _category(market: Market, symbol: str) -> str:
    pair, _, contract = symbol.partition(":")
    if market is Market.FUTURE and contract.partition("-")[0] == pair.split("/")[0]:
        raise ValueError(f"{symbol} is an inverse contract (qty in USD contracts): not traded here")
    return CATEGORIES[market]


def _target(market: Market, symbol: str) -> dict[str, str]:
    return {"category": _category(market, symbol), "symbol": raw_symbol(market, symbol)}


def _which(ref: OrderRef) -> dict[str, str]:
    """The order a cancel / amend / query names: Bybit never renames orderLinkId, the order id wins when known."""
    if ref.order_id:
        return {"orderId": ref.order_id}
    if ref.client_order_id:
        return {"orderLinkId": ref.client_order_id}
    raise ValueError("the order has neither an order id nor a client id")


def order_args(request: OrderRequest) -> dict[str, Any]:
    """order.create's (and POST /v5/order/create's) arguments. ValueError when Bybit cannot take the request."""
    market = request.market
    if request.amount <= 0:
        raise ValueError(f"amount must be positive, got {request.amount}")
    args: dict[str, Any] = {**_target(market, request.symbol), "side": _SIDES[request.side]}
    conditional = request.trigger_price is not None
    if conditional or request.order_type is OrderType.MARKET:
        args["orderType"] = "Market"
        if market is Market.SPOT:
            args["marketUnit"] = "baseCoin"  # qty in the base coin (a market buy's default is the quote coin)
    else:
        if request.price is None or request.price <= 0:
            raise ValueError(f"a {request.order_type.value} order needs a positive price")
        args.update(orderType="Limit", price=_text(request.price), timeInForce=_TIME_IN_FORCE[request.order_type])
    args["qty"] = _text(request.amount)
    if conditional:
        if request.trigger not in ("take_profit", "stop_loss") or request.trigger_price <= 0:
            raise ValueError("a TP/SL order needs trigger 'take_profit' or 'stop_loss' and a positive trigger price")
        args["triggerPrice"] = _text(request.trigger_price)
        if market is Market.SPOT:
            args["orderFilter"] = "tpslOrder"  # Bybit takes the direction from the price at placement
        else:
            # A sell's take profit waits for the price to rise to it (1), its stop loss for a fall (2); a buy's the
            # other way round.
            rises = (request.trigger == "take_profit") == (request.side is Side.SELL)
            args.update(triggerDirection=1 if rises else 2, reduceOnly=True, closeOnTrigger=True)
    elif request.reduce_only:
        if market is Market.SPOT:
            raise ValueError("Bybit spot has no reduce-only orders")
        args["reduceOnly"] = True
    if request.client_order_id:
        if len(request.client_order_id) > LINK_ID_MAX or not _LINK_ID.fullmatch(request.client_order_id):
            raise ValueError(f"client id {request.client_order_id!r} is not a Bybit orderLinkId")
        args["orderLinkId"] = request.client_order_id
    return args


def amend_args(amend: Amend) -> dict[str, Any]:
    """order.amend's arguments: the new total qty and/or price."""
    if amend.amount is None and amend.price is None:
        raise ValueError("an amend needs a new amount or a new price")
    ref = amend.ref
    args: dict[str, Any] = {**_target(ref.market, ref.symbol), **_which(ref)}
    if amend.amount is not None:
        args["qty"] = _text(amend.amount)
    if amend.price is not None:
        args["price"] = _text(amend.price)
    return args


def cancel_args(ref: OrderRef) -> dict[str, Any]:
    args: dict[str, Any] = {**_target(ref.market, ref.symbol), **_which(ref)}
    if ref.market is Market.SPOT:
        args["orderFilter"] = "tpslOrder" if ref.conditional else "Order"  # spot: "Order by default"
    return args


_ARGS = {"place": order_args, "amend": amend_args, "cancel": cancel_args}


# the trade socket ----------------------------------------------------------------------------------------------
def login(credentials: Credentials, market: Market, now_ms: int, req_id: str) -> list[dict]:
    """The private stream's `auth`: `[api_key, expires, hex HMAC-SHA256("GET/realtime" + expires)]`."""
    return [{"reqId": req_id, "op": "auth", "args": auth_args(credentials.api_key, credentials.secret, now_ms)}]


def login_answer(message: Any, market: Market) -> Outcome | None:
    """`{"retCode": 0, "op": "auth", …}`: logged in; another retCode (10004 invalid sign, 10001, 20001 repeat
    auth …): refused."""
    if not isinstance(message, dict) or message.get("op") != "auth":
        return None
    if message.get("retCode") == 0 or message.get("success") is True:
        return accepted()
    code = message.get("retCode", message.get("ret_code"))
    return rejected(code, str(message.get("retMsg") or message.get("ret_msg") or "login refused"))


def encode(op: str, subject: Any, credentials: Credentials, market: Market, req_id: str, now_ms: int,
           prepared: Any = None) -> dict:
    """One request on the logged-in socket (no per-request signature), valid for VALIDITY_MS from `now_ms`."""
    if op not in OPS:
        raise ValueError(f"Bybit's trade socket has no {op!r} (orders are queried over REST)")
    args = _ARGS[op](subject)
    return {"reqId": req_id, "header": {"X-BAPI-TIMESTAMP": str(now_ms), "X-BAPI-RECV-WINDOW": str(VALIDITY_MS)},
            "op": OPS[op], "args": [args]}


def decode(message: Any, market: Market) -> tuple[str | None, Outcome] | None:
    """An answer of the trade socket: (reqId, ACKED with the order id) or (reqId, what its retCode means);
    (None, AMBIGUOUS) for an error that names no request; None for pongs, the login's answer, anything else."""
    if not isinstance(message, dict) or "topic" in message:
        return None
    op = message.get("op")
    if op in ("pong", "ping", "auth"):
        return None
    code = message.get("retCode", message.get("ret_code"))
    failed = (code is not None and code != 0) or message.get("success") is False
    req_id = message.get("reqId")
    if not failed:
        if code != 0 or op not in _ORDER_OPS or req_id is None:
            return None
        data = message.get("data") if isinstance(message.get("data"), dict) else {}
        return str(req_id), acked(data.get("orderId"))
    text = str(message.get("retMsg") or message.get("ret_msg") or "")
    outcome = classify(code, text, op, message.get("header"))
    if req_id is None or req_id == "":
        return None, ambiguous(f"uncorrelated error: {outcome.code} {text}"[:300], outcome.code)
    return str(req_id), outcome


def classify(code: Any, message: str, op: Any = None, header: Any = None) -> Outcome:
    """A refusal's meaning (module docstring): AMBIGUOUS, NOT_FOUND (cancel / amend) or a final REJECTED."""
    message = _ORIGIN.sub("origin_string[…]", message)  # a sign error quotes what was signed, api key included
    try:
        number = int(code)
    except (TypeError, ValueError):
        return ambiguous(f"error without a retCode: {message}"[:300])
    if number in DUPLICATE_CODES:
        return ambiguous(f"the order already exists (duplicate id): {message}"[:300], number)
    if number in AMBIGUOUS_CODES:
        return ambiguous(message[:300] or "status unknown", number, retry_after=_retry_after(number, header))
    if number in NOT_FOUND_CODES and op not in ("order.create", "place"):
        return not_found(number, message[:300] or "order does not exist")
    return rejected(number, message[:300])


def _retry_after(code: int, header: Any) -> float | None:
    """Seconds until the rate limit resets, from the answer's header (X-Bapi-Limit-Reset-Timestamp − Timenow)."""
    if code not in _RATE_CODES or not isinstance(header, dict):
        return None
    try:
        wait = int(header["X-Bapi-Limit-Reset-Timestamp"]) - int(header["Timenow"])
    except (KeyError, TypeError, ValueError):
        return None
    return wait / 1000 if wait > 0 else None


def ping(now_ms: int) -> dict:
    return {"op": "ping"}


# REST through the ccxt client ----------------------------------------------------------------------------------
def _recv_window(client: Any) -> None:
    client.options["recvWindow"] = VALIDITY_MS  # the window the signed timestamp gives each request


def _venue_answer(exc: BaseException) -> dict | None:
    """The venue's JSON answer ccxt quotes in its exception (`bybit {"retCode": …}`), if any."""
    text = str(exc)
    start = text.find("{")
    if start < 0:
        return None
    try:
        body = json.loads(text[start:])
    except ValueError:
        return None
    return body if isinstance(body, dict) and "retCode" in body else None


def _failed(exc: BaseException, op: str) -> Outcome:
    body = _venue_answer(exc)
    if body is None:
        return error_outcome(exc)
    return classify(body.get("retCode"), str(body.get("retMsg") or ""), op)


def _ack(response: Any) -> Outcome:
    result = response.get("result") if isinstance(response, dict) else None
    if not isinstance(result, dict):
        return ambiguous("answer without a result")
    return acked(result.get("orderId"))


async def rest_place(client: Any, request: OrderRequest, prepared: Any = None) -> Outcome:
    try:
        args = order_args(request)
    except ValueError as exc:
        return rejected("invalid_request", str(exc))
    _recv_window(client)
    try:
        response = await client.privatePostV5OrderCreate(args)
    except Exception as exc:  # noqa: BLE001 - every failure is classified
        outcome = _failed(exc, "place")
        if outcome.kind is OutcomeKind.AMBIGUOUS and outcome.code is not None and int(outcome.code) in DUPLICATE_CODES:
            found = await rest_query(client, OrderRef(market=request.market, symbol=request.symbol,
                                                      client_order_id=request.client_order_id))
            return found if found.kind is OutcomeKind.ACCEPTED else outcome
        return outcome
    return _ack(response)


async def rest_cancel(client: Any, ref: OrderRef) -> Outcome:
    return await _post(client, "privatePostV5OrderCancel", cancel_args, ref, "cancel")


async def rest_amend(client: Any, amend: Amend) -> Outcome:
    return await _post(client, "privatePostV5OrderAmend", amend_args, amend, "amend")


async def _post(client: Any, method: str, make: Any, subject: Any, op: str) -> Outcome:
    try:
        args = make(subject)
    except ValueError as exc:
        return rejected("invalid_request", str(exc))
    _recv_window(client)
    try:
        response = await getattr(client, method)(args)
    except Exception as exc:  # noqa: BLE001 - every failure is classified
        return _failed(exc, op)
    return _ack(response)


async def rest_query(client: Any, ref: OrderRef) -> Outcome:
    """The order's state from /v5/order/realtime, else /v5/order/history; NOT_FOUND when neither has it."""
    try:
        params = {**_target(ref.market, ref.symbol), **_which(ref)}
    except ValueError as exc:
        return rejected("invalid_request", str(exc))
    _recv_window(client)
    for method in ("privateGetV5OrderRealtime", "privateGetV5OrderHistory"):
        try:
            response = await getattr(client, method)(dict(params))
        except Exception as exc:  # noqa: BLE001 - every failure is classified
            outcome = _failed(exc, "query")
            return outcome if outcome.kind is not OutcomeKind.REJECTED else ambiguous(outcome.message, outcome.code)
        rows = ((response or {}).get("result") or {}).get("list")
        if not isinstance(rows, list):
            return ambiguous(f"{method}: answer without a list")
        if rows:
            return _row_outcome(rows[0], ref.market)
    return not_found(None, "neither the open nor the history list has the order")


def _row_outcome(row: Any, market: Market) -> Outcome:
    """An order row of /v5/order/realtime|history, read as the order stream's rows are."""
    try:
        update = _order_update(row, market, CATEGORIES[market])
        average = row.get("avgPrice") or None
        return accepted(update.order_id, status=update.status, filled=update.filled, amount=update.amount,
                        price=update.price, average=Decimal(average) if average else None)
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        return ambiguous(f"order row could not be read: {exc!r}"[:300])


NOTES = (
    "Bybit: WebSocket orders on /v5/trade (its own socket, the private stream's auth op), answered by an ack only "
    "(the order stream or a REST query confirms); no query over the socket (REST /v5/order/realtime, then "
    "/v5/order/history). Each request carries X-BAPI-TIMESTAMP and X-BAPI-RECV-WINDOW 5000 ms: Bybit refuses it "
    "(10002) outside that window. orderLinkId ≤ 36 of [A-Za-z0-9_-], never reusable (110072 / spot 170141: read as "
    "'it exists'). Limits per UID: create, amend, cancel 10/s (spot create and cancel 20/s). Amounts in base units "
    "(linear qty is in the coin); spot market orders in baseCoin. TP/SL: conditional market orders (linear "
    "triggerDirection + reduceOnly + closeOnTrigger, spot tpslOrder). Inverse contracts and options are not traded. "
    "Not on demo trading (Bybit has no /v5/trade there)."
)

ORDERS = OrderRules(
    markets=frozenset(CATEGORIES),
    client_id=client_id,
    ws=WsTradingRules(
        url=trade_url,
        login=login,
        login_answer=login_answer,
        encode=encode,
        decode=decode,
        ops=frozenset(OPS),
        validity_ms=VALIDITY_MS,
        ping=ping,
        ping_interval=20.0,  # Bybit: "send the ping heartbeat packet every 20 seconds"
        rate=10.0,  # per UID: create / amend / cancel 10/s on linear (spot 20/s): the lower for every op
        burst=10,
        request_id=request_id,
    ),
    rest=RestOrderRules(place=rest_place, cancel=rest_cancel, query=rest_query, amend=rest_amend,
                        validity_ms=VALIDITY_MS, rate=10.0),
    conditional=frozenset(CATEGORIES),
    notes=NOTES,
)
