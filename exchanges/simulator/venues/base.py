"""What a venue plugin of the simulator provides, the session object it works with, and what it may ask of
the running simulator (`SimHost`: `server.Simulator` is one; this module does not import the server)."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

import msgspec
from aiohttp import web

from framework.events import Market, now_ms

if TYPE_CHECKING:
    from framework.venue import Credentials
    from exchanges.simulator.ledger import Ledger, SimFill, SimOrder
    from exchanges.simulator.account import SimAccount
    from exchanges.simulator.market import MarketStep, SymbolMarket

_SIGNATURE_PARAMS = frozenset({"signature", "sign"})
_SIGNATURE_HEADERS = frozenset({"access-sign", "x-bapi-sign", "sign", "signature", "x-mbx-signature"})


class SimHost(Protocol):
    """The running simulator as its venue plugins and sessions see it."""

    def credentials_for(self, exchange: str) -> Credentials:
        """The account keys a login to this venue must be signed with."""

    def ledger(self, exchange: str, market: Market | str) -> Ledger:
        """The orders and fills of a (venue, market)."""

    def sessions(self, exchange: str, market: Market | str) -> list[SimSession]:
        """The live sockets of a (venue, market)."""

    def market(self, exchange: str, market: Market | str, symbol: str) -> SymbolMarket:
        """A symbol's public market (book, trades, candles) on a (venue, market), made on first use."""

    def account(self, exchange: str, market: Market | str) -> SimAccount:
        """The (venue, market) account its orders and fills move: balances, positions."""


Handler = Callable[[SimHost, Market, web.Request], Awaitable[web.StreamResponse]]


_FAST_JSON = msgspec.json.Encoder(decimal_format="string")


def dumps(message: Any) -> str:
    """JSON text with Decimals written as their exact text (as JSON strings).

    msgspec writes it (the load generator's hot path); json.dumps does whenever msgspec's text could differ
    from it: a type msgspec does not take, non-ASCII (json.dumps escapes it), a null (msgspec's NaN). A float may
    read 1e16 where json.dumps writes 1e+16 (the same number); a set is a JSON array, not its repr."""
    try:
        text = _FAST_JSON.encode(message)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        text = b"\x80"
    if text.isascii() and b"null" not in text:
        return text.decode()
    return json.dumps(message, default=str, separators=(",", ":"))


def decimal_text(value: Decimal | int, places: int | None = None) -> str:
    """A Decimal as a plain (non-scientific) string, optionally with a fixed number of places."""
    if places is None and type(value) is Decimal:
        return format(value, "f")
    value = Decimal(value)
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
    return format(value, "f")


