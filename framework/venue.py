"""The contract between the framework and a venue package: the frozen `ExchangeSpec` a venue exports (pure
handshake + normalize, its stream rules), the account's `Credentials` and the `Endpoints` it connects to.

Venue packages implement it (`exchanges/<venue>/`); the framework reads it and never imports a venue.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

import attrs

from framework.events import Market, OrderUpdate, Trade
from framework.sync_log import mask

if TYPE_CHECKING:
    import aiohttp


@attrs.frozen(kw_only=True)
class Credentials:
    """An account's keys for one venue; never in a repr or a log (the key shows its last 4 characters)."""

    api_key: str | None = attrs.field(default=None, repr=lambda v: mask(v))
    secret: str | None = attrs.field(default=None, repr=False)
    passphrase: str | None = attrs.field(default=None, repr=False)
    wallet_address: str | None = None

    def secrets(self) -> tuple[str, ...]:
        """The values that must never reach a log."""
        return tuple(v for v in (self.api_key, self.secret, self.passphrase) if v)


@attrs.frozen(kw_only=True)
class Endpoints:
    """Base URLs of one (venue, market): live by default, the simulator's when overridden."""

    ws: str
    rest: str


class MessageKind(StrEnum):
    EVENT = "event"  # carries orders/fills: pass to normalize
    ACK = "ack"  # login or subscription accepted
    PONG = "pong"  # answer to our ping (or the venue's own heartbeat)
    IGNORE = "ignore"  # anything else we read and drop
    LISTEN_KEY_EXPIRED = "listen_key_expired"  # the listenKey died: reconnect with a new one


class VenueStream(Protocol):
    """The socket-side rules of a venue; the only place that knows URLs, listenKeys and pings."""

    ping_interval: float  # seconds between our pings
    silence_limit: float  # seconds without any message before the socket counts as lost
    listen_key_interval: float | None  # seconds between listenKey keepalives, None if none
    plain_text: frozenset[str]  # texts the venue sends as they are ("pong"); any other frame must be a JSON object
    binary_markets: frozenset[Market]  # markets whose frames are binary (protobuf); elsewhere bytes are malformed

    def endpoints(self, market: Market) -> Endpoints: ...

    def ws_url(self, market: Market, endpoints: Endpoints, listen_key: str | None) -> str: ...

    def acks_expected(self, market: Market) -> int: ...

    def ping(self, now_ms: int, market: Market | None = None) -> dict | str | None: ...  # None: ping frames

    # Optional: `ws_headers(market) -> dict[str, str]`, extra HTTP headers for the WebSocket handshake.

    def classify(self, message: Any, market: Market) -> MessageKind: ...  # raises AuthError / SubscriptionError

    async def open_listen_key(
        self, http: aiohttp.ClientSession, credentials: Credentials, market: Market, endpoints: Endpoints, now_ms: int
    ) -> str | None: ...

    async def keep_listen_key(
        self,
        http: aiohttp.ClientSession,
        credentials: Credentials,
        market: Market,
        endpoints: Endpoints,
        listen_key: str,
        now_ms: int,
    ) -> None: ...


class NoListenKey:
    """For venues whose socket needs no listenKey (or equivalent fetched over REST) and no upkeep."""

    listen_key_interval: float | None = None

    async def open_listen_key(self, http: Any, credentials: Any, market: Market, endpoints: Endpoints,
                              now_ms: int) -> None:
        return None

    async def keep_listen_key(self, http: Any, credentials: Any, market: Market, endpoints: Endpoints,
                              listen_key: str, now_ms: int) -> None:
        return None


