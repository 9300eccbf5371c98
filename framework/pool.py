"""The global, reference-counted pool of connections: one private socket per ConnectionKey and one public
(market data) connection per (venue, market), each shared by every strategy on it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterable, Mapping, Protocol, Sequence

import attrs
from loguru import logger

from framework.venue import Endpoints, ExchangeSpec
from framework.connection import BaseConnection, MockConnection, PrivateConnection
from framework.errors import ConfigError, LifecycleError, StoreError
from framework.events import ConnectionKey, Market, OrderUpdate, Trade, with_delivery
from framework.pipeline import (
    BALANCED,
    Lane,
    AlertConfig,
    MessageQueueConfig,
    PerformanceConfig,
    Pipeline,
    PipelineConfig,
    preset,
)
from framework.pipeline.routing import Consumer, Subscription
from framework.marketdata.feed import DEFAULT_DEPTH, PublicConnection, Watch
from framework.pipeline.channels import Channel
from framework.retry import MARKET_WATCH, STORE_OPEN, Backoff
from framework.sink import GapNotice, Notice
from framework.store import DEFAULT_STORE_URL, OrderCursor, TradeStore, open_store, order_states_page
from framework.sync_log import TradeSyncLogger
from framework.trade_sync import TradeSync

if TYPE_CHECKING:
    from framework.backfill_scheduler import BackfillScheduler


class Connector(Protocol):
    """What a strategy holds per key: settings the pool builds a connection from (ExchangeConnector,
    MockConnector). A mock one (`is_mock`) gets a connection that reads only what a test pushes."""

    key: ConnectionKey


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
        pipeline_config: PipelineConfig | str | None = None,
        queue_config: MessageQueueConfig | None = None,
        performance_config: PerformanceConfig | None = None,
        alert_config: AlertConfig | None = None,
        future_tolerance_ms: int | None = None,
        market_endpoints: Callable[[str, Market], Endpoints | None] | None = None,
        market_backoff: Backoff | None = None,
        **trade_sync_options: Any,
    ) -> None:
        self.store_url = store_url or DEFAULT_STORE_URL
        self.store = store or open_store(self.store_url)
        self.sync_log = TradeSyncLogger(log_dir)
        trade_sync_options.setdefault("spool_path", spool_path_for(self.store, spool_dir))
        self.trade_sync = TradeSync(self.store, self.sync_log, **trade_sync_options)
        config = pipeline_config_of(pipeline_config, queue_config, performance_config, alert_config)
        tolerance = {} if future_tolerance_ms is None else {"future_tolerance_ms": future_tolerance_ms}
        self.pipeline = Pipeline(self.trade_sync, self.store, self.sync_log, config, **tolerance)
        router = self.pipeline.router
        self._connections: dict[ConnectionKey, BaseConnection] = {}
        self._schedulers: dict[ConnectionKey, BackfillScheduler] = {}
        self._subscribers: dict[ConnectionKey, dict[str, Subscription]] = router.subscribers
        self._strategies: dict[str, list[ConnectionKey]] = {}
        self._key_locks: dict[ConnectionKey, asyncio.Lock] = {}
        self._consumers: dict[str, Consumer] = {}
        self._prefixes: dict[str, str] = router.prefixes  # every strategy declared here or known to the store
        self._positions_written: dict[str, int] = {}
        self._base_seq: int | None = None  # the store's last seq when it opened (before the spool replay)
        self.backfill_since_ms = backfill_since_ms
        self._tasks: set[asyncio.Task] = set()
        self._position_lock = asyncio.Lock()
        self._unresolved: set[str] = set()  # subscribed while the store was down, no position written yet
        self._start_lock = asyncio.Lock()
        self._state = "created"
        self.store_open_policy = STORE_OPEN  # how a store unreachable at start is opened later
        # Public (market data) connections, one per (venue, market) key, and who watches what on them.
        self._public: dict[ConnectionKey, PublicConnection] = {}
        self._watching: dict[str, list[ConnectionKey]] = {}  # strategy id -> public keys it watches
        # Where a venue's public streams are (None: live). Unset, a strategy's own connector for the same
        # (venue, market) says (the simulator's connectors point there), else the live venue.
        self.market_endpoints = market_endpoints
        self.market_backoff = market_backoff or MARKET_WATCH
        self.trading: Any = None  # the process's order entry (framework.orders.setup_websocket_trading)
        self._order_requests: dict[tuple, Any] = {}  # order entry requests not written yet (newest per client id)

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
            await self.pipeline.start()
            self._spawn(self._keep_positions(), "delivery-positions")
            self._state = "running"
            self.sync_log.event("connection pool started", store=self.store.url)

    async def _store_opened(self) -> None:
        self._base_seq = await self.store.max_seq()
        if self.pipeline.stored_seq is None:
            self.pipeline.stored_seq = self._base_seq
        declared = dict(self._prefixes)  # this process's strategies come after the stored ones: they win a tie
        merged = {**await self.store.delivery_prefixes(), **declared}
        self._prefixes.clear()
        self._prefixes.update({sid: p for sid, p in merged.items() if sid not in declared})
        self._prefixes.update(declared)

    async def _open_store_later(self) -> None:
        first = True

        def still_down(state: Any) -> None:
            nonlocal first
            error = str(state.outcome.exception())
            if first:  # said loudly once at start; from here on only when debugging
                self.sync_log.error("store still unreachable", store=self.store.url, error=error)
                first = False
            logger.bind(store=self.store.url, error=error).debug("store still unreachable")

        policy = self.store_open_policy.copy(before_sleep=still_down)
        await asyncio.sleep(0.5)
        async for attempt in policy:
            with attempt:
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
        self.sync_log.event("store is back: writing the spool", store=self.store.url)
        logger.bind(store=self.store.url).warning("store is back: writing the spool")
        self.trade_sync.store_ready.set()
        for key in list(self._connections):  # replays of what is stored now count as duplicates again
            await self.trade_sync.prime(key)

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
        if self.trading is not None:
            await self.trading.stop()
        await self._write_order_requests()
        for strategy_id in list(self._strategies):
            await self.unsubscribe_strategy(strategy_id)
        await self.trade_sync.stop(timeout)
        await self.pipeline.stop(timeout)
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
                self.declare_strategy(strategy_id, consumer.client_order_id_prefix or strategy_id)
                self._watch(consumer)
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
            self.pipeline.router.add(key, subscription)
            if key not in self._connections:
                await self.trade_sync.prime(key)
                connection, scheduler = self.build_connection(connector)
                if scheduler is not None:
                    self._schedulers[key] = scheduler
                    scheduler.start()
                try:
                    await connection.start()
                except BaseException:
                    if self._schedulers.pop(key, None) is not None:
                        await scheduler.close()
                    raise
                self._connections[key] = connection
                self.sync_log.log_trade_fetch_start(key.exchange, "*", "websocket", key=str(key))
            elif subscription.symbols and key in self._schedulers:
                self._schedulers[key].notice(GapNotice(kind=Notice.SYMBOLS, session=0))

    def _watch(self, consumer: Consumer) -> None:
        """A strategy in the monitor: its inbox depth, what it was handed and what it handled (CRITICAL lane)."""
        progress = getattr(consumer, "progress", None)
        stats = self.pipeline.monitor.consumer(
            consumer.strategy_id, "strategy",
            lambda: {Lane.CRITICAL: progress.submitted - progress.completed} if progress is not None else {})
        if progress is not None:
            progress.stats = stats.lanes[Lane.CRITICAL]

    def build_connection(self, connector: Connector) -> tuple[BaseConnection, BackfillScheduler | None]:
        """A key's connection from its connector's settings, publishing into the pipeline through a sink of
        its own; with a backfill scheduler fed by the connection's gap notices when the venue backfills."""
        key = connector.key
        sink = self.pipeline.sink(key)
        if getattr(connector, "is_mock", False):
            return MockConnection(key, sink, connector.normalize), None
        remote = getattr(connector, "remote_connection", None)
        if remote is not None:  # the key's events come from elsewhere (framework.scaleout): no socket, no backfill
            return remote(sink, self.trade_sync.wait_stored), None
        spec: ExchangeSpec = connector.spec
        connection = PrivateConnection(
            key, sink, spec, connector.credentials, connector.endpoints, retry_policy=connector.retry_policy,
            stall_limit=connector.stall_limit,
        )
        backfill = spec.backfill is not None and connector.backfill
        if not backfill and (spec.account is None or spec.backfill is None):
            return connection, None
        from framework.backfill import Backfiller  # ccxt: imported once a venue backfills (half a second)
        from framework.backfill_scheduler import BackfillScheduler
        backfiller = Backfiller(key, spec.backfill, connector.credentials, spec.stream.endpoints(key.market),
                                connector.endpoints, retry_policy=connector.backfill_retry_policy,
                                overlap_ms=connector.backfill_overlap_ms, lookback_ms=self.backfill_since_ms)
        scheduler = BackfillScheduler(
            key, backfiller, sink=sink, store=self.store, durability=self.trade_sync, sync_log=self.sync_log,
            symbols=lambda: self.backfill_symbols(key), recent_client_ids=connection.recent_client_ids,
        )
        scheduler.backfill_enabled = backfill  # off: it only reads the account at each (re)connect
        scheduler.account_rules = spec.account  # the account read over REST at every (re)connect
        if spec.account is not None:
            self.pipeline.account_refresh[key] = scheduler.refresh_account
        sink.on_notice = scheduler.notice
        return connection, scheduler

    def scheduler(self, key: ConnectionKey) -> BackfillScheduler | None:
        """The backfill scheduler of an open key (None: a venue or connector without backfill)."""
        return self._schedulers.get(key)

    # market data -----------------------------------------------------------------------------------------
    async def watch_market(self, strategy_id: str, consumer: Any, plan: Mapping[ConnectionKey, Iterable[Watch]],
                           *, depth: int = DEFAULT_DEPTH, connectors: Sequence[Connector] = ()) -> None:
        """Give a strategy the market data it declared: each key's public connection is opened by its first
        watcher, and a stream nobody watched yet is subscribed. A symbol the venue does not list is a
        ConfigError naming its nearest listed ones; then nothing of this call stays watched."""
        await self.start()
        if self._state != "running":
            raise LifecycleError(f"connection pool is {self._state}")
        if strategy_id in self._watching:
            raise ConfigError(f"strategy id {strategy_id!r} already watches market data: strategy ids must be unique")
        self._watching[strategy_id] = []
        try:
            for key, watches in plan.items():
                key = ConnectionKey(exchange=key.exchange, market=key.market)  # public: one per (venue, market)
                watches = list(watches)
                async with self._key_lock(_public_lock_key(key)):
                    connection = self._public.get(key)
                    if connection is None:
                        connection = self._open_public(key, connectors)
                    self._watching[strategy_id].append(key)  # a failure below closes it again if it is unused
                    await connection.watch(strategy_id, watches, depth)
                for w in watches:
                    self.pipeline.watch_market(consumer, Channel(w.kind), key, w.symbol, w.timeframe)
        except BaseException:
            await self.unwatch_market(strategy_id)
            raise
        self.sync_log.strategy(strategy_id, "watching market data",
                               keys=",".join(map(str, self._watching.get(strategy_id, ()))))

    def _open_public(self, key: ConnectionKey, connectors: Sequence[Connector]) -> PublicConnection:
        from exchanges import get_exchange  # the venue's rules (framework.venue.MarketDataRules)

        rules = get_exchange(key.exchange).market_data
        if rules is None:
            raise ConfigError(f"{key.exchange} has no market data here yet")
        if key.market not in get_exchange(key.exchange).markets:
            raise ConfigError(f"{key.exchange} has no {key.market.value} market here")
        endpoints = None
        if self.market_endpoints is not None:
            endpoints = self.market_endpoints(key.exchange, key.market)
        else:
            for connector in connectors:
                if (connector.key.exchange, connector.key.market) == (key.exchange, key.market):
                    endpoints = getattr(connector, "endpoints", None)
                    break
        connection = PublicConnection(
            key, rules, endpoints, self.pipeline.publish_market, dead_letter=self.pipeline.dead_letter,
            event_log=self.sync_log.event, backoff=self.market_backoff,
        )
        self._public[key] = connection
        self.sync_log.connection(f"{key}:public", "opening")
        return connection

    async def _close_public(self, key: ConnectionKey) -> None:
        connection = self._public.pop(key, None)
        if connection is not None:
            await connection.close()
            self.sync_log.connection(f"{key}:public", "closed")

    async def unwatch_market(self, strategy_id: str) -> None:
        """Stop a strategy's market data; streams nobody else watches are un-watched, and a public connection
        whose last watcher left is closed. Idempotent."""
        keys = self._watching.pop(strategy_id, None)
        if keys is None:
            return
        self.pipeline.unwatch_market(strategy_id)
        for key in keys:
            async with self._key_lock(_public_lock_key(key)):
                connection = self._public.get(key)
                if connection is not None and not await connection.unwatch(strategy_id):
                    await self._close_public(key)

    def public_connection(self, exchange: str, market: Market | str) -> PublicConnection | None:
        return self._public.get(ConnectionKey(exchange=exchange, market=market))

    async def unsubscribe_strategy(self, strategy_id: str) -> None:
        """Remove a strategy from every key; a key's last subscriber leaving closes its socket. Idempotent."""
        await self.unwatch_market(strategy_id)
        keys = self._strategies.pop(strategy_id, None)
        if keys is None:
            return
        consumer = self._consumers.pop(strategy_id, None)
        if consumer is not None:
            self.pipeline.monitor.remove_consumer(strategy_id)
        if consumer is not None and self._state == "stopping":  # stopped with the pool, not by itself
            await self.write_position(consumer, running=True)
        for key in keys:
            async with self._key_lock(key):
                if self.pipeline.router.remove(key, strategy_id):
                    scheduler = self._schedulers.pop(key, None)
                    self.pipeline.account_refresh.pop(key, None)
                    if scheduler is not None:  # its last coverage mark is taken while the stream is still live
                        try:
                            await scheduler.close()
                        except Exception as exc:  # noqa: BLE001 - closing must go on
                            logger.bind(key=str(key), error=str(exc)).error("backfill scheduler failed to close")
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

    def declare_strategy(self, strategy_id: str, prefix: str) -> None:
        """Make a strategy's client-order-id prefix known before it starts (its constructor does this
        when given the pool): fills it owns are kept for it, never routed to another by symbol. A strategy
        declared with the very prefix of another takes it over (the other is named in a warning)."""
        previous = self.pipeline.router.declare(strategy_id, prefix)
        if previous is not None:
            logger.bind(strategy=strategy_id, prefix=prefix, previous_owner=previous).warning(
                "client order id prefix taken over from another strategy")
            self.sync_log.strategy(strategy_id, "prefix taken over", prefix=prefix, previous_owner=previous)

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
        self._forget_seen(strategy_id)  # from here on an end without a clean stop marks what it may have seen
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
            route = self.pipeline.router.route
            for seq, trade in rows:
                trade = with_delivery(trade, seq=seq, owner_unknown=trade.client_order_id is None,
                                     redelivered=redelivery_bound is not None and seq <= redelivery_bound)
                if any(s.consumer is consumer for s in route(trade)):
                    mine.append(trade)
            after_seq = rows[-1][0]
            yield after_seq, mine
            if len(rows) < CATCH_UP_PAGE:
                return

    async def order_states(self, consumer: Consumer, cursor: OrderCursor, limit: int
                           ) -> tuple[list[OrderUpdate], OrderCursor | None]:
        """A page of the latest stored states of the orders of a strategy's keys updated since the cursor that are
        its own (routed as live updates are), oldest first, and the cursor after it (None: the end). Waits until
        what was received so far is written, so the store is not older than what the strategy could not keep."""
        keys = self._strategies.get(consumer.strategy_id)
        if not keys:
            return [], None
        await self.trade_sync.wait_stored()
        states, after = await order_states_page(self.store, keys, cursor, limit)
        route = self.pipeline.router.route
        return [state for state in states if any(s.consumer is consumer for s in route(state))], after

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
        # Kept until this start is durably unclean (resolve_position writes running=True): a kill before that,
        # the store down meanwhile, must find them again at the next start.
        return keys

    def _forget_seen(self, strategy_id: str) -> None:
        path = self._seen_path(strategy_id)
        if path is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                logger.bind(strategy=strategy_id, error=str(exc)).warning("fills seen from the spool not forgotten")

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

    def consumer(self, strategy_id: str) -> Any:
        """The running strategy with this id in this pool, or None."""
        return self._consumers.get(strategy_id)

    def record_order_request(self, snapshot: Any) -> None:
        """An order entry request's newest state, written with the next position write (framework.orders)."""
        self._order_requests[(snapshot.key, snapshot.client_order_id)] = snapshot

    async def _write_order_requests(self) -> None:
        if not self._order_requests:
            return
        pending, self._order_requests = self._order_requests, {}
        try:
            await self.store.record_order_requests(list(pending.values()))
        except StoreError as exc:
            for key, snapshot in pending.items():  # kept for the next write (newer states win)
                self._order_requests.setdefault(key, snapshot)
            logger.bind(error=str(exc)[:200]).warning("order requests not written yet")

    async def _keep_positions(self) -> None:
        while True:
            await asyncio.sleep(POSITION_EVERY)
            await self._write_order_requests()
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

    def dead_letter(self, key: ConnectionKey, raw: Any, error: str) -> None:
        self.pipeline.dead_letter(key, raw, error)

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every event received so far is delivered to its strategies and stored."""
        async with asyncio.timeout(timeout):
            self.pipeline.hand_pending()
            await self.trade_sync.wait_stored()
            for consumer in list(self._consumers.values()):
                await consumer.drained()
            await self.pipeline.drained()

    # status ------------------------------------------------------------------------------------
    def get_connection_status(self) -> dict[str, Any]:
        connections = {}
        for key, connection in self._connections.items():
            info = connection.status_dict()
            scheduler = self._schedulers.get(key)
            if scheduler is not None:
                info.update(scheduler.status())
            info["subscriber_count"] = len(self._subscribers.get(key, {}))
            info["subscribers"] = sorted(self._subscribers.get(key, {}))
            connections[str(key)] = info
        public = {}
        for key, connection in self._public.items():
            info = connection.status_dict()
            info["watcher_count"] = len(connection.watchers())
            public[str(key)] = info
        return {
            "total_connections": len(self._connections),
            "total_strategies": len(self._strategies | self._watching),
            "connections": connections,
            "public_connections": public,
            "strategies": {sid: [str(k) for k in keys] for sid, keys in self._strategies.items()},
            "trade_sync": self.trade_sync.stats(),
            "pipeline": self.pipeline.status(),
        }


def _public_lock_key(key: ConnectionKey) -> ConnectionKey:
    """The lock of a public connection (apart from the private key of the same name)."""
    return ConnectionKey(exchange=key.exchange, market=key.market, account="\x00public")


def pipeline_config_of(
    config: PipelineConfig | str | None,
    queue: MessageQueueConfig | None = None,
    performance: PerformanceConfig | None = None,
    alerts: AlertConfig | None = None,
) -> PipelineConfig:
    """A preset (by name or object, default balanced) with any of its three parts replaced."""
    base = preset(config) if isinstance(config, str) else (config or BALANCED)
    if not isinstance(base, PipelineConfig):
        raise ConfigError(f"pipeline_config must be a PipelineConfig or a preset name, got {type(base).__name__}")
    changes = {name: value for name, value in (("queue", queue), ("performance", performance), ("alerts", alerts))
               if value is not None}
    return attrs.evolve(base, **changes) if changes else base


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
