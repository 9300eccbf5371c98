"""MEXC on the simulator: spot listenKey + protobuf pushes, USDT-M contract login + JSON pushes, REST history.

Spot (`/mexc_spot`): signed `POST | PUT | DELETE | GET /api/v3/userDataStream` (header X-MEXC-APIKEY; `timestamp` within
`recvWindow`; lowercase hex HMAC-SHA256 over query + body) keeps listenKeys alive 60 min. `/ws?listenKey=…` with an
unknown key gets the text frame `Invalid listen key` (what ccxt watches for) and is closed. One `SUBSCRIPTION` to
`spot@private.orders.v3.api.pb` / `spot@private.deals.v3.api.pb` is acked once, `msg` = the channels joined by commas;
other channels get "Not Subscribed successfully! […].  Reason： Blocked! ". `PING` (or ccxt's `ping`) → `PONG`. Pushes
are binary `PushDataV3ApiWrapper` frames built with the client's own schema; the order update goes out before the deal
(the doc sample's sendTimes). A socket without a valid subscription for 30 s, or silent for 60 s, is closed.
Contract (`/mexc_future`): `/edge`; `login` (hex HMAC of apiKey + reqTime, reqTime within 10 s) → `rs.login`, else
`rs.error`; then every private channel is pushed unless the login said `"subscribe": false`; `personal.filter`
replaces the filter (`rs.personal.filter`); `ping` → `pong`. `push.personal.order` / `.order.deal` carry JSON numbers
written exactly, `vol` in contracts (the client's contract size); `side` is MEXC's position code, from the net position
of the symbol's fills made before the order: a buy when short is 2 close short, else 1 open long; a sell when long is
4 close long, else 3 open short (an order's deals share its side). `expected_trade` counts contract amounts in
contracts, as the client does.
History: `GET /api/v3/myTrades` (signed as above; symbol, orderId, startTime, endTime, limit ≤ 100) and
`GET /api/v1/private/order/list/order_deals` (headers ApiKey, Request-Time, Signature = HMAC of apiKey + time + sorted
query; symbol, start_time, end_time, page_num, page_size ≤ 100) → `{"success": true, "code": 0, "data": [...]}`.
Spot order entry (REST only: MEXC has no WebSocket trading), signed as above, each request handed to the matching
engine (`sim.orders`) with valid_until = timestamp + recvWindow: `POST /api/v3/order` (symbol, side, type LIMIT |
MARKET | LIMIT_MAKER | IMMEDIATE_OR_CANCEL, quantity — or a MARKET order's quoteOrderQty at the book —, price,
newClientOrderId `[0-9A-Za-z_-]{1,32}`, else 700008) → `{symbol, orderId, orderListId, price, origQty, type, side,
stpMode, transactTime}` without a status; FILL_OR_KILL is refused (30041: the engine has none). `DELETE /api/v3/order`
and `GET /api/v3/order` (symbol, orderId or origClientOrderId — the newest order with it —, else 700004) → the order
row (status NEW, PARTIALLY_FILLED, FILLED, CANCELED, PARTIALLY_CANCELED; `clientOrderId` null when it had none); an
unknown order is `-2013 Order does not exist.` to a query and `-2011 Unknown order sent.` to a cancel (also for a
finished order). `GET /api/v3/openOrders` (symbol) lists the open ones. Engine answers: "unknown" → HTTP 500
`{"code": 500, "msg": "Internal error"}` (5xx: "execution status UNKNOWN"), rejects → 400 with invalid 30002,
would_cross 30041 (UNVERIFIED: what MEXC does with a crossing LIMIT_MAKER), expired 700003, not_open -2011. MEXC
documents no client-id uniqueness: `client_id_policy` is FREE. Every contract order endpoint ccxt's mexc knows
(`POST /api/v1/private/order/submit`, `…/order/cancel`, plan / stop / track orders …) answers a well-signed request
(the signature covers the raw JSON body) with `{"success": false, "code": 1002, "message": "Contract not allow place
order!"}` and does nothing: MEXC closed futures order entry to API keys on 2022-07-25.
Contract order query: `GET /api/v1/private/order/get/{order_id}` (the order with its `externalOid`; an unknown order is
answered `{"success": false, "code": 2011, ...}`: UNVERIFIED, the contract error table names no "order not found").
Account state (what exchanges/mexc/account.py reads), from `sim.account`: spot `spot@private.account.v3.api.pb`
pushes one binary `privateAccount` per coin an order or fill moved (balanceAmount free, frozenAmount locked, the
changes since that socket last saw the coin, type ENTRUST_PLACE when the frozen part grew, else ENTRUST).
Contract, after each fill: `push.personal.position` (a position the fill closed or flipped as a flat state-3
record of its type, then the one held: holdVol in contracts, openType 1) and `push.personal.asset`
(availableBalance free, positionMargin locked, frozenBalance 0) to logged-in sockets whose filter has `position`
/ `asset` (a login without a filter gets them). REST: spot `GET /api/v3/account` (signed as above; every listed
coin), contract `GET /api/v1/private/account/assets` (with equity, unrealized) and
`GET /api/v1/private/position/open_positions` (optional `symbol`).
Signatures are checked here (hex HMAC-SHA256), not with the client's signing code.
Public market data (what ccxt.pro's mexc reads; see exchanges/mexc/market_data.py) shares those paths: spot `/ws`
without a listenKey (a listenKey socket refuses public channels as Blocked: ccxt never mixes them, and what MEXC
does is UNVERIFIED) and contract `/edge`, where one socket may be logged in and watch markets; a socket turns
`public` when it subscribes a public topic. The simulated MEXC lists `LISTED_COINS` against USDT (spot also USDC).
Spot `SUBSCRIPTION` of `spot@public.aggre.{depth|deals|bookTicker}.v3.api.pb@{100ms|10ms}@<SYMBOL>` or
`spot@public.kline.v3.api.pb@<SYMBOL>@<interval>` is acked like a private one; an unlisted symbol (or an interval
the simulated market does not keep: Hour8, Week1, Month1) gets the same "Not Subscribed successfully! … Blocked!"
(UNVERIFIED for unknown symbols: the docs print no error). Pushes are binary wrappers (publicAggreDepths with
`fromVersion`..`toVersion` = the step's first..last sequence, publicAggreDeals, publicAggreBookTicker, publicSpotKline)
with prices and sizes written to the tick's / lot's places. Contract `sub.{ticker|deal|depth|kline}` → `rs.sub.<name>`,
`unsub.*` → `rs.unsub.<name>`, an unlisted symbol → `rs.error` "Contract doesn't exist!" (the docs' sample); pushes
`push.ticker`, `push.deal` (a list, as ccxt reads it), `push.depth` (`begin`..`end` and `version` = the last),
`push.kline`, JSON numbers, sizes in contracts. A book change a "gap" fault drops is simply not sent (the next
delta's `fromVersion` / `begin` jumps); MEXC has no checksum. REST snapshots: `GET /api/v3/depth` (`lastUpdateId`,
`limit` default 100; unknown symbol -1121 "Invalid symbol.") and `GET /api/v1/contract/depth/{symbol}`
(`version`; unknown: 1001 "Contract does not exist").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import zlib
from decimal import MAX_EMAX, MIN_EMIN, ROUND_DOWN, Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlencode

from aiohttp import web

from exchanges.mexc.auth import login_payload, sign
from exchanges.mexc.normalize import EXCHANGE  # importing it registers the contract sizes the client converts with
from exchanges.mexc.proto import (
    AccountPushDataV3ApiWrapper, MarketPushDataV3ApiWrapper, PrivateAccountV3Api, PrivateDealsV3Api,
    PrivateOrdersV3Api, PublicAggreBookTickerV3Api,
    PublicAggreDealsV3Api, PublicAggreDealsV3ApiItem, PublicAggreDepthsV3Api, PublicAggreDepthV3ApiItem,
    PublicSpotKlineV3Api, PushDataV3ApiWrapper,
)  # fmt: skip
from exchanges.simulator.account import SimAccount, SimPosition
from exchanges.simulator.ledger import Ledger, SimFill, SimOrder
from exchanges.simulator.market import TIMEFRAMES_MS, MarketStep, SymbolMarket
from exchanges.simulator.orders import ClientIdPolicy, SimRequest, SimResult
from exchanges.simulator.venues.base import SimSession, VenueSim, decimal_text, hmac_sha256, json_numbers
from exchanges.symbols import contract_size
from framework.events import Market, OrderStatus, Side, now_ms

if TYPE_CHECKING:
    from exchanges.simulator.server import Simulator

ORDERS, DEALS = "spot@private.orders.v3.api.pb", "spot@private.deals.v3.api.pb"
ACCOUNT = "spot@private.account.v3.api.pb"
SPOT_PRIVATE = frozenset({ORDERS, DEALS, ACCOUNT})
ORDER, DEAL, ASSET, POSITION = "order", "order.deal", "asset", "position"  # contract personal.filter names
LONG, SHORT = 1, 2  # contract positionType
HOLDING, CLOSED = 1, 3  # contract position state
SETTLE = "USDT"  # every listed contract's settle coin
API_KEY_HEADER = "X-MEXC-APIKEY"
LISTEN_KEY_TTL_MS = 3_600_000
RECV_WINDOW_MS, MAX_RECV_WINDOW_MS = 5_000, 60_000  # spot SIGNED: default and ceiling
CONTRACT_WINDOW_S, MAX_CONTRACT_WINDOW_S = 10, 60  # contract Request-Time / login reqTime
SPOT_HISTORY_MS = 30 * 86_400_000  # myTrades: "only the transaction records in the past 1 month"
DEALS_DEFAULT_SPAN_MS, DEALS_MAX_SPAN_MS = 7 * 86_400_000, 90 * 86_400_000
PAGE_LIMIT = 100
LEVERAGE = 20
_SPOT_SIDE = {Side.BUY: 1, Side.SELL: 2}
OPEN_LONG, CLOSE_SHORT, OPEN_SHORT, CLOSE_LONG = 1, 2, 3, 4  # contract `side`: 1, 2 buy; 3, 4 sell
_SPOT_STATUS = {OrderStatus.NEW: 1, OrderStatus.FILLED: 2, OrderStatus.PARTIALLY_FILLED: 3,
                OrderStatus.CANCELED: 4, OrderStatus.REJECTED: 4, OrderStatus.EXPIRED: 4}  # fmt: skip
_CONTRACT_STATE = {OrderStatus.NEW: 2, OrderStatus.PARTIALLY_FILLED: 2, OrderStatus.FILLED: 3,
                   OrderStatus.CANCELED: 4, OrderStatus.EXPIRED: 4, OrderStatus.REJECTED: 5}  # fmt: skip
# Spot REST errors (MEXC's error-code table; 700002 / 700003 texts as MEXC and ccxt quote them).
API_KEY_REQUIRED = (400, "api key required")
INVALID_KEY = (10072, "Api key info invalid")
BAD_SIGNATURE = (700002, "Signature for this request is not valid.")
OUTSIDE_WINDOW = (700003, "Timestamp for this request is outside of the recvWindow.")
WINDOW_TOO_LARGE = (700005, "recvWindow must less than 60000")
LISTEN_KEY_ERROR = (730708, "listen key information error")  # PUT / DELETE of an unknown key (mexc-api-demo#35)
# Contract REST errors (contract error-code table) and login refusals (the docs only say "channel = rs.error").
UNAUTHORIZED = (401, "Unauthorized")
STALE_REQUEST = (513, "Invalid request(for open api serves time more or less than 10s)")
VERIFY_FAILED = (602, "Signature verification failed!")
PARAMETER_ERROR = (600, "Parameter error")
ORDER_NOT_FOUND = (2011, "Order does not exist")
TIME_RANGE_ERROR = (6003, "Time range error")
INVALID_SYMBOL = (-1121, "Invalid symbol.")
# Spot order entry (MEXC's spot error table; the texts of -2011 / -2013 as MEXC answers them, ccxt#21614).
ORDER_MISSING = (-2013, "Order does not exist.")  # query
UNKNOWN_ORDER = (-2011, "Unknown order sent.")  # cancel of an unknown, filled or cancelled order
NO_ORDER_NAMED = (700004, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null")
ILLEGAL_CHARACTERS = (700008, "Illegal characters found in parameter")  # a client id outside [0-9A-Za-z_-]{1,32}
INTERNAL_ERROR = (500, "Internal error")  # HTTP 500: "the execution status is UNKNOWN"
OPERATION_NOT_ALLOWED = (26, "operation not allowed")
NO_FILL_OR_KILL = (30041, "current order type can not place order")  # the simulator matches no FOK orders
_REJECTIONS = {
    "invalid": (30002, "The minimum transaction volume cannot be less than:"),
    "would_cross": (30041, "current order type can not place order"),  # UNVERIFIED: MEXC's LIMIT_MAKER refusal
    "expired": OUTSIDE_WINDOW,
    "not_open": UNKNOWN_ORDER,
    "insufficient": (30004, "Insufficient position"),
    "duplicate_client_id": OPERATION_NOT_ALLOWED,  # UNVERIFIED: only under a stricter policy than MEXC's (FREE)
}
_ORDER_TYPES_IN = {"LIMIT": "limit", "MARKET": "market", "LIMIT_MAKER": "post_only", "IMMEDIATE_OR_CANCEL": "ioc"}
_SPOT_TYPE_OUT = {"gtc": "LIMIT", "ioc": "IMMEDIATE_OR_CANCEL", "post_only": "LIMIT_MAKER"}
_SPOT_ORDER_TYPE = {"gtc": 1, "post_only": 2, "ioc": 3}  # the order push's orderType (5 market)
_CLIENT_ID = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
# Contract order entry: every order endpoint ccxt's mexc can call answers this (ccxt#14474).
ORDER_ENTRY_CLOSED = (1002, "Contract not allow place order!")
CONTRACT_ORDER_PATHS = (
    "order/submit", "order/submit_batch", "order/cancel", "order/cancel_with_external",
    "order/batch_cancel_with_external", "order/cancel_all", "order/change_limit_order", "order/chase_limit_order",
    "planorder/place", "planorder/place/v2", "planorder/cancel", "planorder/cancel_all", "planorder/change_stop_order",
    "stoporder/place", "stoporder/cancel", "stoporder/cancel_all", "stoporder/change_price",
    "stoporder/change_plan_price", "trackorder/place", "trackorder/cancel", "trackorder/change_order",
)
CONTRACT_MISSING = (1001, "Contract does not exist")
NO_SUCH_CONTRACT = "Contract doesn't exist!"  # rs.error of a public subscription (the docs' sample)
# Public market data.
LISTED_COINS = ("BTC", "ETH", "SOL", "BNB", "LTC", "AVAX", "XRP", "DOGE", "ADA", "LINK")
SPOT_QUOTES = ("USDT", "USDC")
SPOT_DEPTH, SPOT_TRADES = "spot@public.aggre.depth.v3.api.pb", "spot@public.aggre.deals.v3.api.pb"
SPOT_BOOK_TICKER, SPOT_KLINE = "spot@public.aggre.bookTicker.v3.api.pb", "spot@public.kline.v3.api.pb"
_SPOT_AGGREGATED = {SPOT_DEPTH: "depth", SPOT_TRADES: "deals", SPOT_BOOK_TICKER: "ticker"}
SPOT_SPEEDS = ("100ms", "10ms")
# MEXC kline intervals the simulated market keeps candles for (Hour8, Week1 and Month1 it does not).
INTERVALS = {"Min1": "1m", "Min5": "5m", "Min15": "15m", "Min30": "30m", "Min60": "1h", "Hour4": "4h", "Day1": "1d"}
_CONTRACT_TOPICS = {"ticker": "ticker", "deal": "deals", "depth": "depth", "kline": "kline"}  # sub.<name> → kind
SPOT_DEPTH_LIMIT, SPOT_DEPTH_MAX = 100, 5000
_EXACT = Context(prec=1000, Emax=MAX_EMAX, Emin=MIN_EMIN)  # _plain never rounds (an average entry has 28 digits)


def _plain(value: Decimal | int) -> str:
    """A Decimal as MEXC writes it: no exponent, no trailing zeros ("0.01", "100", "0"), every digit kept."""
    value = Decimal(value)
    return format(value.normalize(_EXACT) if value else Decimal(0), "f")


def _fixed(value: Decimal, step: Decimal) -> str:
    """A spot market figure with as many places as its tick or lot ("65000.0", "0.150", "0.000"), as MEXC's
    spot prices and quantities are written to the symbol's precision."""
    return decimal_text(value, max(0, -step.as_tuple().exponent))