@attrs.frozen(kw_only=True)
class MarketDataRules:
    """How a venue's public market data is read through ccxt.pro (framework/marketdata)."""

    ccxt_id: str  # the ccxt.pro class, e.g. "binance", "gate"
    options: dict[Market, dict[str, Any]] = attrs.field(factory=dict)  # ccxt options per market (defaultType…)
    # The ccxt market entry of a unified symbol (what `load_markets` would have given): offline (the simulator)
    # the client gets these through `set_markets` instead of downloading the venue's market list.
    ccxt_market: Callable[[Market, str], dict]
    # Base units per contract of the amounts ccxt reports for a unified symbol (None: they are in base units).
    contract_size: Callable[[Market, str], Any] = lambda market, symbol: None
    timeframes: tuple[str, ...] = ("1m", "5m", "15m", "1h")  # candle timeframes the venue streams
    # The `limit` to give ccxt's watch_order_book for a wanted depth (None: the venue's default channel).
    book_limit: Callable[[Market, int], int | None] = lambda market, depth: None
    checksum: bool = False  # the venue's book frames carry a checksum ccxt.pro verifies
    # Markets whose candle volume ccxt reads from the venue's quote volume (Gate spot's `v`): it is handed on as
    # the candle's quote_volume, never as a base volume.
    quote_candle_volume: frozenset[Market] = frozenset()
    # For venues whose book deltas carry continuous update ids that ccxt.pro does not check (Bybit, Gate spot,
    # MEXC): a raw frame's (venue symbol id, first update id, last update id, is a full book) when it is a book
    # frame, else None. The framework checks each delta continues the last and resyncs the book (un-watch,
    # watch: a fresh snapshot) at a gap, instead of letting ccxt apply deltas over a missing one.
    book_sequence: Callable[[Any, Market], tuple[str, int, int, bool] | None] | None = None
    # ccxt's un_watch_order_book names the stream from `params["limit"]`, not from the watch (Bybit, Gate): it is
    # given the limit the watch used, or it unsubscribes a stream that was never subscribed.
    unwatch_book_limit: bool = False
    # The unified symbols the venue lists offline (the simulator's table); live, ccxt's market list decides.
    listed: Callable[[Market], Any] | None = None
    ccxt_config: dict[str, Any] = attrs.field(factory=dict)  # extra constructor config


@attrs.frozen(kw_only=True)
class AccountRules:
    """How a venue's account state is read: its private account frames, and the REST snapshot through ccxt
    (`fetch_balance`, `fetch_positions`) taken on every (re)connect."""

    # The venue's account frames → framework.account BalanceUpdate / PositionUpdate ([] for any other frame).
    normalize: Callable[[Any, Market], list]
    balance_params: Callable[[Market], dict] = lambda market: {}  # extra ccxt params of fetch_balance
    positions_params: Callable[[Market], dict] = lambda market: {}  # extra ccxt params of fetch_positions
    positions: frozenset[Market] = frozenset({Market.FUTURE})  # markets that have positions
    # A positions frame lists every open position, and leaves closed ones out (Bitget): normalize is then called
    # with `held=` the positions the connection holds open, to report the missing ones flat.
    positions_in_full: bool = False
    # How the REST snapshot is read (one of the two; ccxt's unified figures differ from ours on every venue here):
    # `snapshot` turns ccxt's fetch_balance / fetch_positions answers into events, (market, balance, positions,
    # timestamp) -> events (Binance USD-M: ccxt's total counts unrealized PnL); `fetch` reads the account itself
    # with the ccxt client, async (client, market, now ms) -> events (MEXC: ccxt's futures figures leave the
    # position margin out).
    snapshot: Callable[[Market, dict, list, int], list] | None = None
    fetch: Callable[[Any, Market, int], Awaitable[list]] | None = None

    def __attrs_post_init__(self) -> None:
        if (self.snapshot is None) == (self.fetch is None):
            raise ValueError("AccountRules needs exactly one of snapshot= (read ccxt's answers) or fetch= (read the "
                             "account with the ccxt client)")


@attrs.frozen(kw_only=True)
class WsTradingRules:
    """A venue's WebSocket order entry (framework/orders). The framework owns the socket, the correlation by
    request id, the timeouts and every retry decision; the venue module only writes and reads the frames."""

    # The trading socket's URL (its own socket: Bybit /v5/trade, Binance USD-M ws-fapi), or None with
    # `shared=True`: requests ride the private stream's own socket (Binance spot WS-API, Gate, Hyperliquid).
    url: Callable[[Market, Endpoints], str] | None = None
    shared: bool = False
    # Frames to send once the socket is open, before any order ([] when requests are signed one by one), and
    # the answer to them: Outcome ACCEPTED (logged in) / REJECTED (refused, with the venue's message), or None
    # for a frame that is not the login's answer. (credentials, market, now ms, request id) -> frames.
    login: Callable[[Credentials, Market, int, str], list] = lambda credentials, market, now, req_id: []
    login_answer: Callable[[Any, Market], Any] = lambda message, market: None
    # One request: (op, subject, credentials, market, request id, now ms, prepared) -> frame. op is "place"
    # (subject an OrderRequest), "cancel" / "query" (an OrderRef) or "amend" (an Amend); `prepared` is what
    # OrderRules.prepare made for this order (None for venues without it).
    encode: Callable[..., Any]
    # A frame the socket read: (request id, Outcome) when it answers a request; (None, Outcome AMBIGUOUS) for an
    # error that names no request (every request in flight becomes ambiguous); None for anything else
    # (stream events, pongs: the private stream's reader takes them on a shared socket).
    decode: Callable[[Any, Market], tuple[str | None, Any] | None]
    ops: frozenset[str] = frozenset({"place", "cancel"})  # what the socket can do ("amend", "query")
    validity_ms: int = 5000  # the request's own validity window the venue enforces (recvWindow …)
    ping: Callable[[int], Any] | None = None  # our keepalive frame on an own socket (None: protocol pings)
    ping_interval: float = 20.0
    opt_in: bool = False  # granted per account (Bitget): used only when configured, and probed at start
    rate: float = 10.0  # requests a second the venue allows on it (a token bucket)
    burst: int = 10
    max_in_flight: int | None = None  # requests awaiting an answer at once (Hyperliquid: 100)
    request_id: Callable[[int], str] = str  # our n-th request's id as the venue takes it (int ids: str(n))


