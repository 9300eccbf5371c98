"""Binance on the simulator: spot WebSocket-API user data subscription, USD-M listenKey stream, REST history.

Spot: the client sends `userDataStream.subscribe.signature` (HMAC over its sorted params); a good
signature gets `{"status": 200, "result": {"subscriptionId": 0}}` and then `executionReport` events
wrapped in `{"subscriptionId", "event"}`; a bad one gets `-1022` and no data. USD-M: `POST
/fapi/v1/listenKey` with the API-key header gives a key, `/ws/<listenKey>` streams
`ORDER_TRADE_UPDATE`; `PUT` keeps it, an unknown key gets `-1125`. History: signed `GET
/api/v3/myTrades` and `/fapi/v1/userTrades` (symbol, startTime, endTime, fromId, limit ≤ 1000); neither row
carries the client order id, which the order query gives: signed `GET /api/v3/order` and `/fapi/v1/order`
(symbol, orderId or origClientOrderId; "Query Order" in the spot REST and USD-M docs) → the order with its
`clientOrderId`, or `-2013 Order does not exist.`. REST signatures are checked here (hex HMAC-SHA256 of the
query before `&signature=`, X-MBX-APIKEY header, `timestamp` within the recvWindow), not with the client's code.

Account state (the simulator's `SimAccount`), pushed unasked on the same user streams after each order or fill:
spot `outboundAccountPosition` with the free and locked figures of the assets it moved (8 decimals, as the
venue writes them, or more where the simulator's figure has more); USD-M `ACCOUNT_UPDATE` (reason `ORDER`)
with the settle coin's wallet balance and the symbol's one-way (`BOTH`, cross) position, every figure exact.
`balanceUpdate` (deposits, transfers) never happens here. The signed REST reads ccxt 4.5.90 calls:
`GET /api/v3/account` (fetch_balance, spot), `GET /fapi/v3/account` (fetch_balance, USD-M) and
`GET /fapi/v3/positionRisk` (fetch_positions) after `GET /fapi/v1/leverageBracket` (ccxt loads the brackets
first; one bracket per symbol, no maintenance margin, as the simulator keeps none). USD-M `availableBalance` is
the account's free, `initialMargin` its locked (margin at entry), `marginBalance` the wallet plus unrealized
PnL; the USD-valued totals count USDT only, as Binance's single-asset mode does.

Order entry (the matching engine behind it, exchanges/simulator/orders.py): spot WebSocket-API requests on the user
stream's own socket, USD-M ones on `/ws-fapi/v1`, each signed on its own (hex HMAC-SHA256 over the sorted params,
checked here; a wrong key gets 401 -2015, a wrong signature -1022, a timestamp outside `recvWindow` -1021 — nothing
executes) and answered `{"id", "status", "result" | "error"}`: `order.place` (RESULT rows), `order.cancel` (spot
renames the order to `newClientOrderId`, else a random id; its report carries the old id in `C`), `order.status`,
spot `order.amend.keepPriority` (a decrease only, else -2038) and `order.cancelReplace` (the engine's amend: the
simulator keeps the order id where Binance gives the new order a new one), USD-M `order.modify` and TP/SL as
`algoOrder.place` / `algoOrder.cancel` (`ALGO_UPDATE` on the stream until triggered, then `ORDER_TRADE_UPDATE` under
the client algo id). The REST endpoints ccxt calls do the same (`POST/DELETE /api/v3/order`, `POST
/api/v3/order/cancelReplace`, `PUT /api/v3/order/amend/keepPriority`, `POST/DELETE/PUT /fapi/v1/order`,
`POST/DELETE/GET /fapi/v1/algoOrder`; POST/PUT signed over the form body). Client ids are unique among open orders
(-2010 "Duplicate order sent.", USD-M -4116); "status unknown" is 503 -1007; a cancel of an order that is not open
is -2011 "Unknown order sent.", a query of none -2013.

Public market data, as ccxt.pro reads it: a stream socket per ccxt stream id (spot `/ws/<n>`; USD-M routes
streams by path since 2026-03, `/public/ws/<n>` for `depth`/`trade`, `/market/ws/<n>` for `ticker`,
`miniTicker`, `kline_<interval>`; a stream on the other path is acked and never delivered, as the venue does),
`{"method": "SUBSCRIBE" | "UNSUBSCRIBE", "params": ["btcusdt@depth@100ms", …], "id": 1}` answered
`{"result": null, "id": 1}`, and `LIST_SUBSCRIPTIONS`. A stream name the venue does not have gets
`{"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 1}`; a well-formed name of a symbol it
does not list is acked and stays silent, as on the venue, while the REST depth snapshot answers `-1121
Invalid symbol.`. The book is that snapshot (`GET /api/v3/depth`, `GET /fapi/v1/depth`, `lastUpdateId` = the
book's sequence) plus `depthUpdate` diffs carrying the update ids `U`..`u` (USD-M also `pu`, the previous
`u`); there is no checksum. Spot writes every number with 8 decimals, USD-M a price with its tick's decimals
and a quantity with its lot's (quantities in the base coin). The venue pings with WebSocket ping frames,
which aiohttp answers on either side; no application ping exists on these streams.
"""

from __future__ import annotations

import hmac
import secrets
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from exchanges.binance.auth import API_KEY_HEADER, sign, ws_api_payload
from exchanges.listings import sim_symbols
from exchanges.simulator.ledger import SimFill, SimOrder
from exchanges.simulator.market import TIMEFRAMES_MS
from exchanges.simulator.orders import ClientIdPolicy, SimRequest, SimResult
from exchanges.simulator.venues.base import SimSession, VenueSim, decimal_text, hmac_sha256
from framework.events import Market, OrderStatus, Side, now_ms

if TYPE_CHECKING:
    from exchanges.simulator.account import SimAccount, SimBalance, SimPosition
    from exchanges.simulator.market import BookChange, MarketStep, SymbolMarket, TradeTick
    from exchanges.simulator.server import Simulator

RECV_WINDOW_MS = 60_000
_STATUS = {
    OrderStatus.NEW: "NEW", OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED", OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELED: "CANCELED", OrderStatus.REJECTED: "REJECTED", OrderStatus.EXPIRED: "EXPIRED",
}


# Update speeds a diff-depth stream may name (none: spot 1000 ms, USD-M 250 ms).
_DEPTH_SPEEDS = {Market.SPOT: frozenset({"", "100ms"}), Market.FUTURE: frozenset({"", "100ms", "250ms", "500ms"})}
# The USD-M path that carries each stream (ccxt's `get_future_ws_category`); spot has one path for all.
_FUTURE_PATHS = {"depth": "public", "trade": "public", "ticker": "market", "miniTicker": "market", "kline": "market"}
_DEPTH_LIMITS = {Market.SPOT: (100, 5000), Market.FUTURE: (500, 1000)}  # (default, most levels) of a snapshot
_DAY_MS = 86_400_000
# Raw id (BTCUSDT) → unified symbol of everything the simulator lists, per market.
_LISTED = {market: {s.split(":")[0].replace("/", ""): s for s in sim_symbols("binance", market)}
           for market in (Market.SPOT, Market.FUTURE)}