class Topic(NamedTuple):
    """One public subscription of a socket."""

    kind: str  # "depth" | "deals" | "ticker" | "kline"
    symbol: str  # unified
    raw: str  # MEXC's symbol
    channel: str  # spot: the channel as subscribed (the pushes carry it); contract: the push channel
    arg: str | None  # spot speed ("100ms" | "10ms") of an aggregated channel; the kline interval ("Min1"…)


def _without_signature(text: str) -> str:
    return "&".join(part for part in text.split("&") if part and not part.startswith("signature="))


def _spot_error(error: tuple[int, str], status: int = 400) -> web.Response:
    return web.json_response({"code": error[0], "msg": error[1]}, status=status)


def _mandatory(name: str) -> web.Response:
    return _spot_error((700004, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."))


def _decimal(params: dict[str, str], name: str) -> Decimal | None:
    """An optional decimal parameter; a malformed (or non-finite) one raises ValueError(name)."""
    text = params.get(name)
    if text in (None, ""):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(name) from None
    if not value.is_finite():
        raise ValueError(name)
    return value


def _valid_until(params: dict[str, str]) -> int | None:
    """When MEXC stops executing a signed request: its timestamp + recvWindow (checked at receipt already)."""
    try:
        return int(params["timestamp"]) + int(params.get("recvWindow") or RECV_WINDOW_MS)
    except (KeyError, ValueError):
        return None


def _spot_type(order: SimOrder) -> str:
    return "MARKET" if order.order_type == "market" else _SPOT_TYPE_OUT.get(order.time_in_force, "LIMIT")


def _spot_status(order: SimOrder) -> str:
    status = _SPOT_STATUS[order.status]
    if status == 4 and order.filled:
        return "PARTIALLY_CANCELED"
    return {1: "NEW", 2: "FILLED", 3: "PARTIALLY_FILLED", 4: "CANCELED"}[status]


def _spot_order_row(order: SimOrder, raw: str) -> dict:
    """A spot order as Query Order, Cancel Order and Current Open Orders write it."""
    return {
        "symbol": raw, "orderId": order.order_id, "orderListId": "-1", "clientOrderId": order.client_order_id,
        "price": _plain(order.price), "origQty": _plain(order.amount), "executedQty": _plain(order.filled),
        "cummulativeQuoteQty": _plain(order.filled_cost), "status": _spot_status(order), "timeInForce": None,
        "type": _spot_type(order), "side": order.side.value.upper(), "stopPrice": None, "icebergQty": None,
        "time": order.created, "updateTime": order.updated, "isWorking": not order.status.is_terminal,
        "origQuoteOrderQty": _plain(order.amount * order.price),
    }


def _contract_reply(data: Any = None, error: tuple[int, str] | None = None) -> web.Response:
    if error is not None:
        return web.Response(text=json_numbers({"success": False, "code": error[0], "message": error[1]}, _plain),
                            content_type="application/json")
    body = {"success": True, "code": 0, "data": data}
    return web.Response(text=json_numbers(body, _plain), content_type="application/json")


def _ints(params: Any, names: tuple[str, ...]) -> dict[str, int | None]:
    """Optional integer parameters; a malformed one raises ValueError(name)."""
    values: dict[str, int | None] = {}
    for name in names:
        text = params.get(name)
        try:
            values[name] = None if text in (None, "") else int(text)
        except ValueError:
            raise ValueError(name) from None
    return values


class MexcSim(VenueSim):
    exchange = EXCHANGE
    markets = frozenset({Market.SPOT, Market.FUTURE})
    # Spot: "no data flow" for 60 s drops the link; contract: "if no ping is received within 1 minute".
    client_silence_limit = 60.0
    # MEXC documents no uniqueness rule for newClientOrderId: none is checked (set another policy on the instance
    # to try one).
    client_id_policy = ClientIdPolicy.FREE

    def __init__(self) -> None:
        self.listen_keys: dict[str, int] = {}  # listenKey -> expiry (ms)
        self._order_sides: dict[str, int] = {}  # order id -> contract side code (fixed when first asked)
        self.subscription_grace = 30.0  # spot: seconds a socket may stay without a valid subscription
        self._tasks: set[asyncio.Task] = set()
        spot = {self.raw_symbol(Market.SPOT, f"{c}/{q}"): f"{c}/{q}" for c in LISTED_COINS for q in SPOT_QUOTES}
        future = {self.raw_symbol(Market.FUTURE, f"{c}/USDT:USDT"): f"{c}/USDT:USDT" for c in LISTED_COINS}
        self.listed: dict[Market, dict[str, str]] = {Market.SPOT: spot, Market.FUTURE: future}  # raw -> unified

    def raw_symbol(self, market: Market, symbol: str) -> str:
        base, quote = symbol.split(":")[0].split("/")
        return f"{base}{quote}" if market is Market.SPOT else f"{base}_{quote}"

    def expected_trade(self, market: Market, fill: SimFill) -> dict[str, Any]:
        """As the ledger, but a contract fill's amount in contracts (vol = base amount / the client's size)."""
        expected = super().expected_trade(market, fill)
        if market is Market.FUTURE:
            expected["amount"] = fill.amount / (contract_size(self.exchange, self.raw_symbol(market, fill.symbol))
                                                or Decimal(1))
        return expected

    def _contract_side(self, ledger: Ledger, order: SimOrder) -> int:
        """MEXC's side code of a contract order, from the symbol's net position before the order was placed.

        Ids come from one counter, so the fills made before the order are those with a smaller id. A buy
        against a short position closes it (2), else opens a long (1); a sell against a long closes it (4),
        else opens a short (3). Fixed once known: later fills do not change what the order was.
        """
        side = self._order_sides.get(order.order_id)
        if side is None:
            placed = int(order.order_id)
            position = sum((f.amount if f.side is Side.BUY else -f.amount for f in ledger.fills
                            if f.symbol == order.symbol and int(f.trade_id) < placed), Decimal(0))
            if order.side is Side.BUY:
                side = CLOSE_SHORT if position < 0 else OPEN_LONG
            else:
                side = CLOSE_LONG if position > 0 else OPEN_SHORT
            self._order_sides[order.order_id] = side
        return side

    def ws_paths(self, market: Market) -> list[str]:
        return ["/ws"] if market is Market.SPOT else ["/edge"]

    # sockets ---------------------------------------------------------------------------------------------------
    async def on_open(self, session: SimSession) -> bool:
        if session.market is Market.FUTURE:
            return True
        listen_key = session.request.query.get("listenKey")
        if listen_key is not None:  # without one, /ws is the public market socket: private channels are refused
            if self.listen_keys.get(listen_key, 0) < now_ms():
                await session.send("Invalid listen key")
                return False
            session.authenticated = True
            session.state["listen_key"] = listen_key
        self._arm_subscription_deadline(session)
        return True

    async def on_message(self, session: SimSession, message: Any) -> None:
        if session.market is Market.SPOT:
            await self._spot_message(session, message)
        elif type(message) is dict:
            await self._contract_message(session, message)

    async def _spot_message(self, session: SimSession, message: Any) -> None:
        request = message if type(message) is dict else {}
        method, params, request_id = request.get("method"), request.get("params"), request.get("id", 0)
        if isinstance(method, str) and method.upper() == "PING":
            await session.send({"id": 0, "code": 0, "msg": "PONG"})
        elif method in ("SUBSCRIPTION", "UNSUBSCRIPTION") and isinstance(params, list) and params \
                and all(isinstance(p, str) for p in params):  # fmt: skip
            if method == "UNSUBSCRIPTION":
                session.subscriptions.difference_update(params)
                if ACCOUNT in params:
                    session.state.pop("shown", None)
                topics = session.state.get("public", {})
                for channel in params:
                    topics.pop(channel, None)
                if not session.subscriptions:
                    self._arm_subscription_deadline(session)
                await session.send({"id": request_id, "code": 0, "msg": ",".join(params)})
                return
            good, refused = [], []
            for channel in params:
                if channel in SPOT_PRIVATE:
                    accepted = session.authenticated
                else:  # a public topic, on a socket without a listenKey
                    topic = None if session.authenticated else self._spot_topic(channel)
                    if topic is not None:
                        self._watch(session, channel, topic)
                    accepted = topic is not None
                (good if accepted else refused).append(channel)
            if good:
                if ACCOUNT in good and ACCOUNT not in session.subscriptions:  # the changes pushed count from now
                    account = session.sim.account(self.exchange, Market.SPOT)
                    session.state["shown"] = {a: (b.free, b.locked) for a, b in account.balances.items()}
                session.subscriptions.update(good)
                self._disarm_subscription_deadline(session)
                await session.send({"id": request_id, "code": 0, "msg": ",".join(good)})
            if refused:
                text = f"Not Subscribed successfully! [{','.join(refused)}].  Reason： Blocked! "
                await session.send({"id": request_id, "code": 0, "msg": text})
        else:  # anything else (text, unknown method, no params): the answer clients report from MEXC
            await session.send({"id": request_id, "code": 0, "msg": "msg format invalid"})

    def _spot_topic(self, channel: str) -> Topic | None:
        """The public topic a spot channel names, or None (not a channel we serve, or a symbol not listed)."""
        parts = channel.split("@")
        if len(parts) != 4 or parts[0] != "spot":
            return None
        name = f"spot@{parts[1]}"
        if name in _SPOT_AGGREGATED and parts[2] in SPOT_SPEEDS:
            kind, raw, arg = _SPOT_AGGREGATED[name], parts[3], parts[2]
        elif name == SPOT_KLINE and parts[3] in INTERVALS:
            kind, raw, arg = "kline", parts[2], parts[3]
        else:
            return None
        symbol = self.listed[Market.SPOT].get(raw)
        return None if symbol is None else Topic(kind, symbol, raw, channel, arg)

    def _watch(self, session: SimSession, key: str, topic: Topic) -> None:
        """Push `topic` to this socket from the next market step on (its market made now, so a clock steps it)."""
        session.state.setdefault("public", {})[key] = topic
        session.public = True
        session.sim.market(self.exchange, session.market, topic.symbol)

    def _arm_subscription_deadline(self, session: SimSession) -> None:
        self._disarm_subscription_deadline(session)
        loop = asyncio.get_running_loop()
        session.state["deadline"] = loop.call_later(self.subscription_grace, self._drop_unsubscribed, session)

    @staticmethod
    def _disarm_subscription_deadline(session: SimSession) -> None:
        handle = session.state.pop("deadline", None)
        if handle is not None:
            handle.cancel()

    def _drop_unsubscribed(self, session: SimSession) -> None:
        if session.closed or session.subscriptions:
            return
        task = asyncio.create_task(session.close(1000, "no valid subscription"), name="sim-mexc-drop-unsubscribed")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _contract_message(self, session: SimSession, message: dict) -> None:
        method = message.get("method")
        if method == "ping":
            await session.send({"channel": "pong", "data": now_ms()})
        elif isinstance(method, str) and method.startswith(("sub.", "unsub.")):
            await self._contract_public(session, method, message.get("param"))
        elif method == "login":
            refusal = self._login_refusal(session, message.get("param"))
            if refusal is not None:
                await session.send({"channel": "rs.error", "data": refusal, "ts": now_ms()})
                return
            session.authenticated = True
            # Every private channel is pushed after a login unless it says "subscribe": false.
            self._set_filters(session, {} if message.get("subscribe") is False else None)
            await session.send({"channel": "rs.login", "data": "success", "ts": now_ms()})
        elif method == "personal.filter":
            if not session.authenticated:
                await session.send({"channel": "rs.error", "data": "Not logged in!", "ts": now_ms()})
                return
            param = message.get("param")
            filters = param.get("filters") if isinstance(param, dict) else None
            if not isinstance(filters, list) or not filters:  # no filter: everything, as the docs say
                self._set_filters(session, None)
            else:
                chosen: dict[str, set[str]] = {}
                for entry in filters:
                    if isinstance(entry, dict) and isinstance(entry.get("filter"), str):
                        rules = entry.get("rules")
                        symbols = {r for r in rules if isinstance(r, str)} if isinstance(rules, list) else set()
                        chosen.setdefault(entry["filter"], set()).update(symbols)
                self._set_filters(session, chosen)  # a later filter replaces the earlier one
            await session.send({"channel": "rs.personal.filter", "data": "success", "ts": now_ms()})

    async def _contract_public(self, session: SimSession, method: str, param: Any) -> None:
        """`sub.<name>` / `unsub.<name>` of a public contract channel; other channels (tickers, depth.full,
        funding rate…) are not simulated and get no answer."""
        action, _, name = method.partition(".")
        kind = _CONTRACT_TOPICS.get(name)
        if kind is None:
            return
        param = param if isinstance(param, dict) else {}
        raw, interval = param.get("symbol"), param.get("interval") if kind == "kline" else None
        if action == "unsub":  # unsub.kline without an interval ends every interval of the symbol
            topics = session.state.get("public", {})
            for key in [k for k, t in topics.items() if t.kind == kind and t.raw == raw
                        and (interval is None or t.arg == interval)]:
                del topics[key]
            await session.send({"channel": f"rs.unsub.{name}", "data": "success", "ts": now_ms()})
            return
        symbol = self.listed[Market.FUTURE].get(raw) if isinstance(raw, str) else None
        if symbol is None:
            await session.send({"channel": "rs.error", "data": NO_SUCH_CONTRACT, "ts": now_ms()})
            return
        if kind == "kline" and interval not in INTERVALS:  # UNVERIFIED text: the docs name no kline error
            await session.send({"channel": "rs.error", "data": PARAMETER_ERROR[1], "ts": now_ms()})
            return
        self._watch(session, f"{name}@{raw}@{interval}", Topic(kind, symbol, raw, f"push.{name}", interval))
        await session.send({"channel": f"rs.sub.{name}", "data": "success", "ts": now_ms()})

    def _login_refusal(self, session: SimSession, param: Any) -> str | None:
        """None for a good login; else the text MEXC's `rs.error` carries."""
        creds = session.credentials
        if not isinstance(param, dict) or param.get("apiKey") != creds.api_key:
            return "Api key info invalid"
        req_time = str(param.get("reqTime", ""))
        if not req_time.isdigit() or abs(now_ms() - int(req_time)) > CONTRACT_WINDOW_S * 1000:
            return "Request time is invalid"
        expected = sign(creds.secret, login_payload(creds.api_key, int(req_time)))
        signature = param.get("signature")
        if not isinstance(signature, str) or not hmac.compare_digest(signature, expected):
            return VERIFY_FAILED[1]
        return None

    @staticmethod
    def _set_filters(session: SimSession, filters: dict[str, set[str]] | None) -> None:
        session.state["filters"] = filters  # None: every channel, every symbol; a set of rules: those symbols
        session.subscriptions.clear()
        session.subscriptions.update({ORDER, DEAL, ASSET, POSITION} if filters is None else filters)

    @staticmethod
    def _wants(session: SimSession, name: str, raw: str) -> bool:
        if not session.authenticated:
            return False
        filters = session.state.get("filters")
        if filters is None:
            return True
        rules = filters.get(name)
        return rules is not None and (not rules or raw in rules)

    # frames ------------------------------------------------------------------------------------------------------
    def order_frames(self, session: SimSession, order: SimOrder) -> list[Any]:
        return self._frames(session, order, None)

    def fill_frames(self, session: SimSession, order: SimOrder, fill: SimFill) -> list[Any]:
        return self._frames(session, order, fill)

    def _frames(self, session: SimSession, order: SimOrder, fill: SimFill | None) -> list[Any]:
        frames: list[Any] = []
        raw = self.raw_symbol(session.market, order.symbol)
        if session.market is Market.SPOT:
            if ORDERS in session.subscriptions:
                frames.append(self._spot_order(order, fill, raw))
            if fill is not None and DEALS in session.subscriptions:
                frames.append(self._spot_deal(fill, raw))
            return frames
        if self._wants(session, ORDER, raw):
            frames.append(self._contract_order(session, order, raw))
        if fill is not None and self._wants(session, DEAL, raw):
            frames.append(self._contract_deal(session.ledger, fill, raw))
        return frames

    @staticmethod
    def _spot_order(order: SimOrder, fill: SimFill | None, raw: str) -> bytes:
        status = _SPOT_STATUS[order.status]
        if status == 4 and order.filled:
            status = 5  # partially filled, then canceled
        body = PrivateOrdersV3Api(
            id=order.order_id, clientId=order.client_order_id or "", price=_plain(order.price),
            quantity=_plain(order.amount), amount=_plain(order.amount * order.price), avgPrice=_plain(order.average),
            orderType=5 if order.order_type == "market" else _SPOT_ORDER_TYPE.get(order.time_in_force, 1),
            tradeType=_SPOT_SIDE[order.side], remainAmount=_plain(order.remaining * order.price),
            remainQuantity=_plain(order.remaining), cumulativeQuantity=_plain(order.filled),
            cumulativeAmount=_plain(order.filled_cost), status=status, createTime=order.created,
        )
        if fill is not None:
            body.lastDealQuantity = _plain(fill.amount)
        push = PushDataV3ApiWrapper(channel=ORDERS, symbol=raw, sendTime=order.updated, privateOrders=body)
        return push.SerializeToString()

    @staticmethod
    def _spot_deal(fill: SimFill, raw: str) -> bytes:
        body = PrivateDealsV3Api(
            price=_plain(fill.price), quantity=_plain(fill.amount), amount=_plain(fill.cost),
            tradeType=_SPOT_SIDE[fill.side], isMaker=fill.is_maker, isSelfTrade=False, tradeId=fill.trade_id,
            clientOrderId=fill.client_order_id or "", orderId=fill.order_id, feeAmount=_plain(fill.fee),
            feeCurrency=fill.fee_currency, time=fill.time,
        )
        return PushDataV3ApiWrapper(channel=DEALS, symbol=raw, sendTime=fill.time, privateDeals=body).SerializeToString()

    @staticmethod
    def _external_oid(order_id: str, client_order_id: str | None) -> str:
        """The client's id, or what MEXC puts on an order placed without one (`_m_` + 32 hex)."""
        return client_order_id or "_m_" + hashlib.md5(order_id.encode()).hexdigest()

    def _contract_order(self, session: SimSession, order: SimOrder, raw: str) -> str:
        data = self._contract_order_row(session.ledger, order, raw)
        return json_numbers({"channel": "push.personal.order", "data": data, "ts": order.updated}, _plain)

    def _contract_order_row(self, ledger: Ledger, order: SimOrder, raw: str) -> dict:
        """An order as the push and the order query write it."""
        size = contract_size(self.exchange, raw) or Decimal(1)
        fills = [f for f in ledger.fills if f.order_id == order.order_id]
        quote = order.symbol.split("/")[1].split(":")[0]
        return {
            "orderId": order.order_id, "symbol": raw, "positionId": zlib.crc32(f"{raw}:{order.side}".encode()),
            "price": order.price, "vol": order.amount / size, "leverage": LEVERAGE,
            "side": self._contract_side(ledger, order),
            "category": 1, "orderType": 1, "dealAvgPrice": order.average, "dealVol": order.filled / size,
            "orderMargin": order.remaining * order.price / LEVERAGE, "usedMargin": order.filled_cost / LEVERAGE,
            "takerFee": sum((f.fee for f in fills if not f.is_maker), Decimal(0)),
            "makerFee": sum((f.fee for f in fills if f.is_maker), Decimal(0)), "profit": 0, "feeCurrency": quote,
            "openType": 1, "state": _CONTRACT_STATE[order.status], "errorCode": 0,
            "externalOid": self._external_oid(order.order_id, order.client_order_id), "createTime": order.created,
            "updateTime": order.updated, "remainVol": order.remaining / size, "version": 1 + len(fills),
            "positionMode": 1, "reduceOnly": False,
        }

    def _contract_deal(self, ledger: Ledger, fill: SimFill, raw: str) -> str:
        data = self._deal_row(ledger, fill, raw)
        data.update(isSelf=False, externalOid=self._external_oid(fill.order_id, fill.client_order_id))
        return json_numbers({"channel": "push.personal.order.deal", "data": data, "ts": fill.time}, _plain)

    def _deal_row(self, ledger: Ledger, fill: SimFill, raw: str) -> dict:
        size = contract_size(self.exchange, raw) or Decimal(1)
        side = self._contract_side(ledger, ledger.orders[fill.order_id])
        return {
            "id": int(fill.trade_id), "symbol": raw, "side": side, "vol": fill.amount / size,
            "price": fill.price, "feeCurrency": fill.fee_currency, "fee": fill.fee, "timestamp": fill.time,
            "profit": 0, "isTaker": not fill.is_maker, "category": 1, "orderId": int(fill.order_id), "positionMode": 1,
            "reduceOnly": False,
        }

    # account state ---------------------------------------------------------------------------------------------------
    def account_frames(self, session: SimSession, account: SimAccount, assets: list[str],
                       symbols: list[str]) -> list[Any]:
        if session.market is Market.SPOT:
            if ACCOUNT not in session.subscriptions:
                return []
            return [self._spot_account(session, account, asset) for asset in assets]
        pushes = []
        for symbol in symbols:
            raw = self.raw_symbol(Market.FUTURE, symbol)
            if self._wants(session, POSITION, raw):
                pushes += [("push.personal.position", row)
                           for row in self._position_records(session.ledger, account, symbol, raw)]
        pushes += [("push.personal.asset", self._asset_row(account, asset)) for asset in assets
                   if self._wants(session, ASSET, asset)]
        return [json_numbers({"channel": channel, "data": data, "ts": account.updated}, _plain)
                for channel, data in pushes]

    def _spot_account(self, session: SimSession, account: SimAccount, asset: str) -> bytes:
        """One coin's `privateAccount` push: the figures now and how they moved since this socket last saw them
        (an untouched coin from its starting balance)."""
        balance = account.balance(asset)
        shown = session.state.setdefault("shown", {})
        if asset not in shown:
            start = SimAccount(self.exchange, Market.SPOT).balance(asset)
            shown[asset] = (start.free, start.locked)
        free_change, frozen_change = balance.free - shown[asset][0], balance.locked - shown[asset][1]
        shown[asset] = (balance.free, balance.locked)
        body = PrivateAccountV3Api(
            vcoinName=asset, coinId=hashlib.md5(asset.encode()).hexdigest(), balanceAmount=_plain(balance.free),
            balanceAmountChange=_plain(free_change), frozenAmount=_plain(balance.locked),
            frozenAmountChange=_plain(frozen_change), type="ENTRUST_PLACE" if frozen_change > 0 else "ENTRUST",
            time=account.updated,
        )
        push = AccountPushDataV3ApiWrapper(channel=ACCOUNT, createTime=account.updated, sendTime=account.updated,
                                           privateAccount=body)
        return push.SerializeToString()

    @staticmethod
    def _asset_row(account: SimAccount, asset: str, rest: bool = False) -> dict:
        """A settle coin's wallet: available = free, position margin = locked (no margin is frozen for open
        orders here); the REST row adds equity and unrealized PnL."""
        wallet = account.balance(asset)
        row = {"currency": asset, "positionMargin": wallet.locked, "availableBalance": wallet.free,
               "cashBalance": wallet.free, "frozenBalance": 0, "bonus": 0}
        if rest:
            unrealized = sum((p.unrealized_pnl for p in account.positions.values()
                              if p.symbol.split(":")[-1] == asset), Decimal(0))
            row.update(equity=wallet.total + unrealized, unrealized=unrealized)
        return row

    def _position_records(self, ledger: Ledger, account: SimAccount, symbol: str, raw: str) -> list[dict]:
        """What a fill did to the symbol's position, as MEXC's records: the position it closed (a flat record of
        the old type, also when the fill flipped it), then the one held now."""
        position = account.position(symbol)
        last = next((f for f in reversed(ledger.fills) if f.symbol == symbol), None)
        moved = Decimal(0) if last is None else last.amount if last.side is Side.BUY else -last.amount
        before = position.size - moved
        records = []
        if before and (not position.size or (before > 0) != (position.size > 0)):
            records.append(self._position_row(position, raw, LONG if before > 0 else SHORT, holding=False))
        if position.size:
            records.append(self._position_row(position, raw, LONG if position.size > 0 else SHORT, holding=True))
        return records or [self._position_row(position, raw, LONG, holding=False)]

    def _position_row(self, position: SimPosition, raw: str, kind: int, holding: bool) -> dict:
        """A position record as the push and `open_positions` write it. The simulator keeps no close history
        (closeVol, closeAvgPrice 0) and a closed record none of the old averages (0); `realised` is the symbol's
        realized PnL without fees, `pnl` the unrealized PnL at the last fill's price."""
        size = contract_size(self.exchange, raw) or Decimal(1)
        entry = position.entry_price if holding else Decimal(0)
        margin = position.margin if holding else Decimal(0)
        full = decimal_text(entry, max(18, -entry.as_tuple().exponent))  # MEXC's "…FullyScale" text, never rounded
        return {
            "positionId": zlib.crc32(f"{raw}:{kind}".encode()), "symbol": raw,
            "holdVol": abs(position.size) / size if holding else 0, "positionType": kind, "openType": 1,
            "state": HOLDING if holding else CLOSED, "frozenVol": 0, "closeVol": 0, "holdAvgPrice": entry,
            "holdAvgPriceFullyScale": full, "closeAvgPrice": 0, "openAvgPrice": entry, "openAvgPriceFullyScale": full,
            "liquidatePrice": (position.liquidation_price or 0) if holding else 0, "oim": margin, "im": margin,
            "holdFee": 0, "realised": position.realized_pnl, "leverage": position.leverage, "autoAddIm": False,
            "pnl": position.unrealized_pnl if holding else 0, "updateTime": position.updated,
        }

    # public market data ----------------------------------------------------------------------------------------------
    def market_frames(self, session: SimSession, symbol_market: SymbolMarket, step: MarketStep,
                      corrupt_checksum: bool = False) -> list[Any]:
        """One frame per subscribed topic of the symbol (a book change only when the step has one, trades only
        when it traded); MEXC has no checksum, so `corrupt_checksum` changes nothing."""
        frames = []
        for topic in session.state.get("public", {}).values():
            if topic.symbol != symbol_market.symbol:
                continue
            if session.market is Market.SPOT:
                frame = self._spot_frame(topic, symbol_market, step)
            else:
                frame = self._contract_frame(topic, symbol_market, step)
            if frame is not None:
                frames.append(frame)
        return frames

    @staticmethod
    def _spot_frame(topic: Topic, market: SymbolMarket, step: MarketStep) -> bytes | None:
        push = MarketPushDataV3ApiWrapper(channel=topic.channel, symbol=topic.raw)
        if topic.kind == "depth":
            if step.book is None:
                return None
            items = [[PublicAggreDepthV3ApiItem(price=_fixed(price, market.tick), quantity=_fixed(amount, market.lot))
                      for price, amount in levels] for levels in (step.book.asks, step.book.bids)]
            push.publicAggreDepths.CopyFrom(PublicAggreDepthsV3Api(
                asks=items[0], bids=items[1], eventType=f"{SPOT_DEPTH}@{topic.arg}",
                fromVersion=str(step.book.first_seq), toVersion=str(step.book.seq),
            ))
            push.sendTime = step.time
        elif topic.kind == "deals":
            if not step.trades:
                return None
            push.publicAggreDeals.CopyFrom(PublicAggreDealsV3Api(deals=[
                PublicAggreDealsV3ApiItem(price=_fixed(t.price, market.tick), quantity=_fixed(t.amount, market.lot),
                                          tradeType=_SPOT_SIDE[t.side], time=t.time, tradeId=str(t.trade_id))
                for t in step.trades
            ], eventType=f"{SPOT_TRADES}@{topic.arg}"))
            push.sendTime = step.time
        elif topic.kind == "ticker":
            (bid, bid_size), (ask, ask_size) = market.best_bid(), market.best_ask()
            push.publicAggreBookTicker.CopyFrom(PublicAggreBookTickerV3Api(
                bidPrice=_fixed(bid, market.tick), bidQuantity=_fixed(bid_size, market.lot),
                askPrice=_fixed(ask, market.tick), askQuantity=_fixed(ask_size, market.lot), version=str(market.seq),
            ))
            push.sendTime = step.time
        else:
            timeframe = INTERVALS[topic.arg]
            bar = market.candle(timeframe)
            push.publicSpotKline.CopyFrom(PublicSpotKlineV3Api(
                interval=topic.arg, windowStart=bar.start // 1000, openingPrice=_fixed(bar.open, market.tick),
                closingPrice=_fixed(bar.close, market.tick), highestPrice=_fixed(bar.high, market.tick),
                lowestPrice=_fixed(bar.low, market.tick), volume=_fixed(bar.volume, market.lot),
                amount=decimal_text(bar.quote_volume), windowEnd=(bar.start + TIMEFRAMES_MS[timeframe]) // 1000,
            ))
            push.createTime = step.time  # the kline push's stamp (the docs' sample has no sendTime)
        return push.SerializeToString()

    def _contract_frame(self, topic: Topic, market: SymbolMarket, step: MarketStep) -> str | None:
        size = contract_size(self.exchange, topic.raw) or Decimal(1)
        data: Any
        if topic.kind == "depth":
            if step.book is None:
                return None
            data = {  # [price, contracts, orders at the price]; 0 contracts: the level is gone
                "asks": [[price, amount / size, 1 if amount else 0] for price, amount in step.book.asks],
                "bids": [[price, amount / size, 1 if amount else 0] for price, amount in step.book.bids],
                "begin": step.book.first_seq, "end": step.book.seq, "version": step.book.seq,
            }
        elif topic.kind == "deals":
            if not step.trades:
                return None
            data = [{"p": t.price, "v": t.amount / size, "T": _SPOT_SIDE[t.side], "O": 3, "M": 2, "t": t.time}
                    for t in step.trades]  # T: the taker's side (1 buy, 2 sell); O 3: no position change
        elif topic.kind == "ticker":
            change = market.last - market.open
            data = {  # no index here: the fair and index prices are the last price
                "symbol": topic.raw, "lastPrice": market.last,
                "riseFallRate": (change / market.open).quantize(Decimal("0.0001")), "riseFallValue": change,
                "fairPrice": market.last, "indexPrice": market.last, "volume24": market.volume / size,
                "amount24": market.quote_volume, "lower24Price": market.low, "high24Price": market.high,
                "timestamp": step.time, "bid1": market.best_bid()[0], "ask1": market.best_ask()[0], "holdVol": 0,
                "fundingRate": Decimal("0.0001"), "zone": "UTC+8",
            }
        else:
            bar = market.candle(INTERVALS[topic.arg])
            data = {
                "symbol": topic.raw, "interval": topic.arg, "t": bar.start // 1000, "o": bar.open, "c": bar.close,
                "h": bar.high, "l": bar.low, "a": bar.quote_volume, "q": bar.volume / size, "ro": bar.open,
                "rc": bar.close, "rh": bar.high, "rl": bar.low,
            }
        return json_numbers({"channel": topic.channel, "data": data, "symbol": topic.raw, "ts": step.time}, _plain)

    def public_rest_routes(self, market: Market) -> list:
        if market is Market.SPOT:
            return [("GET", "/api/v3/depth", self._spot_depth)]
        return [("GET", "/api/v1/contract/depth/{symbol}", self._contract_depth)]

    async def _spot_depth(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Spot "Order Book": `limit` levels a side (default 100, at most 5000; the simulated book has 50) and
        `lastUpdateId`, the version the depth pushes' `fromVersion` / `toVersion` continue from."""
        raw = request.query.get("symbol")
        if not raw:
            return _mandatory("symbol")
        try:
            limit = min(max(int(request.query.get("limit") or SPOT_DEPTH_LIMIT), 1), SPOT_DEPTH_MAX)
        except ValueError:
            return _mandatory("limit")
        symbol = self.listed[market].get(raw)
        if symbol is None:
            return _spot_error(INVALID_SYMBOL)
        book = sim.market(self.exchange, market, symbol)
        bids, asks = book.book(limit)
        return web.json_response({
            "lastUpdateId": book.seq,
            "bids": [[_fixed(p, book.tick), _fixed(a, book.lot)] for p, a in bids],
            "asks": [[_fixed(p, book.tick), _fixed(a, book.lot)] for p, a in asks],
            "timestamp": now_ms(),
        })

    async def _contract_depth(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Contract depth: every level as [price, contracts, orders] and the `version` push.depth continues from."""
        raw = request.match_info["symbol"]
        symbol = self.listed[market].get(raw)
        if symbol is None:
            return _contract_reply(error=CONTRACT_MISSING)
        try:
            limit = _ints(request.query, ("limit",))["limit"]
        except ValueError:
            return _contract_reply(error=PARAMETER_ERROR)
        book = sim.market(self.exchange, market, symbol)
        size = contract_size(self.exchange, raw) or Decimal(1)
        bids, asks = book.book(limit)
        return _contract_reply({
            "asks": [[p, a / size, 1] for p, a in asks], "bids": [[p, a / size, 1] for p, a in bids],
            "version": book.seq, "timestamp": now_ms(),
        })

    # REST ------------------------------------------------------------------------------------------------------------
    def rest_routes(self, market: Market) -> list:
        if market is Market.SPOT:
            listen_key = [(method, "/api/v3/userDataStream", self._listen_key) for method in ("POST", "PUT", "DELETE", "GET")]
            return listen_key + [("GET", "/api/v3/myTrades", self._my_trades), ("GET", "/api/v3/order", self._order),
                                 ("POST", "/api/v3/order", self._new_order), ("DELETE", "/api/v3/order", self._cancel),
                                 ("GET", "/api/v3/openOrders", self._open_orders),
                                 ("GET", "/api/v3/account", self._spot_balances)]
        closed = [("POST", f"/api/v1/private/{path}", self._contract_order_entry) for path in CONTRACT_ORDER_PATHS]
        return closed + [("GET", "/api/v1/private/order/list/order_deals", self._order_deals),
                         ("GET", "/api/v1/private/order/get/{order_id}", self._contract_order_query),
                         ("GET", "/api/v1/private/account/assets", self._contract_assets),
                         ("GET", "/api/v1/private/position/open_positions", self._open_positions)]

    async def _spot_refusal(self, sim: Simulator, request: web.Request) -> tuple[web.Response | None, dict[str, str]]:
        """(None, params) for a well-signed SIGNED request; else (MEXC's error answer, {})."""
        creds = sim.credentials_for(self.exchange)
        key = request.headers.get(API_KEY_HEADER)
        if not key:
            return _spot_error(API_KEY_REQUIRED), {}
        if key != creds.api_key:
            return _spot_error(INVALID_KEY), {}
        query, body = request.rel_url.raw_query_string, await request.text()
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        signature = params.pop("signature", "")
        if not signature:
            return _mandatory("signature"), {}
        self.secrets_seen.add(signature)
        expected = hmac_sha256(creds.secret, _without_signature(query) + _without_signature(body)).hex()  # totalParams
        if not hmac.compare_digest(signature, expected):
            return _spot_error(BAD_SIGNATURE), {}
        try:
            timestamp, window = int(params["timestamp"]), int(params.get("recvWindow") or RECV_WINDOW_MS)
        except (KeyError, ValueError):
            return _mandatory("timestamp"), {}
        if window > MAX_RECV_WINDOW_MS:
            return _spot_error(WINDOW_TOO_LARGE), {}
        now = now_ms()
        if not (timestamp < now + 1000 and now - timestamp <= window):  # the docs' "timing security" rule
            return _spot_error(OUTSIDE_WINDOW), {}
        return None, params

    async def _listen_key(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        refusal, params = await self._spot_refusal(sim, request)
        if refusal is not None:
            return refusal
        now = now_ms()
        live = [key for key, expiry in self.listen_keys.items() if expiry >= now]
        if request.method == "GET":
            return web.json_response({"listenKey": live})
        if request.method == "POST":  # a new key each time (MEXC allows 60 per account)
            key = secrets.token_hex(32)
            self.listen_keys[key] = now + LISTEN_KEY_TTL_MS
            self.secrets_seen.add(key)
            return web.json_response({"listenKey": key})
        key = params.get("listenKey")
        if not key:
            return _mandatory("listenKey")
        if key not in live:
            return _spot_error(LISTEN_KEY_ERROR)
        if request.method == "PUT":
            self.listen_keys[key] = now + LISTEN_KEY_TTL_MS
        else:  # DELETE closes the stream and invalidates the key
            del self.listen_keys[key]
            for session in sim.sessions(self.exchange, market):
                if session.state.get("listen_key") == key:
                    await session.close(1000, "listen key deleted")
        return web.json_response({"listenKey": key})

    def expire_listen_keys(self) -> None:
        """Fault: every listenKey dies now (the next PUT gets 730708, new sockets get `Invalid listen key`)."""
        self.listen_keys.clear()

    async def _my_trades(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Ascending time; from startTime the first `limit`, else the latest `limit`; the past 30 days at most."""
        refusal, params = await self._spot_refusal(sim, request)
        if refusal is not None:
            return refusal
        symbol_raw = params.get("symbol")
        if not symbol_raw:
            return _mandatory("symbol")
        try:
            numbers = _ints(params, ("startTime", "endTime", "limit"))
        except ValueError as exc:
            return _mandatory(str(exc))
        start, end = numbers["startTime"], numbers["endTime"]
        limit = min(max(numbers["limit"] or PAGE_LIMIT, 1), PAGE_LIMIT)
        floor = now_ms() - SPOT_HISTORY_MS
        order_id = params.get("orderId")
        fills = [
            f for f in sim.ledger(self.exchange, market).fills_between(None, start, end)
            if self.raw_symbol(market, f.symbol) == symbol_raw and f.time >= floor
            and (not order_id or f.order_id == order_id)
        ]
        fills = fills[:limit] if start is not None else fills[-limit:]
        return web.json_response([self._my_trades_row(f, symbol_raw) for f in fills])

    @staticmethod
    def _my_trades_row(fill: SimFill, raw: str) -> dict:
        return {
            "symbol": raw, "id": fill.trade_id, "orderId": fill.order_id, "orderListId": -1,
            "price": _plain(fill.price), "qty": _plain(fill.amount), "quoteQty": _plain(fill.cost),
            "commission": _plain(fill.fee), "commissionAsset": fill.fee_currency, "time": fill.time,
            "isBuyer": fill.side is Side.BUY, "isMaker": fill.is_maker, "isBestMatch": True, "isSelfTrade": False,
            "clientOrderId": fill.client_order_id,
        }

    # spot order entry -------------------------------------------------------------------------------------------
    async def _new_order(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Spot New Order, through the matching engine: the answer has no status (the order is not matched yet)."""
        refusal, params = await self._spot_refusal(sim, request)
        if refusal is not None:
            return refusal
        read = self._place_request(sim, market, params)
        if isinstance(read, web.Response):
            return read
        result = await sim.orders.call(self.exchange, market, read, transport=request.transport)
        if result is None or result.kind != "ok":
            return self._order_error(result, "place")
        order = result.order
        answer = {"symbol": params["symbol"], "orderId": order.order_id, "orderListId": -1,
                  "origQty": _plain(order.amount), "type": _spot_type(order), "side": order.side.value.upper(),
                  "stpMode": "", "transactTime": order.created}
        if order.order_type != "market":  # a market order's ledger price is the book's, not one MEXC was sent
            answer["price"] = _plain(order.price)
        return web.json_response(answer)

    def _place_request(self, sim: Simulator, market: Market, params: dict[str, str]) -> SimRequest | web.Response:
        """The New Order parameters as a SimRequest, or MEXC's error for a malformed one."""
        raw = params.get("symbol")
        if not raw:
            return _mandatory("symbol")
        symbol = self.listed[market].get(raw)
        if symbol is None:
            return _spot_error(INVALID_SYMBOL)
        side = {"BUY": Side.BUY, "SELL": Side.SELL}.get(params.get("side", "").upper())
        if side is None:
            return _mandatory("side")
        kind = params.get("type", "").upper()
        if kind == "FILL_OR_KILL":
            return _spot_error(NO_FILL_OR_KILL)
        order_type = _ORDER_TYPES_IN.get(kind)
        if order_type is None:
            return _mandatory("type")
        try:
            quantity, price, quote = (_decimal(params, name) for name in ("quantity", "price", "quoteOrderQty"))
        except ValueError as exc:
            return _mandatory(str(exc))
        if order_type == "market":
            price = None
            if quantity is None and quote is not None:  # spend (buy) or raise (sell) this much quote at the book
                book = sim.market(self.exchange, market, symbol)
                level = book.best_ask()[0] if side is Side.BUY else book.best_bid()[0]
                quantity = (quote / level).quantize(book.lot, rounding=ROUND_DOWN)
        elif price is None:
            return _mandatory("price")
        if quantity is None:
            return _mandatory("quantity")
        client_id = params.get("newClientOrderId") or None
        if client_id is not None and not _CLIENT_ID.match(client_id):
            return _spot_error(ILLEGAL_CHARACTERS)
        return SimRequest(op="place", symbol=symbol, client_order_id=client_id, side=side, amount=quantity,
                          price=price, order_type=order_type, valid_until=_valid_until(params))

    async def _cancel(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Spot Cancel Order by orderId or origClientOrderId: the order as it is now (CANCELED)."""
        return await self._by_order(sim, market, request, "cancel")

    async def _order(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Spot Query Order by orderId or origClientOrderId (the newest order with it) within the symbol."""
        return await self._by_order(sim, market, request, "query")

    async def _by_order(self, sim: Simulator, market: Market, request: web.Request, op: str) -> web.Response:
        refusal, params = await self._spot_refusal(sim, request)
        if refusal is not None:
            return refusal
        raw = params.get("symbol")
        if not raw:
            return _mandatory("symbol")
        symbol = self.listed[market].get(raw)
        if symbol is None:
            return _spot_error(INVALID_SYMBOL)
        order_id, client_id = params.get("orderId") or None, params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            return _spot_error(NO_ORDER_NAMED)
        named = sim.orders.find(self.exchange, market, order_id=order_id, client_order_id=client_id)
        if named is not None and named.symbol != symbol:  # an order of another symbol is not this one's
            return self._order_error(SimResult(kind="not_found"), op)
        result = await sim.orders.call(
            self.exchange, market, SimRequest(op=op, symbol=symbol, order_id=order_id, client_order_id=client_id,
                                              valid_until=_valid_until(params)),
            transport=request.transport)
        if result is None or result.kind != "ok":
            return self._order_error(result, op)
        row = _spot_order_row(result.order, raw)
        if op == "cancel":
            row["origClientOrderId"] = row["clientOrderId"]
        return web.json_response(row)

    async def _open_orders(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Spot Current Open Orders of a symbol (mandatory), oldest first."""
        refusal, params = await self._spot_refusal(sim, request)
        if refusal is not None:
            return refusal
        raw = params.get("symbol")
        if not raw:
            return _mandatory("symbol")
        if raw not in self.listed[market]:
            return _spot_error(INVALID_SYMBOL)
        return web.json_response([
            _spot_order_row(o, raw) for o in sim.ledger(self.exchange, market).orders.values()
            if self.raw_symbol(market, o.symbol) == raw and not o.status.is_terminal and o.trigger_price is None
        ])

    @staticmethod
    def _order_error(result: SimResult | None, op: str) -> web.Response:
        """MEXC's answer to an order request the engine did not do (None: the connection was cut already)."""
        if result is None:
            return web.Response(status=500)
        if result.kind == "unknown":  # "execution status UNKNOWN" (MEXC's words for any 5xx)
            return _spot_error(INTERNAL_ERROR, status=500)
        if result.kind == "not_found":
            return _spot_error(ORDER_MISSING if op == "query" else UNKNOWN_ORDER)
        return _spot_error(_REJECTIONS.get(result.reason, OPERATION_NOT_ALLOWED))

    async def _spot_balances(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Spot "Account Information": every coin the account has (each listed coin from its starting balance)."""
        refusal, _ = await self._spot_refusal(sim, request)
        if refusal is not None:
            return refusal
        account = sim.account(self.exchange, market)
        for coin in (*LISTED_COINS, *SPOT_QUOTES):
            account.balance(coin)
        return web.json_response({
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "updateTime": None, "accountType": "SPOT",
            "balances": [{"asset": asset, "free": _plain(b.free), "locked": _plain(b.locked)}
                         for asset, b in sorted(account.balances.items())],
            "permissions": ["SPOT"],
        })

    async def _contract_assets(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Contract "Get all informations of user's asset": each settle coin's wallet."""
        refusal = self._contract_refusal(sim, request)
        if refusal is not None:
            return _contract_reply(error=refusal)
        account = sim.account(self.exchange, market)
        account.balance(SETTLE)
        return _contract_reply([self._asset_row(account, asset, rest=True) for asset in sorted(account.balances)])

    async def _open_positions(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Contract "Get the user's current holding position": the open positions (of `symbol`, if given)."""
        refusal = self._contract_refusal(sim, request)
        if refusal is not None:
            return _contract_reply(error=refusal)
        wanted = request.query.get("symbol")
        rows = []
        for symbol, position in sorted(sim.account(self.exchange, market).positions.items()):
            raw = self.raw_symbol(market, symbol)
            if position.size and wanted in (None, "", raw):
                rows.append(self._position_row(position, raw, LONG if position.size > 0 else SHORT, holding=True))
        return _contract_reply(rows)

    async def _contract_order_query(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Contract "Get the order based on the order number": the order as the push writes it (with externalOid)."""
        refusal = self._contract_refusal(sim, request)
        if refusal is not None:
            return _contract_reply(error=refusal)
        ledger = sim.ledger(self.exchange, market)
        order_id = request.match_info["order_id"]
        order = ledger.orders.get(order_id) if order_id not in self.forgotten_orders else None
        if order is None:
            return _contract_reply(error=ORDER_NOT_FOUND)
        return _contract_reply(self._contract_order_row(ledger, order, self.raw_symbol(market, order.symbol)))

    async def _contract_order_entry(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Contract order entry (submit, cancel, plan / stop orders …), closed to API keys since 2022-07-25: a
        well-signed request gets code 1002 "Contract not allow place order!" and nothing is done."""
        refusal = self._contract_refusal(sim, request, body=await request.text())
        return _contract_reply(error=refusal or ORDER_ENTRY_CLOSED)

    def _contract_refusal(self, sim: Simulator, request: web.Request,
                          body: str | None = None) -> tuple[int, str] | None:
        """None for a well-signed private contract request (a POST signs its raw JSON `body`); else MEXC's
        (code, message)."""
        creds = sim.credentials_for(self.exchange)
        key, stamp, signature = (request.headers.get(h) for h in ("ApiKey", "Request-Time", "Signature"))
        if key != creds.api_key:
            return UNAUTHORIZED
        try:
            window = min(int(request.headers.get("Recv-Window") or CONTRACT_WINDOW_S), MAX_CONTRACT_WINDOW_S)
            skew = abs(now_ms() - int(stamp or ""))
        except ValueError:
            return STALE_REQUEST
        if skew > window * 1000:
            return STALE_REQUEST
        # GET: the parameters in dictionary order, `&`-joined, values URL-encoded (the docs' Java sample); POST: the
        # JSON body as sent.
        pairs = sorted(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        payload = urlencode(pairs, quote_via=quote) if body is None else body
        if signature:
            self.secrets_seen.add(signature)
        expected = hmac_sha256(creds.secret, f"{key}{stamp}{payload}").hex()
        if not signature or not hmac.compare_digest(signature, expected):
            return VERIFY_FAILED
        return None

    async def _order_deals(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Newest first, `page_size` (default 20, ≤ 100) per `page_num`; no start_time: the 7 days before end_time."""
        refusal = self._contract_refusal(sim, request)
        if refusal is not None:
            return _contract_reply(error=refusal)
        params = request.query
        symbol_raw = params.get("symbol")
        try:
            numbers = _ints(params, ("start_time", "end_time", "page_num", "page_size"))
        except ValueError:
            return _contract_reply(error=PARAMETER_ERROR)
        page, size = numbers["page_num"] or 1, numbers["page_size"] or 20
        if not symbol_raw or page < 1 or not 1 <= size <= PAGE_LIMIT:
            return _contract_reply(error=PARAMETER_ERROR)
        end = numbers["end_time"] if numbers["end_time"] is not None else now_ms()
        start = numbers["start_time"] if numbers["start_time"] is not None else end - DEALS_DEFAULT_SPAN_MS
        if end < start or end - start > DEALS_MAX_SPAN_MS:
            return _contract_reply(error=TIME_RANGE_ERROR)
        ledger = sim.ledger(self.exchange, market)
        fills = [
            f for f in reversed(ledger.fills_between(None, start, end))
            if self.raw_symbol(market, f.symbol) == symbol_raw
        ]
        return _contract_reply([self._deal_row(ledger, f, symbol_raw) for f in fills[(page - 1) * size:page * size]])


VENUE_CLASS = MexcSim