@attrs.frozen(kw_only=True)
class RestOrderRules:
    """A venue's REST order entry through its ccxt client (the fallback, or the only path). Each is async
    (client, subject[, prepared]) -> Outcome; exceptions ccxt raises are the venue's to classify
    (framework.orders.ccxt_outcome)."""

    place: Callable[..., Awaitable[Any]]  # (client, OrderRequest, Prepared | None) -> Outcome
    cancel: Callable[..., Awaitable[Any]]  # (client, OrderRef) -> Outcome
    query: Callable[..., Awaitable[Any]]  # (client, OrderRef) -> Outcome ACCEPTED (state) | NOT_FOUND | AMBIGUOUS
    amend: Callable[..., Awaitable[Any]] | None = None  # (client, Amend) -> Outcome
    validity_ms: int = 5000  # the validity window of a REST request (its signed timestamp's)
    rate: float = 10.0  # requests a second (ccxt's limiter spaces them on the live venue)


@attrs.frozen(kw_only=True)
class OrderRules:
    """How orders are placed on a venue (framework/orders): client ids, the WebSocket path, the REST path."""

    markets: frozenset[Market]  # markets where an API key may place orders
    closed: dict[Market, str] = attrs.field(factory=dict)  # markets where it may not, with the venue's reason
    # (market, strategy prefix, n) -> the client id the venue's normalize will report for the order (unique for
    # a unique n, within the venue's length and charset rules, the wire form being the venue's business: Gate
    # sends it as "t-" + id). Raises ValueError naming the rule when the prefix cannot make one.
    client_id: Callable[[Market, str, int], str]
    # (request, credentials, market, now ms) -> Prepared: the signed request every attempt resends (Hyperliquid).
    prepare: Callable[..., Any] | None = None
    ws: WsTradingRules | None = None
    rest: RestOrderRules
    order_types: frozenset[str] = frozenset({"limit", "market", "ioc", "post_only"})
    # Market orders go out with a reference price (Hyperliquid: an IOC limit through it): the gateway gives the
    # book's side the order takes (the request's `price`) when the strategy gives none.
    market_reference: bool = False
    # Markets where TP/SL orders can be placed (conditional orders); elsewhere a clear error.
    conditional: frozenset[Market] = frozenset()
    # True when the client id of a cancelled order stops naming it (Binance renames it): cancels and queries go
    # by venue order id once known.
    renames_on_cancel: bool = False
    # A query answering NOT_FOUND must mean the venue has no such order: where a lookup by client id misses
    # finished orders (Gate), `RestOrderRules.query` looks further itself (finished orders, fills) first.
    notes: str = ""  # the venue's limits in one paragraph (README, get_status)


Handshake = Callable[["Credentials", Market, int, "str | None"], list]
Normalize = Callable[[Any, Market], "list[Trade | OrderUpdate]"]


@attrs.frozen(kw_only=True)
class ExchangeSpec:
    name: str
    markets: frozenset[Market]
    credentials_required: tuple[str, ...]  # Credentials fields this venue needs
    handshake: Handshake
    normalize: Normalize
    stream: VenueStream | None = None
    backfill: Any = None  # framework.backfill.BackfillRules: how REST history is read through ccxt
    market_data: MarketDataRules | None = None  # how its public market data is read through ccxt.pro
    account: AccountRules | None = None  # how its balances and positions are read (private frames, REST snapshot)
    orders: OrderRules | None = None  # how orders are placed (WebSocket, REST through ccxt)