def json_numbers(value: Any, number: Callable[[Decimal], str] | None = None) -> str:
    """JSON text in which every Decimal is a JSON number written exactly (for venues that send numbers)."""
    number = number or decimal_text
    if isinstance(value, Decimal):
        return number(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{json_numbers(item, number)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json_numbers(item, number) for item in value) + "]"
    return json.dumps(value)


def hmac_sha256(secret: str, payload: str) -> bytes:
    """HMAC-SHA256 of `payload` under `secret`, computed here (an oracle never borrows the client's signing)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()


class SimSession:
    """One client socket on the simulator: who it is, what it may see, and how to talk to it."""

    def __init__(self, sim: SimHost, venue: VenueSim, market: Market, ws: web.WebSocketResponse,
                 request: web.Request, public: bool = False) -> None:
        self.sim = sim
        self.public = public  # connected on one of the venue's public (market data) paths
        self.venue = venue
        self.market = market
        self.ws = ws
        self.request = request
        self.authenticated = False
        self.subscriptions: set[str] = set()
        self.state: dict[str, Any] = {}  # the venue plugin's own per-session notes
        self.opened_at = now_ms()
        self.last_client_message = self.opened_at
        self.sent = 0

    @property
    def credentials(self) -> Credentials:
        return self.sim.credentials_for(self.venue.exchange)

    @property
    def ledger(self) -> Ledger:
        return self.sim.ledger(self.venue.exchange, self.market)

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def send(self, message: Any) -> None:
        """Send a dict/list as JSON text, a str as text, bytes as a binary frame."""
        if self.ws.closed:
            return
        try:
            if isinstance(message, (bytes, bytearray)):
                await self.ws.send_bytes(bytes(message))
            else:
                await self.ws.send_str(message if isinstance(message, str) else dumps(message))
        except ConnectionError:  # the client (or a simulated fault) cut the socket: it gets nothing more
            return
        self.sent += 1

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code=code, message=reason.encode())


class VenueSim:
    """Base of the venue plugins. A plugin speaks its venue's real private-stream protocol.

    It verifies logins with the simulator's credentials (a bad signature gets the venue's own error
    and no data), acks subscriptions, answers pings, renders orders and fills in the venue's wire
    format, and serves the venue's REST endpoints (listenKey, trade history).
    """

    exchange: str = ""
    markets: frozenset[Market] = frozenset()
    # Seconds of client silence after which the venue drops a socket (None: never).
    client_silence_limit: float | None = None

    @property
    def secrets_seen(self) -> set[str]:
        """Every signature this venue checked and every listenKey it issued: what no log may hold."""
        return self.__dict__.setdefault("_secrets_seen", set())

    def note_request(self, request: web.Request) -> None:
        """Keep every signature a REST request carries (query or header), answered or failed on purpose."""
        values = [v for k, v in request.query.items() if k.lower() in _SIGNATURE_PARAMS]
        values += [v for k, v in request.headers.items() if k.lower() in _SIGNATURE_HEADERS]
        self.secrets_seen.update(v for v in values if v)

    @property
    def forgotten_orders(self) -> set[str]:
        """Order ids the order query no longer finds (venues keep order records for a while only)."""
        return self.__dict__.setdefault("_forgotten_orders", set())

    def queryable_orders(self, ledger: Ledger) -> list[SimOrder]:
        """The ledger's orders an order query can still find, oldest first."""
        return [o for o in ledger.orders.values() if o.order_id not in self.forgotten_orders]

    def raw_symbol(self, market: Market, symbol: str) -> str:
        """The venue's symbol for a unified one (BTC/USDT:USDT → BTCUSDT, BTC_USDT, BTC …)."""
        base, quote = symbol.split(":")[0].split("/")
        return f"{base}{quote}"

    def ws_paths(self, market: Market) -> list[str]:
        """WebSocket paths below `/<exchange>_<market>` (aiohttp route syntax)."""
        return [""]

    def rest_routes(self, market: Market) -> list[tuple[str, str, Handler]]:
        """(method, path below `/<exchange>_<market>`, handler(sim, market, request)) of the venue's REST endpoints."""
        return []

    # public market data -----------------------------------------------------------------------------------
    has_checksum = False  # the venue's book frames carry a checksum (the corrupt-checksum fault applies)

    def public_ws_paths(self, market: Market) -> list[str]:
        """WebSocket paths of the venue's public (market data) streams below `/<exchange>_<market>`; sessions
        on them have `public` set. A path may also be in `ws_paths` only if the plugin tells them apart itself."""
        return []

    def public_rest_routes(self, market: Market) -> list[tuple[str, str, Handler]]:
        """The venue's public REST endpoints ccxt.pro calls for market data (order book snapshots…)."""
        return []

    def market_frames(self, session: SimSession, symbol_market: SymbolMarket, step: MarketStep,
                      corrupt_checksum: bool = False) -> list[Any]:
        """Frames telling this public session about one market step of a symbol, for the topics it subscribed
        ([] if none): the book change (`step.book`; None when a fault dropped it), trades, ticker, candles.
        `corrupt_checksum`: write a wrong checksum into this step's book frame."""
        return []

    async def on_open(self, session: SimSession) -> bool:
        """Called when a socket connects; return False (after sending the venue's error) to refuse it."""
        return True

    async def on_message(self, session: SimSession, message: Any) -> None:
        """A client frame (decoded JSON, or str when not JSON): login, subscribe, ping…"""

    def expire_listen_keys(self) -> None:
        """Fault: every listenKey (or equivalent) of this venue stops being valid now."""

    def listen_key_expired_frames(self, session: SimSession) -> list[Any]:
        """What the venue tells a socket whose listenKey just expired."""
        return []

    def expected_trade(self, market: Market, fill: SimFill) -> dict[str, Any]:
        """What the venue reports for a ledger fill, in our Trade's terms (ids, amount, price, fee…).

        The default is the ledger as it is; a venue that counts in contracts, or charges a spot buy's
        fee in the base coin, says so by overriding. The chaos tests hold the store to this.
        """
        return {
            "trade_id": fill.trade_id, "order_id": fill.order_id, "side": fill.side.value, "amount": fill.amount,
            "price": fill.price, "fee_cost": fill.fee, "fee_currency": fill.fee_currency, "timestamp": fill.time,
        }

    def order_frames(self, session: SimSession, order: SimOrder) -> list[Any]:
        """Frames telling this session about an order's new state ([] if it is not subscribed)."""
        return []

    def fill_frames(self, session: SimSession, order: SimOrder, fill: SimFill) -> list[Any]:
        """Frames telling this session about one fill (and the order state it produced)."""
        return []

    # account state ----------------------------------------------------------------------------------------
    def expected_balance(self, account: SimAccount, asset: str) -> tuple[Decimal, Decimal, Decimal]:
        """(free, locked, total) of an asset as this venue reports the account; the default is the account as it
        is. A venue whose total counts unrealized PnL (Hyperliquid's accountValue) says so by overriding."""
        held = account.balance(asset)
        return held.free, held.locked, held.total

    def account_frames(self, session: SimSession, account: SimAccount, assets: list[str],
                       symbols: list[str]) -> list[Any]:
        """Frames telling this private session the new state of these balances (assets) and positions (symbols)
        after an order or fill moved them ([] if it is not subscribed to the account channels)."""
        return []
