"""Bitget (v2) on the simulator: the private WebSocket (login op, `orders` / `fill` channels, text ping) and REST fills.

Socket `/v2/ws/private`: `{"op": "login"}` is checked with the package's own signing (`auth.sign` over
`timestamp + "GET" + "/user/verify"`, timestamp in seconds, 30 s window); a refusal is
`{"event": "error", "code": 30011..30015, "msg": ...}` and the socket stays open without data, as on Bitget.
`subscribe` is acked once per arg; pushes are `{"action": "snapshot", "arg", "data", "ts"}`; "ping" gets "pong".
REST: signed `GET /api/v2/spot/trade/fills` and `/api/v2/mix/order/fills` (newest first, `idLessThan` paging).
Neither fills row carries the client id; the order queries do (what ccxt's `fetch_order` calls): `GET
/api/v2/spot/trade/orderInfo` (orderId or clientOid; `data` a list, empty for an unknown order, which ccxt reads
as OrderNotFound) and `GET /api/v2/mix/order/detail` (symbol, productType, orderId or clientOid; `data` an
object; an unknown order is `40109` "The data of the order cannot be found, please confirm the order number",
as ccxt maps it). REST signatures are checked here (base64 HMAC-SHA256), not with the client's signing code.
Their time rules: startTime..endTime at most 90 days ("must not exceed 90 days" / "three months"), and nothing
older than 90 days ("It only supports to get the data within 90days"); either is refused as Bitget did in
ccxt/ccxt#21502: `{"code": "43111", "msg": "param error time range illegal"}`.

Account state (`sim.account`): `account` (scope `coin`, not `instId`) on SPOT and USDT-FUTURES and `positions` on
USDT-FUTURES, `default` only; acked like the others, then a snapshot (every coin; every open position, `data: []`
if none), then after each change the changed coins and again every open position (a closed one is left out,
as Bitget does). REST, signed: `GET /api/v2/spot/account/assets` (coin, assetType hold_only|all),
`GET /api/v2/mix/account/accounts` and `GET /api/v2/mix/position/all-position` (productType required,
marginCoin optional), what ccxt's fetch_balance / fetch_positions call with `uta: False`.

Order entry (exchanges/simulator/orders.py does the matching): `{"op": "trade"}` on the private socket,
`place-order` / `cancel-order`, answered `{"event": "trade", "arg": [{…, "params": {orderId, clientOid}}], "code":
0}` or `{"event": "error", "arg": [the request's arg], "code": 43001, …}`; refused with 40301 ("Permission has not
been obtained yet…") unless the account is granted WebSocket trading (`ws_trading`, off by default), or the socket's
grant was refused by the engine's login fault. The trade frame carries no timestamp: no validity window. REST
(signed, the POST body in the signature, valid 30 s from ACCESS-TIMESTAMP): spot and futures place-order /
cancel-order, futures modify-order (newSize + newPrice under a newClientOid; the order keeps its id here, where
Bitget makes a new one), and futures TP/SL plans (place-tpsl-order profit_plan / loss_plan, cancel-plan-order,
orders-plan-pending / -history). A clientOid is never taken twice (43118 spot, 45034 futures). A spot market buy's
size is quote coin, bought at the best ask and rounded down to the lot.

Public socket `/v2/ws/public` (no login): `ticker`, `trade`, `books` / `books1` / `books5` / `books15` and
`candle<1m|5m|15m|30m|1H|4H|1D>` of the listed USDT pairs, `instType` the path's market ("SPOT" or
"USDT-FUTURES", sizes in the base coin). Each subscription is acked, then answered with a snapshot (the
ticker, the recent trades newest first, the whole 50-level book, the current candle); each market step
pushes what changed. `books` updates carry the changed levels (size "0": removed), the book's `seq` and the
signed CRC32 of its top 25 levels, "bid1price:bid1size:ask1price:ask1size:…" in the texts sent; `booksN` push
a snapshot of N levels every step. An instId, channel or instType Bitget does not list gets
`{"event": "error", "code": 30001, "msg": "instType:…,channel:…,instId:… doesn't exist"}`.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import uuid
import zlib
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web
from attrs import evolve as attrs_evolve

from exchanges.bitget.auth import login_payload, sign
from exchanges.simulator.account import SimAccount, SimPosition
from exchanges.simulator.ledger import SimFill, SimOrder
from exchanges.simulator.market import CandleBar, MarketStep, SymbolMarket, TradeTick
from exchanges.simulator.orders import ClientIdPolicy, SimRequest, SimResult
from exchanges.simulator.venues.base import SimSession, VenueSim, decimal_text, dumps, hmac_sha256
from framework.events import Market, OrderStatus, Side, now_ms

if TYPE_CHECKING:
    from exchanges.simulator.server import Simulator

WINDOW_MS = 30_000  # login and REST timestamps: within 30 s of the server clock
INST_TYPE = {Market.SPOT: "SPOT", Market.FUTURE: "USDT-FUTURES"}
INST_TYPES = frozenset({"SPOT", "MARGIN", "USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES",
                        "SUSDT-FUTURES", "SCOIN-FUTURES", "SUSDC-FUTURES"})
CHANNELS = ("orders", "fill")
ACCOUNT_CHANNELS = ("account", "positions")
FUTURES_INST_TYPES = INST_TYPES - {"SPOT", "MARGIN"}
SETTLE = "USDT"  # the one margin coin of USDT-FUTURES
KEEP_MARGIN_RATE = "0.004"  # maintenance margin rate written on positions (the docs' BTCUSDT samples)
PAGE_LIMIT = 100  # default and maximum `limit` of both fills endpoints
HISTORY_MS = 90 * 24 * 3600 * 1000  # fills are kept 90 days; one request spans at most as much
_STATUS = {OrderStatus.NEW: "live", OrderStatus.PARTIALLY_FILLED: "partially_filled",
           OrderStatus.FILLED: "filled"}  # canceled/rejected/expired: "cancelled" (spot) / "canceled" (futures)
_CLIENT_OID_NAMESPACE = uuid.UUID("5b3c8f1e-6a0d-4c3e-9a53-0b1f2c4d5e6f")

PUBLIC_PATH = "/v2/ws/public"
# The pairs listed here (the simulator's own instruments); anything else "doesn't exist".
LISTED_BASES = frozenset({"BTC", "ETH", "SOL", "BNB", "LTC", "AVAX", "XRP", "DOGE", "ADA", "LINK"})
BOOK_CHANNELS = {"books": None, "books1": 1, "books5": 5, "books15": 15}  # None: snapshot, then updates
CANDLE_CHANNELS = {"candle1m": "1m", "candle5m": "5m", "candle15m": "15m", "candle30m": "30m",
                   "candle1H": "1h", "candle4H": "4h", "candle1D": "1d"}
PUBLIC_CHANNELS = frozenset({"ticker", "trade", *BOOK_CHANNELS, *CANDLE_CHANNELS})
CHECKSUM_LEVELS = 25  # the `books` checksum covers the top 25 levels a side
TRADE_SNAPSHOT = 50  # recent trades a `trade` subscription starts with
FUNDING_MS = 8 * 3600 * 1000

# Order entry.
TRADE_CHANNELS = frozenset({"place-order", "cancel-order"})
_REQUEST_ID = re.compile(r"[0-9A-Za-z_:#\-+\s]{1,40}")  # the trade op's id: "Length<= 40"
PLAN_TRIGGERS = {"profit_plan": "take_profit", "loss_plan": "stop_loss"}


class _Refused(Exception):
    """A request Bitget refuses before it reaches the matching engine: its code and message."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code} {msg}")
        self.code, self.msg = code, msg


