"""The global, reference-counted pool of private connections: one socket per ConnectionKey, shared."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

import attrs
from loguru import logger

from framework.connection import BaseConnection
from framework.errors import ConfigError, LifecycleError
from framework.events import ConnectionKey, Event, Trade, now_ms
from framework.progress import Progress
from framework.store import DEFAULT_STORE_URL, TradeStore, open_store
from framework.sync_log import TradeSyncLogger
from framework.trade_sync import TradeSync


class Consumer(Protocol):
    """What the pool delivers to (a BaseStrategy is one)."""

    client_order_id_prefix: str | None

    def deliver(self, event: Event) -> None: ...


class Connector(Protocol):
    key: ConnectionKey

    def create_connection(self, pool: ConnectionPool) -> BaseConnection: ...


@attrs.define(kw_only=True)
class Subscription:
    strategy_id: str
    consumer: Consumer | None
    symbols: frozenset[str] | None

    def wants_symbol(self, event: Event) -> bool:
        return self.symbols is None or event.symbol in self.symbols or event.symbol_raw in self.symbols


class ConnectionPool:
    """Opens a key's connection for its first subscriber and closes it when the last one leaves.

    A lock per key means any number of strategies starting at once on one key open one socket.
    Fills go through TradeSync (dedup, store, log) and then to the strategies they belong to:
    by client-order-id prefix when one matches, else by symbol.
    """

    def __init__(
        self,
        store_url: str | None = None,
        log_dir: str | Path = "logs",
        *,
        store: TradeStore | None = None,
        spool_dir: str | Path | None = None,
        **trade_sync_options: Any,
    ) -> None:
        self.store_url = store_url or DEFAULT_STORE_URL
        self.store = store or open_store(self.store_url)
        self.sync_log = TradeSyncLogger(log_dir)
        trade_sync_options.setdefault("spool_path", spool_path_for(self.store, spool_dir))
        self.trade_sync = TradeSync(self.store, self.sync_log, **trade_sync_options)
        self._connections: dict[ConnectionKey, BaseConnection] = {}
        self._subscribers: dict[ConnectionKey, dict[str, Subscription]] = {}
        self._strategies: dict[str, list[ConnectionKey]] = {}
        self._key_locks: dict[ConnectionKey, asyncio.Lock] = {}
        self._consumer_progress: dict[str, Progress] = {}
        self._start_lock = asyncio.Lock()
        self._state = "created"

    # lifecycle -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._state == "running"

    async def start(self) -> None:
        async with self._start_lock:
            if self._state == "running":
                return
            if self._state != "created":
                raise LifecycleError(f"connection pool is {self._state}; create a new one")
            self.sync_log.open()
            try:
                await self.store.start()
            except BaseException as exc:
                self.sync_log.error("store failed to open", store=self.store.url, error=str(exc))
                self.sync_log.close()
                raise
            await self.trade_sync.start()
            self._state = "running"
            self.sync_log.event("connection pool started", store=self.store.url)

    async def stop(self, timeout: float = 10.0) -> None:
        """Unsubscribe everyone, close every connection, write what is queued, close the store."""
        if self._state != "running":
            self._state = "stopped"
            return
        self._state = "stopping"
        for strategy_id in list(self._strategies):
            await self.unsubscribe_strategy(strategy_id)
        await self.trade_sync.stop(timeout)
        await self.store.stop()
        self.sync_log.event(
            "connection pool stopped", **{k: v for k, v in self.trade_sync.stats().items() if v}
        )
        self.sync_log.close()
        self._state = "stopped"

    async def __aenter__(self) -> ConnectionPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # subscriptions ---------------------------------------------------------------------------
    async def subscribe_strategy(
        self,
        strategy_id: str,
        exchange_connectors: Sequence[Connector],
        symbols: Iterable[str] | None = None,
        *,
        consumer: Consumer | None = None,
    ) -> list[ConnectionKey]:
        """Subscribe a strategy to every connector's key, opening the sockets that are not open yet."""
        if not exchange_connectors:
            raise ConfigError(f"strategy {strategy_id!r} has no exchange_connectors: give it at least one")
        if strategy_id in self._strategies:
            raise ConfigError(f"strategy id {strategy_id!r} is already subscribed: strategy ids must be unique")
        await self.start()
        if self._state != "running":
            raise LifecycleError(f"connection pool is {self._state}")
        subscription = Subscription(
            strategy_id=strategy_id, consumer=consumer, symbols=frozenset(symbols) if symbols else None
        )
        self._strategies[strategy_id] = []
        if consumer is not None:
            self._consumer_progress[strategy_id] = getattr(consumer, "progress", None) or Progress()
        try:
            for connector in _unique_by_key(exchange_connectors):
                await self._add_subscriber(connector, subscription)
                self._strategies[strategy_id].append(connector.key)
        except BaseException:
            await self.unsubscribe_strategy(strategy_id)
            raise
        self.sync_log.strategy(strategy_id, "subscribed", keys=",".join(map(str, self._strategies[strategy_id])))
        return list(self._strategies[strategy_id])

    async def _add_subscriber(self, connector: Connector, subscription: Subscription) -> None:
        key = connector.key
        bind = getattr(connector, "bind_pool", None)
        if bind is not None:
            bind(self)
        async with self._key_lock(key):
            if key not in self._connections:
                await self.trade_sync.prime(key)
                connection = connector.create_connection(self)
                await connection.start()
                self._connections[key] = connection
                self.sync_log.log_trade_fetch_start(key.exchange, "*", "websocket", key=str(key))
            self._subscribers.setdefault(key, {})[subscription.strategy_id] = subscription

    async def unsubscribe_strategy(self, strategy_id: str) -> None:
        """Remove a strategy from every key; a key's last subscriber leaving closes its socket. Idempotent."""
        keys = self._strategies.pop(strategy_id, None)
        if keys is None:
            return
        self._consumer_progress.pop(strategy_id, None)
        for key in keys:
            async with self._key_lock(key):
                subscribers = self._subscribers.get(key, {})
                subscribers.pop(strategy_id, None)
                if not subscribers:
                    self._subscribers.pop(key, None)
                    connection = self._connections.pop(key, None)
                    if connection is not None:
                        try:
                            await connection.stop()
                        except Exception as exc:  # noqa: BLE001 - closing must go on for the other keys
                            logger.bind(key=str(key), error=str(exc)).error("connection failed to close")
        self.sync_log.strategy(strategy_id, "unsubscribed")

    def _key_lock(self, key: ConnectionKey) -> asyncio.Lock:
        lock = self._key_locks.get(key)
        if lock is None:
            lock = self._key_locks[key] = asyncio.Lock()
        return lock

    def connection(self, key: ConnectionKey) -> BaseConnection | None:
        return self._connections.get(key)

    # the data path ---------------------------------------------------------------------------
    def dispatch(self, key: ConnectionKey, events: Iterable[Event]) -> int:
        """Events from a connection: fills deduplicated and queued for the store, then routed. Never blocks."""
        subscribers = self._subscribers.get(key)
        count = 0
        for event in events:
            count += 1
            if isinstance(event, Trade):
                if not self.trade_sync.accept(event):
                    continue
            else:
                self.trade_sync.record_order(event)
            if subscribers:
                for subscription in self._route(subscribers, event):
                    subscription.consumer.deliver(event)
        return count

    @staticmethod
    def _route(subscribers: dict[str, Subscription], event: Event) -> list[Subscription]:
        coid = event.client_order_id
        if coid:
            owner, best = None, 0
            for sub in subscribers.values():
                prefix = sub.consumer.client_order_id_prefix if sub.consumer is not None else None
                if prefix and len(prefix) > best and coid.startswith(prefix):
                    owner, best = sub, len(prefix)
            if owner is not None:
                return [owner]
        return [s for s in subscribers.values() if s.consumer is not None and s.wants_symbol(event)]

    async def backfill_symbols(self, key: ConnectionKey) -> list[str]:
        """The symbols to backfill on a key: those its strategies asked for, plus those already stored."""
        wanted = set()
        for subscription in self._subscribers.get(key, {}).values():
            wanted |= {s for s in subscription.symbols or () if "/" in s}
        wanted |= set(await self.store.symbols(key))
        return sorted(wanted)

    def on_reconnected(self, key: ConnectionKey, gap_since: int | None) -> None:
        """A connection is live again after a drop: note the gap (fills in it come back by backfill)."""
        gap_ms = now_ms() - gap_since if gap_since else None
        self.sync_log.connection(str(key), "gap", since=gap_since, gap_ms=gap_ms)

    def dead_letter(self, key: ConnectionKey, raw: Any, error: str) -> None:
        self.trade_sync.record_dead_letter(str(key), raw, error)

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every event received so far is delivered to its strategies and stored."""
        async with asyncio.timeout(timeout):
            targets = [(p, p.submitted) for p in self._consumer_progress.values()]
            await self.trade_sync.progress.wait_until(self.trade_sync.progress.submitted, None)
            for progress, target in targets:
                await progress.wait_until(target, None)

    # status ------------------------------------------------------------------------------------
    def get_connection_status(self) -> dict[str, Any]:
        connections = {}
        for key, connection in self._connections.items():
            info = connection.status_dict()
            info["subscriber_count"] = len(self._subscribers.get(key, {}))
            info["subscribers"] = sorted(self._subscribers.get(key, {}))
            connections[str(key)] = info
        return {
            "total_connections": len(self._connections),
            "total_strategies": len(self._strategies),
            "connections": connections,
            "strategies": {sid: [str(k) for k in keys] for sid, keys in self._strategies.items()},
            "trade_sync": self.trade_sync.stats(),
        }


def spool_path_for(store: TradeStore, spool_dir: str | Path | None) -> Path:
    """Where fills wait while the store is down: beside a SQLite file, else under data/spool."""
    if spool_dir is None:
        db_path = getattr(store, "path", None)
        spool_dir = Path(db_path).parent / "spool" if db_path is not None else Path("data") / "spool"
    digest = hashlib.sha1(store.url.encode()).hexdigest()[:12]
    return Path(spool_dir) / f"trade_sync_{digest}.spool"


def _unique_by_key(connectors: Sequence[Connector]) -> list[Connector]:
    seen: dict[ConnectionKey, Connector] = {}
    for connector in connectors:
        seen.setdefault(connector.key, connector)
    return list(seen.values())


_pool: ConnectionPool | None = None


async def initialize_connection_pool(
    store_url: str | None = None, log_dir: str | Path = "logs", **options: Any
) -> ConnectionPool:
    """Create and start the global pool. An already running global pool is an error: shut it down first."""
    global _pool
    if _pool is not None and _pool._state in ("running", "created"):
        raise LifecycleError("the connection pool is already initialized: call shutdown_connection_pool() first")
    _pool = ConnectionPool(store_url, log_dir, **options)
    await _pool.start()
    return _pool


def get_connection_pool() -> ConnectionPool:
    """The global pool; created with defaults (not yet started) if nobody initialized it."""
    global _pool
    if _pool is None or _pool._state in ("stopping", "stopped"):
        _pool = ConnectionPool()
    return _pool


async def shutdown_connection_pool(timeout: float = 10.0) -> None:
    """Stop the global pool: unsubscribe everyone, flush, close sockets and the store. Idempotent."""
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        await pool.stop(timeout)
