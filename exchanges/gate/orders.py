"""Gate order entry: client ids (`t-` texts), the WebSocket API on the private socket (`spot.login` /
`futures.login`, then `*.order_place` / `_cancel` / `_amend` / `_status`), and the REST fallback through the ccxt
client's raw endpoints (the same order model Gate's WebSocket API carries), with price-triggered TP/SL on futures.

Docs: https://www.gate.io/docs/developers/apiv4/ws/en/#websocket-api (spot) and
https://www.gate.io/docs/developers/futures/ws/en/#futures-account-trade (futures); REST "Spot" / "Futures" order
endpoints. Facts with their sources: ../shared/orders/README.md §5.

An order_place is answered twice (docs "Ack Notification", then "Order Place Notification")::

    {"request_id": "o-17", "ack": true, "header": {"status": "200", "channel": "spot.order_place", …},
     "data": {"result": {"req_id": "o-17", "req_param": {…}, …}}}             the request, echoed: decode → None
    {"request_id": "o-17", "header": {"status": "200", "x_in_time": 1681985856667508,
                                      "x_out_time": 1681985856667598, …},   µs: the venue's own handling time
     "data": {"result": {"id": "1700664330", "text": "t-mm-1x2y", "status": "open", "left": "1", …}}}
                                                                            the order (REST model): ACCEPTED
    {"request_id": "o-17", "header": {"status": "400", …},
     "data": {"errs": {"label": "BALANCE_NOT_ENOUGH", "message": "…"}}}    REJECTED (5xx / 429: AMBIGUOUS)

The ack only echoes the request (it says the socket read it, not that the order exists), so it decodes to None and
the result frame, which the venue sends right after, is the answer: ACCEPTED with the order's state or a definite
refusal. decode keeps no state: a result frame reads the same whether its ack came, was lost or came after it.

Decisions:
- Client ids: `<prefix>-<n in base 36>`, sent as `text: "t-" + id` (Gate: `t-` then at most 28 of
  [0-9A-Za-z_.-]); normalize strips the `t-`, so `client_id` returns the id without it.
- Gate does not enforce unique texts ("the latter one overrides"): a text names its newest order. Cancels, amends
  and queries go by venue order id once it is known.
- A lookup by text finds an order only while it rests or shortly after (spot 1 h, futures 60 s; gateapi-go#41: even
  less), so the REST query looks through open orders, finished orders and fills before it answers NOT_FOUND, and a
  WebSocket status lookup that misses is AMBIGUOUS (the gateway then asks REST), never NOT_FOUND.
- Validity: WebSocket requests carry `x-gate-exptime` (now + `WS_VALIDITY_MS`) in `req_header`; REST placements
  carry it as a header (REST docs of POST /spot/orders and POST /futures/{settle}/orders; on price orders it is sent
  too, though their docs do not name it). Without it Gate's only bound is its 60 s `Timestamp` window.
- Futures sizes are whole contracts (amount / the contract size normalize uses); an amount that is not is refused.
- Gate sizes a spot market buy in the quote coin, and reports its amount and what is left in quote (the stream's
  rows too), so a market buy goes out as an IOC limit for the base amount through its reference price
  (`OrderRules.market_reference`: the gateway gives the ask it would take; `MARKET_BUY_SLIPPAGE` above it). Market
  sells (base-sized) and futures market orders (price 0, ioc) are Gate's own.
- Refusals to a socket that is not logged in (401/403) are NOT_SENT: Gate did not execute them; REST may.
"""

from __future__ import annotations

import json
from decimal import ROUND_UP, Decimal, InvalidOperation
from typing import Any

import attrs

from exchanges.gate.auth import seconds, sign
from exchanges.gate.normalize import normalize
from exchanges.gate.rest import contract_size, raw_symbol
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side
from framework.events import now_ms as _now_ms
from framework.orders.ccxt_outcome import error_outcome
from framework.orders.model import (
    Amend, OrderRef, OrderRequest, OrderType, Outcome, OutcomeKind, accepted, ambiguous, not_found, not_sent,
    rejected,
)
from framework.venue import Credentials, OrderRules, RestOrderRules, WsTradingRules
from framework.orders.client_ids import prefixed_id