def _decimal_param(params: dict, name: str) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        number = Decimal(value) if type(value) is str else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise _Refused("40020", f"Parameter {name} error")
    return number


def _cancel_request(symbol: str, params: dict) -> SimRequest:
    """Cancel by orderId or clientOid ("If both are present, orderId prevails")."""
    order_id, client_oid = params.get("orderId") or None, params.get("clientOid") or None
    if order_id is None and client_oid is None:
        raise _Refused("40924", "orderId and clientOid must have one")
    if order_id is not None:
        return SimRequest(op="cancel", symbol=symbol, order_id=str(order_id))
    return SimRequest(op="cancel", symbol=symbol, client_order_id=str(client_oid))


def _refusal(market: Market, op: str, result: SimResult) -> tuple[str, str]:
    """Bitget's code and message for what the engine did not do (the classic API's codes, which its v2
    WebSocket trade answers carry too)."""
    spot = market is Market.SPOT
    if result.kind == "unknown":
        return "40010", "Request timed out"
    if result.kind == "not_found":
        return ("43001", "The order does not exist") if spot else ("40768", "Order does not exist")
    reason = result.reason
    if reason == "duplicate_client_id":
        return ("43118", "clientOrderId duplicate") if spot else ("45034", "clientOid duplicate")
    if reason == "expired":
        return "40008", "Request timestamp expired"
    if reason == "not_open":
        return "45055", "The current order status cannot be cancelled"
    if reason == "insufficient":
        return ("43012", "Insufficient balance") if spot else ("40754", "balance not enough")
    if reason == "would_cross":
        return "40017", "Parameter verification failed: the post_only order would take liquidity"
    return "40017", f"Parameter verification failed: {result.message}"


def _order_price(order: SimOrder) -> str:
    """A limit order's price; "0" for a market order (as Bitget writes it)."""
    return "0" if order.order_type == "market" else decimal_text(order.price)


def _negated(fee: Decimal) -> str:
    """A fee paid, as Bitget writes it where "negative value" means paid."""
    return decimal_text(-fee) if fee else "0"


def _ws_error(code: int, msg: str, arg: dict | list | None = None) -> dict:
    frame: dict[str, Any] = {"event": "error", "code": code, "msg": msg}
    if arg is not None:
        frame["arg"] = arg
    return frame


def _rest_error(code: str, msg: str, status: int = 400) -> web.Response:
    body = {"code": code, "msg": msg, "requestTime": now_ms(), "data": None}
    return web.json_response(body, status=status, dumps=dumps)