def _error(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


def _spot_number(value: Decimal) -> str:
    """Spot figures have 8 decimals on the wire; one the simulator keeps more finely is written whole (exact)."""
    return decimal_text(value, 8 if value.as_tuple().exponent >= -8 else None)


def _bracket(raw: str) -> dict:
    """A symbol's one leverage bracket: any notional, up to 125x, no maintenance margin."""
    return {"symbol": raw, "notionalCoef": 1.0, "brackets": [{
        "bracket": 1, "initialLeverage": 125, "notionalCap": 10**12, "notionalFloor": 0, "maintMarginRatio": 0.0,
        "cum": 0.0}]}


def _settle(symbol: str) -> str:
    """The settle coin of a unified futures symbol (BTC/USDT:USDT → USDT)."""
    return symbol.partition(":")[2].partition("-")[0]


def _stream_topic(market: Market, name: Any) -> tuple[str, str, str] | None:
    """(raw symbol, channel, argument) of a stream name such as `btcusdt@depth@100ms` or `ethusdt@kline_1m`;
    None when the venue has no such stream (the simulator's candles are its TIMEFRAMES_MS intervals)."""
    if type(name) is not str:
        return None
    raw, _, channel = name.partition("@")
    channel, _, speed = channel.partition("@")
    if not raw or raw != raw.lower():
        return None
    if channel == "depth" and speed in _DEPTH_SPEEDS[market]:
        return raw, channel, speed
    if speed:
        return None
    if channel in ("trade", "ticker", "miniTicker"):
        return raw, channel, ""
    kind, _, interval = channel.partition("_")
    if kind == "kline" and interval in TIMEFRAMES_MS:
        return raw, kind, interval
    return None


WS_FAPI_PATH = "/ws-fapi/v1"  # USD-M WebSocket API (trading), a socket of its own
ORDER_WINDOW_MS = 5000  # recvWindow when a request sends none
_WS_TRADING = {
    Market.SPOT: frozenset({"order.place", "order.cancel", "order.status", "order.cancelReplace",
                            "order.amend.keepPriority"}),
    Market.FUTURE: frozenset({"order.place", "order.cancel", "order.status", "order.modify", "algoOrder.place",
                              "algoOrder.cancel"}),
}
_ALGO_TYPES = {"take_profit": "TAKE_PROFIT_MARKET", "stop_loss": "STOP_MARKET"}
_TRIGGERS = {v: k for k, v in _ALGO_TYPES.items()}
_UNKNOWN_ORDER = "Unknown order sent."
# Engine refusals as each market words them: (code, message); None keeps the engine's message.
_REFUSALS = {
    (Market.SPOT, "duplicate_client_id"): (-2010, "Duplicate order sent."),
    (Market.FUTURE, "duplicate_client_id"): (-4116, "ClientOrderId is duplicated."),
    (Market.SPOT, "would_cross"): (-2010, "Order would immediately match and take."),
    (Market.FUTURE, "would_cross"): (-5022, "Due to the order could not be executed as maker, the Post Only order "
                                            "will be rejected. The order will not be recorded in the order history"),
    (Market.SPOT, "insufficient"): (-2010, "Account has insufficient balance for requested action."),
    (Market.FUTURE, "insufficient"): (-2019, "Margin is insufficient."),
}


class _Refused(Exception):
    """A request the venue refuses before the matching engine: (HTTP-like status, code, message)."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _untriggered(sim: Any, order: SimOrder) -> bool:
    """A USD-M TP/SL (algo) order that has not reached the book: waiting, or cancelled while waiting (a triggered
    one is a market order and fills at once here)."""
    if order.trigger_price is None:
        return False
    pending = getattr(sim, "orders", None)
    waiting = pending is not None and order in pending.conditional.get(("binance", Market.FUTURE), [])
    return waiting or (order.status is OrderStatus.CANCELED and not order.filled)


def _order_type(market: Market, order: SimOrder) -> str:
    if market is Market.SPOT and order.time_in_force == "post_only":
        return "LIMIT_MAKER"
    return order.order_type.upper()


def _time_in_force(market: Market, order: SimOrder) -> str:
    if order.time_in_force == "ioc" and order.order_type != "market":
        return "IOC"
    return "GTX" if order.time_in_force == "post_only" and market is Market.FUTURE else "GTC"


def _limit_price(order: SimOrder) -> Decimal:
    """A market order has no limit price (the venue writes 0)."""
    return Decimal(0) if order.order_type == "market" else order.price


def _execution_type(order: SimOrder, fill: SimFill | None) -> str:
    if fill is not None:
        return "TRADE"
    return {OrderStatus.CANCELED: "CANCELED", OrderStatus.EXPIRED: "EXPIRED"}.get(order.status, "NEW")


def _ws_payload(params: dict) -> str:
    """What a WebSocket-API request signs: its params but `signature`, sorted by name, `k=v&…` (computed here,
    from the doc's rule, not with the client's code)."""
    return "&".join(f"{name}={_text(params[name])}" for name in sorted(params) if name != "signature")


def _text(value: Any) -> str:
    """A param's text as the request carried it (JSON true/false as written, not Python's True/False)."""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def _decimal(params: dict, name: str, required: bool = True) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _Refused(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise _Refused(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
    if not number.is_finite():
        raise _Refused(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return number


class BinanceSim(VenueSim):
    exchange = "binance"
    markets = frozenset({Market.SPOT, Market.FUTURE})

    client_id_policy = ClientIdPolicy.OPEN_UNIQUE  # "unique among open orders"; reusable once it is done

    def __init__(self) -> None:
        self.listen_keys: dict[str, int] = {}  # listenKey -> expiry (ms)
        # order id -> (client id before a spot cancel renamed it, the new name): the cancel's report carries
        # the original in `C`, as the venue's does.
        self.cancel_renames: dict[str, tuple[str | None, str]] = {}

    # sockets -----------------------------------------------------------------------------------------------
    def ws_paths(self, market: Market) -> list[str]:
        return [""] if market is Market.SPOT else ["/ws/{listen_key}", WS_FAPI_PATH]

    def public_ws_paths(self, market: Market) -> list[str]:
        """ccxt's stream sockets: spot `/ws/<stream id>`, USD-M `/public/ws/<id>` and `/market/ws/<id>`. The
        private USD-M `/ws/{listen_key}` is another route: no path is both public and private here."""
        return ["/ws/{stream}"] if market is Market.SPOT else ["/public/ws/{stream}", "/market/ws/{stream}"]

    async def on_open(self, session: SimSession) -> bool:
        if session.public:
            session.state["streams"] = {}  # stream name -> (raw symbol, channel, argument), in subscription order
            if session.market is Market.FUTURE:
                session.state["path"] = session.request.path.rsplit("/ws/", 1)[0].rsplit("/", 1)[-1]
            return True
        if session.market is Market.SPOT:
            return True
        if session.request.path.endswith(WS_FAPI_PATH):  # USD-M trading socket: signed requests, no stream
            session.state["trading"] = True
            return True
        listen_key = session.request.match_info["listen_key"]
        if self.listen_keys.get(listen_key, 0) < now_ms():
            await session.send({"code": -1125, "msg": "This listenKey does not exist."})
            return False
        session.authenticated = True
        session.subscriptions.add("user")
        session.state["listen_key"] = listen_key
        return True

    async def on_message(self, session: SimSession, message: Any) -> None:
        if session.public:
            await self._stream_request(session, message)
            return
        if type(message) is not dict:
            return
        request_id, method = message.get("id"), message.get("method")
        if method in _WS_TRADING[session.market] and (session.market is Market.SPOT or session.state.get("trading")):
            await self._ws_order_request(session, message)
            return
        if session.market is not Market.SPOT:
            return
        if method == "ping":
            await session.send({"id": request_id, "status": 200, "result": {}})
            return
        if method != "userDataStream.subscribe.signature":
            await session.send({"id": request_id, "status": 400, "error": {"code": -1100, "msg": "Unknown method."}})
            return
        params = message.get("params") or {}
        creds = session.credentials
        timestamp = params.get("timestamp")
        if isinstance(params.get("signature"), str):
            self.secrets_seen.add(params["signature"])
        if params.get("apiKey") != creds.api_key:
            await session.send({"id": request_id, "status": 401,
                                "error": {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}})
        elif params.get("signature") != sign(creds.secret, ws_api_payload(params)):
            await session.send({"id": request_id, "status": 400,
                                "error": {"code": -1022, "msg": "Signature for this request is not valid."}})
        elif type(timestamp) is not int or abs(now_ms() - timestamp) > RECV_WINDOW_MS:
            await session.send({"id": request_id, "status": 400, "error": {
                "code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}})
        else:
            session.authenticated = True
            session.subscriptions.add("user")
            await session.send({"id": request_id, "status": 200, "result": {"subscriptionId": 0}})

    # frames ------------------------------------------------------------------------------------------------------
    def order_frames(self, session: SimSession, order: SimOrder) -> list[Any]:
        return self._frames(session, order, None)

    def fill_frames(self, session: SimSession, order: SimOrder, fill: SimFill) -> list[Any]:
        return self._frames(session, order, fill)

    def _frames(self, session: SimSession, order: SimOrder, fill: SimFill | None) -> list[Any]:
        if "user" not in session.subscriptions:
            return []
        if session.market is Market.SPOT:
            return [{"subscriptionId": 0, "event": self._execution_report(order, fill)}]
        if fill is None and _untriggered(session.sim, order):
            return [self._algo_update(order)]
        return [self._order_trade_update(order, fill)]

    def _original_client_id(self, order: SimOrder) -> str:
        """`C`: the client id a cancel replaced (only on that cancel's report), else empty."""
        renamed = self.cancel_renames.get(order.order_id)
        if renamed and order.status is OrderStatus.CANCELED and order.client_order_id == renamed[1]:
            return renamed[0] or f"sim{order.order_id}"
        return ""

    def _execution_report(self, order: SimOrder, fill: SimFill | None) -> dict:
        now = fill.time if fill else order.updated
        return {
            "e": "executionReport", "E": now + 1, "s": self.raw_symbol(Market.SPOT, order.symbol),
            "c": order.client_order_id or f"sim{order.order_id}", "S": order.side.value.upper(),
            "o": _order_type(Market.SPOT, order), "f": _time_in_force(Market.SPOT, order),
            "q": decimal_text(order.amount, 8), "p": decimal_text(_limit_price(order), 8), "P": "0.00000000",
            "F": "0.00000000", "g": -1, "C": self._original_client_id(order),
            "x": _execution_type(order, fill), "X": _STATUS[order.status], "r": "NONE",
            "i": int(order.order_id), "l": decimal_text(fill.amount if fill else 0, 8),
            "z": decimal_text(order.filled, 8), "L": decimal_text(fill.price if fill else 0, 8),
            "n": decimal_text(fill.fee, 8) if fill else "0", "N": fill.fee_currency if fill else None,
            "T": now, "t": int(fill.trade_id) if fill else -1, "I": int(order.order_id) * 2, "w": fill is None,
            "m": fill.is_maker if fill else False, "M": fill is not None, "O": order.created,
            "Z": decimal_text(order.filled_cost, 8), "Y": decimal_text(fill.cost if fill else 0, 8),
            "Q": "0.00000000", "W": order.created, "V": "EXPIRE_MAKER",
        }

    def _order_trade_update(self, order: SimOrder, fill: SimFill | None) -> dict:
        now = fill.time if fill else order.updated
        body = {
            "s": self.raw_symbol(Market.FUTURE, order.symbol), "c": order.client_order_id or f"sim{order.order_id}",
            "S": order.side.value.upper(), "o": order.order_type.upper(), "f": _time_in_force(Market.FUTURE, order),
            "q": decimal_text(order.amount), "p": decimal_text(_limit_price(order)), "ap": decimal_text(order.average),
            "sp": decimal_text(order.trigger_price or 0), "x": _execution_type(order, fill), "X": _STATUS[order.status],
            "i": int(order.order_id),
            "l": decimal_text(fill.amount if fill else 0), "z": decimal_text(order.filled),
            "L": decimal_text(fill.price if fill else 0), "T": now, "t": int(fill.trade_id) if fill else 0,
            "b": "0", "a": "0", "m": fill.is_maker if fill else False, "R": order.reduce_only, "wt": "CONTRACT_PRICE",
            "ot": _ALGO_TYPES.get(order.trigger, order.order_type.upper()), "ps": "BOTH", "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0,
            "V": "NONE", "pm": "NONE", "gtd": 0,
        }
        if fill:
            body["N"], body["n"] = fill.fee_currency, decimal_text(fill.fee)
        return {"e": "ORDER_TRADE_UPDATE", "E": now + 1, "T": now, "o": body}

    # account state ----------------------------------------------------------------------------------------------
    def account_frames(self, session: SimSession, account: SimAccount, assets: list[str],
                       symbols: list[str]) -> list[Any]:
        if "user" not in session.subscriptions or not (assets or symbols):
            return []
        now = account.updated
        if session.market is Market.SPOT:
            moved = [account.balances[a] for a in assets]
            rows = [{"a": b.asset, "f": _spot_number(b.free), "l": _spot_number(b.locked)} for b in moved]
            return [{"subscriptionId": 0, "event": {"e": "outboundAccountPosition", "E": now + 1, "u": now, "B": rows}}]
        wallets = {a: decimal_text(account.balances[a].total) for a in assets}  # all cross: wallet = cross wallet
        balances = [{"a": a, "wb": wallet, "cw": wallet, "bc": "0"} for a, wallet in wallets.items()]
        positions = [self._position_row(account.positions[s]) for s in symbols]
        return [{"e": "ACCOUNT_UPDATE", "T": now, "E": now + 1, "a": {"B": balances, "P": positions, "m": "ORDER"}}]

    def _position_row(self, position: SimPosition) -> dict:
        """A one-way cross position as ACCOUNT_UPDATE writes it; the breakeven price is the entry (the simulator
        keeps no fees per position), `cr` the realized PnL before fees."""
        entry = decimal_text(position.entry_price)
        return {"s": self.raw_symbol(Market.FUTURE, position.symbol), "pa": decimal_text(position.size), "ep": entry,
                "cr": decimal_text(position.realized_pnl), "up": decimal_text(position.unrealized_pnl), "mt": "cross",
                "iw": "0", "ps": "BOTH", "ma": _settle(position.symbol), "bep": entry}

    # REST ------------------------------------------------------------------------------------------------------------
    def rest_routes(self, market: Market) -> list:
        if market is Market.SPOT:
            return [("GET", "/api/v3/myTrades", self._my_trades), ("GET", "/api/v3/order", self._order),
                    ("GET", "/api/v3/account", self._spot_account),
                    ("POST", "/api/v3/order", self._rest_order_route("order.place")),
                    ("DELETE", "/api/v3/order", self._rest_order_route("order.cancel")),
                    ("POST", "/api/v3/order/cancelReplace", self._rest_order_route("order.cancelReplace")),
                    ("PUT", "/api/v3/order/amend/keepPriority", self._rest_order_route("order.amend.keepPriority"))]
        return [
            ("POST", "/fapi/v1/order", self._rest_order_route("order.place")),
            ("DELETE", "/fapi/v1/order", self._rest_order_route("order.cancel")),
            ("PUT", "/fapi/v1/order", self._rest_order_route("order.modify")),
            ("POST", "/fapi/v1/algoOrder", self._rest_order_route("algoOrder.place")),
            ("DELETE", "/fapi/v1/algoOrder", self._rest_order_route("algoOrder.cancel")),
            ("GET", "/fapi/v1/algoOrder", self._rest_order_route("algoOrder.status")),
            ("POST", "/fapi/v1/listenKey", self._listen_key),
            ("PUT", "/fapi/v1/listenKey", self._listen_key),
            ("DELETE", "/fapi/v1/listenKey", self._listen_key),
            ("GET", "/fapi/v1/userTrades", self._my_trades),
            ("GET", "/fapi/v1/order", self._order),
            ("GET", "/fapi/v3/account", self._future_account),
            ("GET", "/fapi/v3/positionRisk", self._position_risk),
            ("GET", "/fapi/v1/leverageBracket", self._leverage_bracket),
        ]

    def _signed_params(self, sim: Simulator, request: web.Request) -> tuple[web.Response | None, dict[str, str]]:
        """(None, params) for a well-signed SIGNED request, else (Binance's error answer, {})."""
        creds = sim.credentials_for(self.exchange)
        if request.headers.get(API_KEY_HEADER) != creds.api_key:
            return _error(401, -2015, "Invalid API-key, IP, or permissions for action."), {}
        payload, _, signature = request.query_string.rpartition("&signature=")
        if signature:
            self.secrets_seen.add(signature)
        if not signature or not hmac.compare_digest(hmac_sha256(creds.secret, payload).hex(), signature):
            return _error(400, -1022, "Signature for this request is not valid."), {}
        params = dict(parse_qsl(payload))
        try:
            timestamp, window = int(params["timestamp"]), int(params.get("recvWindow") or RECV_WINDOW_MS)
        except (KeyError, ValueError):
            return _error(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."), {}
        if not (timestamp < now_ms() + 1000 and now_ms() - timestamp <= window):
            return _error(400, -1021, "Timestamp for this request is outside of the recvWindow."), {}
        return None, params

    async def _order(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Query Order: by orderId (or origClientOrderId) within the symbol; -2013 when the venue has no such order."""
        refusal, params = self._signed_params(sim, request)
        if refusal is not None:
            return refusal
        symbol_raw = params.get("symbol")
        if not symbol_raw:
            return _error(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        order_id, client_id = params.get("orderId"), params.get("origClientOrderId")
        if not order_id and not client_id:
            return _error(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        found = [o for o in self.queryable_orders(sim.ledger(self.exchange, market))
                 if self.raw_symbol(market, o.symbol) == symbol_raw and (not order_id or o.order_id == order_id)
                 and (not client_id or self._client_order_id(o) == client_id)]
        if not found:
            return _error(400, -2013, "Order does not exist.")
        return web.json_response(self._order_row(market, found[-1]))

    @staticmethod
    def _client_order_id(order: SimOrder) -> str:
        """The client's id, or the one Binance gives an order placed without one (as the stream says it)."""
        return order.client_order_id or f"sim{order.order_id}"

    def _order_row(self, market: Market, order: SimOrder) -> dict:
        common = {
            "symbol": self.raw_symbol(market, order.symbol), "orderId": int(order.order_id),
            "clientOrderId": self._client_order_id(order), "price": decimal_text(_limit_price(order)),
            "origQty": decimal_text(order.amount), "executedQty": decimal_text(order.filled),
            "status": _STATUS[order.status], "timeInForce": _time_in_force(market, order),
            "type": _order_type(market, order), "side": order.side.value.upper(), "stopPrice": "0",
            "time": order.created, "updateTime": order.updated,
            "selfTradePreventionMode": "NONE",
        }
        if market is Market.SPOT:
            return {**common, "orderListId": -1, "cummulativeQuoteQty": decimal_text(order.filled_cost),
                    "icebergQty": "0", "isWorking": True, "workingTime": order.created, "origQuoteOrderQty": "0"}
        return {**common, "avgPrice": decimal_text(order.average), "cumQuote": decimal_text(order.filled_cost),
                "cumQty": decimal_text(order.filled), "origType": order.order_type.upper(),
                "reduceOnly": order.reduce_only, "positionSide": "BOTH",
                "closePosition": False, "workingType": "CONTRACT_PRICE", "priceProtect": False, "priceMatch": "NONE",
                "goodTillDate": 0}

    async def _listen_key(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        if request.headers.get(API_KEY_HEADER) != sim.credentials_for(self.exchange).api_key:
            return _error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if request.method == "POST":
            live = [k for k, expiry in self.listen_keys.items() if expiry > now_ms()]
            key = live[0] if live else secrets.token_urlsafe(48)
            self.listen_keys[key] = now_ms() + 3_600_000
            self.secrets_seen.add(key)
            return web.json_response({"listenKey": key})
        live = [k for k, expiry in self.listen_keys.items() if expiry > now_ms()]
        if not live:
            return _error(400, -1125, "This listenKey does not exist.")
        if request.method == "PUT":
            self.listen_keys[live[0]] = now_ms() + 3_600_000
        else:
            del self.listen_keys[live[0]]
        return web.json_response({})

    def expire_listen_keys(self) -> None:
        """Fault: every listenKey dies now (the next PUT gets -1125, new sockets are refused)."""
        self.listen_keys.clear()

    def listen_key_expired_frames(self, session: SimSession) -> list[Any]:
        return [{"e": "listenKeyExpired", "E": now_ms(), "listenKey": session.state["listen_key"]}]

    async def _spot_account(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Account Information: every coin the account holds (`omitZeroBalances=true` leaves out empty ones).
        The commission fields are left out: the simulator charges its own fixed rates."""
        refusal, params = self._signed_params(sim, request)
        if refusal is not None:
            return refusal
        account = sim.account(self.exchange, market)
        omit_zero = params.get("omitZeroBalances") == "true"
        balances = [{"asset": b.asset, "free": _spot_number(b.free), "locked": _spot_number(b.locked)}
                    for b in account.balances.values() if not (omit_zero and not b.total)]
        return web.json_response({
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": account.updated,
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 1,
        })

    async def _future_account(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Account Information V3: each settle coin's wallet, margin and available figures, and the open positions."""
        refusal, _ = self._signed_params(sim, request)
        if refusal is not None:
            return refusal
        account = sim.account(self.exchange, market)
        assets = [self._asset_row(account, b) for b in account.balances.values()]
        usdt = next((row for row in assets if row["asset"] == "USDT"), None)
        totals = {name: usdt[field] if usdt else "0" for name, field in (
            ("totalInitialMargin", "initialMargin"), ("totalMaintMargin", "maintMargin"),
            ("totalWalletBalance", "walletBalance"), ("totalUnrealizedProfit", "unrealizedProfit"),
            ("totalMarginBalance", "marginBalance"), ("totalPositionInitialMargin", "positionInitialMargin"),
            ("totalOpenOrderInitialMargin", "openOrderInitialMargin"), ("totalCrossUnPnl", "crossUnPnl"),
            ("totalCrossWalletBalance", "crossWalletBalance"), ("availableBalance", "availableBalance"),
            ("maxWithdrawAmount", "maxWithdrawAmount"))}
        positions = [{
            "symbol": self.raw_symbol(market, p.symbol), "positionSide": "BOTH", "positionAmt": decimal_text(p.size),
            "unrealizedProfit": decimal_text(p.unrealized_pnl), "isolatedMargin": "0",
            "notional": decimal_text(p.size * p.mark_price), "isolatedWallet": "0",
            "initialMargin": decimal_text(p.margin), "maintMargin": "0", "updateTime": p.updated,
        } for p in account.positions.values() if p.size]
        return web.json_response({**totals, "assets": assets, "positions": positions})

    @staticmethod
    def _asset_row(account: SimAccount, balance: SimBalance) -> dict:
        unrealized = sum((p.unrealized_pnl for p in account.positions.values() if _settle(p.symbol) == balance.asset),
                         Decimal(0))
        wallet, margin, free = decimal_text(balance.total), decimal_text(balance.locked), decimal_text(balance.free)
        return {
            "asset": balance.asset, "walletBalance": wallet, "unrealizedProfit": decimal_text(unrealized),
            "marginBalance": decimal_text(balance.total + unrealized), "maintMargin": "0", "initialMargin": margin,
            "positionInitialMargin": margin, "openOrderInitialMargin": "0", "crossWalletBalance": wallet,
            "crossUnPnl": decimal_text(unrealized), "availableBalance": free, "maxWithdrawAmount": free,
            "updateTime": account.updated,
        }

    async def _position_risk(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Position Information V3: only the symbols holding a position (the simulator's futures orders lock no
        margin, so none has open-order margin alone); `symbol` narrows it to one."""
        refusal, params = self._signed_params(sim, request)
        if refusal is not None:
            return refusal
        symbol_raw = params.get("symbol")
        if symbol_raw and symbol_raw not in _LISTED[market]:
            return _error(400, -1121, "Invalid symbol.")
        rows = []
        for p in sim.account(self.exchange, market).positions.values():
            raw = self.raw_symbol(market, p.symbol)
            if not p.size or (symbol_raw and raw != symbol_raw):
                continue
            margin, entry = decimal_text(p.margin), decimal_text(p.entry_price)
            rows.append({
                "symbol": raw, "positionSide": "BOTH", "positionAmt": decimal_text(p.size), "entryPrice": entry,
                "breakEvenPrice": entry, "markPrice": decimal_text(p.mark_price),
                "unRealizedProfit": decimal_text(p.unrealized_pnl),
                "liquidationPrice": decimal_text(p.liquidation_price or 0), "isolatedMargin": "0",
                "notional": decimal_text(p.size * p.mark_price), "marginAsset": _settle(p.symbol),
                "isolatedWallet": "0", "initialMargin": margin, "maintMargin": "0", "positionInitialMargin": margin,
                "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0",
                "updateTime": p.updated,
            })
        return web.json_response(rows)

    async def _leverage_bracket(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Notional and Leverage Brackets: one bracket per symbol with no maintenance margin (the object alone
        when `symbol` is sent)."""
        refusal, params = self._signed_params(sim, request)
        if refusal is not None:
            return refusal
        symbol_raw = params.get("symbol")
        if symbol_raw:
            if symbol_raw not in _LISTED[market]:
                return _error(400, -1121, "Invalid symbol.")
            return web.json_response(_bracket(symbol_raw))
        return web.json_response([_bracket(raw) for raw in _LISTED[market]])

    async def _my_trades(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        refusal, params = self._signed_params(sim, request)
        if refusal is not None:
            return refusal
        symbol_raw = params.get("symbol")
        if not symbol_raw:
            return _error(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        limit = min(int(params.get("limit", 500)), 1000)
        ledger = sim.ledger(self.exchange, market)
        start, end = params.get("startTime"), params.get("endTime")
        fills = [
            f for f in ledger.fills_between(None, int(start) if start else None, int(end) if end else None)
            if self.raw_symbol(market, f.symbol) == symbol_raw
            and ("fromId" not in params or int(f.trade_id) >= int(params["fromId"]))
        ][:limit]
        return web.json_response([self._history_row(market, f) for f in fills])

    def _history_row(self, market: Market, fill: SimFill) -> dict:
        row = {
            "symbol": self.raw_symbol(market, fill.symbol), "id": int(fill.trade_id), "orderId": int(fill.order_id),
            "price": decimal_text(fill.price), "qty": decimal_text(fill.amount),
            "quoteQty": decimal_text(fill.cost), "commission": decimal_text(fill.fee),
            "commissionAsset": fill.fee_currency, "time": fill.time,
        }
        if market is Market.SPOT:
            row.update(orderListId=-1, isBuyer=fill.side.value == "buy", isMaker=fill.is_maker, isBestMatch=True)
        else:
            row.update(buyer=fill.side.value == "buy", maker=fill.is_maker, realizedPnl="0",
                       side=fill.side.value.upper(), positionSide="BOTH", marginAsset=fill.fee_currency)
        return row

    # order entry -------------------------------------------------------------------------------------------------
    # WebSocket API (spot on the user stream's socket, USD-M on ws-fapi) and the REST endpoints ccxt calls, read into
    # the engine's SimRequest and its SimResult written back in Binance's shapes. The simulator keeps one order
    # record through a spot cancel-replace (the engine's amend): the new order answers with the old order id.
    async def _ws_order_request(self, session: SimSession, message: dict) -> None:
        request_id, method = message.get("id"), message["method"]
        params = message.get("params") if type(message.get("params")) is dict else {}
        market, sim = session.market, session.sim
        try:
            valid_until = self._check_ws_signature(sim, params)
            request = self._sim_request(sim, market, method, params, valid_until)
        except _Refused as refused:
            await session.send({"id": request_id, "status": refused.status,
                                "error": {"code": refused.code, "msg": refused.msg}})
            return

        async def answer(result: SimResult) -> None:
            status, body = self._render(sim, market, method, params, result)
            await session.send({"id": request_id, "status": status, "result" if status == 200 else "error": body})

        sim.orders.submit(self.exchange, market, request, answer, path="ws", transport=session.request.transport)

    def _check_ws_signature(self, sim: Simulator, params: dict) -> int:
        """The request's validity end (timestamp + recvWindow) when its key, signature and time are good."""
        creds = sim.credentials_for(self.exchange)
        signature = params.get("signature")
        if isinstance(signature, str):
            self.secrets_seen.add(signature)
        if params.get("apiKey") != creds.api_key:
            raise _Refused(401, -2015, "Invalid API-key, IP, or permissions for action.")
        expected = hmac_sha256(creds.secret, _ws_payload(params)).hex()
        if not isinstance(signature, str) or not hmac.compare_digest(expected, signature.lower()):
            raise _Refused(400, -1022, "Signature for this request is not valid.")
        return self._validity(params)

    @staticmethod
    def _validity(params: dict) -> int:
        """Binance's timing rule: timestamp < now + 1 s and now − timestamp ≤ recvWindow (default 5000, ≤ 60000)."""
        try:
            timestamp = int(params["timestamp"])
            window = int(Decimal(str(params.get("recvWindow") or ORDER_WINDOW_MS)))
        except (KeyError, ValueError, ArithmeticError):
            raise _Refused(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or "
                                       "malformed.") from None
        if window > RECV_WINDOW_MS:
            raise _Refused(400, -1131, "recvWindow must be less than 60000")
        now = now_ms()
        if not (timestamp < now + 1000 and now - timestamp <= window):
            raise _Refused(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return timestamp + window

    async def _signed_form(self, sim: Simulator, request: web.Request) -> tuple[dict, int]:
        """A signed REST order request's params (query for GET/DELETE, the form body for POST/PUT, as ccxt signs
        them) and its validity end."""
        creds = sim.credentials_for(self.exchange)
        if request.headers.get(API_KEY_HEADER) != creds.api_key:
            raise _Refused(401, -2015, "Invalid API-key, IP, or permissions for action.")
        text = request.query_string if request.method in ("GET", "DELETE") else await request.text()
        payload, _, signature = text.rpartition("&signature=")
        if signature:
            self.secrets_seen.add(signature)
        if not signature or not hmac.compare_digest(hmac_sha256(creds.secret, payload).hex(), signature.lower()):
            raise _Refused(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(payload))
        return params, self._validity(params)

    def _symbol(self, market: Market, params: dict) -> str:
        raw = params.get("symbol")
        if not raw:
            raise _Refused(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        symbol = _LISTED[market].get(raw)
        if symbol is None:
            raise _Refused(400, -1121, "Invalid symbol.")
        return symbol

    @staticmethod
    def _side(params: dict) -> Side:
        side = params.get("side")
        if side not in ("BUY", "SELL"):
            raise _Refused(400, -1117, "Invalid side.")
        return Side.BUY if side == "BUY" else Side.SELL

    @staticmethod
    def _target(params: dict, id_key: str = "orderId", coid_key: str = "origClientOrderId") -> dict[str, str | None]:
        order_id, coid = params.get(id_key), params.get(coid_key)
        if order_id in (None, "") and coid in (None, ""):
            raise _Refused(400, -1102, f"Param '{coid_key}' or '{id_key}' must be sent, but both were empty/null!")
        return {"order_id": None if order_id in (None, "") else str(order_id),
                "client_order_id": None if coid in (None, "") else str(coid)}

    def _sim_request(self, sim: Simulator, market: Market, method: str, params: dict, valid_until: int) -> SimRequest:
        """The engine's request for one Binance order request (refusals the venue makes before its engine raise)."""
        if method == "algoOrder.cancel":
            return SimRequest(op="cancel", symbol="", valid_until=valid_until,
                              **self._target(params, "algoId", "clientAlgoId"))
        if method == "algoOrder.status":
            return SimRequest(op="query", symbol="", **self._target(params, "algoId", "clientAlgoId"))
        symbol = self._symbol(market, params)
        if method == "order.status":
            return SimRequest(op="query", symbol=symbol, **self._target(params))
        if method == "order.cancel":
            target = self._target(params)
            rename = None
            if market is Market.SPOT:  # the venue renames a cancelled order (newClientOrderId, else its own)
                rename = params.get("newClientOrderId") or secrets.token_urlsafe(16)
                order = sim.orders.find(self.exchange, market, **target)
                if order is not None and not order.status.is_terminal:
                    self.cancel_renames[order.order_id] = (order.client_order_id, rename)
            return SimRequest(op="cancel", symbol=symbol, rename_to=rename, valid_until=valid_until, **target)
        if method == "order.modify":
            self._side(params)
            return SimRequest(op="amend", symbol=symbol, amount=_decimal(params, "quantity"),
                              price=_decimal(params, "price"), valid_until=valid_until, **self._target(params))
        if method == "order.amend.keepPriority":
            target, amount = self._target(params), _decimal(params, "newQty")
            order = sim.orders.find(self.exchange, market, **target)
            if order is not None and not order.status.is_terminal and amount >= order.amount:
                raise _Refused(400, -2038, "Order amend (quantity increase) is not supported.")
            return SimRequest(op="amend", symbol=symbol, amount=amount, valid_until=valid_until,
                              new_client_order_id=params.get("newClientOrderId") or secrets.token_urlsafe(16),
                              **target)
        if method == "order.cancelReplace":
            if params.get("type") != "LIMIT":
                raise _Refused(400, -1116, "Invalid orderType.")  # the simulator replaces with limit orders only
            self._side(params)
            return SimRequest(op="amend", symbol=symbol, amount=_decimal(params, "quantity"),
                              price=_decimal(params, "price"), valid_until=valid_until,
                              new_client_order_id=params.get("newClientOrderId") or secrets.token_urlsafe(16),
                              **self._target(params, "cancelOrderId", "cancelOrigClientOrderId"))
        side, amount = self._side(params), _decimal(params, "quantity")
        if method == "algoOrder.place":
            trigger = _TRIGGERS.get(params.get("type"))
            if params.get("algoType") != "CONDITIONAL" or trigger is None:
                raise _Refused(400, -1116, "Invalid orderType.")
            return SimRequest(op="place", symbol=symbol, side=side, amount=amount, order_type="market",
                              trigger_price=_decimal(params, "triggerPrice"), trigger=trigger,
                              reduce_only=str(params.get("reduceOnly")).lower() == "true",
                              client_order_id=params.get("clientAlgoId") or None, valid_until=valid_until)
        kind, tif = params.get("type"), params.get("timeInForce")
        if kind == "MARKET":
            order_type = "market"
        elif (kind == "LIMIT_MAKER" and market is Market.SPOT) or (kind == "LIMIT" and tif == "GTX"):
            order_type = "post_only"
        elif kind == "LIMIT" and tif in ("GTC", "IOC", "FOK"):
            order_type = "limit" if tif == "GTC" else "ioc"
        else:
            raise _Refused(400, -1116, "Invalid orderType.")
        return SimRequest(op="place", symbol=symbol, side=side, amount=amount, order_type=order_type,
                          price=None if order_type == "market" else _decimal(params, "price"),
                          reduce_only=str(params.get("reduceOnly")).lower() == "true",
                          client_order_id=params.get("newClientOrderId") or None, valid_until=valid_until)

    def _render(self, sim: Simulator, market: Market, method: str, params: dict,
                result: SimResult) -> tuple[int, dict]:
        """(status, result or error body) of the engine's result, as Binance answers this method."""
        if result.kind == "unknown":
            return 503, {"code": -1007, "msg": "Timeout waiting for response from backend server. Send status "
                                               "unknown; execution status unknown."}
        if result.kind == "not_found" or result.reason == "not_open":
            if method == "order.cancelReplace":
                return 400, {"code": -2022, "msg": "Order cancel-replace failed.", "data": {
                    "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                    "cancelResponse": {"code": -2011, "msg": _UNKNOWN_ORDER}, "newOrderResponse": None}}
            if method == "order.amend.keepPriority":
                return 400, {"code": -2038, "msg": _UNKNOWN_ORDER}
            if method in ("order.cancel", "algoOrder.cancel"):
                return 400, {"code": -2011, "msg": _UNKNOWN_ORDER}
            return 400, {"code": -2013, "msg": "Order does not exist."}
        if result.kind == "reject":
            if result.reason == "expired":
                return 400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
            if result.reason == "duplicate_client_id" and method == "algoOrder.place":
                return 400, {"code": -20132, "msg": "The client algo id is duplicated"}
            code, msg = _REFUSALS.get((market, result.reason), (-1013, result.message))
            return 400, {"code": code, "msg": msg}
        order: SimOrder = result.order
        if method == "algoOrder.cancel":
            return 200, {"algoId": int(order.order_id), "clientAlgoId": order.client_order_id or "", "code": "200",
                         "msg": "success"}
        if method in ("algoOrder.place", "algoOrder.status"):
            return 200, self._algo_row(sim, order)
        row = self._order_row(market, order)
        if method == "order.place":
            return 200, {**row, "transactTime": order.updated}
        if method == "order.cancel" and market is Market.SPOT:
            original = self.cancel_renames.get(order.order_id, (params.get("origClientOrderId"), ""))[0]
            return 200, {**row, "origClientOrderId": original or "", "transactTime": order.updated}
        if method == "order.amend.keepPriority":
            amended = {k: v for k, v in row.items() if k not in ("origQty", "cummulativeQuoteQty")}
            amended.update(qty=row["origQty"], cumulativeQuoteQty=row["cummulativeQuoteQty"],
                           origClientOrderId=params.get("origClientOrderId") or "")
            return 200, {"transactTime": order.updated, "executionId": int(order.updated), "amendedOrder": amended}
        if method == "order.cancelReplace":
            canceled = {**row, "status": "CANCELED", "clientOrderId": params.get("cancelNewClientOrderId") or "",
                        "origClientOrderId": params.get("cancelOrigClientOrderId") or ""}
            return 200, {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS", "cancelResponse": canceled,
                         "newOrderResponse": {**row, "transactTime": order.updated}}
        return 200, row

    def _algo_row(self, sim: Simulator, order: SimOrder) -> dict:
        """A USD-M algo (TP/SL) order as algoOrder.place and `GET /fapi/v1/algoOrder` answer it."""
        if _untriggered(sim, order):
            status = "CANCELED" if order.status is OrderStatus.CANCELED else "NEW"
        else:
            status = "FINISHED" if order.status.is_terminal else "TRIGGERED"
        return {
            "algoId": int(order.order_id), "clientAlgoId": order.client_order_id or "", "algoType": "CONDITIONAL",
            "orderType": _ALGO_TYPES.get(order.trigger, "STOP_MARKET"), "symbol": self.raw_symbol(Market.FUTURE,
                                                                                                  order.symbol),
            "side": order.side.value.upper(), "positionSide": "BOTH", "timeInForce": "GTC",
            "quantity": decimal_text(order.amount), "algoStatus": status,
            "triggerPrice": decimal_text(order.trigger_price or 0), "price": "0",
            "executedQty": decimal_text(order.filled), "avgPrice": decimal_text(order.average),
            "workingType": "CONTRACT_PRICE", "priceMatch": "NONE", "closePosition": False, "priceProtect": False,
            "reduceOnly": order.reduce_only, "createTime": order.created, "updateTime": order.updated,
            "triggerTime": 0, "goodTillDate": 0,
        }

    def _algo_update(self, order: SimOrder) -> dict:
        """USD-M `ALGO_UPDATE` ("Event: Algo Order Update") of an algo order that has not triggered."""
        now = order.updated
        return {"e": "ALGO_UPDATE", "T": now, "E": now + 1, "o": {
            "caid": order.client_order_id or "", "aid": int(order.order_id), "at": "CONDITIONAL",
            "o": _ALGO_TYPES.get(order.trigger, "STOP_MARKET"), "s": self.raw_symbol(Market.FUTURE, order.symbol),
            "S": order.side.value.upper(), "ps": "BOTH", "f": "GTC", "q": decimal_text(order.amount),
            "X": "CANCELED" if order.status is OrderStatus.CANCELED else "NEW",
            "tp": decimal_text(order.trigger_price or 0), "p": "0", "wt": "CONTRACT_PRICE", "pm": "NONE",
            "cp": False, "pP": False, "R": order.reduce_only, "tt": 0, "gtd": 0}}

    def _rest_order_route(self, method: str):
        """A REST order endpoint doing what the WebSocket method `method` does."""

        async def handle(sim: Simulator, market: Market, request: web.Request) -> web.StreamResponse:
            try:
                params, valid_until = await self._signed_form(sim, request)
                order_request = self._sim_request(sim, market, method, params, valid_until)
            except _Refused as refused:
                return _error(refused.status, refused.code, refused.msg)
            result = await sim.orders.call(self.exchange, market, order_request, transport=request.transport)
            if result is None:  # the fault cut the connection: nobody reads this
                return web.Response(status=502)
            status, body = self._render(sim, market, method, params, result)
            return web.json_response(body, status=status)

        return handle

    # public market data ------------------------------------------------------------------------------------------
    async def _stream_request(self, session: SimSession, message: Any) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS on a market stream socket, answered as the venue does."""
        if type(message) is not dict:
            await session.send({"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}})
            return
        request_id, method, params = message.get("id"), message.get("method"), message.get("params", [])
        if type(request_id) is not int or request_id < 0:
            await session.send({"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
                                "id": request_id})
            return
        streams: dict[str, tuple[str, str, str]] = session.state["streams"]
        if method == "LIST_SUBSCRIPTIONS":
            await session.send({"result": list(streams), "id": request_id})
            return
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            await session.send({"error": {"code": 2, "msg": f"Invalid request: unknown variant {method}, expected one "
                                          "of SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS"},
                                "id": request_id})
            return
        topics = [_stream_topic(session.market, name) for name in params] if type(params) is list else [None]
        if None in topics:
            await session.send({"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": request_id})
            return
        for name, topic in zip(params, topics):
            if method == "UNSUBSCRIBE":
                streams.pop(name, None)
                continue
            streams[name] = topic
            symbol = _LISTED[session.market].get(topic[0].upper())
            if symbol is not None:  # the market exists (and the clock steps it) from its first subscriber on
                symbol_market = session.sim.market(self.exchange, session.market, symbol)
                if topic[1] == "kline":
                    symbol_market.candle(topic[2])  # the bar counts trades from now on
        await session.send({"result": None, "id": request_id})

    def market_frames(self, session: SimSession, symbol_market: SymbolMarket, step: MarketStep,
                      corrupt_checksum: bool = False) -> list[Any]:
        """The events of the streams this socket subscribed for the symbol (Binance books have no checksum)."""
        raw = self.raw_symbol(session.market, symbol_market.symbol)
        if _LISTED[session.market].get(raw) != symbol_market.symbol:
            return []  # a symbol the venue does not list has no data, whoever subscribed its stream
        raw, path = raw.lower(), session.state.get("path")
        frames: list[Any] = []
        for stream_raw, channel, argument in session.state["streams"].values():
            if stream_raw != raw or (path is not None and _FUTURE_PATHS[channel] != path):
                continue
            if channel == "depth":
                if step.book is not None:
                    frames.append(self._depth_update(session.market, symbol_market, step.time, step.book))
            elif channel == "trade":
                frames.extend(self._trade_event(session.market, symbol_market, trade) for trade in step.trades)
            elif channel == "kline":
                frames.append(self._kline_event(session.market, symbol_market, step.time, argument))
            else:
                frames.append(self._ticker_event(session.market, symbol_market, step.time, channel == "ticker"))
        return frames

    @staticmethod
    def _number(market: Market, value: Decimal, unit: Decimal) -> str:
        """Spot writes 8 decimals; USD-M a price with its tick's decimals, a quantity with its lot's."""
        return decimal_text(value, 8 if market is Market.SPOT else max(0, -unit.as_tuple().exponent))

    def _levels(self, market: Market, symbol_market: SymbolMarket, levels: Any) -> list[list[str]]:
        tick, lot = symbol_market.tick, symbol_market.lot
        return [[self._number(market, price, tick), self._number(market, amount, lot)] for price, amount in levels]

    def _depth_update(self, market: Market, symbol_market: SymbolMarket, time: int, book: BookChange) -> dict:
        event: dict[str, Any] = {"e": "depthUpdate", "E": time}
        if market is Market.FUTURE:
            event["T"] = time
        event.update(s=self.raw_symbol(market, symbol_market.symbol), U=book.first_seq, u=book.seq)
        if market is Market.FUTURE:
            event["pu"] = book.prev_seq
        event.update(b=self._levels(market, symbol_market, book.bids), a=self._levels(market, symbol_market, book.asks))
        return event

    def _trade_event(self, market: Market, symbol_market: SymbolMarket, trade: TradeTick) -> dict:
        """`m`: the buyer was the maker, i.e. the taker sold."""
        price = self._number(market, trade.price, symbol_market.tick)
        amount = self._number(market, trade.amount, symbol_market.lot)
        raw, sold = self.raw_symbol(market, symbol_market.symbol), trade.side is Side.SELL
        if market is Market.SPOT:
            return {"e": "trade", "E": trade.time, "s": raw, "t": trade.trade_id, "p": price, "q": amount,
                    "T": trade.time, "m": sold, "M": True}
        return {"e": "trade", "E": trade.time, "T": trade.time, "s": raw, "t": trade.trade_id, "p": price,
                "q": amount, "X": "MARKET", "m": sold}

    def _ticker_event(self, market: Market, symbol_market: SymbolMarket, time: int, full: bool) -> dict:
        """`24hrTicker` (full) or `24hrMiniTicker`; the rolling figures count from the simulator's start. The
        trade ids and count (`F`, `L`, `n`) are left out: the simulator does not keep them."""
        sm, tick, lot = symbol_market, symbol_market.tick, symbol_market.lot
        spot = market is Market.SPOT
        quote_volume = decimal_text(sm.quote_volume, 8) if spot else decimal_text(sm.quote_volume)
        raw = self.raw_symbol(market, sm.symbol)
        if not full:
            return {"e": "24hrMiniTicker", "E": time, "s": raw, "c": self._number(market, sm.last, tick),
                    "o": self._number(market, sm.open, tick), "h": self._number(market, sm.high, tick),
                    "l": self._number(market, sm.low, tick), "v": self._number(market, sm.volume, lot),
                    "q": quote_volume}
        change = sm.last - sm.open
        vwap = sm.quote_volume / sm.volume if sm.volume else sm.last
        event = {"e": "24hrTicker", "E": time, "s": raw, "p": self._number(market, change, tick),
                 "P": decimal_text(change * 100 / sm.open, 3), "w": self._number(market, vwap, tick)}
        if spot:
            event["x"] = self._number(market, sm.open, tick)
        last_amount = sm.trades[-1].amount if sm.trades else Decimal(0)
        event.update(c=self._number(market, sm.last, tick), Q=self._number(market, last_amount, lot))
        if spot:
            (bid, bid_amount), (ask, ask_amount) = sm.best_bid(), sm.best_ask()
            event.update(b=self._number(market, bid, tick), B=self._number(market, bid_amount, lot),
                         a=self._number(market, ask, tick), A=self._number(market, ask_amount, lot))
        event.update(o=self._number(market, sm.open, tick), h=self._number(market, sm.high, tick),
                     l=self._number(market, sm.low, tick), v=self._number(market, sm.volume, lot), q=quote_volume,
                     O=time - _DAY_MS, C=time)
        return event

    def _kline_event(self, market: Market, symbol_market: SymbolMarket, time: int, interval: str) -> dict:
        """The interval's current bar (`x`: closed, never here; `n`: its trades). Its first and last trade ids and
        taker-buy volumes are left out: the simulator does not keep them."""
        bar, tick, lot = symbol_market.candle(interval), symbol_market.tick, symbol_market.lot
        raw = self.raw_symbol(market, symbol_market.symbol)
        quote_volume = decimal_text(bar.quote_volume, 8) if market is Market.SPOT else decimal_text(bar.quote_volume)
        return {"e": "kline", "E": time, "s": raw, "k": {
            "t": bar.start, "T": bar.start + TIMEFRAMES_MS[interval] - 1, "s": raw, "i": interval,
            "o": self._number(market, bar.open, tick), "c": self._number(market, bar.close, tick),
            "h": self._number(market, bar.high, tick), "l": self._number(market, bar.low, tick),
            "v": self._number(market, bar.volume, lot), "n": bar.count, "x": False, "q": quote_volume}}

    def public_rest_routes(self, market: Market) -> list:
        return [("GET", "/api/v3/depth" if market is Market.SPOT else "/fapi/v1/depth", self._depth)]

    async def _depth(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Order Book: the top `limit` levels a side and `lastUpdateId`, the sequence the next diff continues
        from. USD-M documents limits 5, 10, 20, 50, 100, 500 and 1000 only (MARKET_DATA.book_limit keeps to them)."""
        symbol_raw = request.query.get("symbol")
        if not symbol_raw:
            return _error(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        symbol = _LISTED[market].get(symbol_raw)
        if symbol is None:
            return _error(400, -1121, "Invalid symbol.")
        default, most = _DEPTH_LIMITS[market]
        limit = request.query.get("limit", str(default))
        if not limit.isdigit():
            return _error(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.")
        symbol_market = sim.market(self.exchange, market, symbol)
        bids, asks = symbol_market.book(min(max(int(limit), 1), most))
        body: dict[str, Any] = {"lastUpdateId": symbol_market.seq}
        if market is Market.FUTURE:
            body.update(E=now_ms(), T=symbol_market.time)
        body.update(bids=self._levels(market, symbol_market, bids), asks=self._levels(market, symbol_market, asks))
        return web.json_response(body)


VENUE_CLASS = BinanceSim