TEXT_PREFIX = "t-"  # Gate's mark of a user-defined order text
TEXT_MAX = 28  # bytes after the prefix
EXPTIME = "x-gate-exptime"  # ms after which Gate refuses the request (WebSocket req_header, REST header)
WS_VALIDITY_MS = 5_000  # x-gate-exptime of a WebSocket request: now + this
REST_VALIDITY_MS = 5_000  # x-gate-exptime of a REST placement (else: Gate's 60 s Timestamp window)
SETTLE = "usdt"
_TOPIC = {Market.SPOT: "spot", Market.FUTURE: "futures"}
_CHANNELS = {"place": "order_place", "cancel": "order_cancel", "amend": "order_amend", "query": "order_status"}
_TIF = {OrderType.LIMIT: "gtc", OrderType.IOC: "ioc", OrderType.POST_ONLY: "poc", OrderType.MARKET: "ioc"}
# Labels whose refusal says the order is not there (cancel, amend, query); a lookup by text that misses proves
# nothing on Gate (see the module's decisions).
_MISSING = frozenset({"ORDER_NOT_FOUND", "CLIENT_ID_NOT_FOUND", "AUTO_ORDER_NOT_FOUND"})
_UNKNOWN_LABELS = frozenset({"SERVER_ERROR", "INTERNAL", "TOO_BUSY", "TOO_MANY_REQUESTS"})
_NOT_LOGGED_IN = frozenset({"AUTHENTICATION_FAILED"})
MARKET_BUY_SLIPPAGE = Decimal("0.05")  # how far above its reference price a spot market buy may fill
PAGE = 100  # rows per page of the order lists the REST query reads
PAGES = 5  # pages of finished orders read before giving up on finding one there
TRADES_LIMIT = 1000


# client ids ---------------------------------------------------------------------------------------------------------


def client_id(market: Market, prefix: str, n: int) -> str:
    """`<prefix>-<n in base 36>`: the id normalize reports (the wire text is `t-` + it, ≤ 28 after it)."""
    return prefixed_id("gate (after t-)", prefix, n, limit=TEXT_MAX, allowed=r"0-9A-Za-z_.\-",
                       described="0-9 A-Z a-z _ . -")


def text(client_order_id: str) -> str:
    """The wire text of a client id."""
    return TEXT_PREFIX + client_order_id


# the order model (WebSocket req_param and REST body alike) ---------------------------------------------------------
def _plain(value: Decimal) -> str:
    return format(value, "f")


def contracts(symbol: str, amount: Decimal) -> int:
    """Base units as Gate's whole contracts (the contract size normalize uses); ValueError when not whole."""
    raw = raw_symbol(Market.FUTURE, symbol)
    size = contract_size(Market.FUTURE, raw)
    try:
        count = amount / size
    except (InvalidOperation, ZeroDivisionError):
        count = Decimal("NaN")
    if not count.is_finite() or count != count.to_integral_value():
        raise ValueError(f"gate futures sizes are whole contracts: {amount} is {count} contracts of {size} "
                         f"{symbol.split('/')[0]}")
    return int(count)


def _signed(side: Side | str, count: int) -> int:
    """Gate's signed size: + buys, - sells (OrderRef.side may come as the plain text "buy" / "sell")."""
    return count if Side.parse(side) is Side.BUY else -count


def through(reference: Decimal) -> Decimal:
    """The limit of a spot market buy: `MARKET_BUY_SLIPPAGE` above the reference price, at its decimals (up)."""
    step = Decimal(1).scaleb(min(reference.as_tuple().exponent, 0))
    return (reference * (1 + MARKET_BUY_SLIPPAGE)).quantize(step, rounding=ROUND_UP)