class BitgetSim(VenueSim):
    exchange = "bitget"
    markets = frozenset({Market.SPOT, Market.FUTURE})
    client_silence_limit = 120.0  # Bitget drops a socket that sent no "ping" for 2 minutes
    # A clientOid names one order for good: a second order with it is refused (43118 / 45034). Bitget documents
    # the duplicate codes, not their scope; "never twice" is this simulator's reading.
    client_id_policy = ClientIdPolicy.ALWAYS_UNIQUE
    # WebSocket trading is granted per account by Bitget ("contact your BD or RM"): off unless a test grants it
    # (`sim.venue("bitget").ws_trading = True`); without it every trade op is refused with 40301.
    ws_trading = False

    # sockets ---------------------------------------------------------------------------------------------------
    def ws_paths(self, market: Market) -> list[str]:
        return ["/v2/ws/private"]

    def public_ws_paths(self, market: Market) -> list[str]:
        return [PUBLIC_PATH]

    async def on_message(self, session: SimSession, message: Any) -> None:
        if message == "ping":
            await session.send("pong")
            return
        op = message.get("op") if type(message) is dict else None
        args = message.get("args") if type(message) is dict else None
        if op not in ("login", "subscribe", "unsubscribe", "trade") or type(args) is not list or not args:
            text = message if isinstance(message, str) else dumps(message)
            await session.send(_ws_error(30002, f"Unrecognized request: {text}"))
        elif op == "trade":
            await self._trade(session, args)
        elif op == "login":
            await self._login(session, args[0])
        elif session.public:
            for arg in args:
                await self._public_subscribe(session, op, arg)
        else:
            for arg in args:
                await self._subscribe(session, op, arg)

    async def _login(self, session: SimSession, arg: Any) -> None:
        creds = session.credentials
        arg = arg if type(arg) is dict else {}
        timestamp = arg.get("timestamp")
        if arg.get("apiKey") != creds.api_key:
            await session.send(_ws_error(30011, "Invalid ACCESS_KEY"))
        elif arg.get("passphrase") != (creds.passphrase or ""):
            await session.send(_ws_error(30012, "Invalid ACCESS_PASSPHRASE"))
        elif type(timestamp) is not str or not timestamp.isdigit():
            await session.send(_ws_error(30013, "Invalid ACCESS_TIMESTAMP"))
        elif abs(now_ms() - _as_ms(timestamp)) > WINDOW_MS:
            await session.send(_ws_error(30014, "Request timestamp expired"))
        elif not hmac.compare_digest(str(arg.get("sign", "")), sign(creds.secret, login_payload(timestamp))):
            await session.send(_ws_error(30015, "Invalid sign"))
        else:
            session.authenticated = True
            await session.send({"event": "login", "code": 0, "msg": ""})

    async def _subscribe(self, session: SimSession, op: str, arg: Any) -> None:
        if type(arg) is not dict or not all(type(arg.get(k)) is str for k in ("instType", "channel")):
            await session.send(_ws_error(30002, f"Illegal request: {dumps(arg)}"))
            return
        inst_type, channel = arg["instType"], arg["channel"]
        scope_name = "coin" if channel == "account" else "instId"  # the account channel's scope is a coin
        scope = arg.get(scope_name) or "default"
        echo = {"instType": inst_type, "channel": channel, scope_name: scope}
        if not _listed_channel(inst_type, channel, scope):
            text = f"instType:{inst_type},channel:{channel},{scope_name}:{scope} doesn't exist"
            await session.send(_ws_error(30001, text, echo))
            return
        if not session.authenticated:
            await session.send(_ws_error(30004, "User not logged in", echo))
            return
        key = _key(inst_type, channel, scope)
        if op == "subscribe":
            session.subscriptions.add(key)
        else:
            session.subscriptions.discard(key)
        await session.send({"event": op, "arg": echo})
        if op == "subscribe" and channel in ACCOUNT_CHANNELS and inst_type == INST_TYPE[session.market]:
            account = session.sim.account(self.exchange, session.market)
            if channel == "account":
                await session.send(self._account_push(session.market, account, _held_assets(session.market, account)))
            else:
                await session.send(self._positions_push(session, account))

    # order entry: WebSocket --------------------------------------------------------------------------------------
    async def _trade(self, session: SimSession, args: list) -> None:
        """`{"op": "trade", "args": [{id, instType, instId, channel, params}]}` → the engine; the answer is
        `{"event": "trade", "arg": [{…, "params": {orderId, clientOid}}], "code": 0}` or `{"event": "error", "arg":
        [the request's arg], "code": <Bitget's code>, "msg"}` (codes as numbers, as the captured frames have them)."""
        arg = args[0] if type(args[0]) is dict else {}
        echo = {"id": arg.get("id"), "instType": arg.get("instType"), "channel": arg.get("channel"),
                "instId": arg.get("instId"), "params": arg.get("params")}

        async def refuse(code: int, msg: str) -> None:
            await session.send(_ws_error(code, msg, [echo]) | {"ts": now_ms()})

        if session.public:
            await session.send(_ws_error(30002, f"Unrecognized request: {dumps(args)}"))
            return
        if not session.authenticated:
            await refuse(30004, "User not logged in")
            return
        if "trade_refused" not in session.state:  # the "refuse the WS trading login" fault: this socket's grant
            session.state["trade_refused"] = session.sim.orders.login_refused(self.exchange, session.market)
        if not self.ws_trading or session.state["trade_refused"]:
            await refuse(40301, "Permission has not been obtained yet. If you need to use it, please contact "
                                "customer service")
            return
        req_id = arg.get("id")
        if type(req_id) is not str or not _REQUEST_ID.fullmatch(req_id) or len(args) != 1:
            await refuse(30016, "Param error")
            return
        channel, params = arg.get("channel"), arg.get("params")
        symbol = self._listed(session.market, str(arg.get("instId")))
        if arg.get("instType") != INST_TYPE[session.market] or channel not in TRADE_CHANNELS or symbol is None:
            await refuse(30001, f"instType:{arg.get('instType')},channel:{channel},instId:{arg.get('instId')} "
                                "doesn't exist")
            return
        if type(params) is not dict:
            await refuse(40019, "Parameter params cannot be empty")
            return
        market = session.market
        try:
            if channel == "place-order":
                req = self._place_request(session.sim, market, symbol, params, valid_until=None)
            else:
                req = _cancel_request(symbol, params)
        except _Refused as refusal:
            await refuse(int(refusal.code), refusal.msg)
            return
        op = "place" if channel == "place-order" else "cancel"

        async def answer(result: SimResult) -> None:
            if result.kind == "ok":
                order = result.order
                await session.send({"event": "trade", "arg": [{**echo, "params": {
                    "orderId": order.order_id, "clientOid": _client_oid(order)}}], "code": 0, "msg": "Success",
                    "ts": now_ms()})
            else:
                code, msg = _refusal(market, op, result)
                await refuse(int(code), msg)

        session.sim.orders.submit(self.exchange, market, req, answer, path="ws", transport=session.request.transport)

    def _place_request(self, sim: Any, market: Market, symbol: str, params: dict, valid_until: int | None
                       ) -> SimRequest:
        """A place-order's params (WebSocket or REST: the same fields) as a SimRequest; _Refused for what Bitget
        would refuse before the engine. A spot market buy's size is quote coin: bought at the best ask, rounded down
        to the symbol's lot."""
        side, order_type, force = params.get("side"), params.get("orderType"), params.get("force", "gtc")
        if side not in ("buy", "sell"):
            raise _Refused("40020", "Parameter side error")
        if order_type not in ("limit", "market"):
            raise _Refused("40020", "Parameter orderType error")
        if order_type == "limit" and force not in ("gtc", "ioc", "post_only"):
            raise _Refused("40020", f"Parameter force error (the simulator takes gtc, ioc, post_only), got {force}")
        size, price = _decimal_param(params, "size"), _decimal_param(params, "price")
        if size is None or size <= 0:
            raise _Refused("40019", "Parameter size cannot be empty")
        if order_type == "limit" and price is None:
            raise _Refused("40019", "Parameter price cannot be empty")
        if market is Market.FUTURE:
            if str(params.get("marginCoin", "")).upper() != SETTLE:
                raise _Refused("40020", "Parameter marginCoin error")
            if params.get("marginMode") not in ("crossed", "isolated"):
                raise _Refused("40020", "Parameter marginMode error")
        elif order_type == "market" and side == "buy":  # quote coin: what it buys at the ask
            public = sim.market(self.exchange, market, symbol)
            size = (size / public.best_ask()[0]).quantize(public.lot, rounding=ROUND_DOWN)
        kind = "market" if order_type == "market" else {"gtc": "limit", "ioc": "ioc", "post_only": "post_only"}[force]
        self._check_unused(market, params.get("clientOid"))
        return SimRequest(op="place", symbol=symbol, client_order_id=params.get("clientOid") or None,
                          side=Side(side), amount=size, price=price if order_type == "limit" else None,
                          order_type=kind, reduce_only=str(params.get("reduceOnly", "NO")).upper() == "YES",
                          valid_until=valid_until)

    @property
    def retired_client_ids(self) -> set[tuple[Market, str]]:
        """Client ids an amend moved off their order: on Bitget they still name the order modify-order cancelled
        (the simulator's engine keeps one order under the new id)."""
        return self.__dict__.setdefault("_retired_client_ids", set())

    def _check_unused(self, market: Market, client_oid: Any) -> None:
        if client_oid and (market, client_oid) in self.retired_client_ids:
            raise _Refused(*_refusal(market, "place", SimResult(kind="reject", reason="duplicate_client_id")))

    # order entry: REST -------------------------------------------------------------------------------------------
    async def _rest_body(self, sim: Simulator, market: Market, request: web.Request
                         ) -> tuple[dict | None, web.Response | None]:
        """A signed POST's JSON body, or the refusal to answer with."""
        body = await request.text()
        refusal = self._check_signature(sim, request, body)
        if refusal is not None:
            return None, refusal
        try:
            data = json.loads(body or "{}")
        except ValueError:
            return None, _rest_error("40017", "Parameter verification failed: the body is not JSON")
        if type(data) is not dict:
            return None, _rest_error("40017", "Parameter verification failed: the body is not an object")
        if market is Market.FUTURE and str(data.get("productType", "")).upper() != INST_TYPE[market]:
            return None, _rest_error("40020", "Parameter productType error")
        return data, None

    async def _rest_order(self, sim: Simulator, market: Market, request: web.Request, op: str) -> web.Response:
        """POST place-order / cancel-order / modify-order (spot: place and cancel; futures: all three)."""
        data, refusal = await self._rest_body(sim, market, request)
        if refusal is not None:
            return refusal
        symbol = self._listed(market, str(data.get("symbol", "")).upper())
        if symbol is None:
            return _rest_error("40034", "Parameter symbol does not exist")
        valid_until = int(request.headers["ACCESS-TIMESTAMP"]) + WINDOW_MS
        try:
            if op == "place":
                req = self._place_request(sim, market, symbol, data, valid_until)
            elif op == "cancel":
                req = attrs_evolve(_cancel_request(symbol, data), valid_until=valid_until)
            else:
                req = self._modify_request(sim, market, symbol, data, valid_until)
        except _Refused as refusal_:
            return _rest_error(refusal_.code, refusal_.msg)
        before = sim.orders.find(self.exchange, market, order_id=req.order_id, client_order_id=req.client_order_id)
        old_oid = before.client_order_id if before is not None else None
        result = await sim.orders.call(self.exchange, market, req, transport=request.transport)
        if result is None:
            return web.Response(status=502, text="connection cut (simulated)")
        if result.kind != "ok":
            return _rest_error(*_refusal(market, op, result))
        order = result.order
        if op == "amend":  # Bitget makes the new order asynchronously: no orderId in the answer
            if old_oid:
                self.retired_client_ids.add((market, old_oid))
            return _rest_ok({"orderId": None, "clientOid": req.new_client_order_id})
        return _rest_ok({"orderId": order.order_id, "clientOid": _client_oid(order)})

    def _modify_request(self, sim: Simulator, market: Market, symbol: str, data: dict, valid_until: int
                        ) -> SimRequest:
        """Modify-Order: newSize and newPrice together, under a newClientOid (the order the change makes)."""
        new_size, new_price = _decimal_param(data, "newSize"), _decimal_param(data, "newPrice")
        if (new_size is None) != (new_price is None):
            raise _Refused("40925", "price or size must be passed in together")
        if new_size is None:
            raise _Refused("40017", "Parameter verification failed: newSize and newPrice (TP/SL changes are not "
                                    "simulated)")
        new_oid = data.get("newClientOid")
        if not new_oid:
            raise _Refused("40017", "Parameter verification failed: newClientOid is required to modify size and price")
        if sim.orders.find(self.exchange, market, client_order_id=new_oid) is not None:
            raise _Refused("45034", "clientOid duplicate")
        self._check_unused(market, new_oid)
        base = _cancel_request(symbol, data)
        return attrs_evolve(base, op="amend", amount=new_size, price=new_price, new_client_order_id=new_oid,
                            valid_until=valid_until)

    async def _place_order(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        return await self._rest_order(sim, market, request, "place")

    async def _cancel_order(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        return await self._rest_order(sim, market, request, "cancel")

    async def _modify_order(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        return await self._rest_order(sim, market, request, "amend")

    # TP/SL: futures plan orders ------------------------------------------------------------------------------------
    async def _place_tpsl(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Place-Tpsl-Order, planType profit_plan / loss_plan: `size` of the one-way position (holdSide "buy" =
        long, closed by a sell) at the market once the price reaches triggerPrice. The engine keeps it untriggered."""
        data, refusal = await self._rest_body(sim, market, request)
        if refusal is not None:
            return refusal
        symbol = self._listed(market, str(data.get("symbol", "")).upper())
        if symbol is None:
            return _rest_error("40034", "Parameter symbol does not exist")
        plan, hold = data.get("planType"), data.get("holdSide")
        trigger_price, size = _decimal_param(data, "triggerPrice"), _decimal_param(data, "size")
        if plan not in PLAN_TRIGGERS:
            return _rest_error("40020", "Parameter planType error (the simulator takes profit_plan, loss_plan)")
        if hold not in ("buy", "sell") or trigger_price is None or trigger_price <= 0 or size is None or size <= 0:
            return _rest_error("40017", "Parameter verification failed: holdSide, triggerPrice and size")
        oid = data.get("clientOid") or None
        if oid is not None and (sim.orders.find(self.exchange, market, client_order_id=oid) is not None
                                or (market, oid) in self.retired_client_ids):
            return _rest_error("45034", "clientOid duplicate")
        req = SimRequest(op="place", symbol=symbol, client_order_id=oid, side=Side.SELL if hold == "buy" else Side.BUY,
                         amount=size, order_type="market", reduce_only=True, trigger_price=trigger_price,
                         trigger=PLAN_TRIGGERS[plan],
                         valid_until=int(request.headers["ACCESS-TIMESTAMP"]) + WINDOW_MS)
        result = await sim.orders.call(self.exchange, market, req, transport=request.transport)
        if result is None:
            return web.Response(status=502, text="connection cut (simulated)")
        if result.kind != "ok":
            return _rest_error(*_refusal(market, "place", result))
        return _rest_ok({"orderId": result.order.order_id, "clientOid": _client_oid(result.order)})

    async def _cancel_plan(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Cancel-Trigger-Order: each of orderIdList through the engine; data {successList, failureList}."""
        data, refusal = await self._rest_body(sim, market, request)
        if refusal is not None:
            return refusal
        symbol = self._listed(market, str(data.get("symbol", "")).upper())
        ids = data.get("orderIdList")
        if symbol is None or type(ids) is not list or not ids or not all(type(i) is dict for i in ids):
            return _rest_error("40017", "Parameter verification failed: symbol and orderIdList")
        success, failure = [], []
        for entry in ids:
            try:
                req = attrs_evolve(_cancel_request(symbol, entry),
                                   valid_until=int(request.headers["ACCESS-TIMESTAMP"]) + WINDOW_MS)
            except _Refused as refused:
                failure.append({**entry, "errorCode": refused.code, "errorMsg": refused.msg})
                continue
            order = sim.orders.find(self.exchange, market, order_id=req.order_id, client_order_id=req.client_order_id)
            if order is None or order.trigger_price is None:
                failure.append({"orderId": entry.get("orderId", ""), "clientOid": entry.get("clientOid", ""),
                                "errorCode": "43025", "errorMsg": "Plan order does not exist"})
                continue
            result = await sim.orders.call(self.exchange, market, req, transport=request.transport)
            if result is None:
                return web.Response(status=502, text="connection cut (simulated)")
            if result.kind == "ok":
                success.append({"orderId": result.order.order_id, "clientOid": _client_oid(result.order)})
            else:
                code, msg = ("43026", "The planned order has been closed") if result.reason == "not_open" else \
                    _refusal(market, "cancel", result)
                failure.append({"orderId": order.order_id, "clientOid": _client_oid(order), "errorCode": code,
                                "errorMsg": msg})
        return _rest_ok({"successList": success, "failureList": failure})

    async def _plans(self, sim: Simulator, market: Market, request: web.Request, pending: bool) -> web.Response:
        """Get-Pending-Trigger-Order / Get-History-Trigger-Order (planType profit_loss: the TP/SL plans), filtered
        by symbol, orderId, clientOid; data {entrustedList, endId}."""
        refusal = self._check_signature(sim, request) or _product_type_refusal(request)
        if refusal is not None:
            return refusal
        query = request.query
        if query.get("planType") not in ("profit_loss", "normal_plan", "track_plan"):
            return _rest_error("40019", "Parameter planType cannot be empty")
        waiting = sim.orders.conditional.get((self.exchange, market), [])
        orders = [o for o in sim.ledger(self.exchange, market).orders.values() if o.trigger_price is not None
                  and (o in waiting) == pending]
        symbol, oid, coid = query.get("symbol", "").upper(), query.get("orderId"), query.get("clientOid")
        rows = [self._plan_row(market, o, pending) for o in reversed(orders)
                if query["planType"] == "profit_loss" and (not symbol or self.raw_symbol(market, o.symbol) == symbol)
                and (not oid or o.order_id == oid) and (not coid or _client_oid(o) == coid)]
        return _rest_ok({"entrustedList": rows, "endId": rows[-1]["orderId"] if rows else None})

    async def _plans_pending(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        return await self._plans(sim, market, request, pending=True)

    async def _plans_history(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        return await self._plans(sim, market, request, pending=False)

    def _plan_row(self, market: Market, order: SimOrder, pending: bool) -> dict:
        if pending:
            status = "live"
        elif order.status is OrderStatus.CANCELED:
            status = "cancelled"
        else:
            status = "executed" if order.filled else "executing"
        return {"planType": "profit_plan" if order.trigger == "take_profit" else "loss_plan",
                "symbol": self.raw_symbol(market, order.symbol), "size": decimal_text(order.amount),
                "orderId": order.order_id, "clientOid": _client_oid(order), "price": "0", "executePrice": "0",
                "callbackRatio": "", "triggerPrice": decimal_text(order.trigger_price), "triggerType": "fill_price",
                "planStatus": status, "side": order.side.value, "posSide": "net", "marginCoin": SETTLE,
                "marginMode": "crossed", "enterPointSource": "API", "tradeSide": f"{order.side.value}_single",
                "posMode": "one_way_mode", "orderType": "market", "cTime": str(order.created),
                "uTime": str(order.updated)}

    # public market data ------------------------------------------------------------------------------------------
    has_checksum = True

    async def _public_subscribe(self, session: SimSession, op: str, arg: Any) -> None:
        """Ack, then (subscribe) the channel's snapshot. The topic is noted and its snapshot taken in one go
        after the ack, so every update a later step renders follows that snapshot on the socket."""
        if type(arg) is not dict or not all(type(arg.get(k)) is str for k in ("instType", "channel", "instId")):
            await session.send(_ws_error(30002, f"Illegal request: {dumps(arg)}"))
            return
        echo = {"instType": arg["instType"], "channel": arg["channel"], "instId": arg["instId"]}
        symbol = self._listed(session.market, echo["instId"])
        if echo["instType"] != INST_TYPE[session.market] or echo["channel"] not in PUBLIC_CHANNELS or symbol is None:
            text = f"instType:{echo['instType']},channel:{echo['channel']},instId:{echo['instId']} doesn't exist"
            await session.send(_ws_error(30001, text, echo))
            return
        topics: dict[str, set[str]] = session.state.setdefault("topics", {})
        await session.send({"event": op, "arg": echo})
        if op == "unsubscribe":
            topics.get(echo["instId"], set()).discard(echo["channel"])
            return
        topics.setdefault(echo["instId"], set()).add(echo["channel"])
        symbol_market = session.sim.market(self.exchange, session.market, symbol)
        await session.send(self._snapshot(session.market, symbol_market, echo["channel"], now_ms()))

    def _listed(self, market: Market, inst_id: str) -> str | None:
        """The unified symbol of a listed instId (BTCUSDT → BTC/USDT or BTC/USDT:USDT), None if not listed."""
        base = inst_id[:-4] if inst_id.endswith("USDT") else ""
        if base not in LISTED_BASES:
            return None
        return f"{base}/USDT" if market is Market.SPOT else f"{base}/USDT:USDT"

    def market_frames(self, session: SimSession, symbol_market: SymbolMarket, step: MarketStep,
                      corrupt_checksum: bool = False) -> list[Any]:
        market = session.market
        inst_id = self.raw_symbol(market, symbol_market.symbol)
        channels = session.state.get("topics", {}).get(inst_id)
        if not channels:
            return []
        frames = []
        for channel in sorted(channels):
            if channel == "books":
                if step.book is not None:
                    changes = {"asks": _levels(symbol_market, step.book.asks),
                               "bids": _levels(symbol_market, step.book.bids),
                               "checksum": _checksum(symbol_market, corrupt_checksum),
                               "seq": step.book.seq, "ts": str(step.time)}
                    frames.append(_push("update", market, channel, inst_id, [changes], step.time))
            elif channel in BOOK_CHANNELS:
                if step.book is not None:
                    frames.append(self._snapshot(market, symbol_market, channel, step.time))
            elif channel == "trade":
                if step.trades:
                    rows = [_trade_row(symbol_market, t) for t in reversed(step.trades)]
                    frames.append(_push("update", market, channel, inst_id, rows, step.time))
            elif channel == "ticker":
                frames.append(self._snapshot(market, symbol_market, channel, step.time))
            else:
                bar = symbol_market.candle(CANDLE_CHANNELS[channel], step.time)
                frames.append(_push("update", market, channel, inst_id, [_candle_row(symbol_market, bar)], step.time))
        return frames

    def _snapshot(self, market: Market, symbol_market: SymbolMarket, channel: str, now: int) -> dict:
        """A channel's whole current state as Bitget pushes it on subscribing (and, for ticker and booksN, always)."""
        inst_id = self.raw_symbol(market, symbol_market.symbol)
        if channel in BOOK_CHANNELS:
            bids, asks = symbol_market.book(BOOK_CHANNELS[channel])
            book: dict[str, Any] = {"asks": _levels(symbol_market, asks), "bids": _levels(symbol_market, bids)}
            if channel == "books":
                book["checksum"] = _checksum(symbol_market, False)
            book.update(seq=symbol_market.seq, ts=str(now))
            rows: list[Any] = [book]
        elif channel == "trade":
            recent = symbol_market.trades[-TRADE_SNAPSHOT:]
            rows = [_trade_row(symbol_market, t) for t in reversed(recent)]
        elif channel == "ticker":
            rows = [_ticker_row(market, symbol_market, inst_id, now)]
        else:
            rows = [_candle_row(symbol_market, symbol_market.candle(CANDLE_CHANNELS[channel], now))]
        return _push("snapshot", market, channel, inst_id, rows, now)

    # frames ------------------------------------------------------------------------------------------------------
    def order_frames(self, session: SimSession, order: SimOrder) -> list[Any]:
        return self._pushes(session, "orders", order.symbol, lambda: self._order_row(session, order, None))

    def fill_frames(self, session: SimSession, order: SimOrder, fill: SimFill) -> list[Any]:
        return (self._pushes(session, "orders", order.symbol, lambda: self._order_row(session, order, fill))
                + self._pushes(session, "fill", order.symbol, lambda: self._fill_row(session.market, order, fill)))

    def _pushes(self, session: SimSession, channel: str, symbol: str, row) -> list[dict]:
        """One push per subscription that covers this symbol (`default` covers all of the market's symbols)."""
        if not session.authenticated:
            return []
        inst_type = INST_TYPE[session.market]
        raw = self.raw_symbol(session.market, symbol)
        pushes = []
        for inst_id in ("default", raw):
            if _key(inst_type, channel, inst_id) in session.subscriptions:
                arg = {"instType": inst_type, "channel": channel, "instId": inst_id}
                pushes.append({"action": "snapshot", "arg": arg, "data": [row()], "ts": now_ms()})
        return pushes

    def _order_row(self, session: SimSession, order: SimOrder, fill: SimFill | None) -> dict:
        """An `orders` row (Order-Channel push data); with `fill`, it carries that fill as Bitget's does."""
        spot = session.market is Market.SPOT
        fees = [f for f in session.ledger.fills if f.order_id == order.order_id]
        fee_coin = fees[-1].fee_currency if fees else order.symbol.split("/")[1].split(":")[0]
        status = _STATUS.get(order.status, "cancelled" if spot else "canceled")
        row: dict[str, Any] = {
            "instId": self.raw_symbol(session.market, order.symbol), "orderId": order.order_id,
            "clientOid" if spot else "clientOId": _client_oid(order),
            "size": decimal_text(order.amount), "price": _order_price(order),
            "orderType": order.order_type, "force": order.time_in_force, "side": order.side.value,
            "accBaseVolume": decimal_text(order.filled), "priceAvg": decimal_text(order.average),
            "status": status, "cTime": str(order.created), "uTime": str(order.updated),
            "feeDetail": [{"feeCoin": fee_coin, "fee": _negated(sum((f.fee for f in fees), Decimal(0)))}],
            "enterPointSource": "API", "stpMode": "none",
        }
        if spot:
            row.update(newSize=decimal_text(order.amount), notional=decimal_text(order.amount * order.price))
        else:
            row.update(marginCoin=fee_coin, marginMode="crossed", posMode="one_way_mode", posSide="net",
                       tradeSide=f"{order.side.value}_single", leverage="10",
                       reduceOnly="yes" if order.reduce_only else "no",
                       notionalUsd=decimal_text(order.amount * order.price), pnl="0", totalProfits="0")
        if fill is not None:
            row.update(tradeId=fill.trade_id, baseVolume=decimal_text(fill.amount),
                       fillPrice=decimal_text(fill.price), fillTime=str(fill.time), fillFee=_negated(fill.fee),
                       fillFeeCoin=fill.fee_currency, tradeScope="M" if fill.is_maker else "T")
            if not spot:
                row["fillNotionalUsd"] = decimal_text(fill.cost)
        return row

    def _fill_row(self, market: Market, order: SimOrder, fill: SimFill) -> dict:
        """A `fill` row (Fill-Channel push data): spot fees positive when paid, futures fees negative."""
        spot = market is Market.SPOT
        row: dict[str, Any] = {
            "orderId": fill.order_id, "clientOid": _client_oid(order), "tradeId": fill.trade_id,
            "symbol": self.raw_symbol(market, fill.symbol), "side": fill.side.value, "orderType": order.order_type,
            "tradeScope": "maker" if fill.is_maker else "taker",
            "feeDetail": [{"feeCoin": fill.fee_currency, "deduction": "no", "totalDeductionFee": "0",
                           "totalFee": decimal_text(fill.fee) if spot else _negated(fill.fee)}],
            "cTime": str(fill.time), "uTime": str(fill.time),
        }
        if spot:
            row.update(priceAvg=decimal_text(fill.price), size=decimal_text(fill.amount),
                       amount=decimal_text(fill.cost))
        else:
            row.update(posMode="one_way_mode", price=decimal_text(fill.price), baseVolume=decimal_text(fill.amount),
                       quoteVolume=decimal_text(fill.cost), profit="0", tradeSide=f"{fill.side.value}_single")
        return row

    # account state ---------------------------------------------------------------------------------------------------
    def account_frames(self, session: SimSession, account: SimAccount, assets: list[str],
                       symbols: list[str]) -> list[Any]:
        """The `account` push of the changed coins, and on futures the `positions` push of every open position
        (Bitget's positions pushes are whole snapshots: a closed position is left out, not sent flat)."""
        if session.public or not session.authenticated:
            return []
        inst_type = INST_TYPE[session.market]
        frames: list[Any] = []
        if assets and _key(inst_type, "account", "default") in session.subscriptions:
            frames.append(self._account_push(session.market, account, assets))
        if symbols and _key(inst_type, "positions", "default") in session.subscriptions:
            frames.append(self._positions_push(session, account))
        return frames

    def _account_push(self, market: Market, account: SimAccount, assets: list[str]) -> dict:
        arg = {"instType": INST_TYPE[market], "channel": "account", "coin": "default"}
        rows = [self._balance_row(market, account, asset) for asset in assets]
        return {"action": "snapshot", "arg": arg, "data": rows, "ts": now_ms()}

    def _positions_push(self, session: SimSession, account: SimAccount) -> dict:
        fills = session.ledger.fills
        rows = [self._position_row(session.market, p, fills, rest=False) for p in _open_positions(account)]
        return _push("snapshot", session.market, "positions", "default", rows, now_ms())

    def _balance_row(self, market: Market, account: SimAccount, asset: str) -> dict:
        """An `account` push row (spot rows are also the REST assets rows). Spot: what open orders hold is
        `frozen` (Bitget's `locked` is for fiat-merchant locks: none here). Futures: `available` is the wallet
        (margin in use included, no unrealized PnL), `maxOpenPosAvailable` what is left for new positions;
        futures orders freeze nothing on the simulator."""
        balance = account.balance(asset)
        if market is Market.SPOT:
            return {"coin": asset, "available": decimal_text(balance.free), "frozen": decimal_text(balance.locked),
                    "locked": "0", "limitAvailable": "0", "uTime": str(account.updated or now_ms())}
        pnl = _unrealized(account, asset)
        equity = decimal_text(balance.total + pnl)
        return {"marginCoin": asset, "frozen": "0", "available": decimal_text(balance.total),
                "maxOpenPosAvailable": decimal_text(balance.free), "maxTransferOut": decimal_text(balance.free),
                "equity": equity, "usdtEquity": equity, "unrealizedPL": decimal_text(pnl), "assetMode": "single"}

    def _accounts_row(self, account: SimAccount, asset: str) -> dict:
        """A Get-Account-List row: the push's figures under the REST names (ccxt reads maxTransferOut as free
        and accountEquity, unrealized PnL included, as total)."""
        balance = account.balance(asset)
        pnl = _unrealized(account, asset)
        free, equity = decimal_text(balance.free), decimal_text(balance.total + pnl)
        return {"marginCoin": asset, "locked": "0", "available": decimal_text(balance.total),
                "crossedMaxAvailable": free, "isolatedMaxAvailable": free, "maxTransferOut": free,
                "accountEquity": equity, "usdtEquity": equity, "unrealizedPL": decimal_text(pnl), "coupon": "0",
                "crossedUnrealizedPL": decimal_text(pnl), "isolatedUnrealizedPL": "0", "assetMode": "single"}

    def _position_row(self, market: Market, position: SimPosition, fills: list[SimFill], rest: bool) -> dict:
        """A `positions` push row, or (rest) a Get-All-Positions row: one-way, cross margin, sizes in the base
        coin; the position id is the trade id of the fill that opened it, its cTime that fill's time."""
        opened = _opening_fill(fills, position.symbol)
        size, margin, pnl = abs(position.size), position.margin, position.unrealized_pnl
        row: dict[str, Any] = {
            "marginCoin": _settle(position.symbol), "marginSize": decimal_text(margin), "marginMode": "crossed",
            "holdSide": "long" if position.size > 0 else "short", "posMode": "one_way_mode",
            "total": decimal_text(size), "available": decimal_text(size),
            "openPriceAvg": decimal_text(position.entry_price), "achievedProfits": decimal_text(position.realized_pnl),
            "unrealizedPL": decimal_text(pnl), "liquidationPrice": decimal_text(position.liquidation_price),
            "keepMarginRate": KEEP_MARGIN_RATE, "markPrice": decimal_text(position.mark_price),
            "autoMargin": "off", "assetMode": "single",
            "cTime": str(opened.time if opened else position.updated), "uTime": str(position.updated),
        }
        raw = self.raw_symbol(market, position.symbol)
        if rest:  # leverage as text here
            return {"symbol": raw, "openDelegateSize": "0", "locked": "0",
                    "leverage": decimal_text(position.leverage), **row}
        # The push writes leverage as a JSON number (docs sample: 20); the simulator's leverage is whole.
        return {"posId": opened.trade_id if opened else str(position.updated), "instId": raw, "frozen": "0",
                "leverage": int(position.leverage), "unrealizedPLR": decimal_text(pnl / margin, 12), **row}

    # REST ------------------------------------------------------------------------------------------------------------
    def rest_routes(self, market: Market) -> list:
        if market is Market.SPOT:
            return [("GET", "/api/v2/spot/trade/fills", self._fills),
                    ("GET", "/api/v2/spot/trade/orderInfo", self._order),
                    ("GET", "/api/v2/spot/account/assets", self._spot_assets),
                    ("POST", "/api/v2/spot/trade/place-order", self._place_order),
                    ("POST", "/api/v2/spot/trade/cancel-order", self._cancel_order)]
        return [("GET", "/api/v2/mix/order/fills", self._fills), ("GET", "/api/v2/mix/order/detail", self._order),
                ("GET", "/api/v2/mix/account/accounts", self._futures_accounts),
                ("GET", "/api/v2/mix/position/all-position", self._all_positions),
                ("POST", "/api/v2/mix/order/place-order", self._place_order),
                ("POST", "/api/v2/mix/order/cancel-order", self._cancel_order),
                ("POST", "/api/v2/mix/order/modify-order", self._modify_order),
                ("POST", "/api/v2/mix/order/place-tpsl-order", self._place_tpsl),
                ("POST", "/api/v2/mix/order/cancel-plan-order", self._cancel_plan),
                ("GET", "/api/v2/mix/order/orders-plan-pending", self._plans_pending),
                ("GET", "/api/v2/mix/order/orders-plan-history", self._plans_history)]

    async def _spot_assets(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Get-Account-Assets: one `coin`, or (assetType) the coins held ("hold_only", the default) or all."""
        refusal = self._check_signature(sim, request)
        if refusal is not None:
            return refusal
        account = sim.account(self.exchange, market)
        coin, asset_type = request.query.get("coin", "").upper(), request.query.get("assetType") or "hold_only"
        if asset_type not in ("hold_only", "all"):
            return _rest_error("40020", "Parameter assetType error")
        if coin:
            assets = [coin] if coin in account.balances else []
        else:
            assets = [a for a in sorted(account.balances) if asset_type == "all" or account.balances[a].total]
        return _rest_ok([self._balance_row(market, account, a) for a in assets])

    async def _futures_accounts(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Get-Account-List: one row per margin coin of the productType (USDT-FUTURES: the USDT wallet)."""
        refusal = self._check_signature(sim, request)
        if refusal is None:
            refusal = _product_type_refusal(request)
        if refusal is not None:
            return refusal
        account = sim.account(self.exchange, market)
        ours = request.query["productType"].upper() == INST_TYPE[market]
        return _rest_ok([self._accounts_row(account, a) for a in _held_assets(market, account)] if ours else [])

    async def _all_positions(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Get-All-Positions: the open positions of the productType (optionally of one marginCoin)."""
        refusal = self._check_signature(sim, request)
        if refusal is None:
            refusal = _product_type_refusal(request)
        if refusal is not None:
            return refusal
        account = sim.account(self.exchange, market)
        ours = request.query["productType"].upper() == INST_TYPE[market]
        coin = request.query.get("marginCoin", "").upper()
        fills = sim.ledger(self.exchange, market).fills
        rows = [self._position_row(market, p, fills, rest=True) for p in _open_positions(account)
                if ours and (not coin or _settle(p.symbol) == coin)]
        return _rest_ok(rows)

    async def _order(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Get-Order-Info (spot) / Get-Order-Details (futures): one order by orderId or clientOid."""
        refusal = self._check_signature(sim, request)
        if refusal is not None:
            return refusal
        params = request.query
        order_id, client_oid = params.get("orderId"), params.get("clientOid")
        if not order_id and not client_oid:
            return _rest_error("40019", "Parameter orderId or clientOid cannot be empty")
        symbol = params.get("symbol", "").upper()
        if market is Market.FUTURE:
            if not symbol:
                return _rest_error("40019", "Parameter symbol cannot be empty")
            if params.get("productType", "").upper() != INST_TYPE[market]:
                return _rest_error("40020", "Parameter productType error")
        waiting = sim.orders.conditional.get((self.exchange, market), [])  # untriggered plans are not orders
        found = [o for o in self.queryable_orders(sim.ledger(self.exchange, market)) if o not in waiting
                 and (not order_id or o.order_id == order_id)
                 and (not client_oid or _client_oid(o) == client_oid)
                 and (not symbol or self.raw_symbol(market, o.symbol) == symbol)]
        if market is Market.SPOT:
            data: Any = [self._order_info(market, o) for o in found[-1:]]
        elif not found:
            return _rest_error("40109", "The data of the order cannot be found, please confirm the order number")
        else:
            data = self._order_info(market, found[-1])
        body = {"code": "00000", "msg": "success", "requestTime": now_ms(), "data": data}
        return web.json_response(body, dumps=dumps)

    def _order_info(self, market: Market, order: SimOrder) -> dict:
        spot = market is Market.SPOT
        status = _STATUS.get(order.status, "cancelled" if spot else "canceled")
        row: dict[str, Any] = {
            "symbol": self.raw_symbol(market, order.symbol), "orderId": order.order_id, "clientOid": _client_oid(order),
            "price": _order_price(order), "size": decimal_text(order.amount), "orderType": order.order_type,
            "side": order.side.value, "priceAvg": decimal_text(order.average), "baseVolume": decimal_text(order.filled),
            "quoteVolume": decimal_text(order.filled_cost), "enterPointSource": "API", "orderSource": "normal",
            "cTime": str(order.created), "uTime": str(order.updated),
        }
        if spot:
            row.update(userId="1000000001", status=status, feeDetail="")
        else:
            row.update(state=status, force=order.time_in_force, marginCoin=order.symbol.split("/")[1].split(":")[0],
                       fee="0", totalProfits="0", posSide="net", leverage="10", marginMode="crossed",
                       reduceOnly="YES" if order.reduce_only else "NO",
                       tradeSide=f"{order.side.value}_single", posMode="one_way_mode")
        return row

    async def _fills(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        refusal = self._check_signature(sim, request)
        if refusal is not None:
            return refusal
        params = request.query
        if market is Market.FUTURE:
            product_type = params.get("productType", "")
            if not product_type:
                return _rest_error("40019", "Parameter productType cannot be empty")
            if product_type.upper() not in INST_TYPES - {"SPOT", "MARGIN"}:
                return _rest_error("40020", "Parameter productType error")
        try:
            start, end, before, limit = (_optional_int(params, k) for k in ("startTime", "endTime", "idLessThan",
                                                                              "limit"))
        except ValueError as exc:
            return _rest_error("40020", f"Parameter {exc} error")
        if (start is not None and start < now_ms() - HISTORY_MS) or (
                start is not None and end is not None and end - start > HISTORY_MS):
            return _rest_error("43111", "param error time range illegal")
        limit = PAGE_LIMIT if limit is None or limit <= 0 else min(limit, PAGE_LIMIT)
        symbol = params.get("symbol", "").upper()
        order_id = params.get("orderId")
        ours = market is Market.SPOT or params["productType"].upper() == INST_TYPE[market]
        fills = [
            f for f in reversed(sim.ledger(self.exchange, market).fills_between(None, start, end))
            if ours and (not symbol or self.raw_symbol(market, f.symbol) == symbol)
            and (order_id is None or f.order_id == order_id)
            and (before is None or int(f.trade_id) < before)
        ][:limit]
        rows = [self._history_row(market, f) for f in fills]
        data: Any = rows
        if market is Market.FUTURE:
            data = {"fillList": rows, "endId": rows[-1]["tradeId"] if rows else None}
        body = {"code": "00000", "msg": "success", "requestTime": now_ms(), "data": data}
        return web.json_response(body, dumps=dumps)

    def _check_signature(self, sim: Simulator, request: web.Request, body: str = "") -> web.Response | None:
        """Bitget's REST auth: ACCESS-* headers, sign = base64 HMAC-SHA256(timestamp + METHOD + path[?query] + body)
        (`body`: a POST's text as sent)."""
        creds = sim.credentials_for(self.exchange)
        headers = request.headers
        key, signature = headers.get("ACCESS-KEY"), headers.get("ACCESS-SIGN")
        timestamp, passphrase = headers.get("ACCESS-TIMESTAMP"), headers.get("ACCESS-PASSPHRASE")
        if not key:
            return _rest_error("40001", "ACCESS_KEY cannot be empty")
        if not signature:
            return _rest_error("40002", "ACCESS_SIGN cannot be empty")
        if not timestamp:
            return _rest_error("40003", "ACCESS_TIMESTAMP cannot be empty")
        if not passphrase:
            return _rest_error("40011", "ACCESS_PASSPHRASE cannot be empty")
        if not timestamp.isdigit():
            return _rest_error("40005", "Invalid ACCESS_TIMESTAMP")
        if key != creds.api_key:
            return _rest_error("40037", "Apikey does not exist")
        if passphrase != creds.passphrase:
            return _rest_error("40012", "apikey/password is incorrect")
        if abs(now_ms() - int(timestamp)) > WINDOW_MS:
            return _rest_error("40008", "Request timestamp expired")
        # The request path as the client wrote it (the simulator's `/bitget_<market>` prefix is not Bitget's).
        path = "/" + request.path.split("/", 2)[2]
        # Bitget signs the query as sent; ccxt signs it percent-decoded: accept either spelling.
        queries = {request.raw_path.partition("?")[2], request.query_string}
        self.secrets_seen.add(signature)
        expected = [base64.b64encode(hmac_sha256(creds.secret, f"{timestamp}{request.method}{path}"
                                                 f"{'?' + q if q else ''}{body}")).decode() for q in queries]
        if not any(hmac.compare_digest(signature, e) for e in expected):
            return _rest_error("40009", "sign signature error")
        return None

    def _history_row(self, market: Market, fill: SimFill) -> dict:
        """A Get-Fills row (spot: feeDetail an object) or a Get-Order-Fills row (futures: feeDetail a list)."""
        fee = {"deduction": "no", "feeCoin": fill.fee_currency, "totalDeductionFee": "",
               "totalFee": _negated(fill.fee)}
        common = {"symbol": self.raw_symbol(market, fill.symbol), "orderId": fill.order_id,
                  "tradeId": fill.trade_id, "side": fill.side.value,
                  "tradeScope": "maker" if fill.is_maker else "taker", "cTime": str(fill.time)}
        if market is Market.SPOT:
            return {"userId": "1000000001", **common, "orderType": "limit", "priceAvg": decimal_text(fill.price),
                    "size": decimal_text(fill.amount), "amount": decimal_text(fill.cost), "feeDetail": fee,
                    "uTime": str(fill.time)}
        return {**common, "price": decimal_text(fill.price), "baseVolume": decimal_text(fill.amount),
                "feeDetail": [fee], "quoteVolume": decimal_text(fill.cost), "profit": "0",
                "enterPointSource": "API", "tradeSide": f"{fill.side.value}_single", "posMode": "one_way_mode"}


def _rest_ok(data: Any) -> web.Response:
    body = {"code": "00000", "msg": "success", "requestTime": now_ms(), "data": data}
    return web.json_response(body, dumps=dumps)


def _product_type_refusal(request: web.Request) -> web.Response | None:
    product_type = request.query.get("productType", "")
    if not product_type:
        return _rest_error("40019", "Parameter productType cannot be empty")
    if product_type.upper() not in FUTURES_INST_TYPES:
        return _rest_error("40020", "Parameter productType error")
    return None


def _listed_channel(inst_type: str, channel: str, scope: str) -> bool:
    """What Bitget lists: `orders` / `fill` of every product type, `account` of spot and futures (margin has
    account-crossed / account-isolated instead), `positions` of futures; the account channels take only
    `default` ("Only default is supported now")."""
    if inst_type not in INST_TYPES:
        return False
    if channel in CHANNELS:
        return True
    if channel == "account":
        return inst_type != "MARGIN" and scope == "default"
    return channel == "positions" and inst_type in FUTURES_INST_TYPES and scope == "default"


def _held_assets(market: Market, account: SimAccount) -> list[str]:
    """The coins of an account; a futures account always has its USDT wallet (Bitget lists it even untouched)."""
    if market is Market.FUTURE:
        account.balance(SETTLE)
    return sorted(account.balances)


def _open_positions(account: SimAccount) -> list[SimPosition]:
    return [p for _, p in sorted(account.positions.items()) if p.size]


def _settle(symbol: str) -> str:
    return symbol.partition(":")[2]


def _unrealized(account: SimAccount, settle: str) -> Decimal:
    return sum((p.unrealized_pnl for p in account.positions.values() if _settle(p.symbol) == settle), Decimal(0))


def _opening_fill(fills: list[SimFill], symbol: str) -> SimFill | None:
    """The fill that opened the symbol's current position: the last one that took it from flat, or across zero."""
    size, opening = Decimal(0), None
    for fill in fills:
        if fill.symbol != symbol:
            continue
        before = size
        size += fill.amount if fill.side is Side.BUY else -fill.amount
        if size and (not before or (before > 0) != (size > 0)):
            opening = fill
    return opening


def _push(action: str, market: Market, channel: str, inst_id: str, data: list, now: int) -> dict:
    arg = {"instType": INST_TYPE[market], "channel": channel, "instId": inst_id}
    return {"action": action, "arg": arg, "data": data, "ts": now}


def _price(symbol_market: SymbolMarket, price: Decimal) -> str:
    """A price with the symbol's price places, as Bitget writes them (its checksum hashes these texts)."""
    return decimal_text(price, max(0, -symbol_market.tick.as_tuple().exponent))


def _size(symbol_market: SymbolMarket, amount: Decimal) -> str:
    """A size with the symbol's size places; a removed level's size is "0"."""
    return decimal_text(amount, max(0, -symbol_market.lot.as_tuple().exponent)) if amount else "0"


def _levels(symbol_market: SymbolMarket, levels) -> list[list[str]]:
    return [[_price(symbol_market, price), _size(symbol_market, amount)] for price, amount in levels]


def _checksum(symbol_market: SymbolMarket, corrupt: bool) -> int:
    """Bitget's book checksum: CRC32 of "bid1:size:ask1:size:bid2:…" over the top 25 levels, as a signed int32."""
    bids, asks = symbol_market.book(CHECKSUM_LEVELS)
    parts = []
    for i in range(CHECKSUM_LEVELS):
        for side in (bids, asks):
            if i < len(side):
                parts += [_price(symbol_market, side[i][0]), _size(symbol_market, side[i][1])]
    value = zlib.crc32(":".join(parts).encode()) ^ (1 if corrupt else 0)
    return value - (1 << 32) if value >= 1 << 31 else value


def _ticker_row(market: Market, symbol_market: SymbolMarket, inst_id: str, now: int) -> dict:
    """A ticker row; the 24 h figures count from the simulator's start."""
    sm = symbol_market
    (bid, bid_size), (ask, ask_size) = sm.best_bid(), sm.best_ask()
    change = decimal_text((sm.last - sm.open) / sm.open, 5)
    row: dict[str, Any] = {
        "instId": inst_id, "lastPr": _price(sm, sm.last), "open24h": _price(sm, sm.open),
        "high24h": _price(sm, sm.high), "low24h": _price(sm, sm.low), "change24h": change,
        "bidPr": _price(sm, bid), "askPr": _price(sm, ask), "bidSz": _size(sm, bid_size), "askSz": _size(sm, ask_size),
        "baseVolume": decimal_text(sm.volume), "quoteVolume": decimal_text(sm.quote_volume),
        "openUtc": _price(sm, sm.open), "changeUtc24h": change,
    }
    if market is Market.FUTURE:
        row.update(fundingRate="0.0001", nextFundingTime=str((now // FUNDING_MS + 1) * FUNDING_MS),
                   markPrice=row["lastPr"], indexPrice=row["lastPr"], holdingAmount="0", symbolType="1",
                   symbol=inst_id, deliveryPrice="0")
    row["ts"] = str(now)
    return row


def _trade_row(symbol_market: SymbolMarket, trade: TradeTick) -> dict:
    return {"ts": str(trade.time), "price": _price(symbol_market, trade.price),
            "size": _size(symbol_market, trade.amount), "side": trade.side.value, "tradeId": str(trade.trade_id)}


def _candle_row(symbol_market: SymbolMarket, bar: CandleBar) -> list[str]:
    """[start, open, high, low, close, base volume, quote volume, USDT volume]."""
    quote = decimal_text(bar.quote_volume)
    return [str(bar.start), *(_price(symbol_market, p) for p in (bar.open, bar.high, bar.low, bar.close)),
            decimal_text(bar.volume), quote, quote]


def _key(inst_type: str, channel: str, inst_id: str) -> str:
    return f"{inst_type}|{channel}|{inst_id}"


def _as_ms(timestamp: str) -> int:
    """Login timestamps are documented in seconds; Bitget also takes milliseconds (13 digits)."""
    value = int(timestamp)
    return value if len(timestamp) >= 13 else value * 1000


def _client_oid(order: SimOrder) -> str:
    """The client's id as sent; without one, Bitget fills in its own (here a UUID derived from the order id)."""
    return order.client_order_id or str(uuid.uuid5(_CLIENT_OID_NAMESPACE, order.order_id))


def _optional_int(params, name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise ValueError(name)
    return int(value)


VENUE_CLASS = BitgetSim
