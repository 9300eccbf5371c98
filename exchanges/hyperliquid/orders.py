"""Hyperliquid order entry: cloids, L1 actions signed once and resent as they are, `post` requests on the private
socket, the REST fallback (ccxt's raw `/exchange` and `/info` calls) and what every answer means.

Docs: hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api — exchange-endpoint, websocket/post-requests,
nonces-and-api-wallets, info-endpoint ("Query order status by oid or cloid"), rate-limits. Annotated frames:

    → {"method": "post", "id": 7,             # a number, echoed; our private stream sends no ids
       "request": {"type": "action",          # or "info" for orderStatus
                   "payload": {"action": {"type": "order", "orders": [
                                  {"a": 0, "b": true, "p": "65000", "s": "0.01", "r": false,  # asset, buy, px, sz,
                                   "t": {"limit": {"tif": "Gtc"}},                          # reduce-only, type
                                   "c": "0x1a2b0000000000000000018f3a6b2c41"}],             # cloid: 0x + 32 hex
                                  "grouping": "na"},
                               "nonce": 1718000000123,          # unique per signer: the replay guard
                               "signature": {"r": "0x…", "s": "0x…", "v": 27},
                               "vaultAddress": null, "expiresAfter": 1718000010123}}}  # not executed after it
    ← {"channel": "post", "data": {"id": 7, "response": {"type": "action", "payload":
          {"status": "ok", "response": {"type": "order", "data": {"statuses": [
              {"resting": {"oid": 77738308}}          # | {"filled": {"totalSz", "avgPx", "oid"}} | {"error": "…"}
          ]}}}}}}                                     # whole action refused: {"status": "err", "response": "…"}
    ← {"channel": "post", "data": {"id": 8, "response": {"type": "info", "payload": {"type": "orderStatus",
          "data": {"status": "order", "order": {"order": {…"oid", "sz" (left), "origSz", "limitPx"…},
                                                "status": "open", "statusTimestamp": …}}}}}}  # | unknownOid
    ← {"channel": "post", "data": {"id": 9, "response": {"type": "error", "payload": "500 Internal Server Error"}}}

Idempotency: an order is signed once (`prepare`: a nonce from a monotonic allocator, `expiresAfter` = now +
VALIDITY_MS) and every attempt, WebSocket or REST, sends those same bytes. The venue executes a nonce at most once: a
resend of an action that landed is refused "Invalid nonce: duplicate nonce N" (the first attempt landed: ask the
venue by cloid), one past its `expiresAfter` "Action already expired" (this transmission did nothing; an earlier one
may have). Refusals that say nothing about earlier transmissions are AMBIGUOUS here, never final; REST `place` settles
them itself with a query by cloid. Cancels and amends are signed per attempt (repeating them is harmless).
"""

from __future__ import annotations

import json
import re
import threading
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from exchanges.hyperliquid.auth import sign_l1_action, wallet_address
from exchanges.hyperliquid.market_data import ASSET_INDEX
from exchanges.hyperliquid.normalize import _status
from exchanges.hyperliquid.rest import raw_symbol
from framework.errors import ConfigError
from framework.events import Market, OrderStatus, Side, now_ms, to_decimal
from framework.orders.ccxt_outcome import error_outcome
from framework.orders.model import (
    Amend,
    OrderRef,
    OrderRequest,
    OrderType,
    Outcome,
    OutcomeKind,
    Prepared,
    accepted,
    acked,
    ambiguous,
    not_found,
    rejected,
)
from framework.venue import Credentials, OrderRules, RestOrderRules, WsTradingRules