def order_param(request: OrderRequest) -> dict[str, Any]:
    """The order as Gate's order model (`POST /spot/orders`, `POST /futures/{settle}/orders`, the WebSocket API's
    `req_param`). ValueError when Gate cannot take it as asked (whole contracts, a quote-sized market buy)."""
    market, kind = request.market, request.order_type
    if kind is not OrderType.MARKET and request.price is None:
        raise ValueError(f"a {kind.value} order needs a price")
    raw = raw_symbol(market, request.symbol)
    if market is Market.SPOT:
        param: dict[str, Any] = {"text": text(request.client_order_id), "currency_pair": raw,
                                 "type": "market" if kind is OrderType.MARKET else "limit",
                                 "side": request.side.value, "time_in_force": _TIF[kind]}
        param["amount"] = _plain(request.amount)
        if kind is OrderType.MARKET and request.side is Side.BUY:
            # Gate sizes a market buy in quote: sent as an IOC limit of the base amount through the reference price
            if request.price is None:
                raise ValueError("a gate spot market buy goes out as an IOC limit through a reference price (Gate "
                                 "sizes market buys in quote): give price=, the ask it is meant to take")
            param.update(type="limit", price=_plain(through(request.price)))
        elif kind is not OrderType.MARKET:
            param["price"] = _plain(request.price)
        return param
    param = {"contract": raw, "size": _signed(request.side, contracts(request.symbol, request.amount)),
             "price": "0" if kind is OrderType.MARKET else _plain(request.price), "tif": _TIF[kind],
             "text": text(request.client_order_id)}
    if request.reduce_only:
        param["reduce_only"] = True
    return param


def _order_key(ref: OrderRef) -> str:
    """What names an order in a cancel / amend / status: the venue id once known (a text names the newest order
    that carries it), else the text."""
    return ref.order_id or text(ref.client_order_id)


def cancel_param(ref: OrderRef) -> dict[str, Any]:
    if ref.market is Market.SPOT:
        return {"order_id": _order_key(ref), "currency_pair": raw_symbol(ref.market, ref.symbol)}
    return {"order_id": _order_key(ref)}


def amend_param(amend: Amend) -> dict[str, Any]:
    """Spot: the new total `amount` (base) and/or `price`; futures: the new total `size` (signed contracts, so the
    order's side must be known) and/or `price`."""
    ref = amend.ref
    if amend.amount is None and amend.price is None:
        raise ValueError("an amend changes the amount or the price")
    param = cancel_param(ref)
    if amend.amount is not None:
        if ref.market is Market.SPOT:
            param["amount"] = _plain(amend.amount)
        elif ref.side is None:
            raise ValueError("gate futures amends give the signed size: the order's side must be known")
        else:
            param["size"] = _signed(ref.side, contracts(ref.symbol, amend.amount))
    if amend.price is not None:
        param["price"] = _plain(amend.price)
    return param


# reading Gate's order rows (both paths) -----------------------------------------------------------------------------
def _wire(value: Any) -> Any:
    """A parsed JSON value with floats (ccxt parses numbers as floats) back as their text, which is what Gate sent
    for up to 15 significant digits."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _ms(value: Any) -> str:
    """Seconds (REST futures `create_time`, a number with ms decimals) as whole ms text."""
    return str(int(Decimal(str(value)).scaleb(3)))


def order_update(row: dict, market: Market) -> OrderUpdate:
    """An order row of Gate's REST model (a WebSocket API result, a REST answer) read by the stream's normalize:
    the row is given the few fields the stream's row has and the REST model names otherwise."""
    row = _wire(row)
    if market is Market.SPOT:
        finished = row.get("status") in ("closed", "cancelled")
        moved = str(row.get("left")) != str(row.get("amount"))
        row["event"] = "finish" if finished else ("update" if moved else "put")
        if row.get("update_time_ms") in (None, ""):
            row["update_time_ms"] = _ms(row.get("update_time") or row["create_time"])
        channel = "spot.orders"
    else:
        if row.get("create_time_ms") in (None, ""):
            row["create_time_ms"] = _ms(row["create_time"])
        if row.get("finish_time") not in (None, "", 0, "0") and row.get("finish_time_ms") in (None, ""):
            row["finish_time_ms"] = _ms(row["finish_time"])
        channel = "futures.orders"
    [update] = normalize({"channel": channel, "event": "update", "result": [row]}, market)
    return update


