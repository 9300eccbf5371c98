"""The global, reference-counted pool of private connections: one socket per ConnectionKey, shared."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Protocol, Sequence

import attrs
from loguru import logger

from framework.connection import BaseConnection
from framework.errors import ConfigError, LifecycleError, StoreError
from framework.events import ConnectionKey, Event, Trade, now_ms, with_delivery
from framework.store import DEFAULT_STORE_URL, TradeStore, open_store
from framework.sync_log import TradeSyncLogger
from framework.trade_sync import TradeSync


class Consumer(Protocol):
    """What the pool delivers to (a BaseStrategy is one). Fills come after they are stored, with their
    seq; a consumer that fell behind (or just started) reads on from the store with `catch_up()`."""

    strategy_id: str
    client_order_id_prefix: str | None
    last_seq: int | None  # the last stored fill it has processed (its durable delivery position)
    redelivery_bound: int | None  # after an unclean end: fills up to this seq come marked redelivered
    unconfirmed: int  # fills it has seen from the spool whose stored copy it has not seen yet

    def deliver(self, event: Event) -> None: ...

    def amended(self, trade: Trade) -> None: ...

    def begin_delivery(self, position: int | None, redelivery_bound: int | None) -> None: ...

    def request_catch_up(self) -> None: ...

    def expect_seen(self, keys: list[tuple]) -> None: ...

    async def drained(self) -> None: ...


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


CATCH_UP_PAGE = 500
POSITION_EVERY = 0.5  # seconds between writes of the strategies' delivery positions


class ConnectionPool:
    """Opens a key's connection for its first subscriber and closes it when the last one leaves.

    A lock per key means any number of strategies starting at once on one key open one socket.
    Fills go through TradeSync (dedup, store, log) and, once stored, to the strategies they belong
    to: the strategy whose client-order-id prefix is the longest match (running or not: a stopped
    owner gets its fills at its next start), else every strategy on the symbol. Each strategy's
    delivery position is kept in the store, so nothing stored is missed or handed over twice.
    """

    def __init__(
        self,
        store_url: str | None = None,
        log_dir: str | Path = "logs",
        *,
        store: TradeStore | None = None,
        spool_dir: str | Path | None = None,
        backfill_since_ms: int = 24 * 3600 * 1000,
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
        self._consumers: dict[str, Consumer] = {}
        self._prefixes: dict[str, str] = {}  # every strategy declared here or known to the store, running or not
        self._positions_written: dict[str, int] = {}
        self._base_seq: int | None = None  # the store's last seq when it opened (before the spool replay)
        self.backfill_since_ms = backfill_since_ms
        self._tasks: set[asyncio.Task] = set()
        self._position_lock = asyncio.Lock()
        self._unresolved: set[str] = set()  # subscribed while the store was down, no position written yet
        self._start_lock = asyncio.Lock()
        self._state = "created"
        self.trade_sync.on_stored = self._deliver_stored
        self.trade_sync.on_amended = self._deliver_amended
        self.trade_sync.on_resync = self._resync
        self.trade_sync.on_spooled = self._deliver_spooled  # durable on disk: strategies need not wait

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
                await self._store_opened()
            except StoreError as exc:
                if not exc.transient:
                    self.sync_log.error("store failed to open", store=self.store.url, error=str(exc))
                    self.sync_log.close()
                    raise
                # Unreachable: run anyway. Fills are recorded in the spool and stored when it is back.
                logger.bind(store=self.store.url, error=str(exc)).error(
                    "store unreachable at start: recording fills to the spool until it is back")
                self.sync_log.error("store unreachable at start: recording to the spool", store=self.store.url,
                                    error=str(exc))
                self.trade_sync.store_ready.clear()
                self.trade_sync.store_failing = True
                self._spawn(self._open_store_later(), "store-reopen")
            except BaseException as exc:
                self.sync_log.error("store failed to open", store=self.store.url, error=str(exc))
                self.sync_log.close()
                raise
            await self.trade_sync.start()
            self._spawn(self._keep_positions(), "delivery-positions")
            self._state = "running"
            self.sync_log.event("connection pool started", store=self.store.url)

    async def _store_opened(self) -> None:
        self._base_seq = await self.store.max_seq()
        self._prefixes = {**await self.store.delivery_prefixes(), **self._prefixes}

    async def _open_store_later(self) -> None:
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            try:
                await self.store.start()
                await self._store_opened()
                for consumer in list(self._consumers.values()):
                    if consumer.last_seq is None:
                        await self.resolve_position(consumer)
                for strategy_id in list(self._unresolved):  # gone already: its start point still counts
                    if strategy_id not in self._consumers and await self.store.get_delivery(strategy_id) is None:
                        await self.store.set_delivery(strategy_id, self._base_seq, False,
                                                      self._prefixes.get(strategy_id))
                    self._unresolved.discard(strategy_id)
            except StoreError as exc:
                if delay == 0.5:  # said loudly once at start; from here on only when debugging
                    self.sync_log.error("store still unreachable", store=self.store.url, error=str(exc))
                logger.bind(store=self.store.url, error=str(exc)).debug("store still unreachable")
                delay = min(delay * 2, 5.0)
                continue
            self.sync_log.event("store is back: writing the spool", store=self.store.url)
            logger.bind(store=self.store.url).warning("store is back: writing the spool")
            self.trade_sync.store_ready.set()
            for key in list(self._connections):  # replays of what is stored now count as duplicates again
                await self.trade_sync.prime(key)
            return

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, timeout: float = 10.0) -> None:
        """Unsubscribe everyone, close every connection, write what is queued, close the store."""
        if self._state != "running":
            self._state = "stopped"
            return
        self._state = "stopping"
        for strategy_id in list(self._strategies):
            await self.unsubscribe_strategy(strategy_id)
        await self.trade_sync.stop(timeout)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
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
        try:
            if consumer is not None:
                self._consumers[strategy_id] = consumer
                self._prefixes[strategy_id] = consumer.client_order_id_prefix or strategy_id
                consumer.begin_delivery(None, None)  # reads what it missed from the store first
                consumer.expect_seen(self._take_seen(strategy_id))
                if not self.trade_sync.store_ready.is_set():
                    self._unresolved.add(strategy_id)  # its start point is written once the store is back
                else:
                    try:
                        await self.resolve_position(consumer)
                    except StoreError as exc:  # its catch-up resolves it once the store answers
                        logger.bind(strategy=strategy_id, error=str(exc)).warning("delivery position not read yet")
            for connector in _unique_by_key(exchange_connectors):
                self._strategies[strategy_id].append(connector.key)
                await self._add_subscriber(connector, subscription)
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
            # Subscribed before the socket opens: the start-up backfill knows the symbols, and what
            # arrives first (a venue's snapshot) is routed like everything after it.
            self._subscribers.setdefault(key, {})[subscription.strategy_id] = subscription
            if key not in self._connections:
                await self.trade_sync.prime(key)
                connection = connector.create_connection(self)
                backfiller = getattr(connection, "backfiller", None)
                if backfiller is not None:
                    backfiller.lookback_ms = self.backfill_since_ms
                await connection.start()
                self._connections[key] = connection
                self.sync_log.log_trade_fetch_start(key.exchange, "*", "websocket", key=str(key))
            elif subscription.symbols:
                self._connections[key].symbols_changed()

    async def unsubscribe_strategy(self, strategy_id: str) -> None:
        """Remove a strategy from every key; a key's last subscriber leaving closes its socket. Idempotent."""
        keys = self._strategies.pop(strategy_id, None)
        if keys is None:
            return
        consumer = self._consumers.pop(strategy_id, None)
        if consumer is not None and self._state == "stopping":  # stopped with the pool, not by itself
            await self.write_position(consumer, running=True)
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
        """Events from a connection. Fills are deduplicated and queued for the store; they reach their
        strategies once stored (`_deliver_stored`). Order updates are routed at once. Never blocks."""
        count = 0
        accept, record_order = self.trade_sync.accept, self.trade_sync.record_order
        for event in events:
            count += 1
            if isinstance(event, Trade):
                accept(event)
                continue
            record_order(event)
            subscribers = self._subscribers.get(key)
            if subscribers:
                for subscription in self._route(subscribers, event):
                    subscription.consumer.deliver(event)
        return count

    def _deliver_stored(self, trades: list[Trade]) -> None:
        for trade in trades:
            subscribers = self._subscribers.get(trade.key)
            if subscribers:
                for subscription in self._route(subscribers, trade):
                    subscription.consumer.deliver(trade)

    def _deliver_spooled(self, trades: list[Trade]) -> None:
        self._deliver_stored([with_delivery(t, owner_unknown=t.client_order_id is None) for t in trades])

    def _deliver_amended(self, trades: list[Trade]) -> None:
        for trade in trades:
            subscribers = self._subscribers.get(trade.key)
            if subscribers:
                for subscription in self._route(subscribers, trade):
                    subscription.consumer.amended(trade)

    def _resync(self) -> None:
        """Fills may be committed without having been handed on: every strategy reads on from the store."""
        for consumer in self._consumers.values():
            consumer.request_catch_up()

    def declare_strategy(self, strategy_id: str, prefix: str) -> None:
        """Make a strategy's client-order-id prefix known before it starts (its constructor does this
        when given the pool): fills it owns are kept for it, never routed to another by symbol."""
        self._prefixes[strategy_id] = prefix

    def _owner(self, client_order_id: str) -> str | None:
        owner, best = None, 0
        for strategy_id, prefix in self._prefixes.items():
            if len(prefix) > best and client_order_id.startswith(prefix):
                owner, best = strategy_id, len(prefix)
        return owner

    def _route(self, subscribers: dict[str, Subscription], event: Event) -> list[Subscription]:
        """The owner by client-order-id prefix (nobody now if it is not running), else by symbol."""
        coid = event.client_order_id
        if coid:
            owner = self._owner(coid)
            if owner is not None:
                subscription = subscribers.get(owner)
                return [subscription] if subscription is not None and subscription.consumer is not None else []
        return [s for s in subscribers.values() if s.consumer is not None and s.wants_symbol(event)]

    # durable delivery ----------------------------------------------------------------------------
    async def resolve_position(self, consumer: Consumer) -> None:
        """Where a strategy's delivery starts: its stored position (after an unclean end, what it may
        have seen is marked redelivered), or for a new strategy where the store ended when this pool
        opened it: every fill this process stores reaches it, whichever strategy started first."""
        if not self.trade_sync.store_ready.is_set() and self._base_seq is None:
            raise StoreError("the store is not open yet")
        strategy_id = consumer.strategy_id
        record = await self.store.get_delivery(strategy_id)
        if record is None:
            position, bound = self._base_seq, None
        else:
            position, unclean = record
            bound = await self.store.max_seq() if unclean else None
            if unclean:
                self.sync_log.strategy(strategy_id, "resumed after an unclean end", position=position,
                                       redelivery_up_to=bound)
        await self.store.set_delivery(strategy_id, position, True, self._prefixes.get(strategy_id))
        self._unresolved.discard(strategy_id)
        self._positions_written[strategy_id] = position
        consumer.begin_delivery(position, bound)

    async def catch_up(self, consumer: Consumer, after_seq: int, redelivery_bound: int | None
                       ) -> AsyncIterator[tuple[int, list[Trade]]]:
        """Stored fills after `after_seq` that belong to this consumer, a page at a time, as
        (last seq read, its fills). Fills up to `redelivery_bound` are marked redelivered."""
        while (keys := self._strategies.get(consumer.strategy_id)) and self._consumers.get(
                consumer.strategy_id) is consumer:  # once unsubscribed, the rest waits for its next start
            rows = await self.store.trades_after(keys, after_seq, CATCH_UP_PAGE)
            if not rows or self._consumers.get(consumer.strategy_id) is not consumer:
                return
            mine = []
            for seq, trade in rows:
                trade = with_delivery(trade, seq=seq, owner_unknown=trade.client_order_id is None,
                                     redelivered=redelivery_bound is not None and seq <= redelivery_bound)
                subscribers = self._subscribers.get(trade.key, {})
                if any(s.consumer is consumer for s in self._route(subscribers, trade)):
                    mine.append(trade)
            after_seq = rows[-1][0]
            yield after_seq, mine
            if len(rows) < CATCH_UP_PAGE:
                return

    def _seen_path(self, strategy_id: str) -> Path | None:
        spool = self.trade_sync.spool
        if spool is None:
            return None
        digest = hashlib.sha1(strategy_id.encode()).hexdigest()[:12]
        return spool.path.with_name(f"{spool.path.stem}.seen-{digest}.json")

    def remember_seen(self, strategy_id: str, keys: Iterable[tuple]) -> bool:
        """At a clean stop: the fills a strategy saw from the spool whose stored copies it has not met
        yet (their seq is unknown, so its position cannot cover them), kept durably beside the spool so
        its next start skips them. False if there is nowhere to keep them (then they come marked)."""
        path = self._seen_path(strategy_id)
        if path is None:
            return False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            with temporary.open("w", encoding="utf-8") as handle:
                json.dump([list(key) for key in keys], handle)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(path)
        except OSError as exc:
            logger.bind(strategy=strategy_id, error=str(exc)).warning("fills seen from the spool not kept")
            return False
        return True

    def _take_seen(self, strategy_id: str) -> list[tuple]:
        path = self._seen_path(strategy_id)
        if path is None or not path.exists():
            return []
        try:
            keys = [tuple(key) for key in json.loads(path.read_text(encoding="utf-8"))]
        except (OSError, ValueError) as exc:
            logger.bind(strategy=strategy_id, error=str(exc)).warning("fills seen from the spool unreadable")
            return []
        path.unlink(missing_ok=True)  # in memory now: a kill from here on counts as unclean anyway
        return keys

    async def write_position(self, consumer: Consumer, running: bool) -> None:
        """Persist where a strategy's delivery stands (`running=False` only after a clean stop)."""
        async with self._position_lock:  # the keeper's write never lands after a stop's
            await self._write_position(consumer, running)

    async def _write_position(self, consumer: Consumer, running: bool) -> None:
        seq = consumer.last_seq
        if seq is None or not self.trade_sync.store_ready.is_set():
            return
        bound = consumer.redelivery_bound
        if bound is not None and seq < bound:
            running = True  # fills it may have seen before an unclean end are still ahead: they stay marked
        if consumer.unconfirmed:
            running = True  # it has seen spooled fills its position cannot cover yet: they come marked
        try:
            await self.store.set_delivery(consumer.strategy_id, seq, running, self._prefixes.get(consumer.strategy_id))
            self._positions_written[consumer.strategy_id] = seq
        except StoreError as exc:
            logger.bind(strategy=consumer.strategy_id, error=str(exc)).warning("delivery position not written")

    async def _keep_positions(self) -> None:
        while True:
            await asyncio.sleep(POSITION_EVERY)
            async with self._position_lock:
                for consumer in list(self._consumers.values()):
                    seq = consumer.last_seq
                    if (self._consumers.get(consumer.strategy_id) is consumer and seq is not None
                            and seq > self._positions_written.get(consumer.strategy_id, -1)):
                        await self._write_position(consumer, running=True)

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
            await self.trade_sync.progress.wait_until(self.trade_sync.progress.submitted, None)
            for consumer in list(self._consumers.values()):
                await consumer.drained()

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