VALIDITY_MS = 10_000  # expiresAfter = signing time + this: long enough for a WS timeout and a REST resend
MAX_IN_FLIGHT = 100  # "Maximum simultaneous inflight post messages (across all connections)"
SLIPPAGE = Decimal("0.05")  # a market order is an IOC limit this far through its reference price (the SDK's 5 %)
CLOID_DIGITS = 32  # a cloid is 0x + 32 hex digits (16 bytes)
NUMBER_DIGITS = 16  # hex digits a strategy prefix must leave for the order's number (any 64-bit n)
_PREFIX = re.compile(r"0x[0-9a-f]*")
_CLOID = re.compile(r"0x[0-9a-f]{32}")
_TIF = {OrderType.LIMIT: "Gtc", OrderType.IOC: "Ioc", OrderType.POST_ONLY: "Alo", OrderType.MARKET: "Ioc"}
_CANCEL_MISS = "Order was never placed, already canceled, or filled"  # the venue cannot tell these apart
_ORDER_ERRORS = (  # per-order refusals (the action executed: they are final) by their wording
    ("Post only order would have immediately matched", "would_cross"),
    ("Insufficient margin", "insufficient_margin"),
    ("Cannot modify canceled or filled order", "not_open"),
    ("Order could not immediately match", "ioc_unmatched"),
    ("Reduce only order would increase position", "reduce_only"),
)
_TRANSPORT_STATUS = re.compile(r"\s*(\d{3})\b")