def _dec(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    return Decimal(str(value))


def row_outcome(row: Any, market: Market) -> Outcome:
    """ACCEPTED with the order's state as Gate's row says it (amounts in base units). A row too thin to read (an
    `action_mode: ACK` answer: id and text) gives ACCEPTED with the id alone."""
    if not isinstance(row, dict) or row.get("id") in (None, ""):
        return ambiguous(f"gate answered success without an order: {str(row)[:200]}")
    try:
        update = order_update(row, market)
    except (NormalizeError, KeyError, TypeError, ValueError, ArithmeticError):  # a thin row still names the order
        return accepted(row.get("id"), client_order_id=_client_of(row.get("text")))
    amount, filled = update.base_amount, update.base_filled
    average = _dec(row.get("avg_deal_price" if market is Market.SPOT else "fill_price")) or None
    if market is Market.SPOT and update.order_type == "market" and update.side is Side.BUY:
        # amount and left are quote; Gate's filled_amount is the base bought (absent: from the quote spent)
        filled = _dec(row.get("filled_amount"))
        spent = _dec(row.get("filled_total"))
        if filled is None and spent is not None and average:
            filled = spent / average
        amount = filled if update.status.is_terminal else None
    return accepted(update.order_id, client_order_id=update.client_order_id, status=update.status, amount=amount,
                    filled=filled, price=update.price, average=average)


def _client_of(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith(TEXT_PREFIX) and len(value) > len(TEXT_PREFIX):
        return value[len(TEXT_PREFIX):]
    return None


def label_outcome(status: int | None, label: str | None, message: str, op: str | None,
                  retry_after: float | None = None, ws: bool = False) -> Outcome:
    """A refusal's meaning. 5xx and rate limits: AMBIGUOUS (it may have executed, or be retried after a query);
    the order is not there (cancel / amend): NOT_FOUND; a status lookup that misses: AMBIGUOUS (finished orders
    drop out of it: only the REST query's further search may say NOT_FOUND); a socket not logged in: NOT_SENT
    (not executed: REST may try); any other 4xx: REJECTED (definite, nothing executed)."""
    code = label or (str(status) if status is not None else None)
    text_ = f"{label}: {message}" if label else message
    if (status is not None and status >= 500) or label in _UNKNOWN_LABELS or status == 429:
        return ambiguous(text_, code, retry_after=retry_after)
    if label in _MISSING and op == "query":
        return ambiguous(f"{text_} (a lookup misses orders Gate no longer finds by it: the REST query looks "
                         f"further)", code)
    if label in _MISSING and op in ("cancel", "amend"):
        return not_found(code, text_)
    if ws and (status in (401, 403) or label in _NOT_LOGGED_IN):
        return not_sent(f"refused on the socket, not executed: {text_}", code=code)
    return rejected(code, text_)


# the WebSocket API ----------------------------------------------------------------------------------------------
def _api_signature(secret: str, channel: str, req_param: str, time_s: int) -> str:
    """Docs "Login": hex HMAC-SHA512 of `"api\\n<channel>\\n<req_param>\\n<timestamp>"`."""
    return sign(secret, f"api\n{channel}\n{req_param}\n{time_s}")


def login(credentials: Credentials, market: Market, now_ms: int, req_id: str) -> list[dict]:
    """`spot.login` / `futures.login` (req_param is the empty string in the signature): after it the socket's
    `api` requests need no signature of their own."""
    channel, time_s = f"{_TOPIC[market]}.login", seconds(now_ms)
    return [{"time": time_s, "channel": channel, "event": "api", "payload": {
        "api_key": credentials.api_key, "signature": _api_signature(credentials.secret, channel, "", time_s),
        "timestamp": str(time_s), "req_id": req_id,
    }}]


def _header(message: Any) -> dict | None:
    header = message.get("header") if isinstance(message, dict) else None
    return header if isinstance(header, dict) else None


def _status(header: dict) -> int | None:
    try:
        return int(str(header.get("status")))
    except ValueError:
        return None


def _errs(message: dict) -> dict | None:
    data = message.get("data")
    errs = data.get("errs") if isinstance(data, dict) else None
    return errs if isinstance(errs, dict) else None


def login_answer(message: Any, market: Market) -> Outcome | None:
    header = _header(message)
    if header is None or header.get("channel") != f"{_TOPIC[market]}.login" or message.get("ack") is True:
        return None
    errs = _errs(message)
    if _status(header) == 200 and errs is None:
        return accepted()
    errs = errs or {}
    return rejected(errs.get("label") or header.get("status"), f"{errs.get('label')}: {errs.get('message')}")


def encode(op: str, subject: Any, credentials: Credentials, market: Market, req_id: str, now_ms: int,
           prepared: Any = None) -> dict:
    """One `api` request on a logged-in socket. Place / cancel / amend carry `x-gate-exptime` (Gate refuses them
    after it). TP/SL orders have no WebSocket op (REST price orders): ValueError, which the gateway takes as "not
    over the socket" (REST at once)."""
    if op not in _CHANNELS:
        raise ValueError(f"gate's WebSocket API has no {op!r} op")
    if op == "place":
        conditional = subject.trigger_price is not None
    else:
        conditional = (subject.ref if op == "amend" else subject).conditional
    if conditional:
        raise ValueError("gate's WebSocket API has no price-triggered orders: TP/SL go over REST")
    if op == "place":
        param = order_param(subject)
    elif op == "amend":
        param = amend_param(subject)
    else:
        param = cancel_param(subject)
    payload: dict[str, Any] = {"req_id": req_id, "req_param": param}
    if op != "query":
        payload["req_header"] = {EXPTIME: str(now_ms + WS_VALIDITY_MS)}
    return {"time": seconds(now_ms), "channel": f"{_TOPIC[market]}.{_CHANNELS[op]}", "event": "api",
            "payload": payload}


_OPS = {channel: op for op, channel in _CHANNELS.items()}


def _server_ms(header: dict) -> float | None:
    x_in, x_out = header.get("x_in_time"), header.get("x_out_time")
    try:
        return float(Decimal(str(x_out)) - Decimal(str(x_in))) / 1000
    except (InvalidOperation, TypeError, ValueError):
        return None


def _retry_after(header: dict) -> float | None:
    reset = header.get("x_gate_ratelimit_reset_timestamp", header.get("x_gat_ratelimit_reset_timestamp"))
    try:
        wait = (int(str(reset)) - int(str(header.get("response_time")))) / 1000
    except (TypeError, ValueError):
        return None
    return max(wait, 0.0)


def decode(message: Any, market: Market) -> tuple[str | None, Outcome] | None:
    """An `api` answer → (request id, Outcome); the ack frame, login answers and everything the private stream
    reads (updates, subscribe acks, pongs) → None."""
    header = _header(message)
    if header is None or message.get("ack") is True:
        return None
    channel = str(header.get("channel") or "")
    topic, _, name = channel.partition(".")
    if name == "login":
        return None
    op = _OPS.get(name)
    req_id = message.get("request_id")
    req_id = str(req_id) if req_id not in (None, "") else None
    status, errs = _status(header), _errs(message)
    if status is None and errs is None:
        return (req_id, ambiguous(f"gate answer without a status: {str(message)[:200]}")) if req_id else None
    if errs is not None or status != 200:
        errs = errs or {}
        outcome = label_outcome(status, errs.get("label"), str(errs.get("message") or ""), op,
                                _retry_after(header), ws=True)
        if req_id is None:
            return None, ambiguous(f"gate error naming no request: {outcome.message}", outcome.code)
        return req_id, outcome
    if req_id is None or op is None or topic != _TOPIC[market]:
        return None
    data = message.get("data")
    outcome = row_outcome(data.get("result") if isinstance(data, dict) else None, market)
    server_ms = _server_ms(header)
    return req_id, outcome if server_ms is None else attrs.evolve(outcome, server_ms=server_ms)


def request_id(n: int) -> str:
    """`o-<n>`: never a number, so never one of the ids the private stream's subscribes carry."""
    return f"o-{n}"


# REST through the ccxt client ---------------------------------------------------------------------------------------
def _label_of(exc: BaseException) -> tuple[str | None, str]:
    """The label and message of Gate's error body in a ccxt exception's text (`gate {"label": …}`)."""
    text_ = str(exc)
    start = text_.find("{")
    if start < 0:
        return None, text_
    try:
        body = json.loads(text_[start:])
    except ValueError:
        return None, text_
    if not isinstance(body, dict) or not body.get("label"):
        return None, text_
    return str(body["label"]), str(body.get("message") or body.get("detail") or "")


def rest_error(exc: BaseException, op: str) -> Outcome:
    """A ccxt exception: Gate's labelled refusal read by its label (ccxt files some, ORDER_FINISHED among them,
    under a catch-all class); anything else (network, 5xx without a body) as ccxt_outcome reads it."""
    label, message = _label_of(exc)
    if label is None:
        outcome = error_outcome(exc)
        if outcome.kind is OutcomeKind.NOT_FOUND and op not in ("cancel", "amend", "query"):
            return ambiguous(outcome.message)
        return outcome
    return label_outcome(None, label, message, op)


def _settle(param: dict) -> dict:
    return {"settle": SETTLE, **param}


async def _post_expiring(client: Any, market: Market, path: str, params: dict) -> Any:
    """POST an order with `x-gate-exptime` (now + REST_VALIDITY_MS): Gate refuses it after that. ccxt's Gate signing
    takes no extra header, so the request is signed by ccxt (`sign`), given the header (it is not signed) and sent
    by ccxt (`fetch`: its error handling), after ccxt's rate limiter, as its implicit endpoint methods do."""
    api = ["private", "spot" if market is Market.SPOT else "futures"]
    if market is Market.FUTURE:
        params = _settle(params)
    if client.enableRateLimit:
        await client.throttle(client.calculate_rate_limiter_cost(api, "POST", path, params, {}))
    signed = client.sign(path, api, "POST", params)
    headers = {**(signed["headers"] or {}), EXPTIME: str(_now_ms() + REST_VALIDITY_MS)}
    return await client.fetch(signed["url"], "POST", headers, signed["body"])


async def rest_place(client: Any, request: OrderRequest, prepared: Any = None) -> Outcome:
    if request.trigger_price is not None:
        return await place_conditional(client, request)
    try:
        param = order_param(request)
    except ValueError as exc:
        return rejected("invalid", str(exc))
    try:
        row = await _post_expiring(client, request.market, "orders" if request.market is Market.SPOT
                                   else "{settle}/orders", param)
    except Exception as exc:  # noqa: BLE001 - classified: every outcome is a decision of the gateway's
        return rest_error(exc, "place")
    return row_outcome(row, request.market)


async def rest_cancel(client: Any, ref: OrderRef) -> Outcome:
    if ref.conditional:
        return await cancel_conditional(client, ref)
    param = cancel_param(ref)
    try:
        if ref.market is Market.SPOT:
            row = await client.privateSpotDeleteOrdersOrderId(param)
        else:
            row = await client.privateFuturesDeleteSettleOrdersOrderId(_settle(param))
    except Exception as exc:  # noqa: BLE001 - classified
        return rest_error(exc, "cancel")
    return row_outcome(row, ref.market)


async def rest_amend(client: Any, amend: Amend) -> Outcome:
    try:
        param = amend_param(amend)
    except ValueError as exc:
        return rejected("invalid", str(exc))
    try:
        if amend.ref.market is Market.SPOT:
            row = await client.privateSpotPatchOrdersOrderId(param)
        else:
            row = await client.privateFuturesPutSettleOrdersOrderId(_settle(param))
    except Exception as exc:  # noqa: BLE001 - classified
        return rest_error(exc, "amend")
    return row_outcome(row, amend.ref.market)


class _Unsure(Exception):
    """A lookup step could not answer (its Outcome says why): the query is AMBIGUOUS, never NOT_FOUND."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


async def _call(method: Any, params: dict) -> Any:
    """A lookup: its answer, or None when Gate says the order is not there; _Unsure for anything else."""
    try:
        return await method(params)
    except Exception as exc:  # noqa: BLE001 - classified
        if _label_of(exc)[0] in _MISSING:
            return None  # this lookup missed it: the lists that follow decide
        raise _Unsure(rest_error(exc, "query")) from None


def _matches(row: Any, ref: OrderRef) -> bool:
    if not isinstance(row, dict):
        return False
    if ref.order_id is not None:
        return str(row.get("id")) == ref.order_id or str(row.get("order_id")) == ref.order_id
    return row.get("text") == text(ref.client_order_id)


async def rest_query(client: Any, ref: OrderRef) -> Outcome:
    """The order's state: by venue id (or text), then — Gate's lookup by text missing finished orders — among the
    open orders, the finished ones (newest `PAGES` pages) and the fills. NOT_FOUND only when none has it; a
    lookup that fails on the way makes the answer AMBIGUOUS."""
    if ref.conditional:
        return await query_conditional(client, ref)
    spot = ref.market is Market.SPOT
    raw = raw_symbol(ref.market, ref.symbol)
    try:
        if spot:
            row = await _call(client.privateSpotGetOrdersOrderId, {"order_id": _order_key(ref), "currency_pair": raw})
        else:
            row = await _call(client.privateFuturesGetSettleOrdersOrderId, _settle({"order_id": _order_key(ref)}))
        if row is not None:
            return row_outcome(row, ref.market)
        for status in ("open", "finished"):
            for page in range(PAGES if status == "finished" else 1):
                if spot:
                    rows = await _call(client.privateSpotGetOrders, {"currency_pair": raw, "status": status,
                                                                     "limit": PAGE, "page": page + 1})
                else:
                    rows = await _call(client.privateFuturesGetSettleOrders, _settle({
                        "contract": raw, "status": status, "limit": PAGE, "offset": page * PAGE}))
                rows = rows if isinstance(rows, list) else []
                found = next((r for r in rows if _matches(r, ref)), None)
                if found is not None:
                    return row_outcome(found, ref.market)
                if len(rows) < PAGE:
                    break
        if spot:
            fills = await _call(client.privateSpotGetMyTrades, {"currency_pair": raw, "limit": TRADES_LIMIT})
        else:
            fills = await _call(client.privateFuturesGetSettleMyTrades, _settle({"contract": raw,
                                                                                 "limit": TRADES_LIMIT}))
    except _Unsure as unsure:
        return ambiguous(f"gate order lookup incomplete: {unsure.outcome.message}", unsure.outcome.code)
    mine = [f for f in (fills if isinstance(fills, list) else []) if _matches(f, ref)]
    if mine:
        # an order that filled and left every order list: it exists, its state is not known from here
        return accepted(mine[0].get("order_id"), client_order_id=_client_of(mine[0].get("text")),
                        message=f"found by its {len(mine)} fill(s) only")
    return not_found(None, "gate has no such order (by id or text, open, finished, or in the fills)")


# TP/SL: price-triggered futures orders over REST --------------------------------------------------------------------
# Gate's price orders carry no client id (`initial.text` is where the order came from: web, api, app), so a
# placement is reconciled by its fields (contract, size, trigger price and rule), and the order it fires carries no
# strategy text: its fills route by order id alone.
_RULE = {True: 1, False: 2}  # trigger rule: 1 = price >= trigger, 2 = price <= trigger


def _rises(request_side: Side, trigger: str) -> bool:
    """Whether the trigger fires on a rise: selling (closing a long) takes profit above, stops loss below."""
    return (trigger == "take_profit") == (Side.parse(request_side) is Side.SELL)


def conditional_param(request: OrderRequest) -> dict[str, Any]:
    """`POST /futures/{settle}/price_orders`: a reduce-only market (price 0, ioc) order of `size` contracts fired when
    the last price crosses `trigger_price` the way the trigger kind says."""
    if request.trigger not in ("take_profit", "stop_loss"):
        raise ValueError(f"a TP/SL order's trigger is take_profit or stop_loss, not {request.trigger!r}")
    size = _signed(request.side, contracts(request.symbol, request.amount))
    return {
        "initial": {"contract": raw_symbol(request.market, request.symbol), "size": size, "price": "0", "tif": "ioc",
                    "reduce_only": True},
        "trigger": {"strategy_type": 0, "price_type": 0, "price": _plain(request.trigger_price),
                    "rule": _RULE[_rises(request.side, request.trigger)], "expiration": 0},
    }


def conditional_outcome(row: Any) -> Outcome:
    """A futures price order row: status open (waiting) → NEW; finished, by `finish_as`: succeeded (it fired) →
    FILLED, cancelled, failed → REJECTED, expired. A placement's answer (`{"id"}`) → ACCEPTED without a state."""
    if not isinstance(row, dict) or row.get("id") in (None, ""):
        return ambiguous(f"gate answered success without a price order: {str(row)[:200]}")
    state = str(row.get("status") or "")
    if state == "open":
        return accepted(row["id"], status=OrderStatus.NEW)
    ended = {"succeeded": OrderStatus.FILLED, "cancelled": OrderStatus.CANCELED, "failed": OrderStatus.REJECTED,
             "expired": OrderStatus.EXPIRED}.get(str(row.get("finish_as") or ""))
    return accepted(row["id"], status=ended if state == "finished" else None)


async def place_conditional(client: Any, request: OrderRequest) -> Outcome:
    if request.market is not Market.FUTURE:
        return rejected("invalid", "gate TP/SL orders are placed on futures only here")
    try:
        param = conditional_param(request)
    except ValueError as exc:
        return rejected("invalid", str(exc))
    try:
        row = await _post_expiring(client, Market.FUTURE, "{settle}/price_orders", param)
    except Exception as exc:  # noqa: BLE001 - classified
        return rest_error(exc, "place")
    return conditional_outcome(row)


async def cancel_conditional(client: Any, ref: OrderRef) -> Outcome:
    if ref.order_id is None:
        return not_found(None, "a gate price order is cancelled by its id, which is not known")
    try:
        row = await client.privateFuturesDeleteSettlePriceOrdersOrderId(_settle({"order_id": ref.order_id}))
    except Exception as exc:  # noqa: BLE001 - classified
        return rest_error(exc, "cancel")
    return conditional_outcome(row)


async def query_conditional(client: Any, ref: OrderRef) -> Outcome:
    """By id when known. Without it (an ambiguous placement) Gate's price orders, which carry no client id, are
    matched by their fields among the contract's open and finished ones: the signed size (side, amount) and, when
    `ref.price` is given, the trigger price. One match is the order; none (with every list read to its end) is
    NOT_FOUND; several (a take-profit and a stop-loss of one size, and no trigger price to tell them) AMBIGUOUS."""
    try:
        if ref.order_id is not None:
            row = await _call(client.privateFuturesGetSettlePriceOrdersOrderId, _settle({"order_id": ref.order_id}))
            return conditional_outcome(row) if row is not None else not_found(None, "no such price order")
        if ref.side is None or ref.amount is None:
            return ambiguous("a gate price order without its id is found by its side and amount")
        size = _signed(ref.side, contracts(ref.symbol, ref.amount))
        raw = raw_symbol(ref.market, ref.symbol)
        found, complete = [], True
        for status in ("open", "finished"):
            rows = await _call(client.privateFuturesGetSettlePriceOrders,
                               _settle({"status": status, "contract": raw, "limit": PAGE}))
            rows = rows if isinstance(rows, list) else []
            complete = complete and len(rows) < PAGE
            for row in rows:
                initial, trigger = _wire(row.get("initial") or {}), _wire(row.get("trigger") or {})
                if _dec(initial.get("size")) == size and (ref.price is None or _dec(trigger.get("price")) == ref.price):
                    found.append(row)
    except _Unsure as unsure:
        return ambiguous(f"gate price order lookup incomplete: {unsure.outcome.message}", unsure.outcome.code)
    except ValueError as exc:
        return ambiguous(str(exc))
    if len(found) == 1:
        return conditional_outcome(found[0])
    if found:
        return ambiguous(f"{len(found)} gate price orders match (no client id to tell them apart)")
    if not complete:
        return ambiguous("gate price order lists longer than read: absence not proven")
    return not_found(None, "gate has no such price order (open or finished)")


NOTES = (
    "Gate: WebSocket orders on the private socket after spot.login / futures.login (spot.order_* / futures.order_*), "
    "REST (ccxt raw endpoints) as the fallback. Client ids are `t-` texts (28 of [0-9A-Za-z_.-] after it) and are "
    "not unique: a repeated text places a second order and then names the newer one, so orders are named by venue "
    "id once known. A lookup by text misses orders finished over 1 h (spot) / 60 s (futures) ago, so a query also "
    "reads the open and finished order lists and the fills before it says an order does not exist. WebSocket "
    "and REST placements expire 5 s after they are made (x-gate-exptime). Futures "
    "sizes are whole contracts; a spot market buy goes out as an IOC limit 5% through the ask (Gate sizes market "
    "buys in quote). TP/SL: futures price orders over REST; they carry no client id, so their fills route by order "
    "id. Limits: spot 10 orders/s, futures 100/s (Gate's x_gate_ratelimit_limit examples)."
)

WS = WsTradingRules(
    shared=True,
    login=login,
    login_answer=login_answer,
    encode=encode,
    decode=decode,
    ops=frozenset({"place", "cancel", "amend", "query"}),
    validity_ms=WS_VALIDITY_MS,
    rate=10.0,
    burst=10,
    request_id=request_id,
)

REST = RestOrderRules(place=rest_place, cancel=rest_cancel, query=rest_query, amend=rest_amend,
                      validity_ms=REST_VALIDITY_MS, rate=10.0)

ORDERS = OrderRules(
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    client_id=client_id,
    ws=WS,
    rest=REST,
    conditional=frozenset({Market.FUTURE}),
    market_reference=True,
    notes=NOTES,
)
