"""The event publisher: a pipeline component that sends a bot's fills, orders, positions, balances, market data and
its strategies' own events to a dashboard backend's publisher socket (`/ws`), queued while the dashboard is down."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
import weakref
from collections import OrderedDict, deque
from decimal import Decimal
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlsplit

import aiohttp
import attrs
import msgspec
from loguru import logger

from framework.dashboard.ingest import RESERVED_TYPES  # the dashboard's own types: a publisher may not send them
from framework.dashboard.state import (
    balance_item,
    encode,
    fill_item,
    order_item_of_snapshot,
    order_item_of_update,
    position_item,
)
from framework.errors import ConfigError, LifecycleError
from framework.events import ConnectionKey, now_ms
from framework.retry import Backoff
from framework.sync_log import redact, register_secret

if TYPE_CHECKING:
    from framework.pool import ConnectionPool

ENV_PREFIX = "SYSTEM__"
# Fills and orders are never dropped: kept until the dashboard acks them, resent after a reconnect.
CRITICAL_TYPES = frozenset({"fill", "orders"})
HELD_WARNING = 100_000  # unacked fills and orders held in memory: a warning at every such many
STATUS_EVERY = 60.0  # seconds: a system_status at least this often (and whenever the connections change)
SLOW_RETRY = 30.0  # seconds between tries once max_retries failed in a row, or while refused (the backoff's cap)


class PublisherState(StrEnum):
    CREATED = "created"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKING_OFF = "backing_off"  # the dashboard is unreachable: queueing, trying again
    REFUSED = "refused"  # the dashboard refused the token (or is not a dashboard): queueing, trying slowly
    STOPPED = "stopped"


@attrs.frozen(kw_only=True)
class PublisherConfig:
    """Where and how to publish; `from_env()` reads the `SYSTEM__WEBSOCKET_*` variables.

    `publish_interval`: seconds between state messages: the newest position, balance and ticker of each
    (`position_update`, `balance_update`, `market_data`), and the check of the connections for a `system_status`. `max_retries`: failed connection attempts in a row (backing off
    from `retry_delay`, doubling, with jitter) before one error line and a try every 30 s from then on.
    `timeout`: seconds for a connect and for the dashboard's welcome. `queue_size`: state messages kept while
    the dashboard is down (the oldest dropped past it, counted); fills and orders are never dropped."""

    enabled: bool = False
    url: str = "ws://localhost:8000/ws"
    token: str | None = attrs.field(default=None, repr=False)
    publish_interval: float = 1.0
    max_retries: int = 10
    retry_delay: float = 1.0
    timeout: float = 10.0
    queue_size: int = 1000
    publisher_id: str = attrs.field(factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    def __attrs_post_init__(self) -> None:
        for name in ("publish_interval", "retry_delay", "timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{ENV_PREFIX}WEBSOCKET_{name.upper()} must be > 0, got {getattr(self, name)}")
        if self.max_retries < 1:
            raise ConfigError(f"{ENV_PREFIX}WEBSOCKET_MAX_RETRIES must be ≥ 1, got {self.max_retries}")
        if self.queue_size < 1:
            raise ConfigError(f"{ENV_PREFIX}WEBSOCKET_QUEUE_SIZE must be ≥ 1, got {self.queue_size}")
        if not self.publisher_id:
            raise ConfigError(f"{ENV_PREFIX}WEBSOCKET_PUBLISHER_ID must not be empty")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PublisherConfig:
        """The configuration in `environ` (default os.environ); a value that cannot be read is a ConfigError
        naming the variable. The token: SYSTEM__WEBSOCKET_DASHBOARD_TOKEN, else TRADESYNC_DASHBOARD_TOKEN."""
        env = os.environ if environ is None else environ
        fields: dict[str, Any] = {}
        readers = {"enabled": ("ENABLE_WEBSOCKET_PUBLISHING", _bool), "url": ("WEBSOCKET_DASHBOARD_URL", str),
                   "publish_interval": ("WEBSOCKET_PUBLISH_INTERVAL", float),
                   "max_retries": ("WEBSOCKET_MAX_RETRIES", int), "retry_delay": ("WEBSOCKET_RETRY_DELAY", float),
                   "timeout": ("WEBSOCKET_TIMEOUT", float), "queue_size": ("WEBSOCKET_QUEUE_SIZE", int),
                   "publisher_id": ("WEBSOCKET_PUBLISHER_ID", str)}
        for field, (suffix, read) in readers.items():
            name = ENV_PREFIX + suffix
            text = env.get(name, "").strip()
            if not text:
                continue
            try:
                fields[field] = read(text)
            except ValueError:
                raise ConfigError(f"{name}={text!r} cannot be read as {_KIND[read]}: fix or unset it") from None
        token = env.get(ENV_PREFIX + "WEBSOCKET_DASHBOARD_TOKEN", "").strip() or \
            env.get("TRADESYNC_DASHBOARD_TOKEN", "").strip()
        return cls(token=token or None, **fields)


_KIND = {float: "a number of seconds", int: "a whole number", str: "text"}


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


_KIND[_bool] = "true or false"


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a dashboard's publisher socket, in one line; None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # a port that is not a number raises here
    except ValueError as exc:
        return f"{redact(url)!r} is not a URL ({exc})"
    if parts.scheme not in ("ws", "wss"):
        return f"{redact(url)!r} is not a ws:// or wss:// URL: write it as ws://HOST:PORT/ws"
    if not parts.hostname:
        return f"{redact(url)!r} has no host: write it as ws://HOST:PORT/ws"
    return None


# --- the wire -------------------------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """`value` as JSON can carry it: Decimals as their exact text, enums as their value, keys as text, mappings
    with text keys, sequences as lists. Anything else is a TypeError naming it (a strategy finds out at once)."""
    cls = value.__class__
    if value is None or cls is str or cls is int or cls is bool or cls is float:
        return value
    if isinstance(value, Decimal):
        return _plain(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, ConnectionKey):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, deque)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float)):
        return value
    raise TypeError(f"cannot publish a {type(value).__name__}: give text, numbers, Decimals, lists and dicts")


def _plain(value: Decimal | None) -> str | None:
    """A Decimal as its exact text without an exponent (0.00001, not 1E-5); None stays None."""
    if value is None:
        return None
    return format(value, "f")


def ticker_data(ticker: Any) -> dict[str, Any]:
    """A ticker as a `market_data` message's data (the other shapes are the dashboard's own: state.py)."""
    return {"key": str(ticker.key), "symbol": ticker.symbol, "bid": _plain(ticker.bid), "ask": _plain(ticker.ask),
            "last": _plain(ticker.last), "mid": _plain(ticker.mid), "timestamp": ticker.timestamp}


def check_type(kind: str) -> str:
    """`kind` if a publisher may send it (a name of letters, digits and _, not the dashboard's own), else ValueError."""
    if not isinstance(kind, str) or not kind or len(kind) > 64 or not kind.replace("_", "a").isalnum() \
            or not kind.isascii():
        raise ValueError(f"message type {kind!r}: use a name of letters, digits and _ (e.g. trading_decision)")
    if kind in RESERVED_TYPES:
        raise ValueError(f"message type {kind!r} is the dashboard's own: name yours differently")
    return kind


class _Refused(Exception):
    """The dashboard answered but will not take us (a refused token, not a publisher endpoint)."""


# --- the publisher -------------------------------------------------------------------------------------------
_PUBLISHERS: weakref.WeakKeyDictionary[Any, Publisher] = weakref.WeakKeyDictionary()


def publisher_of(pool: Any) -> Publisher | None:
    """The running publisher of a pool, if any."""
    if pool is None:
        return None
    try:
        return _PUBLISHERS.get(pool)
    except TypeError:
        return None


def publish_from(strategy: Any, kind: str, data: Mapping[str, Any]) -> bool:
    """`BaseStrategy.publish`: the event to the publisher of the strategy's pool (a strategy without one: the
    process's only publisher), with the strategy's id; False (and nothing sent) when there is none."""
    publisher = publisher_of(getattr(strategy, "_pool", None))
    if publisher is None and getattr(strategy, "_pool", None) is None and len(_PUBLISHERS) == 1:
        publisher = next(iter(_PUBLISHERS.values()))
    if publisher is None:
        return False
    if not isinstance(data, Mapping):
        raise TypeError(f"publish({kind!r}, data): data must be a dict, got {type(data).__name__}")
    if "strategy_id" not in data:
        data = {**data, "strategy_id": strategy.strategy_id}
    return publisher.publish(kind, data)


class Publisher:
    """Publishes to a dashboard backend's `/ws` (see the dashboard protocol): `hello`, the `welcome`'s last seq,
    then messages `{type, data, seq, timestamp}` each acked by the dashboard.

    As a pipeline component (`start()` registers it when given a pool) it sends every stored fill (`fill`),
    every order entry change and every venue update of an order not placed here (`orders`) at once; every
    `publish_interval` the newest state of each position (`position_update`), balance (`balance_update`) and
    ticker (`market_data`) that changed; a `system_status` when the connections change (at least every minute).
    `publish(type, data)` sends anything else (strategies: `self.publish`), from any thread.

    While the dashboard is down everything waits in order: fills and orders until acked (never dropped: resent
    after the welcome's last seq; held in memory for the life of the process, a warning at every 100,000), other
    messages up to `queue_size` (the oldest dropped past it, counted in `dropped`). A bad URL or a refused token is
    one error line; the bot trades on."""

    def __init__(self, config: PublisherConfig, *, pool: ConnectionPool | None = None,
                 backoff: Backoff | None = None, component_name: str = "publisher") -> None:
        self.config = config
        self.pool = pool
        self.component_name = component_name
        self.backoff = backoff or Backoff(initial=config.retry_delay, maximum=max(SLOW_RETRY, config.retry_delay),
                                          jitter=config.retry_delay / 2, free=0)
        self.state = PublisherState.CREATED
        self.error: str | None = None  # the last reason it could not publish
        self.sent = 0  # messages written to a socket (resends included)
        self.acked = 0  # messages the dashboard acked
        self.dropped = 0  # state messages dropped past queue_size
        self.refused = 0  # messages the dashboard acked with an error (not journaled)
        self.attempts = 0  # connections tried
        self.welcomes = 0  # connections the dashboard welcomed (reconnects: one less)
        # Unacked messages in seq order: seq -> (type, data as JSON text, timestamp ms).
        self._pending: OrderedDict[int, tuple[str, str, int]] = OrderedDict()
        self._bounded: deque[int] = deque()  # seqs of the pending messages that may be dropped, in order
        self._unsent: deque[int] = deque()  # on the live socket: pending seqs not written to it yet
        self._next_seq = 1
        self._welcomed = False  # seqs before the first welcome are provisional (shifted past its last_seq)
        # The newest state of each position, balance and ticker not published yet: (type, shape, event).
        self._latest: dict[tuple, tuple[str, Any, Any]] = {}
        self._status_sig: Any = None
        self._status_at = 0.0
        self._wake = asyncio.Event()  # for the writer: something to send (or stop)
        self._acked_all = asyncio.Event()
        self._acked_all.set()
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._logged: set[str] = set()
        self._log = logger.bind(component="publisher", publisher=config.publisher_id, url=redact(config.url))
        if config.token:
            register_secret(config.token)

    # lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Register the component (with a pool) and start connecting; idempotent. A URL that cannot be a
        dashboard's is one error line and nothing starts."""
        if self._tasks or self.state is PublisherState.STOPPED:
            if self.state is PublisherState.STOPPED:
                raise LifecycleError("a stopped publisher cannot start again: make a new one")
            return
        problem = url_problem(self.config.url)
        if problem is not None:
            self.error = problem
            self._log.bind(error=problem).error("dashboard publishing is off: the dashboard URL is bad")
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._session = aiohttp.ClientSession()
        self.state = PublisherState.CONNECTING
        if self.pool is not None:
            self.pool.pipeline.register_component(
                self.component_name, self, ["trade", "execution", "order_update", "position", "balance", "ticker"])
            _PUBLISHERS[self.pool] = self
        self._spawn(self._connect_loop(), f"publisher-{self.config.publisher_id}")
        if self.pool is not None:
            self._spawn(self._periodic(), f"publisher-periodic-{self.config.publisher_id}")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop taking events, give the dashboard up to `timeout` seconds to ack what waits (when connected),
        then close. What is still unacked is named in a warning (it goes nowhere else). Idempotent."""
        if self.state is PublisherState.STOPPED:
            return
        if self.pool is not None and _PUBLISHERS.get(self.pool) is self:
            del _PUBLISHERS[self.pool]
        if self.pool is not None and self._tasks:
            await self.pool.pipeline.unregister_component(self.component_name, timeout=min(timeout, 2.0))
        if self.state is PublisherState.CONNECTED and self._pending:
            try:
                async with asyncio.timeout(timeout):
                    await self._acked_all.wait()
            except TimeoutError:
                pass
        refused = self.state is PublisherState.REFUSED or self._session is None
        self.state = PublisherState.STOPPED
        self._stopping.set()
        self._wake.set()
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        critical = len(self._pending) - len(self._bounded)
        if critical and not refused:  # a refusal said already that the events wait
            self._log.bind(fills_and_orders=critical, others=len(self._bounded)).warning(
                "publisher stopped with messages the dashboard never acked")

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # what goes out ------------------------------------------------------------------------------------------
    def publish(self, kind: str, data: Mapping[str, Any]) -> bool:
        """Queue one message of type `kind` (trading_decision, ai_decision, market_data, system_status,
        position_update, or a name of your own) for the dashboard; safe from any thread. Decimals go as their
        exact text. False once the publisher is stopped. A type or value it cannot send raises at once."""
        check_type(kind)
        if not isinstance(data, Mapping):
            raise TypeError(f"publish({kind!r}, data): data must be a dict, got {type(data).__name__}")
        text = encode(jsonable(data))
        if self.state is PublisherState.STOPPED:
            return False
        stamp = now_ms()
        if self._loop is None or threading.get_ident() == self._thread:
            self._enqueue(kind, text, stamp)
        else:
            self._loop.call_soon_threadsafe(self._enqueue, kind, text, stamp)
        return True

    def _put(self, kind: str, data: dict[str, Any]) -> None:
        """From the component's handlers (on the loop): data already plain."""
        if self.state is not PublisherState.STOPPED:
            self._enqueue(kind, encode(data), now_ms())

    def _enqueue(self, kind: str, text: str, stamp: int) -> None:
        seq = self._next_seq
        self._next_seq = seq + 1
        self._pending[seq] = (kind, text, stamp)
        self._acked_all.clear()
        if kind not in CRITICAL_TYPES:
            bounded = self._bounded
            bounded.append(seq)
            while len(bounded) > self.config.queue_size:
                old = bounded.popleft()
                if self._pending.pop(old, None) is not None:
                    self.dropped += 1
        elif not (len(self._pending) - len(self._bounded)) % HELD_WARNING:
            self._log.bind(fills_and_orders=len(self._pending) - len(self._bounded)).warning(
                "publisher holds many unacked fills and orders in memory")
        if self._ws is not None:
            self._unsent.append(seq)
            self._wake.set()

    # the pipeline component's handlers (coroutines: they run on the loop, never block) ----------------------
    async def on_trade_update(self, trade: Any) -> None:
        owner = None
        if trade.client_order_id and self.pool is not None:
            owner = self.pool.pipeline.router.owner(trade.client_order_id)
        self._put("fill", fill_item(trade, owner))

    async def on_execution_update(self, execution: Any) -> None:
        self._put("orders", order_item_of_snapshot(execution.order))

    async def on_order_update_update(self, update: Any) -> None:
        if self._placed_here(update):
            return  # order entry's executions say it (with path and latency)
        owner = self.pool.pipeline.router.owner(update.client_order_id) if (
            update.client_order_id and self.pool is not None) else None
        self._put("orders", order_item_of_update(update, owner))

    async def on_position_update(self, position: Any) -> None:
        self._latest[("position", position.state_key)] = ("position_update", position_item, position)

    async def on_balance_update(self, balance: Any) -> None:
        if not balance.is_delta:  # a movement alone (Binance spot balanceUpdate) is not a state to show
            self._latest[("balance", balance.state_key)] = ("balance_update", balance_item, balance)

    async def on_ticker_update(self, ticker: Any) -> None:
        self._latest[("ticker", ticker.key, ticker.symbol)] = ("market_data", ticker_data, ticker)

    def _placed_here(self, update: Any) -> bool:
        trading = getattr(self.pool, "trading", None)
        if trading is None or not update.client_order_id:
            return False
        gateway = trading.gateways.get(update.key)
        return gateway is not None and update.client_order_id in gateway.orders

    async def _periodic(self) -> None:
        """Every publish_interval: the newest state of each position, balance and ticker that changed; a
        system_status when the connections changed (and at least every STATUS_EVERY seconds)."""
        while True:
            latest, self._latest = self._latest, {}
            for kind, shape, event in latest.values():
                self._put(kind, shape(event))
            status = self.pool.get_connection_status()
            connections = {key: info.get("status") for key, info in status["connections"].items()}
            connections.update({f"{key} (market data)": info.get("state")
                                for key, info in status.get("public_connections", {}).items()})
            alerts = [f"{a.get('severity')} {a.get('name')} ({a.get('scope')})"
                      for a in status.get("pipeline", {}).get("alerts", [])]
            signature = (tuple(sorted(connections.items())), tuple(alerts))
            clock = time.monotonic()
            if signature != self._status_sig or clock - self._status_at >= STATUS_EVERY:
                self._status_sig, self._status_at = signature, clock
                sync = status["trade_sync"]
                self._put("system_status", {
                    "connections": connections, "alerts": alerts, "fills_stored": sync.get("stored"),
                    "dead_letters": sync.get("dead_letters"), "queued": len(self._pending),
                    "dropped": self.dropped})
            await asyncio.sleep(self.config.publish_interval)

    # the socket ---------------------------------------------------------------------------------------------
    async def _connect_loop(self) -> None:
        failures = 0  # failed attempts in a row
        reason_logged: str | None = None
        while not self._stopping.is_set():
            self.state = PublisherState.CONNECTING
            self.attempts += 1
            try:
                await self._session_once()
            except _Refused as exc:
                self.state = PublisherState.REFUSED
                self.error = str(exc)
                if reason_logged != self.error:
                    reason_logged = self.error
                    self._log.bind(error=self.error, queued=len(self._pending)).error(
                        "dashboard refused the publisher; the bot trades on, its events wait")
                delay = self.backoff.maximum
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any network trouble: back off and try again
                if self._stopping.is_set():
                    return
                was_connected = self.state is PublisherState.CONNECTED
                self.state = PublisherState.BACKING_OFF
                failures = 1 if was_connected else failures + 1
                self.error = _describe(exc)
                if failures == 1:
                    reason_logged = None
                    self._log.bind(error=self.error, queued=len(self._pending)).warning(
                        "dashboard unreachable; publisher queueing and retrying")
                if failures == self.config.max_retries:
                    self._log.bind(error=self.error, tries=failures, retry_every=self.backoff.maximum,
                                   queued=len(self._pending)).error(
                        "dashboard unreachable after max retries; the bot trades on, its events wait")
                delay = self.backoff.maximum if failures >= self.config.max_retries else self.backoff.delay(failures)
            else:
                delay = 0.0
            if self._stopping.is_set():
                return
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass

    async def _session_once(self) -> None:
        """One connection: hello, welcome, then write and read acks until the socket ends (always by raising)."""
        config = self.config
        headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        try:
            async with asyncio.timeout(config.timeout):
                ws = await self._session.ws_connect(
                    config.url, headers=headers, heartbeat=max(config.timeout / 2, 1.0), autoping=True,
                    timeout=aiohttp.ClientWSTimeout(ws_close=config.timeout), max_msg_size=4 * 1024 * 1024)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                raise _Refused(f"the dashboard at {redact(config.url)} refused the token (HTTP {exc.status}): "
                               f"set {ENV_PREFIX}WEBSOCKET_DASHBOARD_TOKEN to the token it printed") from None
            if exc.status in (400, 404, 405) or exc.status < 300:
                raise _Refused(f"{redact(config.url)} is not a dashboard publisher socket (HTTP {exc.status}): "
                               "point it at the dashboard's /ws, e.g. ws://HOST:8000/ws") from None
            raise
        except aiohttp.InvalidURL:
            raise _Refused(f"{redact(config.url)} is not a URL the publisher can open") from None
        self._ws = ws
        try:
            await ws.send_str(json.dumps({"type": "hello", "publisher": config.publisher_id}))
            async with asyncio.timeout(config.timeout):
                welcome = await ws.receive()
            last = _welcome_seq(welcome)
            self._welcomed_at(last)
            self.state = PublisherState.CONNECTED
            self.error = None
            self._log.bind(last_seq=last, queued=len(self._pending)).info("publisher connected to the dashboard")
            tasks = [asyncio.create_task(self._write(ws), name=f"publisher-write-{config.publisher_id}"),
                     asyncio.create_task(self._read(ws), name=f"publisher-read-{config.publisher_id}")]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                task.result()  # the one that ended raised: why the socket is gone
            raise ConnectionError("the publisher socket ended")
        finally:
            self._ws = None
            self._unsent.clear()
            if not ws.closed:
                await ws.close()

    def _welcomed_at(self, last: int) -> None:
        """The dashboard journaled up to `last` from us: that much is acked; the rest goes again, in order.
        The first welcome of this process shifts the provisional seqs past `last` (an earlier process with the
        same publisher id got that far: its seqs are not ours to repeat)."""
        self.welcomes += 1
        if not self._welcomed:
            self._welcomed = True
            if last:
                self._pending = OrderedDict((seq + last, item) for seq, item in self._pending.items())
                self._bounded = deque(seq + last for seq in self._bounded)
                self._next_seq += last
        self._ack(last)
        self._unsent = deque(self._pending)
        self._wake.set()

    def _ack(self, upto: int) -> None:
        pending, bounded = self._pending, self._bounded
        while pending:
            seq = next(iter(pending))
            if seq > upto:
                break
            pending.popitem(last=False)
            self.acked += 1
        while bounded and bounded[0] <= upto:
            bounded.popleft()
        if not pending:
            self._acked_all.set()

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            self._wake.clear()
            unsent, pending = self._unsent, self._pending
            while unsent:
                seq = unsent.popleft()
                item = pending.get(seq)
                if item is None:
                    continue  # acked meanwhile (a resend) or dropped past queue_size
                kind, text, stamp = item
                await ws.send_str(f'{{"type":"{kind}","seq":{seq},"timestamp":{stamp},"data":{text}}}')
                self.sent += 1
                pending = self._pending  # _ack may not replace it, but a welcome's shift does (not while live)
            await self._wake.wait()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                answer = _decode(message.data)
            except (msgspec.DecodeError, ValueError):
                continue
            if not isinstance(answer, dict):
                continue
            if answer.get("type") == "ack" and isinstance(answer.get("seq"), int):
                if answer.get("error"):
                    self.refused += 1
                    said = str(answer["error"])[:200]
                    if said not in self._logged:
                        self._logged.add(said)
                        self._log.bind(error=said).warning("dashboard did not take a published message")
                self._ack(answer["seq"])
            elif answer.get("type") == "error":
                said = str(answer.get("error", ""))[:200]
                raise ConnectionError(f"the dashboard closed the publisher socket: {said}")
        raise ConnectionError(f"the dashboard closed the publisher socket (code {ws.close_code})")

    # figures ------------------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        critical = len(self._pending) - len(self._bounded)
        return {"state": self.state.value, "url": redact(self.config.url), "publisher": self.config.publisher_id,
                "queued": len(self._pending), "fills_and_orders_unacked": critical, "dropped": self.dropped,
                "sent": self.sent, "acked": self.acked, "refused": self.refused, "attempts": self.attempts,
                "reconnects": max(self.welcomes - 1, 0),
                "error": self.error}


_decode = msgspec.json.decode


def _welcome_seq(message: aiohttp.WSMessage) -> int:
    if message.type is not aiohttp.WSMsgType.TEXT:
        raise ConnectionError(f"the dashboard sent no welcome ({message.type.name})")
    try:
        answer = json.loads(message.data)
    except ValueError:
        raise _Refused("the dashboard's first answer is not JSON: is the URL the dashboard's /ws?") from None
    if not isinstance(answer, dict) or answer.get("type") != "welcome" or not isinstance(answer.get("last_seq"), int):
        if isinstance(answer, dict) and answer.get("type") == "error":
            raise _Refused(f"the dashboard refused the publisher: {str(answer.get('error'))[:200]}")
        raise _Refused("the dashboard's first answer is not a welcome: is the URL the dashboard's /ws?")
    return answer["last_seq"]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = redact(str(exc)) or type(exc).__name__
    return text.splitlines()[0][:300]


async def start_publisher(pool: ConnectionPool, environ: Mapping[str, str] | None = None) -> Publisher | None:
    """The process's publisher when SYSTEM__ENABLE_WEBSOCKET_PUBLISHING is true (started, on the pool), else
    None. A setting it cannot read or a bad URL is one error line and None: the bot runs without it."""
    try:
        config = PublisherConfig.from_env(environ)
    except ConfigError as exc:
        logger.bind(component="publisher", error=str(exc)).error("dashboard publishing is off: a setting is bad")
        return None
    if not config.enabled:
        return None
    publisher = Publisher(config, pool=pool)
    await publisher.start()
    if not publisher._tasks:
        return None
    return publisher
