"""MEXC order entry: spot over REST only (MEXC's v3 order endpoints through the key's ccxt client), futures closed.

MEXC has no WebSocket order entry (its sockets carry streams only; ccxt.pro's mexc has every `*Ws` order method
False) and no amend. Spot (https://www.mexc.com/api-docs/spot-v3/spot-account-trade/new-order):

    POST   /api/v3/order  symbol, side BUY|SELL, type LIMIT|MARKET|LIMIT_MAKER|IMMEDIATE_OR_CANCEL, quantity,
                          price, newClientOrderId, timestamp, recvWindow, signature
           → {"symbol": "MXUSDT", "orderId": "06a4…", "orderListId": -1, "price": "0.1", "origQty": "50",
              "type": "LIMIT", "side": "BUY", "transactTime": 1666676533741}       # no status: not yet matched
    DELETE /api/v3/order  symbol + orderId | origClientOrderId → the order, "status": "CANCELED"
    GET    /api/v3/order  symbol + orderId | origClientOrderId → the order ("status" NEW, PARTIALLY_FILLED,
                          FILLED, CANCELED, PARTIALLY_CANCELED)
                          unknown: {"code": -2013, "msg": "Order does not exist."}
    GET    /api/v3/openOrders  symbol → the open orders

Requests are signed by ccxt (HMAC-SHA256 over the query, `timestamp` + `recvWindow`); MEXC refuses one whose
`timestamp` is older than `recvWindow` when it arrives (700003). The raw endpoint methods are called, not
`create_order`: the amounts go out as the Decimal text the strategy gave (ccxt's precision helpers need market
precision an offline client does not have), and the answers are read by ccxt's `parse_order`.

What an error means (MEXC's spot error table, https://www.mexc.com/api-docs/spot-v3/error-code; ccxt's mexc map):
HTTP 5xx and codes 500 / 503 / 504 are "execution status UNKNOWN" (the docs' words): AMBIGUOUS, as is any
timeout or cut connection, a 429 / 510 rate limit (not documented as "not executed") and a code not in the table;
-2013 (query) and -2011 "Unknown order sent" (cancel: also a filled or cancelled order) are NOT_FOUND; every other
listed code is a refusal of the request: REJECTED.

Futures: MEXC closed contract order entry to API keys on 2022-07-25 ("Order (Under Maintenance)"); every order
endpoint answers `{"success": false, "code": 1002, "message": "Contract not allow place order!"}` (ccxt#14474,
#23320, JKorf/Mexc.Net#1): `closed`, and nothing is sent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import attrs

from framework.events import Market, Side
from framework.orders.ccxt_outcome import error_outcome, order_outcome
from framework.orders.model import (
    OrderRef, OrderRequest, OrderType, Outcome, OutcomeKind, ambiguous, not_found, rejected,
)  # fmt: skip
from framework.venue import OrderRules, RestOrderRules
from framework.orders.client_ids import prefixed_id

CLIENT_ID_MAX = 32  # newClientOrderId: MEXC documents no rule; 32 is what peers send (hummingbot's MAX_ORDER_ID_LEN)
VALIDITY_MS = 5_000  # the recvWindow every request is signed with (ccxt's option; MEXC's default, max 60000)
RATE = 12.0  # new order: "Shared with the cancel order endpoint, 12 requests/second" (MEXC new-order doc)
FUTURES_CLOSED = (
    "MEXC futures order entry is closed to API keys since 2022-07-25: its contract order endpoints answer code 1002 "
    "'Contract not allow place order!' (place and cancel futures orders on MEXC's website; positions and fills "
    "stay readable here)"
)
_TYPES = {OrderType.LIMIT: "LIMIT", OrderType.MARKET: "MARKET", OrderType.IOC: "IMMEDIATE_OR_CANCEL",
          OrderType.POST_ONLY: "LIMIT_MAKER"}  # fmt: skip
# Error codes of MEXC's spot table (and ccxt's map) that refuse the request: nothing was executed.
_REFUSED = frozenset({
    "-1121", "-1128", "-2011", "26", "400", "401", "402", "403", "406", "511", "513", "601", "602", "603", "701",
    "702", "703", "704", "1000", "1001", "1002", "10001", "10007", "10015", "10072", "10073", "10095", "10096",
    "10097", "10098", "10101", "10102", "2003", "2005", "2009", "30000", "30001", "30002", "30003", "30004", "30005",
    "30010", "30014", "30016", "30018", "30019", "30020", "30021", "30025", "30026", "30027", "30028", "30029", "30032",
    "30041", "30087", "33333", "44444", "60005", "70011", "88013", "700001", "700002", "700003", "700004", "700005",
    "700006", "700007", "700008", "700013", "730001", "730002", "730100",
})  # fmt: skip
_RATE_LIMITED = frozenset({"429", "510"})
_NOT_FOUND = {"query": frozenset({"-2013"}), "cancel": frozenset({"-2011", "-2013"})}


def client_id(market: Market, prefix: str, n: int) -> str:
    """`prefix` + n in base 36: at most 32 letters, digits, `_` and `-` (MEXC reports it as sent)."""
    return prefixed_id("mexc", prefix, n, limit=CLIENT_ID_MAX, allowed="0-9A-Za-z_-",
                       described="letters, digits, _ or -", separator="")


def venue_error(exc: BaseException) -> tuple[str | None, str]:
    """(MEXC's code, its message) from the answer a ccxt exception quotes ("mexc {…}"), else (None, "")."""
    text = str(exc)
    start = text.find("{")
    if start < 0:
        return None, ""
    try:
        body = json.loads(text[start:])
    except ValueError:
        return None, ""
    if not isinstance(body, dict) or body.get("code") in (None, ""):
        return None, ""
    return str(body["code"]), str(body.get("msg") or body.get("message") or "")


def classify(exc: BaseException, op: str, client: Any = None) -> Outcome:
    """What a failed place / cancel / query means, by MEXC's code when the answer has one (see the module doc)."""
    code, text = venue_error(exc)
    if code is None:
        outcome = error_outcome(exc)
    elif code in _NOT_FOUND.get(op, ()):
        outcome = not_found(code, text)
    elif code in _RATE_LIMITED:
        outcome = ambiguous(text or "rate limited", code)
    elif code in _REFUSED:
        outcome = rejected(code, text)
    else:  # 500 / 503 / 504 "status unknown", and codes the table does not have
        outcome = ambiguous(text or str(exc)[:300], code)
    if outcome.kind is OutcomeKind.AMBIGUOUS and outcome.code in ("429", "rate_limit"):
        outcome = _with_retry_after(outcome, client)
    return outcome


def _with_retry_after(outcome: Outcome, client: Any) -> Outcome:
    headers = getattr(client, "last_response_headers", None) or {}
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        seconds = None
    return outcome if seconds is None else attrs.evolve(outcome, retry_after=seconds)


def _text(value: Decimal) -> str:
    return format(value, "f")


async def _market(client: Any, symbol: str) -> dict:
    if client.markets is None:
        await client.load_markets()
    client.options["recvWindow"] = VALIDITY_MS  # the window our validity_ms promises is the one signed
    return client.market(symbol)


def _closed(market: Market) -> Outcome:
    return rejected("1002", FUTURES_CLOSED if market is Market.FUTURE else f"mexc takes no orders on {market.value}")


def _by(ref: OrderRef) -> dict[str, str]:
    return {"orderId": ref.order_id} if ref.order_id else {"origClientOrderId": ref.client_order_id}


async def place(client: Any, request: OrderRequest, prepared: Any = None) -> Outcome:
    """`POST /api/v3/order` with newClientOrderId; ACCEPTED with MEXC's order id (no status: the answer has none)."""
    if request.market is not Market.SPOT:
        return _closed(request.market)
    if request.trigger_price is not None or request.reduce_only:
        return rejected("unsupported", "MEXC spot takes no TP/SL or reduce-only orders (nothing was sent)")
    market = await _market(client, request.symbol)
    params = {
        "symbol": market["id"], "side": "BUY" if request.side is Side.BUY else "SELL",
        "type": _TYPES[request.order_type], "quantity": _text(request.amount),
        "newClientOrderId": request.client_order_id,
    }
    if request.order_type is not OrderType.MARKET:
        if request.price is None:
            return rejected("price", f"a {request.order_type.value} order needs a price (nothing was sent)")
        params["price"] = _text(request.price)
    try:
        answer = await client.spotPrivatePostOrder(params)
    except Exception as exc:  # noqa: BLE001 - every failure is classified; CancelledError is not an Exception
        return classify(exc, "place", client)
    return order_outcome(client.parse_order(answer, market))


async def cancel(client: Any, ref: OrderRef) -> Outcome:
    """`DELETE /api/v3/order` by order id when known, else by client id: ACCEPTED with the cancelled state."""
    if ref.market is not Market.SPOT:
        return _closed(ref.market)
    market = await _market(client, ref.symbol)
    try:
        answer = await client.spotPrivateDeleteOrder({"symbol": market["id"], **_by(ref)})
    except Exception as exc:  # noqa: BLE001
        return classify(exc, "cancel", client)
    return order_outcome(client.parse_order(answer, market))


async def query(client: Any, ref: OrderRef) -> Outcome:
    """`GET /api/v3/order` by order id when known, else by client id. MEXC's answer can say -2013 for an order
    placed a moment ago (ccxt#21614): before NOT_FOUND the symbol's open orders are read too. A refused query
    (auth, rate) says nothing of the order: AMBIGUOUS."""
    if ref.market is not Market.SPOT:
        return _closed(ref.market)
    market = await _market(client, ref.symbol)
    try:
        answer = await client.spotPrivateGetOrder({"symbol": market["id"], **_by(ref)})
    except Exception as exc:  # noqa: BLE001
        outcome = classify(exc, "query", client)
        if outcome.kind is OutcomeKind.NOT_FOUND:
            return await _open_order(client, market, ref, outcome)
        return _unknown(outcome)
    return order_outcome(client.parse_order(answer, market))


async def _open_order(client: Any, market: dict, ref: OrderRef, missing: Outcome) -> Outcome:
    try:
        rows = await client.spotPrivateGetOpenOrders({"symbol": market["id"]})
    except Exception as exc:  # noqa: BLE001
        return _unknown(classify(exc, "open_orders", client))
    matches = [row for row in (rows if isinstance(rows, list) else []) if isinstance(row, dict) and (
        str(row.get("orderId")) == ref.order_id if ref.order_id else row.get("clientOrderId") == ref.client_order_id)]
    # Oldest first: the newest with the client id, as MEXC's own lookup names it.
    return order_outcome(client.parse_order(matches[-1], market)) if matches else missing


def _unknown(outcome: Outcome) -> Outcome:
    if outcome.kind is OutcomeKind.REJECTED:
        return ambiguous(f"query refused: {outcome.message}", outcome.code)
    return outcome


NOTES = (
    "MEXC: spot orders over REST only (no WebSocket order entry, no amend: cancel and place again); futures order "
    "entry is closed to API keys (code 1002). Client ids: the strategy prefix + a base-36 number, at most 32 letters, "
    "digits, _ or - (MEXC documents no rule, nor whether it refuses a client id used before: ids are never reused). "
    "Place and cancel share 12 requests/second per account; every request is signed with a 5 s recvWindow. MEXC's "
    "order query can miss an order placed a moment ago (-2013), so a query also reads the open orders. 5xx answers "
    "are 'execution status unknown'; a cancel's 'Unknown order sent' (-2011) also answers a filled or cancelled "
    "order. No TP/SL orders on spot."
)

ORDERS = OrderRules(
    markets=frozenset({Market.SPOT}),
    closed={Market.FUTURE: FUTURES_CLOSED},
    client_id=client_id,
    ws=None,
    rest=RestOrderRules(place=place, cancel=cancel, query=query, amend=None, validity_ms=VALIDITY_MS, rate=RATE),
    order_types=frozenset({"limit", "market", "ioc", "post_only"}),
    conditional=frozenset(),
    renames_on_cancel=False,
    notes=NOTES,
)
