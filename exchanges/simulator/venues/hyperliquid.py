"""Hyperliquid perpetuals on the simulator: `userFills` / `orderUpdates` / `clearinghouseState` by address and the
public market feeds (`l2Book`, `trades`, `candle`, `activeAssetCtx`) on `/ws`, `POST /info` fill history and
account state.

Socket (`/hyperliquid_future/ws`): no login. `{"method": "subscribe", "subscription": {"type": "userFills",
"user": "0x…"}}` is acked with `{"channel": "subscriptionResponse", "data": <the request>}`; a userFills
subscription then gets its snapshot (`isSnapshot: true`, the account's recent fills). Only sockets
subscribed for the simulator's wallet get pushes. Malformed requests (bad address, unknown type) get
`{"channel": "error", "data": "Error parsing JSON into valid websocket request: <request>"}`, repeats
"Already subscribed: <subscription>", an 11th address "Cannot track more than 10 total users.";
`{"method": "ping"}` → `{"channel": "pong"}`; a socket silent for 60 s is closed.
REST: `POST /info` `userFills` (the 2000 most recent, newest first) and `userFillsByTime` (startTime ..
endTime inclusive, oldest first, at most 2000 rows; only the 10000 most recent fills exist); a body that
does not parse gets HTTP 422 "Failed to deserialize the JSON body into the target type".

Account state (the simulator's `SimAccount` of hyperliquid/future, for its wallet; any other address has
nothing): `{"type": "clearinghouseState", "user": "0x…"}` (`dex` "" or left out: the simulator lists the first
perp dex only, another dex does not parse) is acked, then the state follows at once and again after every fill,
always whole: `{"channel": "clearinghouseState", "data": {"dex": "", "user", "clearinghouseState": {…}}}`.
`POST /info` `clearinghouseState` answers the same inner object, `userAbstraction` (which ccxt's fetch_balance
asks first) "default": not a unified account, so the perp balance is this state. The state is the venue's view
of the account: accountValue is the wallet plus every position's unrealized PnL (at the position's mark price,
its last fill's), withdrawable that less the margin in use, the margin in use the account's `locked`
(|size| × entry / leverage, cross); positions open ones only, cross at the account's leverage, no funding.

Market data shares the socket (there is one path, so every session here is a public one and the plugin tells the
feeds apart by subscription type). `{"type": "l2Book" | "trades" | "activeAssetCtx", "coin": "BTC"}` and
`{"type": "candle", "coin": "BTC", "interval": "1m"}` are acked with the subscription as the venue re-serialises
it (`l2Book` with `nSigFigs` / `mantissa`, `candle` as type, interval, coin), then the feed's current state
follows at once: the book, the recent trades, the open bar, the asset context. A coin the venue does not list
gets `"Invalid subscription: <subscription>"`. Every step then pushes, to each subscriber:
- `l2Book`: a full snapshot of 20 levels a side (`{px, sz, n}`) whenever the book changed: no deltas, no sequence
  and no checksum, so a lost frame ("gap" fault) only leaves the client one snapshot behind;
- `trades`: the step's trades (`side` the taker's, "B" buy / "A" sell; `tid`, `hash`, `users` [buyer, seller]);
- `candle`: the open bar `{t, T, s, i, o, c, h, l, v, n}` when it traded or a new bar began;
- `activeAssetCtx`: `{coin, ctx}` with the day's figures, mark / oracle / mid price and, as `impactPxs`, the best
  bid and ask (the venue's impact prices for a notional the top level covers).
Prices and sizes are strings written as the venue writes them: trailing zeros dropped, an integer as "65000.0".
The simulator does not aggregate books: an `l2Book` with `nSigFigs` set is refused as an invalid subscription.
Order entry (the matching engine's; `exchanges/hyperliquid/orders.py` is the client side): a signed action is POSTed
to `/exchange`, or sent on the socket as `{"method": "post", "id": <int>, "request": {"type": "action", "payload":
<the same body>}}` and answered `{"channel": "post", "data": {"id", "response": {"type": "action", "payload": <the
HTTP answer>}}}`. Actions (one order or cancel per action): `order` (limit Gtc / Ioc / Alo, or a trigger tp / sl),
`cancel` (by oid), `cancelByCloid`, `batchModify` (one). Checked in the venue's order: the body parses (else HTTP 422
"Failed to deserialize the JSON body into the target type", on the socket a post `error` answer "422 …"); the
EIP-712 signature, recomputed here (own MessagePack, keccak, the Agent digest), recovers the wallet or the API wallet
of the simulator's secret (else `{"status": "err", "response": "User or API Wallet 0x<recovered> does not exist."}`);
`expiresAfter` has not passed ("Action already expired"; also when a late execution finds it passed); the nonce is
within (now − 2 days, now + 1 day), not among the signer's 100 highest ("Invalid nonce: duplicate nonce N"), not below
the smallest of them once 100 are held ("Invalid nonce: nonce too low N < M"). The simulator counts a nonce used
once the action reached it, even when a fault then keeps the engine from executing it (the venue counts it when the
action executes): a resend after a lost or unexecuted request is refused as a duplicate, where the venue would take
it. Answers: an order `{"resting": {"oid"[, "cloid"]}}` (or `{"filled": {"totalSz", "avgPx", "oid"}}` when the
engine had finished it before answering) or `{"error": "…"}` in `statuses`; a cancel `"success"` or "Order was never
placed, already canceled, or filled. asset=N"; a modify as an order, or "Cannot modify canceled or filled order". The
engine's "status unknown" is HTTP 500 / a post `error` answer "500 Internal Server Error". `orderStatus` (info, over
REST and as a post of type info) by oid or cloid: `{"status": "order", "order": {"order": {…}, "status",
"statusTimestamp"}}` or `{"status": "unknownOid"}`; `l2Book` (info, REST): the book a market order is priced from.
The 100 in-flight posts limit is not enforced.
Sources: docs hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api (info-endpoint, websocket/
subscriptions, timeouts-and-heartbeats, websocket/post-requests, exchange-endpoint, nonces-and-api-wallets), the
FAQ "What does Action already expired mean?"; hyperliquid-dex/order_book_server `types/subscription.rs`,
`servers/websocket_server.rs` (ack before snapshot, error texts); ccxt 4.5.90 `pro/hyperliquid.py`.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from decimal import Decimal, InvalidOperation, localcontext
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple

import coincurve
from aiohttp import web
from Crypto.Hash import keccak

from exchanges.hyperliquid.market_data import ASSET_INDEX
from exchanges.listings import sim_symbols
from exchanges.simulator.market import TIMEFRAMES_MS
from exchanges.simulator.orders import ClientIdPolicy, SimRequest, SimResult
from exchanges.simulator.venues.base import SimSession, VenueSim, decimal_text, dumps
from framework.events import Market, OrderStatus, Side, now_ms

if TYPE_CHECKING:
    from exchanges.simulator.account import SimAccount, SimPosition
    from exchanges.simulator.ledger import Ledger, SimFill, SimOrder
    from exchanges.simulator.market import CandleBar, MarketStep, SymbolMarket, TradeTick
    from exchanges.simulator.server import Simulator

# Subscriptions keyed by a user address; only userFills, userEvents, orderUpdates and clearinghouseState carry
# data here.
USER_TYPES = frozenset({"userFills", "orderUpdates", "userEvents", "userFundings", "userNonFundingLedgerUpdates",
                        "notification", "clearinghouseState"})
# Public feeds keyed by a coin (a candle also by its interval).
MARKET_TYPES = frozenset({"l2Book", "trades", "candle", "activeAssetCtx"})
# The intervals a candle subscription parses with; the simulator keeps bars of those in TIMEFRAMES_MS only.
INTERVALS = frozenset({"1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w", "1M"})
BOOK_LEVELS = 20  # an l2Book frame's levels a side (WsBook; the public API has no depth parameter)
FUNDING = "0.0000125"  # the hourly rate with no premium: the interest rate of 0.01 % per 8 h
MAX_USERS = 10  # "Cannot track more than 10 total users." (per IP on the venue; per simulated market here)
HISTORY_ROWS = 2000  # userFills / userFillsByTime: at most 2000 fills per response
RETAINED_FILLS = 10000  # "only the 10000 most recent fills are available"
BAD_BODY = "Failed to deserialize the JSON body into the target type"
SETTLE = "USDC"  # the first perp dex's collateral
MAX_LEVERAGE = 40  # every simulated coin's (BTC's on the venue); maintenance margin is half its initial margin
ABSTRACTION = "default"  # userAbstraction of the wallet: a standard account, perps margined apart from spot
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_CLOID = re.compile(r"0x[0-9a-f]{32}")  # a 128-bit client order id, as Hyperliquid echoes it
_SIDES = {Side.BUY: "B", Side.SELL: "A"}
_STATUS = {
    OrderStatus.NEW: "open", OrderStatus.PARTIALLY_FILLED: "open", OrderStatus.FILLED: "filled",
    OrderStatus.CANCELED: "canceled", OrderStatus.REJECTED: "rejected", OrderStatus.EXPIRED: "canceled",
}


class HyperliquidSim(VenueSim):
    exchange = "hyperliquid"
    markets = frozenset({Market.FUTURE})
    # "Timeouts and heartbeats": the server closes a connection that has sent nothing for 60 s.
    client_silence_limit = 60.0
    # A cloid is not documented as a dedup key (the nonce is the replay guard): the same cloid twice is two orders.
    client_id_policy = ClientIdPolicy.FREE

    def __init__(self) -> None:
        # Fills the userFills snapshot replays on subscribe (0: an empty snapshot, e.g. to test the REST path alone).
        self.snapshot_limit = HISTORY_ROWS
        self.history_rows = HISTORY_ROWS  # rows per info response (lower it to test paging with few fills)
        self._positions = _Positions()
        self._nonces: dict[str, list[int]] = {}  # signer -> its highest nonces (KEPT_NONCES), ascending

    def raw_symbol(self, market: Market, symbol: str) -> str:
        """A perp's coin: `BTC/USDC:USDC` → `BTC`."""
        return symbol.split("/")[0]

    # sockets ---------------------------------------------------------------------------------------------------
    def ws_paths(self, market: Market) -> list[str]:
        return []  # the one socket path is also the market data one: public_ws_paths

    def public_ws_paths(self, market: Market) -> list[str]:
        return ["/ws"]

    async def on_message(self, session: SimSession, message: Any) -> None:
        method = message.get("method") if type(message) is dict else None
        if method == "ping":
            await session.send({"channel": "pong"})
            return
        if method == "post":
            await self._post(session, message)
            return
        subscription = message.get("subscription") if method in ("subscribe", "unsubscribe") else None
        if type(subscription) is dict and subscription.get("type") in MARKET_TYPES:
            await self._market_subscription(session, message, subscription)
            return
        parsed = _subscription(subscription)
        if parsed is None:
            text = message if isinstance(message, str) else dumps(message)
            await _error(session, f"Error parsing JSON into valid websocket request: {text}")
            return
        key, user = parsed
        shown = dumps(message["subscription"])
        if method == "unsubscribe":
            if key not in session.subscriptions:
                await _error(session, f"Already unsubscribed: {shown}")
                return
            session.subscriptions.discard(key)
            await session.send({"channel": "subscriptionResponse", "data": message})
            return
        if key in session.subscriptions:
            await _error(session, f"Already subscribed: {shown}")
            return
        tracked = {k.partition(":")[2] for s in session.sim.sessions(self.exchange, session.market)
                   for k in s.subscriptions if k.partition(":")[0] in USER_TYPES}
        if user not in tracked and len(tracked) >= MAX_USERS:
            await _error(session, f"Cannot track more than {MAX_USERS} total users.")
            return
        session.subscriptions.add(key)
        await session.send({"channel": "subscriptionResponse", "data": message})
        if key.startswith("userFills:"):  # the ack first, then the snapshot (order_book_server does the same)
            fills = self._fills(session, user)[-self.snapshot_limit:] if self.snapshot_limit else []
            rows = [self._fill_row(session.ledger, f, stream=True) for f in fills]
            await session.send({"channel": "userFills", "data": {"isSnapshot": True, "user": user, "fills": rows}})
        elif key.startswith("clearinghouseState:"):  # the ack, then the state as it is now
            account = session.sim.account(self.exchange, session.market) if user == self._wallet(session) else None
            await session.send(_clearinghouse_frame(user, clearinghouse_state(account, now_ms())))

    async def _market_subscription(self, session: SimSession, message: dict, subscription: dict) -> None:
        """Subscribe to or unsubscribe from a public feed; a subscribe gets the feed's current state after its ack."""
        parsed = _market_feed(subscription)
        if parsed is None:
            await _error(session, f"Error parsing JSON into valid websocket request: {dumps(message)}")
            return
        key, feed = parsed
        shown = dumps(feed)
        aggregated = feed["type"] == "l2Book" and feed["nSigFigs"] is not None  # not simulated
        unkept = feed["type"] == "candle" and feed["interval"] not in TIMEFRAMES_MS  # a bar the market does not keep
        if _symbol(feed["coin"]) not in sim_symbols(self.exchange, session.market) or aggregated or unkept:
            await _error(session, f"Invalid subscription: {shown}")
            return
        ack = {"channel": "subscriptionResponse", "data": {"method": message["method"], "subscription": feed}}
        if message["method"] == "unsubscribe":
            if key not in session.subscriptions:
                await _error(session, f"Already unsubscribed: {shown}")
                return
            session.subscriptions.discard(key)
            await session.send(ack)
            return
        if key in session.subscriptions:
            await _error(session, f"Already subscribed: {shown}")
            return
        session.subscriptions.add(key)
        await session.send(ack)
        symbol_market = session.sim.market(self.exchange, session.market, _symbol(feed["coin"]))
        for frame in self._feed_state(session, key, feed, symbol_market):
            await session.send(frame)

    def _feed_state(self, session: SimSession, key: str, feed: dict, symbol_market: SymbolMarket) -> list[dict]:
        """What a new subscriber gets at once: the book, the recent trades (if any), the open bar, the context."""
        coin = feed["coin"]
        if feed["type"] == "l2Book":
            return [_book_frame(coin, symbol_market, symbol_market.time)]
        if feed["type"] == "trades":
            return [_trades_frame(coin, symbol_market.trades)] if symbol_market.trades else []
        if feed["type"] == "candle":
            bar = symbol_market.candle(feed["interval"])
            session.state.setdefault("bar_starts", {})[key] = bar.start
            return [_candle_frame(coin, feed["interval"], bar)]
        return [_context_frame(coin, symbol_market)]

    def market_frames(self, session: SimSession, symbol_market: SymbolMarket, step: MarketStep,
                      corrupt_checksum: bool = False) -> list[Any]:
        """The step on every feed of its coin this session subscribed (the venue has no book checksum)."""
        coin = self.raw_symbol(Market.FUTURE, symbol_market.symbol)
        subscribed = session.subscriptions
        frames: list[Any] = []
        if step.book is not None and f"l2Book:{coin}" in subscribed:
            frames.append(_book_frame(coin, symbol_market, step.time))
        if step.trades and f"trades:{coin}" in subscribed:
            frames.append(_trades_frame(coin, step.trades))
        prefix = f"candle:{coin}:"
        for key in sorted(k for k in subscribed if k.startswith(prefix)):
            interval = key[len(prefix):]
            bar = symbol_market.candle(interval, step.time)
            starts = session.state.setdefault("bar_starts", {})
            if step.trades or starts.get(key) != bar.start:  # it traded, or a new bar began
                starts[key] = bar.start
                frames.append(_candle_frame(coin, interval, bar))
        if f"activeAssetCtx:{coin}" in subscribed:
            frames.append(_context_frame(coin, symbol_market))
        return frames

    def _wallet(self, session: SimSession) -> str:
        return (session.credentials.wallet_address or "").lower()

    def _fills(self, session: SimSession, user: str) -> list[SimFill]:
        """The user's fills the venue still holds: the ledger's, for the simulator's own wallet only."""
        return session.ledger.fills[-RETAINED_FILLS:] if user == self._wallet(session) else []

    # frames ------------------------------------------------------------------------------------------------------
    def order_frames(self, session: SimSession, order: SimOrder) -> list[Any]:
        if f"orderUpdates:{self._wallet(session)}" not in session.subscriptions:
            return []
        return [{"channel": "orderUpdates", "data": [self._order_entry(order)]}]

    def fill_frames(self, session: SimSession, order: SimOrder, fill: SimFill) -> list[Any]:
        """The fill on `userFills` (and `userEvents`), then `orderUpdates` once the order is done.

        orderUpdates follow status changes (open, filled, canceled…), not each partial fill.
        """
        wallet = self._wallet(session)
        frames: list[Any] = []
        if f"userFills:{wallet}" in session.subscriptions:
            row = self._fill_row(session.ledger, fill, stream=True)
            frames.append({"channel": "userFills", "data": {"user": wallet, "fills": [row]}})
        if f"userEvents:{wallet}" in session.subscriptions:
            frames.append({"channel": "user", "data": {"fills": [self._fill_row(session.ledger, fill, stream=True)]}})
        if order.status.is_terminal:
            frames += self.order_frames(session, order)
        return frames

    def account_frames(self, session: SimSession, account: SimAccount, assets: list[str],
                       symbols: list[str]) -> list[Any]:
        """The whole state again after any change, to a session subscribed for the wallet (the venue sends no
        deltas: a position the state no longer lists was closed)."""
        wallet = self._wallet(session)
        if f"clearinghouseState:{wallet}" not in session.subscriptions:
            return []
        return [_clearinghouse_frame(wallet, clearinghouse_state(account, account.updated or now_ms()))]

    def expected_balance(self, account: SimAccount, asset: str) -> tuple[Decimal, Decimal, Decimal]:
        """(free, locked, total) as the venue reports the account: accountValue (`total`) holds the positions'
        unrealized PnL, which the account's wallet leaves out; `locked` is the margin in use, `free` withdrawable.
        The state is of the settle coin only: any other asset is the account's as it is."""
        if asset != SETTLE:
            return super().expected_balance(account, asset)
        summary = _summary(account)
        return summary.withdrawable, summary.margin, summary.value

    def _order_entry(self, order: SimOrder) -> dict:
        body: dict[str, Any] = {
            "coin": self.raw_symbol(Market.FUTURE, order.symbol), "side": _SIDES[order.side],
            "limitPx": decimal_text(order.price), "sz": decimal_text(order.remaining), "oid": int(order.order_id),
            "timestamp": order.created, "origSz": decimal_text(order.amount),
        }
        cloid = _cloid(order.client_order_id)
        if cloid:
            body["cloid"] = cloid
        status = _STATUS[order.status]
        if order.trigger_price is not None and status == "open":  # announced once its trigger price was reached
            status = "triggered"
        return {"order": body, "status": status, "statusTimestamp": order.updated}

    def _fill_row(self, ledger: Ledger, fill: SimFill, *, stream: bool = False) -> dict:
        """A fill as the docs' WsFill / info rows write it (the stream also writes `cloid: null`)."""
        start = self._positions.start(ledger, fill)
        row: dict[str, Any] = {
            "coin": self.raw_symbol(Market.FUTURE, fill.symbol), "px": decimal_text(fill.price),
            "sz": decimal_text(fill.amount), "side": _SIDES[fill.side], "time": fill.time,
            "startPosition": decimal_text(start), "dir": _direction(start, fill), "closedPnl": "0.0",
            "hash": _hash(fill.trade_id),
            "oid": int(fill.order_id), "crossed": not fill.is_maker, "fee": decimal_text(fill.fee),
            "tid": int(fill.trade_id), "feeToken": fill.fee_currency,
        }
        cloid = _cloid(fill.client_order_id)
        if cloid or stream:
            row["cloid"] = cloid
        return row

    # REST -------------------------------------------------------------------------------------------------------------
    def rest_routes(self, market: Market) -> list:
        return [("POST", "/info", self._info), ("POST", "/exchange", self._exchange)]

    async def _info(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """The info endpoint's fill and account queries (unsigned: anyone may read any address's)."""
        try:
            body = json.loads(await request.text())
        except ValueError:
            return _bad_body()
        wallet = (sim.credentials_for(self.exchange).wallet_address or "").lower()
        account_query = _account_query(body)
        if account_query is not None:
            kind, user = account_query
            if kind == "userAbstraction":
                return web.json_response(ABSTRACTION)
            account = sim.account(self.exchange, market) if user == wallet else None
            return web.json_response(clearinghouse_state(account, now_ms()))
        if type(body) is dict and body.get("type") == "l2Book":  # the book a market order takes its price from
            coin = body.get("coin")
            if type(coin) is not str or body.get("nSigFigs") is not None:
                return _bad_body()
            if _symbol(coin) not in sim_symbols(self.exchange, market):
                return web.json_response(None)  # "null if the market does not exist"
            book = sim.market(self.exchange, market, _symbol(coin))
            return web.json_response(_book_frame(coin, book, book.time)["data"])
        order_query = _order_query(body)
        if order_query is not None:
            return web.json_response(await self._order_status(sim, market, *order_query))
        query = _fill_query(body)
        if query is None:
            return _bad_body()
        kind, user, start, end = query
        end = now_ms() if end is None else end  # "Defaults to current time"
        ledger = sim.ledger(self.exchange, market)
        fills = ledger.fills[-RETAINED_FILLS:] if user == wallet else []
        if kind == "userFills":
            page = fills[-self.history_rows:][::-1]
        else:
            page = [f for f in fills if start <= f.time <= end][:self.history_rows]
        return web.json_response([self._fill_row(ledger, f) for f in page])

    # order entry ----------------------------------------------------------------------------------------------------
    async def _exchange(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """POST /exchange: a signed action, checked, then done by the matching engine."""
        try:
            body = json.loads(await request.text())
        except ValueError:
            return _bad_body()
        try:
            kind, order_request = self._admit(sim, body, now_ms())
        except _Unparsed:
            return _bad_body()
        except _Refused as refusal:
            return web.json_response({"status": "err", "response": str(refusal)})
        result = await sim.orders.call(self.exchange, market, order_request, transport=request.transport)
        answer = None if result is None else self._answer(sim, market, kind, order_request, result)
        if answer is None:  # "status unknown" (or a cut connection, which gets no answer anyway)
            return web.Response(status=500, text=SERVER_ERROR)
        return web.json_response(answer)

    async def _post(self, session: SimSession, message: dict) -> None:
        """A `post` on the socket: an action (answered when the engine is done with it) or an orderStatus query."""
        req_id, request = message.get("id"), message.get("request")
        kind = request.get("type") if type(request) is dict else None
        if type(req_id) is not int or kind not in ("action", "info"):
            await _error(session, f"Error parsing JSON into valid websocket request: {dumps(message)}")
            return

        async def reply(response_type: str, payload: Any) -> None:
            await session.send({"channel": "post",
                                "data": {"id": req_id, "response": {"type": response_type, "payload": payload}}})

        if kind == "info":
            query = _order_query(request.get("payload"))
            if query is None:
                await reply("error", f"422 Unprocessable Entity: {BAD_BODY}")
                return
            data = await self._order_status(session.sim, session.market, *query)
            await reply("info", {"type": "orderStatus", "data": data})
            return
        try:
            action, order_request = self._admit(session.sim, request.get("payload"), now_ms())
        except _Unparsed:
            await reply("error", f"422 Unprocessable Entity: {BAD_BODY}")
            return
        except _Refused as refusal:
            await reply("action", {"status": "err", "response": str(refusal)})
            return

        async def answer(result: SimResult) -> None:
            body = self._answer(session.sim, session.market, action, order_request, result)
            await (reply("error", f"500 {SERVER_ERROR}") if body is None else reply("action", body))

        session.sim.orders.submit(self.exchange, session.market, order_request, answer, path="ws",
                                  transport=session.request.transport)

    def _admit(self, sim: Simulator, body: Any, now: int) -> tuple[str, SimRequest]:
        """An /exchange body checked as the venue checks it: it parses, its signature recovers a signer of the
        account, it has not expired, its nonce is new. Returns (action type, the engine's request); raises _Unparsed
        (HTTP 422) or _Refused (`status: err`)."""
        if type(body) is not dict:
            raise _Unparsed
        action, nonce, signature = body.get("action"), body.get("nonce"), body.get("signature")
        vault, expires = body.get("vaultAddress"), body.get("expiresAfter")
        if (type(action) is not dict or type(nonce) is not int or not 0 <= nonce < 1 << 64
                or type(signature) is not dict or vault is not None
                or (expires is not None and (type(expires) is not int or not 0 <= expires < 1 << 64))):
            raise _Unparsed
        order_request = _engine_request(action, expires)
        signer = _recovered_signer(action, nonce, expires, signature)
        credentials = sim.credentials_for(self.exchange)
        if signer not in {(credentials.wallet_address or "").lower(), _address_of(credentials.secret)}:
            raise _Refused(f"User or API Wallet {signer} does not exist.")
        if expires is not None and now > expires:
            raise _Refused("Action already expired")
        self._use_nonce(signer, nonce, now)
        return action["type"], order_request

    def _use_nonce(self, signer: str, nonce: int, now: int) -> None:
        """The nonce rules of nonces-and-api-wallets: near the block time, new, above the smallest of the 100 kept."""
        if not now - NONCE_PAST_MS < nonce < now + NONCE_FUTURE_MS:
            raise _Refused(f"Invalid nonce: nonce {nonce} is outside the allowed range of the block time")
        held = self._nonces.setdefault(signer, [])
        at = bisect.bisect_left(held, nonce)
        if at < len(held) and held[at] == nonce:
            raise _Refused(f"Invalid nonce: duplicate nonce {nonce}")
        if len(held) >= KEPT_NONCES and at == 0:
            raise _Refused(f"Invalid nonce: nonce too low {nonce} < {held[0]}")
        held.insert(at, nonce)
        del held[:-KEPT_NONCES]

    def _answer(self, sim: Simulator, market: Market, action: str, request: SimRequest, result: SimResult
                ) -> dict | None:
        """The engine's result as the venue's HTTP answer (the WS action payload); None for "status unknown"."""
        if result.kind == "unknown":
            return None
        if result.kind == "reject" and result.reason == "expired":
            return {"status": "err", "response": "Action already expired"}
        index = ASSET_INDEX.get(self.raw_symbol(market, request.symbol))
        missing = result.kind == "not_found" or (result.kind == "reject" and result.reason == "not_open")
        if action in ("cancel", "cancelByCloid"):
            status: Any = "success" if result.kind == "ok" else {
                "error": f"Order was never placed, already canceled, or filled. asset={index}" if missing
                else result.message}
            return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": [status]}}}
        if result.kind == "ok":
            status = _placed(result.order)
        elif missing:
            status = {"error": "Cannot modify canceled or filled order"}
        else:
            status = {"error": self._refusal(sim, market, request, result, index)}
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": [status]}}}

    def _refusal(self, sim: Simulator, market: Market, request: SimRequest, result: SimResult, index: Any) -> str:
        """An order's `error` in the venue's words."""
        if result.reason == "would_cross":
            public = sim.market(self.exchange, market, request.symbol)
            bid, ask = _number(public.best_bid()[0]), _number(public.best_ask()[0])
            return f"Post only order would have immediately matched, bbo was {bid}@{ask}. asset={index}"
        if result.reason == "insufficient":
            return f"Insufficient margin to place order. asset={index}"
        if result.reason == "invalid":
            return "Order has invalid price." if "price" in result.message else "Order has invalid size."
        return result.message or result.reason

    async def _order_status(self, sim: Simulator, market: Market, user: str, oid: int | str) -> dict:
        """orderStatus: the order of the simulator's wallet by oid or cloid, or `unknownOid`."""
        wallet = (sim.credentials_for(self.exchange).wallet_address or "").lower()
        if user != wallet:
            return {"status": "unknownOid"}
        by_id = {"order_id": str(oid)} if type(oid) is int else {"client_order_id": oid}
        result = await sim.orders.call(self.exchange, market, SimRequest(op="query", symbol="", **by_id))
        if result is None or result.kind != "ok":
            return {"status": "unknownOid"}
        order = result.order
        entry = self._order_entry(order)
        trigger = order.trigger_price is not None
        if any(o is order for o in sim.orders.conditional.get((self.exchange, market), [])):
            entry["status"] = "open"  # a trigger order waiting for its price
        entry["order"].update({
            "triggerCondition": "N/A", "isTrigger": trigger,
            "triggerPx": decimal_text(order.trigger_price) if trigger else "0.0", "children": [],
            "isPositionTpsl": False, "reduceOnly": order.reduce_only,
            "orderType": "Market" if order.order_type == "market" else "Limit",
            "tif": None if trigger else _TIFS.get(order.time_in_force, "Gtc"),
            "cloid": _cloid(order.client_order_id),
        })
        return {"status": "order", "order": entry}


class _Positions:
    """Each fill's `startPosition`: the coin's signed position just before it (the ledger only grows)."""

    def __init__(self) -> None:
        self._seen: dict[int, int] = {}
        self._open: dict[tuple[int, str], Decimal] = {}
        self._start: dict[tuple[int, str], Decimal] = {}

    def start(self, ledger: Ledger, fill: SimFill) -> Decimal:
        book = id(ledger)
        for earlier in ledger.fills[self._seen.get(book, 0):]:
            position = self._open.get((book, earlier.symbol), Decimal(0))
            self._start[(book, earlier.trade_id)] = position
            signed = earlier.amount if earlier.side is Side.BUY else -earlier.amount
            self._open[(book, earlier.symbol)] = position + signed
        self._seen[book] = len(ledger.fills)
        return self._start[(book, fill.trade_id)]


def _direction(start: Decimal, fill: SimFill) -> str:
    """The fill's `dir` from the position before it: Open/Close Long/Short, or a flip (`Long > Short`)."""
    if fill.side is Side.BUY:
        if start >= 0:
            return "Open Long"
        return "Close Short" if start + fill.amount <= 0 else "Short > Long"
    if start <= 0:
        return "Open Short"
    return "Close Long" if start - fill.amount >= 0 else "Long > Short"


def _symbol(coin: str) -> str:
    """A perp coin's unified symbol: every Hyperliquid perp settles in USDC."""
    return f"{coin}/USDC:USDC"


def _market_feed(subscription: dict) -> tuple[str, dict] | None:
    """`(key, subscription as the venue writes it back)` of a public feed, None when the venue could not parse it."""
    kind, coin = subscription["type"], subscription.get("coin")
    if type(coin) is not str:
        return None
    if kind == "candle":
        interval = subscription.get("interval")
        if type(interval) is not str or interval not in INTERVALS:
            return None
        return f"candle:{coin}:{interval}", {"type": "candle", "interval": interval, "coin": coin}
    if kind == "l2Book":
        figures, mantissa = subscription.get("nSigFigs"), subscription.get("mantissa")
        if any(v is not None and (type(v) is not int or v < 0) for v in (figures, mantissa)):
            return None
        return f"l2Book:{coin}", {"type": "l2Book", "coin": coin, "nSigFigs": figures, "mantissa": mantissa}
    return f"{kind}:{coin}", {"type": kind, "coin": coin}


def _number(value: Decimal) -> str:
    """A price or size as the venue writes it: no trailing zeros, an integer with one (`65000.0`, `0.15`)."""
    text = format(value, "f")
    if "." not in text:
        return text + ".0"
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text


def _hash(trade_id: int) -> str:
    """The transaction hash of a trade (the same for its public trade and its fill)."""
    return "0x" + hashlib.sha256(f"hyperliquid-sim-fill-{trade_id}".encode()).hexdigest()


def _user(trade_id: int, role: str) -> str:
    """A made-up address for one side of a public trade."""
    return "0x" + hashlib.sha256(f"hyperliquid-sim-user-{trade_id}-{role}".encode()).hexdigest()[:40]


def _book_frame(coin: str, symbol_market: SymbolMarket, time: int) -> dict:
    """WsBook: the top 20 levels a side; `n` counts orders, and each simulated level is one order."""
    levels = [[{"px": _number(price), "sz": _number(amount), "n": 1} for price, amount in side]
              for side in symbol_market.book(BOOK_LEVELS)]
    return {"channel": "l2Book", "data": {"coin": coin, "time": time, "levels": levels}}


def _trades_frame(coin: str, trades: Iterable[TradeTick]) -> dict:
    rows = [{"coin": coin, "side": _SIDES[t.side], "px": _number(t.price), "sz": _number(t.amount), "time": t.time,
             "hash": _hash(t.trade_id), "tid": t.trade_id,
             "users": [_user(t.trade_id, "buyer"), _user(t.trade_id, "seller")]} for t in trades]
    return {"channel": "trades", "data": rows}


def _candle_frame(coin: str, interval: str, bar: CandleBar) -> dict:
    data = {"t": bar.start, "T": bar.start + TIMEFRAMES_MS[interval] - 1, "s": coin, "i": interval,
            "o": _number(bar.open), "c": _number(bar.close), "h": _number(bar.high), "l": _number(bar.low),
            "v": _number(bar.volume), "n": bar.count}
    return {"channel": "candle", "data": data}


def _context_frame(coin: str, symbol_market: SymbolMarket) -> dict:
    """activeAssetCtx: the day's figures count from the simulator's start; mark and oracle price are the last
    trade's (no premium); open interest is not simulated."""
    bid, ask = symbol_market.best_bid()[0], symbol_market.best_ask()[0]
    ctx = {
        "funding": FUNDING, "openInterest": "0.0", "prevDayPx": _number(symbol_market.open),
        "dayNtlVlm": _number(symbol_market.quote_volume), "premium": "0.0", "oraclePx": _number(symbol_market.last),
        "markPx": _number(symbol_market.last), "midPx": _number((bid + ask) / 2),
        "impactPxs": [_number(bid), _number(ask)], "dayBaseVlm": _number(symbol_market.volume),
    }
    return {"channel": "activeAssetCtx", "data": {"coin": coin, "ctx": ctx}}


def _subscription(subscription: Any) -> tuple[str, str] | None:
    """`(key, user)` of a well-formed user subscription, None when the venue could not parse it."""
    if type(subscription) is not dict or subscription.get("type") not in USER_TYPES:
        return None
    user = subscription.get("user")
    if type(user) is not str or not _ADDRESS.fullmatch(user):
        return None
    if subscription["type"] == "userFills" and subscription.get("aggregateByTime") not in (None, True, False):
        return None
    if subscription["type"] == "clearinghouseState" and subscription.get("dex", "") != "":
        return None  # only the first perp dex is simulated
    user = user.lower()
    return f"{subscription['type']}:{user}", user


def _fill_query(body: Any) -> tuple[str, str, int, int | None] | None:
    """`(type, user, startTime, endTime)` of a userFills / userFillsByTime body, None if it does not parse."""
    if type(body) is not dict or body.get("type") not in ("userFills", "userFillsByTime"):
        return None
    user = body.get("user")
    if type(user) is not str or not _ADDRESS.fullmatch(user):
        return None
    if body.get("aggregateByTime") not in (None, True, False):
        return None
    if body["type"] == "userFills":
        return "userFills", user.lower(), 0, 0
    start, end = body.get("startTime"), body.get("endTime")
    if type(start) is not int or start < 0 or (end is not None and type(end) is not int):
        return None
    return "userFillsByTime", user.lower(), start, end


def _account_query(body: Any) -> tuple[str, str] | None:
    """`(type, user)` of a clearinghouseState (first perp dex) / userAbstraction body, None for any other."""
    if type(body) is not dict or body.get("type") not in ("clearinghouseState", "userAbstraction"):
        return None
    user = body.get("user")
    if type(user) is not str or not _ADDRESS.fullmatch(user):
        return None
    if body["type"] == "clearinghouseState" and body.get("dex", "") != "":
        return None
    return body["type"], user.lower()


# order entry: reading and checking actions --------------------------------------------------------------------------
SERVER_ERROR = "Internal Server Error"
KEPT_NONCES = 100  # "the 100 highest nonces are stored per signer"
NONCE_PAST_MS = 2 * 24 * 3600 * 1000  # a nonce must be within (T - 2 days, T + 1 day) of the block time T
NONCE_FUTURE_MS = 24 * 3600 * 1000
_COINS = {index: coin for coin, index in ASSET_INDEX.items()}
_WIRE_TIFS = {"Gtc": "limit", "Ioc": "ioc", "Alo": "post_only"}
_TIFS = {"gtc": "Gtc", "ioc": "Ioc", "post_only": "Alo"}
_TPSL = {"tp": "take_profit", "sl": "stop_loss"}
_CLOID_WIRE = re.compile(r"0x[0-9a-fA-F]{32}")


class _Unparsed(Exception):
    """The body is not an action the venue can read: HTTP 422."""


class _Refused(Exception):
    """The action is refused as a whole: `{"status": "err", "response": <the text>}`."""


def _engine_request(action: dict, expires: int | None) -> SimRequest:
    """The one order, cancel or modify an action holds, as the engine's request (valid until `expiresAfter`)."""
    kind = action.get("type")
    try:
        if kind == "order":
            (wire,) = action["orders"]
            if action.get("grouping", "na") != "na":
                raise ValueError("grouped TP/SL is not simulated")
            return _order_request(wire, "place", expires)
        if kind == "batchModify":
            (modify,) = action["modifies"]
            target = modify["oid"]
            request = _order_request(modify["order"], "amend", expires)
            by_id = {"order_id": str(target)} if type(target) is int else {"client_order_id": _cloid_of(target)}
            return SimRequest(op="amend", symbol=request.symbol, amount=request.amount, price=request.price,
                              valid_until=expires, **by_id)
        if kind == "cancelByCloid":
            (cancel,) = action["cancels"]
            return SimRequest(op="cancel", symbol=_coin_symbol(cancel["asset"]), client_order_id=_cloid_of(
                cancel["cloid"]), valid_until=expires)
        if kind == "cancel":
            (cancel,) = action["cancels"]
            if type(cancel["o"]) is not int:
                raise TypeError("o must be an oid")
            return SimRequest(op="cancel", symbol=_coin_symbol(cancel["a"]), order_id=str(cancel["o"]),
                              valid_until=expires)
    except (KeyError, TypeError, ValueError, InvalidOperation):
        raise _Unparsed from None
    raise _Unparsed


def _order_request(wire: dict, op: str, expires: int | None) -> SimRequest:
    """An order wire `{a, b, p, s, r, t, c?}` as the engine's request."""
    if type(wire["b"]) is not bool or type(wire["r"]) is not bool or type(wire["p"]) is not str:
        raise TypeError("b and r are booleans, p a string")
    price, amount = Decimal(wire["p"]), Decimal(wire["s"])
    cloid = _cloid_of(wire["c"]) if wire.get("c") is not None else None
    fields: dict[str, Any] = {"op": op, "symbol": _coin_symbol(wire["a"]), "side": Side.BUY if wire["b"] else Side.SELL,
                              "amount": amount, "price": price, "reduce_only": wire["r"], "client_order_id": cloid,
                              "valid_until": expires}
    kind = wire["t"]
    if set(kind) == {"limit"}:
        fields["order_type"] = _WIRE_TIFS[kind["limit"]["tif"]]
    elif set(kind) == {"trigger"} and kind["trigger"]["isMarket"] is True:
        fields.update(order_type="market", trigger_price=Decimal(kind["trigger"]["triggerPx"]),
                      trigger=_TPSL[kind["trigger"]["tpsl"]])
    else:
        raise ValueError("limit or market trigger orders only")
    return SimRequest(**fields)


def _coin_symbol(index: Any) -> str:
    if type(index) is not int or index not in _COINS:
        raise ValueError(f"unknown asset {index!r}")
    return _symbol(_COINS[index])


def _cloid_of(value: Any) -> str:
    if type(value) is not str or not _CLOID_WIRE.fullmatch(value):
        raise ValueError(f"a cloid is 0x and 32 hex digits, got {value!r}")
    return value.lower()


def _order_query(body: Any) -> tuple[str, int | str] | None:
    """`(user, oid or cloid)` of an orderStatus body, None for any other body."""
    if type(body) is not dict or body.get("type") != "orderStatus":
        return None
    user, oid = body.get("user"), body.get("oid")
    if type(user) is not str or not _ADDRESS.fullmatch(user):
        return None
    if type(oid) is int and oid >= 0:
        return user.lower(), oid
    if type(oid) is str and _CLOID_WIRE.fullmatch(oid):
        return user.lower(), oid.lower()
    return None


def _placed(order: SimOrder) -> dict:
    """A placed order's status: filled (the engine finished it before the answer went out) or resting."""
    if order.status.is_terminal and order.filled:
        return {"filled": {"totalSz": _number(order.filled), "avgPx": _number(order.average),
                           "oid": int(order.order_id)}}
    resting: dict[str, Any] = {"oid": int(order.order_id)}
    if _cloid(order.client_order_id):
        resting["cloid"] = order.client_order_id
    return {"resting": resting}


# order entry: the signature, computed here (never with the client's signing code) ------------------------------------
def _keccak(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


_EIP712_DOMAIN = _keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_EXCHANGE_DOMAIN = _keccak(_EIP712_DOMAIN + _keccak(b"Exchange") + _keccak(b"1") + (1337).to_bytes(32, "big")
                           + (0).to_bytes(32, "big"))
_AGENT = _keccak(b"Agent(string source,bytes32 connectionId)")


def _recovered_signer(action: dict, nonce: int, expires: int | None, signature: dict) -> str:
    """The address whose key signed this action (mainnet source "a", no vault); a random one for a wrong signature,
    as on the venue. Raises _Unparsed for a signature that is not one."""
    try:
        r, s, v = int(signature["r"], 16), int(signature["s"], 16), signature["v"]
        if v not in (27, 28) or not (0 < r < 1 << 256 and 0 < s < 1 << 256):
            raise ValueError("bad signature")
        signed = _msgpack(action) + nonce.to_bytes(8, "big") + b"\x00"
        if expires is not None:
            signed += b"\x00" + expires.to_bytes(8, "big")
    except (KeyError, TypeError, ValueError, OverflowError):
        raise _Unparsed from None
    agent = _keccak(_AGENT + _keccak(b"a") + _keccak(signed))
    digest = _keccak(b"\x19\x01" + _EXCHANGE_DOMAIN + agent)
    try:
        key = coincurve.PublicKey.from_signature_and_message(
            r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v - 27,)), digest, hasher=None)
    except Exception:  # noqa: BLE001 - no key recovers from it: nobody's signature
        return "0x" + "00" * 20
    return "0x" + _keccak(key.format(compressed=False)[1:])[-20:].hex()


def _container(size: int, fix: int, marker16: int) -> bytes:
    """An array's or map's header: fix (under 16 items), then 16- and 32-bit sizes (marker16, marker16 + 1)."""
    if size < 16:
        return bytes((fix | size,))
    if size < 1 << 16:
        return bytes((marker16,)) + size.to_bytes(2, "big")
    return bytes((marker16 + 1,)) + size.to_bytes(4, "big")


def _address_of(secret: str | None) -> str | None:
    """The address of a private key (`0x` + 64 hex), None if it is not one."""
    if type(secret) is not str or not re.fullmatch(r"0x[0-9a-fA-F]{64}", secret):
        return None
    try:
        key = coincurve.PrivateKey(bytes.fromhex(secret[2:]))
    except Exception:  # noqa: BLE001 - zero or not below the curve order
        return None
    return "0x" + _keccak(key.public_key.format(compressed=False)[1:])[-20:].hex()


def _msgpack(value: Any) -> bytes:
    """MessagePack as msgpack-python writes the JSON values of an action (the smallest encoding of each)."""
    if value is None:
        return b"\xc0"
    if type(value) is bool:
        return b"\xc3" if value else b"\xc2"
    if type(value) is int:
        if 0 <= value <= 0x7F or -32 <= value < 0:
            return value.to_bytes(1, "big", signed=value < 0)
        if value > 0:
            for marker, size in ((0xCC, 1), (0xCD, 2), (0xCE, 4), (0xCF, 8)):
                if value < 1 << (8 * size):
                    return bytes((marker,)) + value.to_bytes(size, "big")
        for marker, size in ((0xD0, 1), (0xD1, 2), (0xD2, 4), (0xD3, 8)):
            if value >= -(1 << (8 * size - 1)):
                return bytes((marker,)) + value.to_bytes(size, "big", signed=True)
        raise ValueError("integer out of range")
    if type(value) is str:
        data = value.encode()
        if len(data) < 32:
            return bytes((0xA0 | len(data),)) + data
        for marker, size in ((0xD9, 1), (0xDA, 2), (0xDB, 4)):
            if len(data) < 1 << (8 * size):
                return bytes((marker,)) + len(data).to_bytes(size, "big") + data
    if type(value) is list:
        return _container(len(value), 0x90, 0xDC) + b"".join(_msgpack(item) for item in value)
    if type(value) is dict:
        return _container(len(value), 0x80, 0xDE) + b"".join(_msgpack(k) + _msgpack(v) for k, v in value.items())
    raise TypeError(f"{type(value).__name__} is not a JSON value")


class _Summary(NamedTuple):
    """An account's figures in the venue's margin summary terms."""

    positions: list[SimPosition]  # the open ones settled in USDC
    value: Decimal  # accountValue: the wallet plus the positions' unrealized PnL
    margin: Decimal  # totalMarginUsed: the account's locked part
    notional: Decimal  # totalNtlPos: sum of |szi| × mark
    raw_usd: Decimal  # totalRawUsd: accountValue less sum of szi × mark
    maintenance: Decimal  # crossMaintenanceMarginUsed: half the initial margin at the max leverage
    withdrawable: Decimal  # accountValue less the margin in use, never below zero


def _summary(account: SimAccount | None) -> _Summary:
    """The figures of the simulator's account; None (an address the simulator keeps nothing for): all zero.

    Worked out exactly (an average entry has 28 digits): ccxt's free, accountValue less totalMarginUsed in its
    own exact arithmetic, then equals withdrawable to the last digit."""
    zero = Decimal(0)
    if account is None:
        return _Summary([], zero, zero, zero, zero, zero, zero)
    wallet = account.balance(SETTLE)
    positions = [p for p in account.positions.values() if p.size and p.symbol.endswith(f"/{SETTLE}:{SETTLE}")]
    with localcontext() as exact:
        exact.prec = 200
        value = wallet.total + sum((p.unrealized_pnl for p in positions), zero)
        notional = sum((abs(p.size) * p.mark_price for p in positions), zero)
        raw_usd = value - sum((p.size * p.mark_price for p in positions), zero)
        return _Summary(positions, value, wallet.locked, notional, raw_usd, notional / (2 * MAX_LEVERAGE),
                        max(value - wallet.locked, zero))


def clearinghouse_state(account: SimAccount | None, time: int) -> dict:
    """The first perp dex's clearinghouse state of an account, as the info endpoint and the push write it."""
    summary = _summary(account)
    totals = {"accountValue": _figure(summary.value), "totalNtlPos": _figure(summary.notional),
              "totalRawUsd": _figure(summary.raw_usd), "totalMarginUsed": _figure(summary.margin)}
    return {
        "marginSummary": totals, "crossMarginSummary": dict(totals),  # every simulated position is cross
        "crossMaintenanceMarginUsed": _figure(summary.maintenance), "withdrawable": _figure(summary.withdrawable),
        "assetPositions": [_asset_position(p) for p in summary.positions], "time": time,
    }


def _asset_position(position: SimPosition) -> dict:
    liquidation = position.liquidation_price
    body = {
        "coin": position.symbol.split("/")[0], "szi": _figure(position.size),
        "leverage": {"type": "cross", "value": int(position.leverage)}, "entryPx": _figure(position.entry_price),
        "positionValue": _figure(abs(position.size) * position.mark_price),  # exact: size and price are short
        "unrealizedPnl": _figure(position.unrealized_pnl),
        "returnOnEquity": _figure((position.unrealized_pnl / position.margin).quantize(Decimal("1e-8"))),
        "liquidationPx": None if liquidation is None else _figure(liquidation),
        "marginUsed": _figure(position.margin), "maxLeverage": MAX_LEVERAGE,
        "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},  # no funding is simulated
    }
    return {"type": "oneWay", "position": body}


def _clearinghouse_frame(user: str, state: dict) -> dict:
    return {"channel": "clearinghouseState", "data": {"dex": "", "user": user, "clearinghouseState": state}}


def _figure(value: Decimal) -> str:
    """`_number`, and a zero never negative (`(mark - entry) × size` of a short at its entry is -0)."""
    return _number(value.copy_abs() if value.is_zero() else value)


def _cloid(client_order_id: str | None) -> str | None:
    """The ledger's client order id if it is a Hyperliquid cloid (`0x` + 32 hex digits), else none."""
    return client_order_id if client_order_id and _CLOID.fullmatch(client_order_id) else None


async def _error(session: SimSession, text: str) -> None:
    await session.send({"channel": "error", "data": text})


def _bad_body() -> web.Response:
    return web.Response(status=422, text=BAD_BODY)


VENUE_CLASS = HyperliquidSim
