"""Gate on the simulator: signed per-channel subscriptions (spot and USDT futures), the user-id lookup, REST history,
order entry.

Streams need no login: each subscribe / unsubscribe carries `auth` (hex HMAC-SHA512 of `channel=…&event=…&time=…`);
a wrong key, signature or stale `time` gets error code 4 and no data. Futures payloads lead with the user id that signed
`GET /account/detail` returns; another id gets code 2. `spot.ping` / `futures.ping` get the pong. History: signed
`GET /spot/my_trades`, `/futures/usdt/my_trades` and `/futures/usdt/my_trades_timerange`, newest first. Futures
sizes are signed contracts (fill amount / the client's contract size; negative = sell).

Account state (exchanges.gate.account), from the simulator's account: `spot.balances` (no payload: every coin;
absolute total / available / freeze with what moved and why), `futures.balances` (payload: the user id alone; the
wallet after a fill's realized PnL and after its fee, a row each) and `futures.positions` (user id, then contracts or
`!all`; signed contracts, isolated at the position's leverage). REST as ccxt's fetch_balance / fetch_positions call
it: signed `GET /spot/accounts`, `/futures/usdt/accounts` and `/futures/usdt/positions`.

Public market data, as ccxt.pro 4.5.90 reads it, on the public paths (spot `/ws/v4/`, USDT futures `/v4/ws/usdt`):
`spot.tickers` / `futures.tickers`, `spot.trades` / `futures.trades`, `spot.candlesticks` / `futures.candlesticks`
(payload `[interval, pair]`), and the books ccxt uses: spot `spot.obu` (payload `ob.<pair>.<50|400>`, a full push
on subscribe, then `U`..`u` deltas; no checksum) and futures `futures.order_book_update` (payload `[contract,
frequency, level]`, `U`..`u` deltas seeded by `GET /api/v4/futures/usdt/order_book?with_id=true`, whose `id` is
the book's sequence). Futures sizes are contracts: decimal strings when the socket or request carries
`X-Gate-Size-Decimal: 1` (ccxt sends it), whole numbers otherwise. A pair not listed gets Gate's code 2.

Order entry (exchanges.gate.orders), through the simulator's matching engine: the WebSocket API on the private socket
(`spot.login` / `futures.login`: hex HMAC-SHA512 of "api\n<channel>\n\n<timestamp>", checked here; then
`*.order_place` answered with an ack and the result, `*.order_cancel` / `_amend` / `_status` with the result; a
request before the login gets AUTHENTICATION_FAILED "Not login"), and REST: `POST/GET /spot/orders`,
`GET/DELETE/PATCH /spot/orders/{id}`, the futures `…/usdt/orders` equivalents (amend: PUT) and futures price orders
(`…/usdt/price_orders`, TP/SL, no client id). Requests expire at `x-gate-exptime` (header or `req_header`), else 60 s
after their time. Client ids are `t-` texts that Gate does not keep unique (the latter one overrides); an order is
found by its text while it rests and for 1 h (spot) / 60 s (futures) after it ended, never once forgotten
(`forgotten_orders`). A spot market buy's amount is quote (bought at the ask; its rows write quote, as Gate's do).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web

from exchanges.gate.auth import channel_payload, rest_payload, sign
from exchanges.gate.normalize import FALLBACK_CONTRACT_SIZES
from exchanges.listings import sim_symbols
from exchanges.simulator.account import SimAccount, SimPosition
from exchanges.simulator.ledger import SimFill, SimOrder
from exchanges.simulator.orders import ClientIdPolicy, SimRequest, SimResult
from exchanges.simulator.server import MAKER_FEE, TAKER_FEE
from exchanges.simulator.venues.base import SimSession, VenueSim, decimal_text, json_numbers
from exchanges.symbols import contract_size
from framework.events import Market, OrderStatus, Side, now_ms

if TYPE_CHECKING:
    from exchanges.simulator.market import BookChange, MarketStep, SymbolMarket
    from exchanges.simulator.server import Simulator

TIME_WINDOW_S = 60  # request `time` / `Timestamp` may be this far from the server's clock
DAY_S = 86_400
ALL = "!all"
USER_TEXT = "t-"  # Gate's required prefix of a user-defined order text
_CHANNELS = {
    Market.SPOT: ("spot.orders", "spot.usertrades"),
    Market.FUTURE: ("futures.orders", "futures.usertrades"),
}
# Account channels (exchanges.gate.account): balances take no pair (futures: the user id alone), positions take
# the user id then contracts or `!all`.
_ACCOUNT_CHANNELS = {Market.SPOT: ("spot.balances",), Market.FUTURE: ("futures.balances", "futures.positions")}
_WHOLE_ACCOUNT = frozenset({"spot.balances", "futures.balances"})
# What a futures position row says of the risk tier the simulator does not model (one tier for every contract).
LEVERAGE_MAX, MAINTENANCE_RATE, RISK_LIMIT = Decimal(100), Decimal("0.005"), Decimal(1_000_000)
_PING = {Market.SPOT: "spot.ping", Market.FUTURE: "futures.ping"}
_PONG = {Market.SPOT: "spot.pong", Market.FUTURE: "futures.pong"}
_GATE_TEXT = {Market.SPOT: "apiv4", Market.FUTURE: "api"}  # what Gate writes on an API order without user text
# WebSocket errors (docs "Error": 1 bad body, 2 bad argument, 4 authentication fail). Code 4 carries the REST
# error body as its message, as in ccxt's captured {"code": 4, "message": "{\"label\":\"INVALID_KEY\",...}\n"}.
BAD_BODY, BAD_ARGUMENT, AUTH_FAIL = 1, 2, 4
INVALID_KEY = ("INVALID_KEY", "Invalid key provided")
INVALID_SIGNATURE = ("INVALID_SIGNATURE", "Signature mismatch")
REQUEST_EXPIRED = ("REQUEST_EXPIRED", "gap between request Timestamp and server time exceeds 60")

# Public market data -----------------------------------------------------------------------------------------------
_PUBLIC_PATHS = {Market.SPOT: "/ws/v4/", Market.FUTURE: "/v4/ws/usdt"}  # ccxt's urls: api.gateio.ws/ws/v4/, fx-ws…
_PUBLIC = {  # channel -> the kind of topic it carries
    Market.SPOT: {"spot.tickers": "tickers", "spot.trades": "trades", "spot.candlesticks": "candles",
                  "spot.obu": "book"},
    Market.FUTURE: {"futures.tickers": "tickers", "futures.trades": "trades", "futures.candlesticks": "candles",
                    "futures.order_book_update": "book"},
}
# Gate's candle intervals (10s, 1m, 5m, 15m, 30m, 1h, 4h, 8h, 1d, 7d) that the simulated market keeps.
CANDLE_INTERVALS = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
OBU_LEVELS = ("50", "400")  # spot.obu streams: ob.<pair>.50 (20 ms) and ob.<pair>.400 (100 ms)
BOOK_LEVELS = ("100", "50", "20", "10", "5")  # futures.order_book_update `level`
BOOK_FREQUENCIES = ("20ms", "100ms", "1000ms")
SIZE_DECIMAL = "X-Gate-Size-Decimal"  # "1": futures sizes as decimal strings instead of rounded-down integers
BOOK_PATH = "/api/v4/futures/usdt/order_book"
SETTLE = "USDT"  # the one futures wallet: USDT-settled perpetuals (`/futures/usdt/...`)


class _Refused(Exception):
    """A public request Gate answers with an error (code, message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _listed(market: Market, pair: str) -> bool:
    """Whether the simulator lists a Gate pair (exchanges.listings: its bases against USDT)."""
    return "_" in pair and _unified(market, pair) in sim_symbols("gate", market)


def _unified(market: Market, pair: str) -> str:
    base, quote = pair.split("_", 1)
    return f"{base}/{quote}" if market is Market.SPOT else f"{base}/{quote}:{quote}"


def _pair(market: Market, pair: str) -> str:
    """A listed pair, else Gate's code 2 (as ccxt captured it: spot with a colon, futures without)."""
    if not _listed(market, pair):
        raise _Refused(BAD_ARGUMENT, f"unknown currency pair: {pair}" if market is Market.SPOT
                       else f"unknown contract {pair}")
    return pair


def _contracts(size: Decimal, decimal: bool) -> str | int:
    """A futures size as Gate writes it: decimal text under `X-Gate-Size-Decimal: 1`, else a whole number."""
    return format(size.normalize(), "f") if decimal else int(size)


def _percent(last: Decimal, first: Decimal, places: int) -> str:
    """The change from `first` to `last` in percent, rounded to `places` (a change that rounds away is 0, unsigned)."""
    change = ((last - first) / first * 100).quantize(Decimal(1).scaleb(-places)) if first else Decimal(0)
    return decimal_text(change if change else abs(change))


def _label(pair: tuple[str, str]) -> str:
    return json.dumps({"label": pair[0], "message": pair[1]}, separators=(",", ":")) + "\n"


def _rest_error(status: int, label: str, message: str) -> web.Response:
    return web.json_response({"label": label, "message": message}, status=status)


def _bad_param(name: str, value: str) -> web.Response:
    return _rest_error(400, "INVALID_PARAM_VALUE", f"Invalid request parameter `{name}` value: {value}")


def _int_params(params: Any, bounds: dict[str, tuple[int | None, int, int | None]]) -> dict[str, int | None]:
    """Integer query parameters by name → (default, low, high); a bad one raises ValueError(name)."""
    values: dict[str, int | None] = {}
    for name, (default, low, high) in bounds.items():
        text = params.get(name)
        if text is None or text == "":
            values[name] = default
            continue
        try:
            value = int(text)
        except ValueError:
            raise ValueError(name) from None
        if value < low or (high is not None and value > high):
            raise ValueError(name)
        values[name] = value
    return values


def _size(raw: str, side: Side, amount: Decimal) -> Decimal:
    """Gate's `size`: contracts (amount / the contract size the client converts with), negative for a sell."""
    contracts = amount / (contract_size("gate", raw) or FALLBACK_CONTRACT_SIZES.get(raw, Decimal(1)))
    return -contracts if side is Side.SELL else contracts


def _seconds(ms: int) -> Decimal:
    return Decimal(ms).scaleb(-3)


def _spot_levels(levels: Any) -> list[list[str]]:
    return [[decimal_text(price), decimal_text(amount)] for price, amount in levels]


def _futures_levels(raw: str, levels: Any, decimal: bool) -> list[dict]:
    return [{"p": decimal_text(price), "s": _contracts(_size(raw, Side.BUY, amount), decimal)}
            for price, amount in levels]

# Order entry (exchanges.gate.orders) ------------------------------------------------------------------------------
_API_TOPIC = {Market.SPOT: "spot", Market.FUTURE: "futures"}
_API_OPS = {"order_place": "place", "order_cancel": "cancel", "order_amend": "amend", "order_status": "query"}
_TEXT = re.compile(r"[0-9A-Za-z_.\-]+")  # what a user text may hold after its `t-`
_SIDE_OF = {"buy": Side.BUY, "sell": Side.SELL}
_BASE_STEP = Decimal("0.00000001")  # a spot market buy's base amount (quote / best ask), rounded down to this
# How long a lookup by text still finds an order after it ended (REST docs of GET /spot/orders/{order_id} and
# GET /futures/{settle}/orders/{order_id}).
_TEXT_LOOKUP_MS = {Market.SPOT: 3_600_000, Market.FUTURE: 60_000}
_KINDS = {"gtc": "limit", "ioc": "ioc", "poc": "post_only"}
_TIFS = {"limit": "gtc", "gtc": "gtc", "ioc": "ioc", "post_only": "poc"}
_PRICE_RULE = {1: ">=", 2: "<="}


def _positive(value: Any, name: str, *, allow_none: bool = False, allow_zero: bool = False) -> Decimal | None:
    """A price or amount written as text (as Gate wants them); _Refused for anything else."""
    if value is None and allow_none:
        return None
    try:
        number = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number < 0 or (number == 0 and not allow_zero):
        raise _Refused(BAD_ARGUMENT, f"Invalid request parameter `{name}` value: {value}")
    return number


def _whole(value: Any, decimal_size: bool) -> int:
    """A futures size: a JSON integer (a decimal string too under X-Gate-Size-Decimal: 1)."""
    if isinstance(value, bool):
        raise _Refused(BAD_ARGUMENT, f"Mismatch type int64 with value {value}")
    if isinstance(value, int):
        return value
    if decimal_size and isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
        if number is not None and number.is_finite() and number == number.to_integral_value():
            return int(number)
    raise _Refused(BAD_ARGUMENT, f"Mismatch type int64 with value {type(value).__name__}")


def _base_of(raw: str, contracts: int) -> Decimal:
    """Contracts as base units (the client's contract size)."""
    return abs(contracts) * (contract_size("gate", raw) or FALLBACK_CONTRACT_SIZES.get(raw, Decimal(1)))


def _contract_count(contracts: Decimal, decimal: bool) -> int | str:
    """A whole number of contracts as Gate writes it: an integer, or text under X-Gate-Size-Decimal: 1."""
    return decimal_text(contracts.normalize()) if decimal else int(contracts)


class _ApiReply:
    """The frames answering one WebSocket API request (docs "Server Response")."""

    def __init__(self, session: SimSession, channel: str, req_id: Any, received_us: int) -> None:
        self.session, self.channel, self.req_id, self.received_us = session, channel, req_id, received_us

    def _header(self, status: int) -> dict:
        now = now_ms()
        out = max(time.time_ns() // 1000, self.received_us)
        header = {"response_time": str(now), "status": str(status), "channel": self.channel, "event": "api",
                  "client_id": "127.0.0.1-sim", "x_in_time": self.received_us, "x_out_time": out,
                  "conn_id": f"{id(self.session):x}", "trace_id": secrets.token_hex(16)}
        if self.channel.endswith(("order_place", "order_amend")):
            header.update(x_gate_ratelimit_requests_remain=9, x_gate_ratelimit_limit=10,
                          x_gat_ratelimit_reset_timestamp=now)
        return header

    async def ack(self, payload: dict) -> None:
        await self.session.send({"request_id": self.req_id, "ack": True, "header": self._header(200), "data": {
            "result": {"req_id": self.req_id, "req_header": payload.get("req_header"),
                       "req_param": payload.get("req_param"), "api_key": "", "timestamp": "", "signature": ""}}})

    async def result(self, result: Any) -> None:
        await self.session.send(json_numbers({"request_id": self.req_id, "ack": False, "header": self._header(200),
                                              "data": {"result": result}}))

    async def error(self, status: int, label: str, message: str) -> None:
        await self.session.send({"request_id": self.req_id, "header": self._header(status),
                                 "data": {"errs": {"label": label, "message": message}}})


class GateSim(VenueSim):
    exchange = "gate"
    markets = frozenset({Market.SPOT, Market.FUTURE})
    # A socket with no message either way for a minute is closed (Gate's maintainer, gateio/gatews#34).
    client_silence_limit = 60.0
    # "If you send two orders with the same client-id, the latter one will override" (gateio/gateapi-go#41)
    client_id_policy = ClientIdPolicy.OVERRIDE

    def __init__(self) -> None:
        self.user_id = 10_000_000 + secrets.randbelow(90_000_000)  # this simulator's one account
        # (market, asset) -> ((total, locked) before, after) of the last balance change pushed: `change` figures
        self._shown: dict[tuple[Market, str], tuple[tuple[Decimal, Decimal], tuple[Decimal, Decimal]]] = {}
        self._position_ids: dict[str, tuple[tuple, int]] = {}  # symbol -> (state pushed, its update_id)
        # spot market buys are sized in quote: (market, symbol, client id, base amount) -> quote, until the order
        # exists; then order id -> quote (its rows write the quote given and the quote left)
        self._pending_quotes: dict[tuple, Decimal] = {}
        self._quote_of: dict[str, Decimal] = {}

    def raw_symbol(self, market: Market, symbol: str) -> str:
        base, quote = symbol.split(":")[0].split("/")
        return f"{base}_{quote}"

    # sockets -----------------------------------------------------------------------------------------------
    async def on_message(self, session: SimSession, message: Any) -> None:
        if type(message) is not dict:
            await self._reply(session, {}, error=(BAD_BODY, "Invalid request body format"))
            return
        channel, event = message.get("channel"), message.get("event")
        if event == "api":  # the WebSocket API (order entry), on the private socket
            await self._api_request(session, message)
            return
        if channel == _PING[session.market]:
            now = now_ms()
            pong = {"time": now // 1000, "time_ms": now, "channel": _PONG[session.market], "event": ""}
            if "id" in message:
                pong["id"] = message["id"]
            if session.market is Market.SPOT:
                pong["error"] = None
            pong["result"] = None
            await session.send(pong)
            return
        if session.public and channel in _PUBLIC[session.market]:
            await self._public_request(session, message)
            return
        known = channel in _CHANNELS[session.market] or channel in _ACCOUNT_CHANNELS[session.market]
        if not known or event not in ("subscribe", "unsubscribe"):
            await self._reply(session, message, error=(BAD_ARGUMENT, "Invalid argument provided"))
            return
        refusal = self._auth_refusal(session, message)
        if refusal is not None:
            await self._reply(session, message, error=refusal)
            return
        payload = message.get("payload")
        if channel == "spot.balances" and payload is None:
            payload = [ALL]  # docs: "No payload is required" (ccxt sends none): the whole account
        if not isinstance(payload, list) or not payload or not all(isinstance(p, str) and p for p in payload):
            await self._reply(session, message, error=(BAD_ARGUMENT, "Invalid argument provided"))
            return
        whole_account = channel in _WHOLE_ACCOUNT
        if session.market is Market.FUTURE:
            if len(payload) < (1 if whole_account else 2) or payload[0] != str(self.user_id):
                # Gate's answer to a payload whose user id is not the key's (gateio/gateapi-python#14).
                text = f"auth faild , auth data : &{{{{{self.user_id}}}}}"
                await self._reply(session, message, error=(BAD_ARGUMENT, text), result={"status": "failed"})
                return
            payload = payload[1:]
        if whole_account:
            payload = [ALL]  # balances name no pair: every coin of the account
        pairs: set[str] = session.state.setdefault("pairs", {}).setdefault(channel, set())
        if event == "subscribe":
            pairs.update(payload)
            session.subscriptions.add(channel)
            session.authenticated = True
        else:
            pairs.difference_update(payload)
            if ALL in payload or not pairs:
                pairs.clear()
                session.subscriptions.discard(channel)
        await self._reply(session, message, result={"status": "success"})

    def _auth_refusal(self, session: SimSession, message: dict) -> tuple[int, str] | None:
        """None when the request's `auth` is good; else the error (code, message) Gate answers with."""
        auth, time_s = message.get("auth"), message.get("time")
        if type(time_s) is not int:
            return BAD_BODY, "Invalid request body format"
        if not isinstance(auth, dict) or auth.get("method") != "api_key":
            return AUTH_FAIL, "Authentication fail"
        creds = session.credentials
        if auth.get("KEY") != creds.api_key:
            return AUTH_FAIL, _label(INVALID_KEY)
        if abs(now_ms() // 1000 - time_s) > TIME_WINDOW_S:
            return AUTH_FAIL, _label(REQUEST_EXPIRED)
        expected = sign(creds.secret, channel_payload(message["channel"], message["event"], time_s))
        if not isinstance(auth.get("SIGN"), str) or not hmac.compare_digest(auth["SIGN"], expected):
            return AUTH_FAIL, _label(INVALID_SIGNATURE)
        return None

    async def _reply(self, session: SimSession, request: dict, *, error: tuple[int, str] | None = None,
                     result: Any = None) -> None:
        now = now_ms()
        reply: dict[str, Any] = {"time": now // 1000, "time_ms": now}
        if "id" in request:
            reply["id"] = request["id"]
        reply.update(channel=request.get("channel", ""), event=request.get("event", ""))
        if "payload" in request:
            reply["payload"] = request["payload"]
        reply["error"] = {"code": error[0], "message": error[1]} if error else None
        reply["result"] = result
        await session.send(reply)

    def _wants(self, session: SimSession, channel: str, raw: str) -> bool:
        pairs = session.state.get("pairs", {}).get(channel, ())
        return channel in session.subscriptions and (ALL in pairs or raw in pairs)

    # public market data ------------------------------------------------------------------------------------------
    has_checksum = False  # neither spot.obu nor futures.order_book_update carries one

    def public_ws_paths(self, market: Market) -> list[str]:
        return [_PUBLIC_PATHS[market]]

    def public_rest_routes(self, market: Market) -> list:
        """The books ccxt.pro seeds from (`/api/v4/…`), and the books ccxt's REST client reads below the simulator's
        mount (`fetch_order_book`: the gateway's reference price of a market order)."""
        if market is Market.SPOT:
            return [("GET", "/spot/order_book", self._spot_book)]
        return [("GET", BOOK_PATH, self._futures_book), ("GET", "/futures/{settle}/order_book", self._settled_book)]

    async def _settled_book(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """The futures book below the mount: `{settle}` is USDT in any case (ccxt's offline market writes "USDT")."""
        if request.match_info["settle"].lower() != SETTLE.lower():
            return _rest_error(400, "INVALID_PARAM_VALUE", f"unknown settle {request.match_info['settle']}")
        return await self._futures_book(sim, market, request)

    async def _spot_book(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """`GET /spot/order_book`: currency_pair, limit (default 10), with_id (`id`: the book's sequence)."""
        params = request.query
        pair = params.get("currency_pair")
        if not pair or not _listed(market, pair):
            return _rest_error(400, "INVALID_CURRENCY_PAIR", f"Invalid currency pair {pair}")
        try:
            limit = _int_params(params, {"limit": (10, 1, 5000)})["limit"]
        except ValueError as exc:
            return _bad_param(str(exc), params[str(exc)])
        symbol_market = sim.market(self.exchange, market, _unified(market, pair))
        bids, asks = symbol_market.book(limit)
        body: dict[str, Any] = {"id": symbol_market.seq} if params.get("with_id", "").lower() == "true" else {}
        body.update(current=now_ms(), update=symbol_market.time, asks=_spot_levels(asks), bids=_spot_levels(bids))
        return web.json_response(body)

    @staticmethod
    def _topics(session: SimSession) -> dict[str, set]:
        """A public socket's subscriptions by kind: tickers and trades hold pairs, candles (interval, pair), books
        (pair, level)."""
        return session.state.setdefault("public", {"tickers": set(), "trades": set(), "candles": set(), "book": set()})

    async def _public_request(self, session: SimSession, message: dict) -> None:
        """Subscribe / unsubscribe on a public channel (no auth). A spot.obu subscription is answered with the full
        book right after its ack, as Gate's first push on that channel always is."""
        channel, event, payload = message["channel"], message.get("event"), message.get("payload")
        kind = _PUBLIC[session.market][channel]
        try:
            if event not in ("subscribe", "unsubscribe") or not isinstance(payload, list) or not payload \
                    or not all(isinstance(p, str) and p for p in payload):
                raise _Refused(BAD_ARGUMENT, "Invalid argument provided")
            keys = self._public_keys(session.market, kind, payload)
            topics = self._topics(session)[kind]
            if event == "subscribe" and kind == "book" and session.market is Market.SPOT:
                for pair, level in keys:
                    if (pair, level) in topics:  # Gate allows one subscription per stream and connection
                        raise _Refused(BAD_ARGUMENT, f"Alert sub ob.{pair}.{level}")
        except _Refused as refusal:
            await self._reply(session, message, error=(refusal.code, refusal.message), result={"status": "fail"})
            return
        if event == "unsubscribe":
            if kind == "book" and session.market is Market.FUTURE:  # Gate's unsubscribe names no level
                topics.difference_update({t for t in topics if t[0] in {pair for pair, _ in keys}})
            else:
                topics.difference_update(keys)
            if kind == "book":
                session.state.get("obu_resend", set()).difference_update(keys)
            if not topics:
                session.subscriptions.discard(channel)
            await self._reply(session, message, result={"status": "success"})
            return
        topics.update(keys)
        session.subscriptions.add(channel)
        for key in keys:
            pair = key if isinstance(key, str) else (key[1] if kind == "candles" else key[0])
            # the symbol's market exists (and moves) from its first subscription, whatever asks for a snapshot
            symbol_market = session.sim.market(self.exchange, session.market, _unified(session.market, pair))
            if kind == "candles":  # the bar records trades from now on
                symbol_market.candle(key[0])
        await self._reply(session, message, result={"status": "success"})
        if kind == "book" and session.market is Market.SPOT:
            for pair, level in keys:
                symbol_market = session.sim.market(self.exchange, session.market, _unified(session.market, pair))
                await session.send(self._obu_full(symbol_market, pair, level))

    @staticmethod
    def _public_keys(market: Market, kind: str, payload: list[str]) -> list:
        """The topics a public request names (see `_topics`), or Gate's error for a bad one."""
        if kind in ("tickers", "trades"):
            return [_pair(market, pair) for pair in payload]
        if kind == "candles":
            if len(payload) != 2 or payload[0] not in CANDLE_INTERVALS:
                raise _Refused(BAD_ARGUMENT, "Invalid argument provided")
            return [(payload[0], _pair(market, payload[1]))]
        if market is Market.SPOT:  # ["ob.BTC_USDT.50", …]
            keys = []
            for stream in payload:
                prefix, _, rest = stream.partition(".")
                pair, _, level = rest.rpartition(".")
                if prefix != "ob" or level not in OBU_LEVELS:
                    raise _Refused(BAD_ARGUMENT, "Invalid argument provided")
                keys.append((_pair(market, pair), level))
            return keys
        level = payload[2] if len(payload) > 2 else BOOK_LEVELS[0]  # [contract, frequency, level]
        if len(payload) < 2 or len(payload) > 3 or payload[1] not in BOOK_FREQUENCIES or level not in BOOK_LEVELS:
            raise _Refused(BAD_ARGUMENT, "Invalid argument provided")
        return [(_pair(market, payload[0]), level)]

    def market_frames(self, session: SimSession, symbol_market: SymbolMarket, step: MarketStep,
                      corrupt_checksum: bool = False) -> list[Any]:
        """Book deltas, trades, the ticker and candles this socket subscribed for the step's symbol. Gate's books
        carry no checksum, so `corrupt_checksum` changes nothing."""
        topics = session.state.get("public")
        if not topics:
            return []
        market = session.market
        pair = self.raw_symbol(market, symbol_market.symbol)
        decimal = session.request.headers.get(SIZE_DECIMAL) == "1"
        frames: list[Any] = []
        books = sorted(key for key in topics["book"] if key[0] == pair)
        resend: set = session.state.setdefault("obu_resend", set())
        if step.book is None and market is Market.SPOT:
            # A change the server lost: Gate "may resend full depth updates", and does here with the next push
            # (ccxt checks no spot.obu continuity: a delta skipping ids would be applied as if nothing was missed).
            resend.update(books)
        elif step.book is not None:
            for key in books:
                if key in resend:
                    resend.discard(key)
                    frames.append(self._obu_full(symbol_market, *key))
                else:
                    frames.append(self._book_delta(market, pair, key[1], step.book, step.time, decimal))
        if step.trades and pair in topics["trades"]:
            frames += self._trade_frames(market, pair, step, decimal)
        if pair in topics["tickers"]:
            frames.append(self._ticker_frame(market, pair, symbol_market))
        frames += [self._candle_frame(market, pair, interval, symbol_market, decimal)
                   for interval, candle_pair in sorted(topics["candles"]) if candle_pair == pair]
        return frames

    @staticmethod
    def _public_update(channel: str, result: Any) -> dict:
        now = now_ms()
        return {"time": now // 1000, "time_ms": now, "channel": channel, "event": "update", "result": result}

    @staticmethod
    def _obu(result: dict) -> dict:
        """A spot.obu push (Gate's carry `time_ms` but no `time`)."""
        return {"channel": "spot.obu", "result": result, "time_ms": now_ms(), "event": "update"}

    def _obu_full(self, symbol_market: SymbolMarket, pair: str, level: str) -> dict:
        bids, asks = symbol_market.book(int(level))
        return self._obu({"t": symbol_market.time, "full": True, "s": f"ob.{pair}.{level}", "u": symbol_market.seq,
                          "b": _spot_levels(bids), "a": _spot_levels(asks)})

    def _book_delta(self, market: Market, pair: str, level: str, change: BookChange, time: int,
                    decimal: bool) -> dict:
        if market is Market.SPOT:
            return self._obu({"t": time, "s": f"ob.{pair}.{level}", "U": change.first_seq, "u": change.seq,
                              "b": _spot_levels(change.bids), "a": _spot_levels(change.asks)})
        return self._public_update("futures.order_book_update", {
            "t": time, "s": pair, "U": change.first_seq, "u": change.seq,
            "b": _futures_levels(pair, change.bids, decimal), "a": _futures_levels(pair, change.asks, decimal),
            "l": level,
        })

    def _trade_frames(self, market: Market, pair: str, step: MarketStep, decimal: bool) -> list[dict]:
        """Spot: one push per trade (its taker's side); futures: one push listing them (size < 0: a selling taker)."""
        if market is Market.SPOT:
            return [self._public_update("spot.trades", {
                "id": t.trade_id, "id_market": t.trade_id, "create_time": t.time // 1000,
                "create_time_ms": f"{t.time}.0", "side": t.side.value, "currency_pair": pair,
                "amount": decimal_text(t.amount), "price": decimal_text(t.price), "range": f"{t.trade_id}-{t.trade_id}",
            }) for t in step.trades]
        return [self._public_update("futures.trades", [{
            "size": _contracts(_size(pair, t.side, t.amount), decimal), "id": t.trade_id,
            "create_time": t.time // 1000, "create_time_ms": t.time, "price": decimal_text(t.price), "contract": pair,
            "is_internal": False,
        } for t in step.trades])]

    def _ticker_frame(self, market: Market, pair: str, m: SymbolMarket) -> dict:
        if market is Market.SPOT:
            return self._public_update("spot.tickers", {
                "currency_pair": pair, "last": decimal_text(m.last), "lowest_ask": decimal_text(m.best_ask()[0]),
                "highest_bid": decimal_text(m.best_bid()[0]), "change_percentage": _percent(m.last, m.open, 4),
                "base_volume": decimal_text(m.volume), "quote_volume": decimal_text(m.quote_volume),
                "high_24h": decimal_text(m.high), "low_24h": decimal_text(m.low),
            })
        # The futures ticker has no best bid / ask. The simulator keeps no mark or index price, funding or open
        # interest: mark = index = last, the others 0. volume_24h counts contracts, _base coins, _quote/_settle USDT.
        last = decimal_text(m.last)
        return self._public_update("futures.tickers", [{
            "contract": pair, "last": last, "change_percentage": _percent(m.last, m.open, 2), "funding_rate": "0",
            "funding_rate_indicative": "0", "mark_price": last, "index_price": last, "total_size": "0",
            "volume_24h": _contracts(_size(pair, Side.BUY, m.volume), True), "volume_24h_base": decimal_text(m.volume),
            "volume_24h_quote": decimal_text(m.quote_volume), "volume_24h_settle": decimal_text(m.quote_volume),
            "low_24h": decimal_text(m.low), "high_24h": decimal_text(m.high),
        }])

    def _candle_frame(self, market: Market, pair: str, interval: str, m: SymbolMarket, decimal: bool) -> dict:
        """The current bar. Spot `v` is the quote volume ("total volume") and `a` the base amount; futures `v`
        counts contracts, and `a` is written as the base amount."""
        bar = m.candle(interval)
        row = {"c": decimal_text(bar.close), "h": decimal_text(bar.high), "l": decimal_text(bar.low),
               "o": decimal_text(bar.open), "n": f"{interval}_{pair}", "a": decimal_text(bar.volume)}
        if market is Market.SPOT:
            return self._public_update("spot.candlesticks", {
                "t": str(bar.start // 1000), "v": decimal_text(bar.quote_volume), **row})
        return self._public_update("futures.candlesticks", [{
            "t": bar.start // 1000, "v": _contracts(_size(pair, Side.BUY, bar.volume), decimal), **row}])

    async def _futures_book(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """`GET /futures/usdt/order_book`: contract, limit (default 10), with_id (`id`: the book's sequence, which
        the order_book_update deltas continue). `current` / `update` are seconds with ms decimals."""
        params = request.query
        contract = params.get("contract")
        if not contract:
            return _rest_error(400, "MISSING_REQUIRED_PARAM", "Missing required parameter: contract")
        if not _listed(market, contract):
            return _rest_error(400, "CONTRACT_NOT_FOUND", "Contract not found")
        try:
            limit = _int_params(params, {"limit": (10, 1, 300)})["limit"]
        except ValueError as exc:
            return _bad_param(str(exc), params[str(exc)])
        symbol_market = sim.market(self.exchange, market, _unified(market, contract))
        bids, asks = symbol_market.book(limit)
        decimal = request.headers.get(SIZE_DECIMAL) == "1"
        body: dict[str, Any] = {"id": symbol_market.seq} if params.get("with_id", "").lower() == "true" else {}
        body.update(current=_seconds(now_ms()), update=_seconds(symbol_market.time),
                    asks=_futures_levels(contract, asks, decimal), bids=_futures_levels(contract, bids, decimal))
        return web.Response(text=json_numbers(body), content_type="application/json")

    # frames ------------------------------------------------------------------------------------------------------
    def order_frames(self, session: SimSession, order: SimOrder) -> list[Any]:
        """The order's row on `*.orders`. A price order (TP/SL) is not an order until it fires: cancelled before
        that, it never shows there (Gate tells of price orders on `futures.autoorders`, which is not served)."""
        orders, _ = _CHANNELS[session.market]
        raw = self.raw_symbol(session.market, order.symbol)
        if not self._wants(session, orders, raw):
            return []
        if self._unfired(session.sim, session.market, order):
            return []
        return [self._frame(orders, self._order_row(session, order, raw))]

    def _unfired(self, sim: Simulator, market: Market, order: SimOrder | None) -> bool:
        """A price order that has not fired (waiting, or cancelled before it did): no order yet, for `*.orders` and
        the order endpoints alike (it is reached by the price-order endpoints alone)."""
        if order is None or order.trigger_price is None:
            return False
        waiting = any(o is order for o in sim.orders.conditional.get((self.exchange, market), []))
        return waiting or (order.status is OrderStatus.CANCELED and not order.filled)

    def fill_frames(self, session: SimSession, order: SimOrder, fill: SimFill) -> list[Any]:
        orders, trades = _CHANNELS[session.market]
        raw = self.raw_symbol(session.market, order.symbol)
        frames = []
        if self._wants(session, trades, raw):
            frames.append(self._frame(trades, self._trade_row(session.market, fill, raw)))
        if self._wants(session, orders, raw):
            frames.append(self._frame(orders, self._order_row(session, order, raw)))
        return frames

    @staticmethod
    def _frame(channel: str, *rows: dict) -> str:
        now = now_ms()
        return json_numbers({"time": now // 1000, "time_ms": now, "channel": channel, "event": "update",
                             "result": list(rows)})

    @staticmethod
    def _text(market: Market, client_order_id: str | None) -> str:
        if not client_order_id:
            return _GATE_TEXT[market]
        return client_order_id if client_order_id.startswith(USER_TEXT) else USER_TEXT + client_order_id

    def _order_row(self, session: SimSession, order: SimOrder, raw: str) -> dict:
        """A spot.orders / futures.orders row. Market orders carry price 0 and tif ioc; a spot market buy's amount
        and left are quote (what it was given to spend, what it has not spent), as Gate writes them."""
        finished = order.status not in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
        finish_as = {OrderStatus.FILLED: "filled", OrderStatus.EXPIRED: "ioc"}.get(order.status, "cancelled")
        market_order = order.order_type == "market"
        tif = "ioc" if market_order else _TIFS[order.time_in_force]
        price = Decimal(0) if market_order else order.price
        if session.market is Market.SPOT:
            fee = sum((f.fee for f in session.ledger.fills if f.order_id == order.order_id), Decimal(0))
            quote = order.symbol.split("/")[1]
            amount, left = self._spot_amounts(order)
            moved = order.filled or order.updated != order.created
            return {
                "id": order.order_id, "text": self._text(Market.SPOT, order.client_order_id),
                "create_time": str(order.created // 1000), "update_time": str(order.updated // 1000),
                "currency_pair": raw, "type": order.order_type, "account": "spot", "side": order.side.value,
                "amount": decimal_text(amount), "price": decimal_text(price), "time_in_force": tif,
                "left": decimal_text(left), "filled_total": decimal_text(order.filled_cost),
                "avg_deal_price": decimal_text(order.average), "fee": decimal_text(fee), "fee_currency": quote,
                "point_fee": "0", "gt_fee": "0", "rebated_fee": "0", "rebated_fee_currency": quote,
                "create_time_ms": str(order.created), "update_time_ms": str(order.updated), "user": self.user_id,
                "event": "finish" if finished else ("update" if moved else "put"), "stp_id": 0,
                "stp_act": "-", "finish_as": finish_as if finished else "open", "biz_info": "-", "amend_text": "-",
            }
        row = {
            "contract": raw, "create_time": order.created // 1000, "create_time_ms": order.created,
            "fill_price": order.average, "finish_as": finish_as if finished else "_update" if order.filled else "_new",
            "iceberg": 0, "id": int(order.order_id), "is_close": False, "is_liq": False,
            "is_reduce_only": order.reduce_only, "left": _size(raw, order.side, order.remaining), "mkfr": MAKER_FEE,
            "price": price, "refr": 0, "refu": 0, "size": _size(raw, order.side, order.amount),
            "status": "finished" if finished else "open", "text": self._text(Market.FUTURE, order.client_order_id),
            "tif": tif, "tkfr": TAKER_FEE, "user": str(self.user_id), "update_id": 1, "update_time": order.updated,
            "stop_loss_price": "", "stop_profit_price": "",
        }
        if finished:  # REST docs: finish_time is "not returned if order is open"
            row.update(finish_time=order.updated // 1000, finish_time_ms=order.updated)
        return row

    def expected_trade(self, market: Market, fill: SimFill) -> dict[str, Any]:
        """Futures fills count contracts (`abs(size)`, what the stream and ccxt report), fees in the settle coin."""
        expected = super().expected_trade(market, fill)
        if market is Market.FUTURE:
            expected["amount"] = abs(_size(self.raw_symbol(market, fill.symbol), fill.side, fill.amount))
        return expected

    def _trade_row(self, market: Market, fill: SimFill, raw: str) -> dict:
        role = "maker" if fill.is_maker else "taker"
        if market is Market.SPOT:
            # Gate's create_time_ms has sub-millisecond digits ("1605176741123.456"); the ms are the fill's time.
            return {
                "id": int(fill.trade_id), "user_id": self.user_id, "order_id": fill.order_id, "currency_pair": raw,
                "create_time": fill.time // 1000, "create_time_ms": f"{fill.time}.{int(fill.trade_id) % 1000:03d}",
                "side": fill.side.value, "amount": decimal_text(fill.amount), "role": role,
                "price": decimal_text(fill.price), "fee": decimal_text(fill.fee), "fee_currency": fill.fee_currency,
                "point_fee": "0", "gt_fee": "0", "text": self._text(market, fill.client_order_id),
                "id_market": int(fill.trade_id),
            }
        return {
            "id": fill.trade_id, "create_time": fill.time // 1000, "create_time_ms": fill.time, "contract": raw,
            "order_id": fill.order_id, "size": _size(raw, fill.side, fill.amount), "price": decimal_text(fill.price),
            "role": role, "text": self._text(market, fill.client_order_id), "fee": fill.fee, "point_fee": 0,
        }

    # account state ---------------------------------------------------------------------------------------------------
    def account_frames(self, session: SimSession, account: SimAccount, assets: list[str],
                       symbols: list[str]) -> list[Any]:
        """spot.balances: one row per coin moved (absolute figures, what moved and why); futures.balances: the
        wallet after the fill's realized PnL (a `pnl` row, when it closed some) and after its fee (a `fee` row);
        futures.positions: one row per position moved, in contracts."""
        if session.public:
            return []
        if session.market is Market.SPOT:
            if not assets or not self._wants(session, "spot.balances", ALL):
                return []
            return [self._frame("spot.balances", *(self._spot_balance_row(account, asset) for asset in assets))]
        frames = []
        if assets and self._wants(session, "futures.balances", ALL):
            fill = next((f for f in reversed(session.ledger.fills) if f.symbol in symbols), None)
            rows = [row for asset in assets for row in self._futures_balance_rows(account, asset, fill)]
            frames.append(self._frame("futures.balances", *rows))
        decimal = session.request.headers.get(SIZE_DECIMAL) == "1"
        rows = [self._position_row(account, symbol, decimal) for symbol in symbols
                if self._wants(session, "futures.positions", self.raw_symbol(Market.FUTURE, symbol))]
        if rows:
            frames.append(self._frame("futures.positions", *rows))
        return frames

    def _moved(self, account: SimAccount, asset: str) -> tuple[tuple[Decimal, Decimal], tuple[Decimal, Decimal]]:
        """(total, locked) of a coin before and after the change being pushed: every session told of one change
        gets the same figures; before the first push, `before` is what the account started with."""
        balance = account.balance(asset)
        after = (balance.total, balance.locked)
        key = (account.market, asset)
        shown = self._shown.get(key)
        if shown is not None and shown[1] == after:
            return shown
        if shown is None:
            start = SimAccount(account.exchange, account.market).balance(asset)
            before = (start.total, start.locked)
        else:
            before = shown[1]
        self._shown[key] = (before, after)
        return before, after

    def _spot_balance_row(self, account: SimAccount, asset: str) -> dict:
        (total_before, locked_before), (total, locked) = self._moved(account, asset)
        change, freeze_change = total - total_before, locked - locked_before
        # A fill moves the total; an order placed only locks more, a cancel only unlocks.
        kind = "order-match" if change else "order-create" if freeze_change > 0 else "order-update"
        return {
            "timestamp": str(account.updated // 1000), "timestamp_ms": str(account.updated),
            "user": str(self.user_id), "currency": asset, "change": decimal_text(change),
            "total": decimal_text(total), "available": decimal_text(account.balance(asset).free),
            "freeze": decimal_text(locked), "freeze_change": decimal_text(freeze_change), "change_type": kind,
        }

    def _futures_balance_rows(self, account: SimAccount, asset: str, fill: SimFill | None) -> list[dict]:
        (before, _), (total, _) = self._moved(account, asset)
        fee = fill.fee if fill is not None else Decimal(0)
        pnl = total - before + fee
        text = f"{self.raw_symbol(Market.FUTURE, fill.symbol)}:{fill.trade_id}" if fill is not None else "-"
        moves = ([("pnl", pnl)] if pnl else []) + [("fee", Decimal(0) - fee)]
        rows, balance = [], before
        for kind, change in moves:
            balance += change
            rows.append({
                "balance": balance, "change": change, "text": text, "time": account.updated // 1000,
                "time_ms": account.updated, "type": kind, "user": str(self.user_id), "currency": asset.lower(),
            })
        return rows

    def _position_update_id(self, symbol: str, state: tuple) -> int:
        """Gate's `update_id`: one more for each new state of the position (the same for every session)."""
        shown = self._position_ids.get(symbol)
        if shown is not None and shown[0] == state:
            return shown[1]
        update_id = shown[1] + 1 if shown is not None else 1
        self._position_ids[symbol] = (state, update_id)
        return update_id

    def _position_row(self, account: SimAccount, symbol: str, decimal: bool) -> dict:
        """A futures.positions row: signed contracts, isolated at the position's leverage (cross_leverage_limit 0)."""
        position = account.position(symbol)
        raw = self.raw_symbol(Market.FUTURE, symbol)
        contracts = _size(raw, Side.BUY, position.size)
        state = (position.size, position.entry_price, position.realized_pnl, position.updated)
        return {
            "contract": raw, "cross_leverage_limit": 0, "entry_price": position.entry_price,
            "history_pnl": position.realized_pnl, "history_point": 0, "last_close_pnl": 0,
            "leverage": position.leverage, "leverage_max": LEVERAGE_MAX,
            "liq_price": position.liquidation_price or Decimal(0), "maintenance_rate": MAINTENANCE_RATE,
            "margin": position.margin, "mode": "single", "realised_pnl": position.realized_pnl, "realised_point": 0,
            "risk_limit": RISK_LIMIT, "size": decimal_text(contracts) if decimal else contracts,
            "time": position.updated // 1000, "time_ms": position.updated, "user": str(self.user_id),
            "update_id": self._position_update_id(symbol, state),
        }

    # order entry: the WebSocket API -------------------------------------------------------------------------------
    async def _api_request(self, session: SimSession, message: dict) -> None:
        """`<topic>.login` (hex HMAC-SHA512 of "api\\n<channel>\\n\\n<timestamp>"), then `<topic>.order_place` /
        _cancel / _amend / _status with `payload {req_id, req_param, req_header {x-gate-exptime}}`. An order_place
        is answered with an ack (the request echoed), then the result; the others with the result alone. A request
        on a socket that has not logged in gets AUTHENTICATION_FAILED "Not login" (status 400, as ccxt captured it)."""
        received = time.time_ns() // 1000
        channel = message.get("channel") if isinstance(message.get("channel"), str) else ""
        topic, _, name = channel.partition(".")
        payload = message.get("payload") if isinstance(message.get("payload"), dict) else {}
        reply = _ApiReply(session, channel, payload.get("req_id"), received)
        if topic != _API_TOPIC[session.market] or (name != "login" and name not in _API_OPS):
            await reply.error(400, "INVALID_PARAM_VALUE", f"unknown channel {channel}")
            return
        if name == "login":
            await self._api_login(session, channel, payload, reply)
            return
        if not session.state.get("api_login"):
            await reply.error(400, "AUTHENTICATION_FAILED", "Not login")
            return
        op = _API_OPS[name]
        time_s = message.get("time")
        if type(time_s) is not int or abs(now_ms() // 1000 - time_s) > TIME_WINDOW_S:
            await reply.error(400, *REQUEST_EXPIRED)
            return
        valid_until = (time_s + TIME_WINDOW_S) * 1000
        req_header = payload.get("req_header") if isinstance(payload.get("req_header"), dict) else {}
        try:
            if req_header.get("x-gate-exptime") is not None:
                valid_until = min(valid_until, int(str(req_header["x-gate-exptime"])))
            request = self._sim_request(session.sim, session.market, op, payload.get("req_param"), valid_until,
                                        decimal_size=False)
        except ValueError:
            await reply.error(400, "INVALID_PARAM_VALUE", "Invalid request header x-gate-exptime")
            return
        except _Refused as refusal:
            await reply.error(400, "INVALID_PARAM_VALUE", refusal.message)
            return

        if op != "place" and self._unfired(session.sim, session.market, session.sim.orders.find(
                self.exchange, session.market, order_id=request.order_id, client_order_id=request.client_order_id)):
            await reply.error(404, "ORDER_NOT_FOUND", "Order not found")
            return

        async def answer(result: SimResult) -> None:
            if op == "place":
                await reply.ack(payload)
            status, body = self._order_answer(session.sim, session.market, op, request, result, decimal_size=False)
            if status == 200:
                await reply.result(body)
            else:
                await reply.error(status, body["label"], body["message"])

        session.sim.orders.submit(self.exchange, session.market, request, answer, path="ws",
                                  transport=session.request.transport)

    async def _api_login(self, session: SimSession, channel: str, payload: dict, reply: _ApiReply) -> None:
        creds = session.credentials
        stamp, signature = payload.get("timestamp"), payload.get("signature")
        if isinstance(signature, str):
            self.secrets_seen.add(signature)
        if session.sim.orders.login_refused(self.exchange, session.market) or payload.get("api_key") != creds.api_key:
            await reply.error(401, *INVALID_KEY)
            return
        try:
            skew = abs(now_ms() // 1000 - int(str(stamp)))
        except ValueError:
            skew = None
        if skew is None or skew > TIME_WINDOW_S:
            await reply.error(401, *REQUEST_EXPIRED)
            return
        # the docs' formula, computed here: an oracle does not borrow the client's signing
        expected = hmac.new(creds.secret.encode(), f"api\n{channel}\n\n{stamp}".encode(), hashlib.sha512).hexdigest()
        if not isinstance(signature, str) or not hmac.compare_digest(signature, expected):
            await reply.error(401, *INVALID_SIGNATURE)
            return
        session.state["api_login"] = True
        await reply.result({"api_key": creds.api_key, "uid": str(self.user_id)})

    # order entry: reading a request -------------------------------------------------------------------------------
    def _sim_request(self, sim: Simulator, market: Market, op: str, param: Any, valid_until: int, *,
                     decimal_size: bool, path_id: str | None = None) -> SimRequest:
        """Gate's order model (a `req_param`, a REST body and path) as the engine's request; _Refused for a bad one.
        Cancels, amends and status lookups name the order by id or by `t-` text (then: its newest order)."""
        if not isinstance(param, dict):
            raise _Refused(BAD_ARGUMENT, "req_param must be an object")
        pair = param.get("currency_pair") if market is Market.SPOT else param.get("contract")
        if (market is Market.SPOT or op == "place") and (not isinstance(pair, str) or not _listed(market, pair)):
            raise _Refused(BAD_ARGUMENT, f"Invalid {'currency_pair' if market is Market.SPOT else 'contract'} {pair}")
        if op != "place":
            key = path_id if path_id is not None else param.get("order_id")
            if not isinstance(key, (str, int)) or isinstance(key, bool) or str(key) == "":
                raise _Refused(BAD_ARGUMENT, "order_id is required")
            key = str(key)
            order_id, coid = (None, key[len(USER_TEXT):]) if key.startswith(USER_TEXT) else (key, None)
            amount = price = None
            if op == "amend":
                price = _positive(param.get("price"), "price", allow_none=True)
                if market is Market.SPOT:
                    amount = _positive(param.get("amount"), "amount", allow_none=True)
                elif param.get("size") is not None:
                    size = _whole(param.get("size"), decimal_size)
                    order = sim.orders.find(self.exchange, market, order_id=order_id, client_order_id=coid)
                    if order is not None and size and (size > 0) != (order.side is Side.BUY):
                        raise _Refused(BAD_ARGUMENT, "size must keep the order's side")
                    raw = self.raw_symbol(market, order.symbol) if order is not None else ""
                    amount = _base_of(raw, size) if order is not None else Decimal(abs(size))
                if amount is None and price is None:
                    raise _Refused(BAD_ARGUMENT, "amount or price must be set")
            symbol = _unified(market, pair) if isinstance(pair, str) and pair else ""
            return SimRequest(op=op, symbol=symbol, order_id=order_id, client_order_id=coid, amount=amount,
                              price=price, valid_until=valid_until)
        coid = self._client_id(param.get("text"))
        symbol = _unified(market, pair)
        if market is Market.SPOT:
            kind, side = param.get("type", "limit"), _SIDE_OF.get(param.get("side"))
            tif = param.get("time_in_force", "gtc")
            if kind not in ("limit", "market") or side is None or tif not in _KINDS:
                raise _Refused(BAD_ARGUMENT, "Invalid type, side or time_in_force")
            amount = _positive(param.get("amount"), "amount")
            if kind == "limit":
                return SimRequest(op="place", symbol=symbol, client_order_id=coid, side=side, amount=amount,
                                  price=_positive(param.get("price"), "price"), order_type=_KINDS[tif],
                                  valid_until=valid_until)
            if tif != "ioc":
                raise _Refused(BAD_ARGUMENT, "a market order takes time_in_force ioc")
            if side is Side.BUY:  # the amount is the quote to spend: base bought at the best ask
                quote = amount
                amount = (quote / sim.market(self.exchange, market, symbol).best_ask()[0]).quantize(
                    _BASE_STEP, rounding=ROUND_DOWN)
                if amount <= 0:
                    raise _Refused(BAD_ARGUMENT, "amount too small")
                self._pending_quotes[(market, symbol, coid, amount)] = quote
            return SimRequest(op="place", symbol=symbol, client_order_id=coid, side=side, amount=amount,
                              order_type="market", valid_until=valid_until)
        size = _whole(param.get("size"), decimal_size)
        price = _positive(param.get("price"), "price", allow_zero=True)
        tif = param.get("tif", "gtc")
        if size == 0 or tif not in _KINDS or (price == 0 and tif != "ioc"):
            raise _Refused(BAD_ARGUMENT, "Invalid size or tif (size is not 0; a market order, price 0, takes ioc)")
        return SimRequest(op="place", symbol=symbol, client_order_id=coid, side=Side.BUY if size > 0 else Side.SELL,
                          amount=_base_of(pair, size), price=None if price == 0 else price,
                          order_type="market" if price == 0 else _KINDS[tif],
                          reduce_only=param.get("reduce_only") is True, valid_until=valid_until)

    @staticmethod
    def _client_id(text: Any) -> str | None:
        """The client id a user text carries (`t-` + at most 28 of [0-9A-Za-z_.-]); _Refused for a bad text."""
        if text in (None, ""):
            return None
        body = text[len(USER_TEXT):] if isinstance(text, str) and text.startswith(USER_TEXT) else ""
        if not body or len(body.encode()) > 28 or not _TEXT.fullmatch(body):
            raise _Refused(BAD_ARGUMENT, "Invalid text: t- then at most 28 of 0-9 A-Z a-z _ . -")
        return body

    # order entry: answers ---------------------------------------------------------------------------------------------
    def _order_answer(self, sim: Simulator, market: Market, op: str, request: SimRequest, result: SimResult, *,
                      decimal_size: bool) -> tuple[int, dict]:
        """(status, body) answering a request: the order row (200), or Gate's error body."""
        by_text = op != "place" and request.order_id is None
        if result.kind == "ok":
            order = result.order
            if op == "query" and by_text and not self._text_findable(market, order):
                return 404, {"label": "CLIENT_ID_NOT_FOUND",
                             "message": f"Order with client ID {USER_TEXT}{request.client_order_id} not found"}
            return 200, self._api_order_row(sim, market, order, decimal_size)
        if result.kind == "not_found":
            if by_text:
                return 404, {"label": "CLIENT_ID_NOT_FOUND",
                             "message": f"Order with client ID {USER_TEXT}{request.client_order_id} not found"}
            return 404, {"label": "ORDER_NOT_FOUND", "message": "Order not found"}
        if result.kind == "unknown":
            return 500, {"label": "SERVER_ERROR", "message": "Internal server error (execution status unknown)"}
        order = result.order
        if result.reason == "not_open" and order is not None:
            label = "ORDER_FINISHED" if market is Market.FUTURE else (
                "ORDER_CLOSED" if order.status is OrderStatus.FILLED else "ORDER_CANCELLED")
        else:
            label = {"would_cross": "POC_FILL_IMMEDIATELY" if market is Market.SPOT else "ORDER_POC_IMMEDIATE",
                     "expired": "REQUEST_EXPIRED",
                     "insufficient": "BALANCE_NOT_ENOUGH" if market is Market.SPOT else "INSUFFICIENT_AVAILABLE",
                     }.get(result.reason, "INVALID_PARAM_VALUE")
        return 400, {"label": label, "message": result.message}

    def _text_findable(self, market: Market, order: SimOrder) -> bool:
        """A lookup by text finds an order while it rests and for a while after it ended (spot 1 h, futures 60 s),
        never one the venue has forgotten (`forgotten_orders`: gateapi-go#41's misses)."""
        if order.order_id in self.forgotten_orders:
            return False
        return not order.status.is_terminal or now_ms() - order.updated <= _TEXT_LOOKUP_MS[market]

    def _quote(self, market: Market, order: SimOrder) -> Decimal | None:
        """The quote a spot market buy was given to spend (None for any other order)."""
        if order.order_id not in self._quote_of:
            key = (market, order.symbol, order.client_order_id, order.amount)
            if order.order_type != "market" or order.side is not Side.BUY or key not in self._pending_quotes:
                return None
            self._quote_of[order.order_id] = self._pending_quotes.pop(key)
        return self._quote_of[order.order_id]

    def _spot_amounts(self, order: SimOrder) -> tuple[Decimal, Decimal]:
        """(amount, left) as Gate writes a spot order: base units, except a market buy's (quote given, quote left)."""
        quote = self._quote(Market.SPOT, order)
        if quote is None:
            return order.amount, order.remaining
        return quote, max(quote - order.filled_cost, Decimal(0))

    def _api_order_row(self, sim: Simulator, market: Market, order: SimOrder, decimal_size: bool) -> dict:
        """An order in Gate's REST order model (the WebSocket API's results carry the same)."""
        raw = self.raw_symbol(market, order.symbol)
        ended = order.status.is_terminal
        finish_as = {OrderStatus.FILLED: "filled", OrderStatus.EXPIRED: "ioc"}.get(order.status, "cancelled")
        market_order = order.order_type == "market"
        tif = "ioc" if market_order else _TIFS[order.time_in_force]
        price = "0" if market_order else decimal_text(order.price)
        if market is Market.SPOT:
            fee = sum((f.fee for f in sim.ledger(self.exchange, market).fills if f.order_id == order.order_id),
                      Decimal(0))
            amount, left = self._spot_amounts(order)
            quote = order.symbol.split("/")[1]
            return {
                "id": order.order_id, "text": self._text(market, order.client_order_id), "amend_text": "-",
                "create_time": str(order.created // 1000), "update_time": str(order.updated // 1000),
                "create_time_ms": order.created, "update_time_ms": order.updated,
                "status": ("closed" if order.status is OrderStatus.FILLED else "cancelled") if ended else "open",
                "currency_pair": raw, "type": order.order_type, "account": "spot", "side": order.side.value,
                "amount": decimal_text(amount), "price": price, "time_in_force": tif, "iceberg": "0",
                "left": decimal_text(left), "filled_amount": decimal_text(order.filled),
                "fill_price": decimal_text(order.filled_cost), "filled_total": decimal_text(order.filled_cost),
                "avg_deal_price": decimal_text(order.average), "fee": decimal_text(fee), "fee_currency": quote,
                "point_fee": "0", "gt_fee": "0", "gt_maker_fee": "0", "gt_taker_fee": "0", "gt_discount": False,
                "rebated_fee": "0", "rebated_fee_currency": quote, "stp_id": 0, "stp_act": "-",
                "finish_as": finish_as if ended else "open",
            }
        row: dict[str, Any] = {
            "id": int(order.order_id), "user": self.user_id, "create_time": _seconds(order.created),
            "status": "finished" if ended else "open", "contract": raw,
            "size": _contract_count(_size(raw, order.side, order.amount), decimal_size), "iceberg": 0,
            "price": price, "close": False, "is_close": False, "reduce_only": order.reduce_only,
            "is_reduce_only": order.reduce_only, "is_liq": False, "tif": tif,
            "left": _contract_count(_size(raw, order.side, order.remaining), decimal_size),
            "fill_price": decimal_text(order.average), "text": self._text(market, order.client_order_id),
            "tkfr": decimal_text(TAKER_FEE), "mkfr": decimal_text(MAKER_FEE), "refu": 0, "auto_size": "",
            "stp_id": 0, "stp_act": "-", "amend_text": "-",
        }
        if ended:
            row.update(finish_time=_seconds(order.updated), finish_as=finish_as)
        return row

    # order entry: REST ---------------------------------------------------------------------------------------------
    def _order_routes(self, market: Market) -> list:
        if market is Market.SPOT:
            base = "/spot/orders"
            return [("POST", base, self._rest_place), ("GET", base, self._rest_orders),
                    ("GET", base + "/{order_id}", self._rest_order_op), ("DELETE", base + "/{order_id}",
                                                                         self._rest_order_op),
                    ("PATCH", base + "/{order_id}", self._rest_order_op)]
        base, price_orders = "/futures/usdt/orders", "/futures/usdt/price_orders"
        return [("POST", base, self._rest_place), ("GET", base, self._rest_orders),
                ("GET", base + "/{order_id}", self._rest_order_op), ("DELETE", base + "/{order_id}",
                                                                     self._rest_order_op),
                ("PUT", base + "/{order_id}", self._rest_order_op),
                ("POST", price_orders, self._rest_price_place), ("GET", price_orders, self._rest_price_orders),
                ("GET", price_orders + "/{order_id}", self._rest_price_op),
                ("DELETE", price_orders + "/{order_id}", self._rest_price_op)]

    async def _rest_body(self, request: web.Request) -> Any:
        text_ = await request.text()
        try:
            return json.loads(text_, parse_float=Decimal) if text_ else {}
        except ValueError:
            raise _Refused(BAD_ARGUMENT, "Invalid request body") from None

    @staticmethod
    def _valid_until(request: web.Request) -> int:
        """A REST request is executed no later than 60 s after its signed Timestamp (or its x-gate-exptime)."""
        until = int(Decimal(request.headers["Timestamp"]).scaleb(3)) + TIME_WINDOW_S * 1000
        expiry = request.headers.get("x-gate-exptime")
        return min(until, int(expiry)) if expiry and expiry.isdigit() else until

    async def _rest_answer(self, sim: Simulator, market: Market, op: str, request: web.Request,
                           sim_request: SimRequest) -> web.StreamResponse:
        result = await sim.orders.call(self.exchange, market, sim_request, transport=request.transport)
        if result is None:  # the fault cut the connection: this answer goes nowhere
            return web.Response(status=502, text="connection cut (simulated)")
        decimal = request.headers.get(SIZE_DECIMAL) == "1"
        status, body = self._order_answer(sim, market, op, sim_request, result, decimal_size=decimal)
        if status != 200:
            return _rest_error(status, body["label"], body["message"])
        return web.Response(status=201 if op == "place" else 200, text=json_numbers(body),
                            content_type="application/json")

    async def _rest_place(self, sim: Simulator, market: Market, request: web.Request) -> web.StreamResponse:
        """`POST /spot/orders`, `POST /futures/usdt/orders`: the WebSocket API's order model as the body."""
        refusal = await self._refusal(sim, market, request)
        if refusal is not None:
            return refusal
        try:
            sim_request = self._sim_request(sim, market, "place", await self._rest_body(request),
                                            self._valid_until(request),
                                            decimal_size=request.headers.get(SIZE_DECIMAL) == "1")
        except _Refused as refused:
            return _rest_error(400, "INVALID_PARAM_VALUE", refused.message)
        return await self._rest_answer(sim, market, "place", request, sim_request)

    async def _rest_order_op(self, sim: Simulator, market: Market, request: web.Request) -> web.StreamResponse:
        """GET (status), DELETE (cancel), PATCH / PUT (amend) `…/orders/{order_id}`: by id or by `t-` text."""
        refusal = await self._refusal(sim, market, request)
        if refusal is not None:
            return refusal
        op = {"GET": "query", "DELETE": "cancel"}.get(request.method, "amend")
        try:
            param = dict(request.query)
            if op == "amend":
                param.update(await self._rest_body(request))
            sim_request = self._sim_request(sim, market, op, param, self._valid_until(request),
                                            decimal_size=request.headers.get(SIZE_DECIMAL) == "1",
                                            path_id=request.match_info["order_id"])
        except _Refused as refused:
            return _rest_error(400, "INVALID_PARAM_VALUE", refused.message)
        if self._unfired(sim, market, sim.orders.find(self.exchange, market, order_id=sim_request.order_id,
                                                      client_order_id=sim_request.client_order_id)):
            return _rest_error(404, "ORDER_NOT_FOUND", "Order not found")
        return await self._rest_answer(sim, market, op, request, sim_request)

    async def _rest_orders(self, sim: Simulator, market: Market, request: web.Request) -> web.StreamResponse:
        """`GET /spot/orders` (currency_pair, status open | finished, page, limit) and `GET /futures/usdt/orders`
        (contract, status, limit, offset): the pair's orders, newest first (finished: by when they ended). A price
        order that has not fired is not among them."""
        refusal = await self._refusal(sim, market, request)
        if refusal is not None:
            return refusal
        params = request.query
        bounds = {"limit": (100, 1, 1000), "page": (1, 1, None), "offset": (0, 0, None)}
        try:
            numbers = _int_params(params, bounds)
        except ValueError as exc:
            return _bad_param(str(exc), params[str(exc)])
        status = params.get("status")
        pair = params.get("currency_pair" if market is Market.SPOT else "contract")
        if status not in ("open", "finished"):
            return _bad_param("status", str(status))
        orders = [o for o in sim.ledger(self.exchange, market).orders.values()
                  if not self._unfired(sim, market, o) and (not pair or self.raw_symbol(market, o.symbol) == pair)
                  and o.status.is_terminal == (status == "finished")]
        orders.sort(key=lambda o: (o.updated if status == "finished" else o.created, int(o.order_id)), reverse=True)
        limit = numbers["limit"]
        start = (numbers["page"] - 1) * limit if market is Market.SPOT else numbers["offset"]
        decimal = request.headers.get(SIZE_DECIMAL) == "1"
        rows = [self._api_order_row(sim, market, o, decimal) for o in orders[start:start + limit]]
        return web.Response(text=json_numbers(rows), content_type="application/json")

    # order entry: futures price-triggered orders (TP/SL) ------------------------------------------------------------
    def _price_row(self, sim: Simulator, order: SimOrder, decimal: bool) -> dict:
        """A futures price order: `initial` (the order it fires: contracts, price 0 = market), `trigger` (price, rule
        1 >= / 2 <=), status open (waiting) / finished (finish_as succeeded: fired; cancelled)."""
        raw = self.raw_symbol(Market.FUTURE, order.symbol)
        waiting = any(o is order for o in sim.orders.conditional.get((self.exchange, Market.FUTURE), []))
        rises = (order.trigger == "take_profit") == (order.side is Side.SELL)
        row: dict[str, Any] = {
            "id": int(order.order_id), "user": self.user_id,
            "initial": {"contract": raw, "size": _contract_count(_size(raw, order.side, order.amount), decimal),
                        "price": "0", "tif": "ioc", "text": _GATE_TEXT[Market.FUTURE], "iceberg": 0,
                        "is_close": False, "is_reduce_only": order.reduce_only, "auto_size": ""},
            "trigger": {"strategy_type": 0, "price_type": 0, "price": decimal_text(order.trigger_price),
                        "rule": 1 if rises else 2, "expiration": 0},
            "create_time": _seconds(order.created), "status": "open" if waiting else "finished",
            "reason": "", "order_type": "",
        }
        if not waiting:
            fired = order.status is not OrderStatus.CANCELED
            row.update(finish_time=_seconds(order.updated), finish_as="succeeded" if fired else "cancelled",
                       trade_id=int(order.order_id) if fired else 0)
        return row

    async def _rest_price_place(self, sim: Simulator, market: Market, request: web.Request) -> web.StreamResponse:
        """`POST /futures/usdt/price_orders`: {initial {contract, size, price, tif, reduce_only}, trigger {price,
        rule}} → {"id"}. Price orders carry no client id (initial.text is where they came from)."""
        refusal = await self._refusal(sim, market, request)
        if refusal is not None:
            return refusal
        decimal = request.headers.get(SIZE_DECIMAL) == "1"
        try:
            body = await self._rest_body(request)
            initial, trigger = body.get("initial"), body.get("trigger")
            if not isinstance(initial, dict) or not isinstance(trigger, dict) or trigger.get("rule") not in _PRICE_RULE:
                raise _Refused(BAD_ARGUMENT, "initial and trigger (rule 1 or 2) are required")
            contract = initial.get("contract")
            if not isinstance(contract, str) or not _listed(market, contract):
                raise _Refused(BAD_ARGUMENT, f"Invalid contract {contract}")
            size = _whole(initial.get("size"), decimal)
            trigger_price = _positive(trigger.get("price"), "trigger.price")
            if size == 0 or _positive(initial.get("price"), "initial.price", allow_zero=True) != 0:
                raise _Refused(BAD_ARGUMENT, "a TP/SL here fires a market order (price 0) of a non-zero size")
        except _Refused as refused:
            return _rest_error(400, "INVALID_PARAM_VALUE", refused.message)
        side = Side.BUY if size > 0 else Side.SELL
        rises = trigger["rule"] == 1
        kind = "take_profit" if rises == (side is Side.SELL) else "stop_loss"
        sim_request = SimRequest(op="place", symbol=_unified(market, contract), side=side,
                                 amount=_base_of(contract, size), order_type="market",
                                 reduce_only=initial.get("reduce_only") is True, trigger_price=trigger_price,
                                 trigger=kind, valid_until=self._valid_until(request))
        result = await sim.orders.call(self.exchange, market, sim_request, transport=request.transport)
        if result is None:
            return web.Response(status=502, text="connection cut (simulated)")
        if result.kind != "ok":
            status, body = self._order_answer(sim, market, "place", sim_request, result, decimal_size=decimal)
            return _rest_error(status, body["label"], body["message"])
        return web.json_response({"id": int(result.order.order_id)}, status=201)

    async def _rest_price_op(self, sim: Simulator, market: Market, request: web.Request) -> web.StreamResponse:
        """GET / DELETE `/futures/usdt/price_orders/{order_id}`."""
        refusal = await self._refusal(sim, market, request)
        if refusal is not None:
            return refusal
        order_id = request.match_info["order_id"]
        order = sim.ledger(self.exchange, market).orders.get(order_id)
        if order is None or order.trigger_price is None or order_id in self.forgotten_orders:
            return _rest_error(404, "AUTO_ORDER_NOT_FOUND", "price order not found")
        if request.method == "DELETE":
            sim_request = SimRequest(op="cancel", symbol=order.symbol, order_id=order_id,
                                     valid_until=self._valid_until(request))
            result = await sim.orders.call(self.exchange, market, sim_request, transport=request.transport)
            if result is None:
                return web.Response(status=502, text="connection cut (simulated)")
            if result.kind != "ok":
                return _rest_error(400, "AUTO_ORDER_FINISHED", "price order already finished")
        decimal = request.headers.get(SIZE_DECIMAL) == "1"
        return web.Response(text=json_numbers(self._price_row(sim, order, decimal)), content_type="application/json")

    async def _rest_price_orders(self, sim: Simulator, market: Market, request: web.Request) -> web.StreamResponse:
        """`GET /futures/usdt/price_orders` (status open | finished, contract, limit, offset), newest first."""
        refusal = await self._refusal(sim, market, request)
        if refusal is not None:
            return refusal
        params = request.query
        try:
            numbers = _int_params(params, {"limit": (100, 1, 1000), "offset": (0, 0, None)})
        except ValueError as exc:
            return _bad_param(str(exc), params[str(exc)])
        status, contract = params.get("status"), params.get("contract")
        if status not in ("open", "finished"):
            return _bad_param("status", str(status))
        waiting = {id(o) for o in sim.orders.conditional.get((self.exchange, market), [])}
        orders = [o for o in sim.ledger(self.exchange, market).orders.values()
                  if o.trigger_price is not None and (id(o) in waiting) == (status == "open")
                  and (not contract or self.raw_symbol(market, o.symbol) == contract)]
        orders.sort(key=lambda o: int(o.order_id), reverse=True)
        decimal = request.headers.get(SIZE_DECIMAL) == "1"
        start = numbers["offset"]
        rows = [self._price_row(sim, o, decimal) for o in orders[start:start + numbers["limit"]]]
        return web.Response(text=json_numbers(rows), content_type="application/json")

    # REST ------------------------------------------------------------------------------------------------------------
    def rest_routes(self, market: Market) -> list:
        routes = [("GET", "/account/detail", self._account_detail), *self._order_routes(market)]
        if market is Market.SPOT:
            return routes + [("GET", "/spot/my_trades", self._spot_trades),
                             ("GET", "/spot/accounts", self._spot_accounts)]
        return routes + [
            ("GET", "/futures/usdt/my_trades", self._futures_trades),
            ("GET", "/futures/usdt/my_trades_timerange", self._futures_trades),
            ("GET", "/futures/usdt/accounts", self._futures_account),
            ("GET", "/futures/usdt/positions", self._futures_positions),
        ]

    async def _refusal(self, sim: Simulator, market: Market, request: web.Request) -> web.Response | None:
        """None for a well-signed request; else Gate's 401 answer.

        The signed path is the request's own path (what a client that signs its URL sends, as our stream does), or
        the live one, `/api/v4` + the path below the simulator's `/gate_<market>` mount (what ccxt signs whatever
        its base URL: `'/api/' + version + path`). Query: as sent, not URL-encoded (docs "Query String").
        """
        creds = sim.credentials_for(self.exchange)
        key, stamp, signature = (request.headers.get(h) for h in ("KEY", "Timestamp", "SIGN"))
        for name, value in (("KEY", key), ("Timestamp", stamp), ("SIGN", signature)):
            if not value:
                return _rest_error(401, "MISSING_REQUIRED_HEADER", f"Missing required header: {name}")
        if key != creds.api_key:
            return _rest_error(401, *INVALID_KEY)
        try:
            skew = abs(Decimal(now_ms()).scaleb(-3) - Decimal(stamp))
        except InvalidOperation:
            skew = None
        if skew is None or not skew.is_finite() or skew > TIME_WINDOW_S:
            return _rest_error(401, *REQUEST_EXPIRED)
        body = await request.text()
        path = request.rel_url.raw_path
        mount = f"/{self.exchange}_{market.value}"
        paths = (path, "/api/v4" + path.removeprefix(mount)) if path.startswith(mount + "/") else (path,)
        for signed_path in paths:
            expected = sign(creds.secret, rest_payload(request.method, signed_path, request.query_string, body, stamp))
            if hmac.compare_digest(expected, signature):
                return None
        return _rest_error(401, *INVALID_SIGNATURE)

    async def _account_detail(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        refusal = await self._refusal(sim, market, request)
        if refusal is not None:
            return refusal
        return web.json_response({
            "user_id": self.user_id, "ip_whitelist": [], "currency_pairs": [], "key": {"mode": 1}, "tier": 0,
            "tier_expire_time": "0001-01-01T00:00:00Z", "copy_trading_role": 0,
        })

    async def _spot_trades(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Newest first; no time given → the last 7 days; one bound → 7 days from it; a range over 30 days → 400."""
        refusal = await self._refusal(sim, market, request)
        if refusal is not None:
            return refusal
        params = request.query
        try:
            numbers = _int_params(params, {
                "limit": (100, 1, 1000), "page": (1, 1, None), "from": (None, 0, None), "to": (None, 0, None),
            })
        except ValueError as exc:
            return _bad_param(str(exc), params[str(exc)])
        limit, page, start, end = numbers["limit"], numbers["page"], numbers["from"], numbers["to"]
        pair, order_id = params.get("currency_pair"), params.get("order_id")
        if order_id and not pair:
            return _rest_error(400, "MISSING_REQUIRED_PARAM", "Missing required parameter: currency_pair")
        if start is None and end is None:
            end = now_ms() // 1000
        if start is None:
            start = end - 7 * DAY_S
        elif end is None:
            end = start + 7 * DAY_S
        if end < start or end - start > 30 * DAY_S:
            return _rest_error(400, "INVALID_PARAM_VALUE", "invalid time range")
        fills = [
            f for f in reversed(sim.ledger(self.exchange, market).fills)
            if (not pair or self.raw_symbol(market, f.symbol) == pair) and (not order_id or f.order_id == order_id)
            and start <= f.time // 1000 <= end
        ]
        rows = [self._spot_history_row(f) for f in fills[(page - 1) * limit:page * limit]]
        return web.json_response(rows)

    def _spot_history_row(self, fill: SimFill) -> dict:
        return {
            "id": fill.trade_id, "create_time": str(fill.time // 1000),
            "create_time_ms": f"{fill.time}.{int(fill.trade_id) % 1000:03d}",
            "currency_pair": self.raw_symbol(Market.SPOT, fill.symbol), "side": fill.side.value,
            "role": "maker" if fill.is_maker else "taker", "amount": decimal_text(fill.amount),
            "price": decimal_text(fill.price), "order_id": fill.order_id, "fee": decimal_text(fill.fee),
            "fee_currency": fill.fee_currency, "point_fee": "0", "gt_fee": "0", "amend_text": "-",
            "sequence_id": fill.trade_id, "text": self._text(Market.SPOT, fill.client_order_id),
        }

    async def _futures_trades(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """`my_trades`: contract, order, limit, offset, last_id (older than that id); `my_trades_timerange`:
        contract, from, to (seconds, inclusive), limit, offset, role. Newest first; X-Pagination-* headers."""
        refusal = await self._refusal(sim, market, request)
        if refusal is not None:
            return refusal
        timerange = request.path.endswith("_timerange")
        params = request.query
        bounds = {"limit": (100, 1, 1000), "offset": (0, 0, None)}
        for name in ("from", "to") if timerange else ("order", "last_id"):
            bounds[name] = (None, 0, None)
        try:
            numbers = _int_params(params, bounds)
        except ValueError as exc:
            return _bad_param(str(exc), params[str(exc)])
        limit, offset, start, end = numbers["limit"], numbers["offset"], numbers.get("from"), numbers.get("to")
        order, last_id = numbers.get("order"), numbers.get("last_id")
        contract, role = params.get("contract"), params.get("role") if timerange else None
        if timerange and end is None:
            end = now_ms() // 1000
        fills = [
            f for f in reversed(sim.ledger(self.exchange, market).fills)
            if (not contract or self.raw_symbol(market, f.symbol) == contract)
            and (order is None or f.order_id == str(order)) and (last_id is None or int(f.trade_id) < last_id)
            and (not role or role == ("maker" if f.is_maker else "taker"))
            and (start is None or f.time // 1000 >= start) and (end is None or f.time // 1000 <= end)
        ]
        decimal_size = request.headers.get("X-Gate-Size-Decimal") == "1"
        rows = [self._futures_history_row(f, timerange, decimal_size) for f in fills[offset:offset + limit]]
        headers = {"X-Pagination-Limit": str(limit), "X-Pagination-Offset": str(offset)}
        return web.Response(text=json_numbers(rows), content_type="application/json", headers=headers)

    def _futures_history_row(self, fill: SimFill, timerange: bool, decimal_size: bool) -> dict:
        raw = self.raw_symbol(Market.FUTURE, fill.symbol)
        size = _size(raw, fill.side, fill.amount)
        row: dict[str, Any] = {"trade_id": fill.trade_id} if timerange else {"id": int(fill.trade_id)}
        row.update({
            "create_time": _seconds(fill.time), "contract": raw, "order_id": fill.order_id,
            "size": decimal_text(size) if decimal_size else size, "close_size": 0, "price": decimal_text(fill.price),
            "text": self._text(Market.FUTURE, fill.client_order_id), "fee": decimal_text(fill.fee),
            "point_fee": "0", "role": "maker" if fill.is_maker else "taker",
        })
        return row

    async def _spot_accounts(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """`GET /spot/accounts` (what ccxt's fetch_balance calls for spot): every coin, or the one `currency`."""
        refusal = await self._refusal(sim, market, request)
        if refusal is not None:
            return refusal
        account = sim.account(self.exchange, market)
        currency = request.query.get("currency")
        assets = [currency.upper()] if currency else sorted(account.balances)
        rows = [{"currency": asset, "available": decimal_text(account.balance(asset).free),
                 "locked": decimal_text(account.balance(asset).locked), "update_id": account.updated}
                for asset in assets]
        return web.json_response(rows)

    async def _futures_account(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """`GET /futures/usdt/accounts` (ccxt's fetch_balance for swaps): `total` is the wallet without unrealized
        PnL, `available` the free part, `position_margin` the margin positions use; `history` adds up to total."""
        refusal = await self._refusal(sim, market, request)
        if refusal is not None:
            return refusal
        account = sim.account(self.exchange, market)
        wallet = account.balance(SETTLE)
        positions = list(account.positions.values())
        pnl = sum((p.realized_pnl for p in positions), Decimal(0))
        fees = Decimal(0) - sum((f.fee for f in sim.ledger(self.exchange, market).fills), Decimal(0))
        zero = "0"
        body = {
            "user": self.user_id, "currency": SETTLE, "total": decimal_text(wallet.total),
            "unrealised_pnl": decimal_text(sum((p.unrealized_pnl for p in positions), Decimal(0))),
            "position_margin": decimal_text(wallet.locked), "order_margin": zero,
            "available": decimal_text(wallet.free), "point": zero, "bonus": zero, "in_dual_mode": False,
            "enable_credit": False, "position_initial_margin": decimal_text(wallet.locked),
            "maintenance_margin": zero, "history": {
                "dnw": decimal_text(wallet.total - pnl - fees), "pnl": decimal_text(pnl), "fee": decimal_text(fees),
                "refr": zero, "fund": zero, "point_dnw": zero, "point_fee": zero, "point_refr": zero,
                "bonus_dnw": zero, "bonus_offset": zero,
            },
        }
        return web.json_response(body)

    async def _futures_positions(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """`GET /futures/usdt/positions` (ccxt's fetch_positions): every contract the account traded, flat ones
        too unless `holding=true`; limit / offset. Sizes are contracts (decimal text under X-Gate-Size-Decimal)."""
        refusal = await self._refusal(sim, market, request)
        if refusal is not None:
            return refusal
        params = request.query
        try:
            numbers = _int_params(params, {"limit": (100, 1, 1000), "offset": (0, 0, None)})
        except ValueError as exc:
            return _bad_param(str(exc), params[str(exc)])
        account = sim.account(self.exchange, market)
        holding = params.get("holding", "").lower() == "true"
        positions = [p for _, p in sorted(account.positions.items()) if p.size or not holding]
        decimal = request.headers.get(SIZE_DECIMAL) == "1"
        offset, limit = numbers["offset"], numbers["limit"]
        rows = [self._position_rest_row(p, decimal) for p in positions[offset:offset + limit]]
        return web.Response(text=json_numbers(rows), content_type="application/json")

    def _position_rest_row(self, position: SimPosition, decimal: bool) -> dict:
        raw = self.raw_symbol(Market.FUTURE, position.symbol)
        contracts = _size(raw, Side.BUY, position.size)
        realized, updated = decimal_text(position.realized_pnl), position.updated // 1000
        return {
            "user": self.user_id, "contract": raw, "size": decimal_text(contracts) if decimal else contracts,
            "leverage": decimal_text(position.leverage), "risk_limit": decimal_text(RISK_LIMIT),
            "leverage_max": decimal_text(LEVERAGE_MAX), "maintenance_rate": decimal_text(MAINTENANCE_RATE),
            "value": decimal_text(abs(position.size) * position.mark_price), "margin": decimal_text(position.margin),
            "entry_price": decimal_text(position.entry_price),
            "liq_price": decimal_text(position.liquidation_price or Decimal(0)),
            "mark_price": decimal_text(position.mark_price), "initial_margin": "0", "maintenance_margin": "0",
            "unrealised_pnl": decimal_text(position.unrealized_pnl), "realised_pnl": realized, "pnl_pnl": realized,
            "pnl_fund": "0", "pnl_fee": "0", "history_pnl": realized, "last_close_pnl": "0", "realised_point": "0",
            "history_point": "0", "adl_ranking": 5, "pending_orders": 0, "close_order": None, "mode": "single",
            "cross_leverage_limit": "0", "update_time": updated, "open_time": updated, "trade_max_size": "0",
        }


VENUE_CLASS = GateSim