class NonceAllocator:
    """Nonces for one process's signers: the clock in ms, and never the same number twice (two actions signed in one
    millisecond get consecutive nonces; the venue wants them unique per signer and near its block time)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self, now: int) -> int:
        with self._lock:
            self._last = max(self._last + 1, now)
            return self._last


NONCES = NonceAllocator()


# client ids ---------------------------------------------------------------------------------------------------------
def client_id(market: Market, prefix: str, n: int) -> str:
    """The cloid: the strategy's prefix (`0x` + lowercase hex, the venue echoing cloids in lowercase) and n in hex,
    zero-padded to 32 digits. The prefix must leave NUMBER_DIGITS digits, so any n below 2**64 fits."""
    if type(prefix) is not str or not _PREFIX.fullmatch(prefix):
        raise ValueError(f"hyperliquid client ids are cloids (0x + 32 lowercase hex digits): the prefix must be 0x and "
                         f"lowercase hex digits, got {prefix!r}")
    width = CLOID_DIGITS - (len(prefix) - 2)
    if width < NUMBER_DIGITS:
        raise ValueError(f"hyperliquid cloid prefix {prefix!r} is too long: at most 0x and "
                         f"{CLOID_DIGITS - NUMBER_DIGITS} hex digits (the rest numbers the orders)")
    if type(n) is not int or not 0 <= n < 16 ** width:
        raise ValueError(f"hyperliquid order number {n!r} does not fit in {width} hex digits")
    return prefix + format(n, "x").rjust(width, "0")


# the wire -----------------------------------------------------------------------------------------------------------
def wire_number(value: Decimal) -> str:
    """A price or size as the venue hashes it (the SDK's float_to_wire): at most 8 decimals, no trailing zeros."""
    value = to_decimal(value)
    if value != value.quantize(Decimal("1e-8")):
        raise ValueError(f"hyperliquid takes at most 8 decimals, got {value}")
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def asset(symbol: str) -> int:
    """The perp's asset index (what actions name it by) from the venue's `meta` order, for the coins we list."""
    coin = raw_symbol(Market.FUTURE, symbol)
    if coin not in ASSET_INDEX:
        raise ValueError(f"hyperliquid asset index of {coin!r} is not known offline: add it to "
                         "exchanges/hyperliquid/market_data.ASSET_INDEX (its place in the venue's meta universe)")
    return ASSET_INDEX[coin]


def worst_price(reference: Decimal, side: Side) -> Decimal:
    """A market order's limit: SLIPPAGE through the reference price, to 5 significant figures (the venue's most)."""
    buy = side is Side.BUY
    price = reference * (1 + SLIPPAGE if buy else 1 - SLIPPAGE)
    return price.quantize(Decimal(1).scaleb(price.adjusted() - 4), rounding=ROUND_DOWN if buy else ROUND_UP)


def order_wire(request: OrderRequest) -> dict[str, Any]:
    """One order as an `order` action lists it (keys in the SDK's order: the hash covers their order)."""
    buy = request.side is Side.BUY
    if request.trigger_price is not None:  # TP/SL: a reduce-only market order once the trigger price is reached
        if request.trigger not in ("take_profit", "stop_loss"):
            raise ValueError(f"hyperliquid trigger must be take_profit or stop_loss, got {request.trigger!r}")
        price = worst_price(request.price or request.trigger_price, request.side)
        kind = {"trigger": {"isMarket": True, "triggerPx": wire_number(request.trigger_price),
                            "tpsl": "tp" if request.trigger == "take_profit" else "sl"}}
        reduce_only = True
    else:
        if request.price is None:
            raise ValueError("hyperliquid has no market orders without a price: give the reference price (the book's "
                             "side a market order takes), the order is an IOC limit 5 % through it")
        price = worst_price(request.price, request.side) if request.order_type is OrderType.MARKET else request.price
        kind = {"limit": {"tif": _TIF[request.order_type]}}
        reduce_only = request.reduce_only
    wire: dict[str, Any] = {"a": asset(request.symbol), "b": buy, "p": wire_number(price),
                            "s": wire_number(request.amount), "r": reduce_only, "t": kind}
    if not _CLOID.fullmatch(request.client_order_id):
        raise ValueError(f"hyperliquid cloid must be 0x and 32 lowercase hex digits, got {request.client_order_id!r}")
    wire["c"] = request.client_order_id
    return wire


def signed(action: dict, credentials: Any, now: int) -> Prepared:
    """The action signed with a fresh nonce, valid VALIDITY_MS: the /exchange body, sent as it is on every path."""
    secret = getattr(credentials, "secret", None)
    if not secret:
        raise ConfigError("hyperliquid orders are signed: set HYPERLIQUID_API_SECRET to the private key of the wallet "
                          "or of an API wallet approved for it")
    nonce = NONCES.next(now)
    expires = now + VALIDITY_MS
    signature = sign_l1_action(secret, action, nonce, None, expires)
    payload = {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None, "expiresAfter": expires}
    return Prepared(payload=payload, expires_at=expires)


def prepare(request: OrderRequest, credentials: Any, market: Market, now: int) -> Prepared:
    """Sign a new order once: every attempt of it sends these bytes (a new nonce would be a second order)."""
    return signed({"type": "order", "orders": [order_wire(request)], "grouping": "na"}, credentials, now)


def cancel_action(ref: OrderRef) -> dict:
    """cancelByCloid by the client id (the venue never renames it); by oid for an order placed without a cloid."""
    if _CLOID.fullmatch(ref.client_order_id or ""):
        return {"type": "cancelByCloid", "cancels": [{"asset": asset(ref.symbol), "cloid": ref.client_order_id}]}
    if ref.order_id is None:
        raise ValueError(f"hyperliquid cancels by cloid or oid: {ref.client_order_id!r} is not a cloid, no oid given")
    return {"type": "cancel", "cancels": [{"a": asset(ref.symbol), "o": int(ref.order_id)}]}


def _target(ref: OrderRef) -> int | str:
    """How a modify or a status query names the order: its cloid, which no modify changes (a modify may give the
    order a new oid); the oid only for an order without a cloid."""
    if _CLOID.fullmatch(ref.client_order_id or ""):
        return ref.client_order_id
    if ref.order_id is None:
        raise ValueError(f"hyperliquid names an order by cloid or oid: {ref.client_order_id!r} is not a cloid, no oid")
    return int(ref.order_id)


def modify_action(amend: Amend) -> dict:
    """batchModify of one order (its answer lists the order's status, as a place's does). The venue replaces the whole
    order: side, the new price and size (the new total), its cloid; GTC (the order type is not in the ref)."""
    ref = amend.ref
    price, amount = amend.price or ref.price, amend.amount or ref.amount
    if ref.side is None or price is None or amount is None:
        raise ValueError("hyperliquid modify restates the order: the ref needs its side, and the price and amount "
                         "the amend leaves unchanged")
    request = OrderRequest(market=ref.market, symbol=ref.symbol, side=ref.side, amount=amount, price=price,
                           client_order_id=ref.client_order_id)
    return {"type": "batchModify", "modifies": [{"oid": _target(ref), "order": order_wire(request)}]}


def status_query(ref: OrderRef, user: str) -> dict:
    """The info request of one order's status, by cloid (by oid for an order without one)."""
    return {"type": "orderStatus", "user": wallet_address(user), "oid": _target(ref)}


# WebSocket ----------------------------------------------------------------------------------------------------------
def encode(op: str, subject: Any, credentials: Any, market: Market, req_id: str, now: int,
           prepared: Prepared | None = None) -> dict:
    """A `post` frame: the prepared order as it is, a cancel / amend signed now, or an orderStatus info request."""
    if op == "place":
        if prepared is None:
            raise ValueError("hyperliquid orders are sent prepared (OrderRules.prepare): their bytes never change")
        request = {"type": "action", "payload": prepared.payload}
    elif op == "cancel":
        request = {"type": "action", "payload": signed(cancel_action(subject), credentials, now).payload}
    elif op == "amend":
        request = {"type": "action", "payload": signed(modify_action(subject), credentials, now).payload}
    elif op == "query":
        request = {"type": "info", "payload": status_query(subject, credentials.wallet_address)}
    else:
        raise ValueError(f"hyperliquid has no {op!r} request")
    return {"method": "post", "id": int(req_id), "request": request}


def decode(message: Any, market: Market) -> tuple[str | None, Outcome] | None:
    """A `post` answer → (its id, Outcome); an error frame about a post → (its id if echoed, else None, Outcome);
    None for stream pushes, pongs and subscription errors (the private stream's)."""
    if type(message) is not dict:
        return None
    channel = message.get("channel")
    if channel == "error":
        return _error_frame(str(message.get("data")))
    if channel != "post":
        return None
    data = message.get("data")
    req_id = data.get("id") if type(data) is dict else None
    if type(req_id) is not int:
        return None, ambiguous(f"post answer without a numeric id: {str(message)[:200]}")
    response = data.get("response")
    kind = response.get("type") if type(response) is dict else None
    payload = response.get("payload") if type(response) is dict else None
    if kind == "action":
        return str(req_id), action_outcome(payload)
    if kind == "info":
        inner = payload.get("data") if type(payload) is dict and payload.get("type") == "orderStatus" else payload
        return str(req_id), status_outcome(inner)
    if kind == "error":
        return str(req_id), transport_error(str(payload))
    return str(req_id), ambiguous(f"unreadable post answer: {str(response)[:200]}")


def _error_frame(text: str) -> tuple[str | None, Outcome] | None:
    """`{"channel": "error"}` about a post: one the venue could not parse echoes the request (its id: nothing
    executed). Any other error frame is the private stream's (its message limit, a subscription refused)."""
    if '"post"' not in text:
        return None
    echoed = text.partition(": ")[2]
    try:
        req_id = json.loads(echoed).get("id")
    except (ValueError, AttributeError):
        req_id = None
    if type(req_id) is not int:
        return None, ambiguous(text[:300])
    return str(req_id), rejected("unparsed", text[:300])


# answers ------------------------------------------------------------------------------------------------------------
def action_outcome(answer: Any) -> Outcome:
    """An /exchange answer (WS: the action payload) to one order, one cancel or one modify."""
    if type(answer) is not dict:
        return ambiguous(f"unreadable action answer: {str(answer)[:200]}")
    if answer.get("status") == "err":
        return action_refusal(str(answer.get("response")))
    response = answer.get("response")
    if answer.get("status") != "ok" or type(response) is not dict:
        return ambiguous(f"unreadable action answer: {str(answer)[:200]}")
    if response.get("type") == "default":  # a plain success (modify)
        return accepted()
    data = response.get("data")
    statuses = data.get("statuses") if type(data) is dict else None
    if type(statuses) is not list or len(statuses) != 1:
        return ambiguous(f"expected one status: {str(answer)[:200]}")
    entry = statuses[0]
    try:
        if entry == "success":  # a cancel's
            return accepted(status=OrderStatus.CANCELED)
        if entry in ("waitingForFill", "waitingForTrigger"):  # taken, no oid yet: the stream confirms it
            return acked(message=entry)
        if "error" in entry:
            return order_error(response.get("type"), str(entry["error"]))
        if "resting" in entry:
            return accepted(_oid(entry["resting"]["oid"]), status=OrderStatus.NEW)
        if "filled" in entry:  # filled at once (an IOC's rest, if any, cancelled): the stream tells the final state
            filled = entry["filled"]
            return accepted(_oid(filled["oid"]), filled=filled["totalSz"], average=filled["avgPx"])
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        return ambiguous(f"malformed status {str(entry)[:200]}: {exc!r}")
    return ambiguous(f"unknown status {str(entry)[:200]}")


def action_refusal(text: str) -> Outcome:
    """A whole action refused. Only what the same bytes always meet is final (a bad signature, a malformed action);
    a nonce or expiry refusal, or a rate limit, speaks for this transmission alone: an earlier one may have landed."""
    if text.startswith("Invalid nonce: duplicate nonce"):
        return ambiguous(text, "duplicate_nonce")  # this nonce executed before: by an earlier attempt
    if text.startswith("Invalid nonce"):
        return ambiguous(text, "invalid_nonce")
    if text.startswith("Action already expired"):
        return ambiguous(text, "expired")
    if text.startswith("Too many cumulative requests"):
        return ambiguous(text, "rate_limit")
    return rejected("action_refused", text)


def order_error(action_type: Any, text: str) -> Outcome:
    """`statuses[i].error`: the action executed and refused this order: final. A cancel's miss is NOT_FOUND (the venue
    says the same for a filled, a cancelled and an unknown order: ask it which)."""
    if action_type == "cancel" and text.startswith(_CANCEL_MISS):
        return not_found("not_open_or_unknown", text)
    code = next((c for wording, c in _ORDER_ERRORS if text.startswith(wording)), "order_refused")
    return rejected(code, text)


def transport_error(text: str) -> Outcome:
    """A post's `error` answer, the HTTP status the request would have met: 4xx final (not executed, 429 excepted),
    anything else unknown."""
    match = _TRANSPORT_STATUS.match(text)
    status = int(match.group(1)) if match else None
    if status == 429:
        return ambiguous(text, "rate_limit")
    if status is not None and 400 <= status < 500:
        return rejected(str(status), text)
    return ambiguous(text, None if status is None else str(status))


def status_outcome(answer: Any) -> Outcome:
    """An orderStatus answer → ACCEPTED with the order's state, or NOT_FOUND (`unknownOid`)."""
    if type(answer) is not dict:
        return ambiguous(f"unreadable order status: {str(answer)[:200]}")
    if answer.get("status") == "unknownOid":
        return not_found("unknownOid", "the venue knows no such order")
    try:
        entry = answer["order"]
        order = entry["order"]
        amount = to_decimal(order["origSz"])
        filled = amount - to_decimal(order["sz"])
        status = _status(entry["status"])
        if status is OrderStatus.NEW and filled:
            status = OrderStatus.PARTIALLY_FILLED
        return accepted(_oid(order["oid"]), status=status, amount=amount, filled=filled,
                        price=to_decimal(order["limitPx"]), message=entry["status"])
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        return ambiguous(f"malformed order status {str(answer)[:200]}: {exc!r}")


def _oid(value: Any) -> str:
    if type(value) is not int:
        raise TypeError(f"oid must be an integer, got {value!r}")
    return str(value)


# REST ---------------------------------------------------------------------------------------------------------------
def _venue_answer(exc: BaseException) -> Any:
    """The venue's JSON answer inside a ccxt exception (ccxt raises on `status: err` and per-order errors, with
    `hyperliquid <body>` as its text), or None when the exception is not an answer (a transport failure)."""
    text = str(exc)
    if not text.startswith("hyperliquid {"):
        return None
    try:
        return json.loads(text[len("hyperliquid "):])
    except ValueError:
        return None


async def _post(client: Any, payload: dict) -> Outcome:
    try:
        answer = await client.private_post_exchange(payload)
    except Exception as exc:  # noqa: BLE001 - every failure is classified (CancelledError is not an Exception)
        answer = _venue_answer(exc)
        if answer is None:
            return error_outcome(exc)
    return action_outcome(answer)


def _credentials(client: Any) -> Any:
    """What a REST cancel or amend signs with: the ccxt client's (its secret is our Credentials.secret)."""
    return Credentials(secret=getattr(client, "secret", None), wallet_address=getattr(client, "walletAddress", None))


async def rest_place(client: Any, request: OrderRequest, prepared: Prepared | None) -> Outcome:
    """POST /exchange with the prepared payload. A nonce or expiry refusal says nothing about an earlier attempt of
    these bytes: it is settled by asking for the cloid — found: that attempt placed it; missing after "expired" or a
    stale nonce: nothing executed nor ever will (the same bytes meet the same refusal); missing after "duplicate nonce":
    unknown (the venue took the nonce; the gateway's own rule decides, once the window has passed)."""
    if prepared is None:
        raise ValueError("hyperliquid orders are sent prepared (OrderRules.prepare): their bytes never change")
    outcome = await _post(client, prepared.payload)
    if outcome.code not in ("duplicate_nonce", "expired", "invalid_nonce"):
        return outcome
    ref = OrderRef(market=request.market, symbol=request.symbol, client_order_id=request.client_order_id)
    found = await rest_query(client, ref)
    if found.kind is OutcomeKind.ACCEPTED:
        return found
    if found.kind is OutcomeKind.NOT_FOUND and outcome.code != "duplicate_nonce":
        return rejected(outcome.code, f"{outcome.message}; no order has its cloid: not executed")
    return ambiguous(f"{outcome.message}; the order by cloid: {found.kind.value} {found.message}"[:300], outcome.code)


async def rest_cancel(client: Any, ref: OrderRef) -> Outcome:
    return await _post(client, signed(cancel_action(ref), _credentials(client), now_ms()).payload)


async def rest_amend(client: Any, amend: Amend) -> Outcome:
    return await _post(client, signed(modify_action(amend), _credentials(client), now_ms()).payload)


async def rest_query(client: Any, ref: OrderRef) -> Outcome:
    """POST /info orderStatus by oid or cloid (ccxt raises OrderNotFound on `unknownOid`)."""
    try:
        answer = await client.public_post_info(status_query(ref, getattr(client, "walletAddress", None)))
    except Exception as exc:  # noqa: BLE001 - classified below
        answer = _venue_answer(exc)
        if answer is None:
            return error_outcome(exc)
    return status_outcome(answer)


ORDERS = OrderRules(
    markets=frozenset({Market.FUTURE}),
    client_id=client_id,
    prepare=prepare,
    ws=WsTradingRules(
        shared=True,  # `post` on the private stream's socket
        encode=encode,
        decode=decode,
        ops=frozenset({"place", "cancel", "amend", "query"}),
        validity_ms=VALIDITY_MS,
        rate=30.0,  # 2000 messages a minute on all sockets, pings and subscriptions included
        burst=30,
        max_in_flight=MAX_IN_FLIGHT,
        request_id=str,  # a number: the n-th request's n
    ),
    rest=RestOrderRules(place=rest_place, cancel=rest_cancel, query=rest_query, amend=rest_amend,
                        validity_ms=VALIDITY_MS, rate=20.0),  # 1200 weight a minute; an action weighs 1, a query 2
    market_reference=True,  # a market order is an IOC limit through the book's price: the gateway gives it
    conditional=frozenset({Market.FUTURE}),  # trigger orders: tpsl tp / sl, reduce-only market on trigger
    renames_on_cancel=False,
    notes=("Hyperliquid perps: every order is an EIP-712 signed action (the private key of the wallet or of an "
           "approved API wallet in HYPERLIQUID_API_SECRET), signed once with a unique nonce and expiresAfter 10 s on; "
           "retries over WS or REST resend the same bytes, so a resend is refused as a duplicate nonce rather than "
           "placed twice. Client ids are cloids, 0x + 32 hex: a strategy prefix must be 0x and at most 16 lowercase "
           "hex digits. Market orders need a reference price (sent as an IOC limit 5 % through it); amends restate "
           "side, price and size and rest GTC. At most 100 posts in flight and 2000 socket messages a minute; REST "
           "1200 weight a minute. Only the coins of the offline asset-index table can be traded; spot is not wired."),
)
